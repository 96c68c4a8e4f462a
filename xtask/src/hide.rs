//! Keeping the static libraries' symbols out of what we ship, for linkers
//! without GNU ld's `--exclude-libs` (Apple's ld64, zig's linker): every
//! defined global symbol of every object in OpenSSL's and the deps' static
//! archives is marked hidden before anything links them — N_PEXT in Mach-O
//! objects, STV_HIDDEN in ELF ones, what `-fvisibility=hidden` would have
//! made of them. The final link still resolves them, but no executable or
//! module built from the archives exports them, even with
//! `-export-dynamic`. Unlike `-fvisibility` this also reaches assembly
//! sources (OpenSSL's `OPENSSL_cleanse`, libffi's `ffi_call_SYSV`) and
//! libraries that mark their API visible (expat, ncurses). Only flags
//! change, never sizes, so the archive index stays valid.

use anyhow::{bail, Context, Result};
use std::path::Path;

const ARCHIVE_MAGIC: &[u8] = b"!<arch>\n";

/// Hides the symbols of every member of a static archive (GNU or BSD
/// format; members that are neither 64-bit Mach-O nor 64-bit
/// little-endian ELF objects, like the index, are left alone). Returns
/// how many symbols were hidden.
pub fn hide_archive_symbols(archive: &mut [u8]) -> Result<usize> {
    if !archive.starts_with(ARCHIVE_MAGIC) {
        bail!("not a static archive (no !<arch> header)");
    }
    let mut hidden = 0;
    let mut at = ARCHIVE_MAGIC.len();
    while at + 60 <= archive.len() {
        let header = &archive[at..at + 60];
        let field =
            |r: std::ops::Range<usize>| String::from_utf8_lossy(&header[r]).trim().to_string();
        let name = field(0..16);
        let size: usize = field(48..58)
            .parse()
            .with_context(|| format!("archive member header at byte {at} has no size"))?;
        let mut data = at + 60;
        let end = data + size;
        if end > archive.len() {
            bail!("archive member {name:?} runs past the end of the archive");
        }
        // BSD long names: "#1/<len>", the name stored before the data.
        if let Some(len) = name.strip_prefix("#1/") {
            data += len.parse::<usize>().unwrap_or(0);
        }
        let member = &mut archive[data..end];
        hidden += crate::macho::hide_object_symbols(member) + hide_elf_object_symbols(member);
        at = end + (end % 2);
    }
    Ok(hidden)
}

/// STV_HIDDEN on the defined global and weak symbols (common ones
/// included) of one 64-bit little-endian ELF relocatable object; anything
/// else is left alone.
fn hide_elf_object_symbols(obj: &mut [u8]) -> usize {
    const ET_REL: u16 = 1;
    const SHT_SYMTAB: u32 = 2;
    const SHN_UNDEF: u16 = 0;
    const STB_GLOBAL: u8 = 1;
    const STB_WEAK: u8 = 2;
    const STB_GNU_UNIQUE: u8 = 10;
    const STV_DEFAULT: u8 = 0;
    const STV_HIDDEN: u8 = 2;
    const STV_PROTECTED: u8 = 3;
    const SYM_SIZE: usize = 24;
    let u16_at = |b: &[u8], at: usize| -> Option<u16> {
        Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
    };
    let u32_at = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let u64_at = |b: &[u8], at: usize| -> Option<usize> {
        Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?) as usize)
    };
    // ELFCLASS64, ELFDATA2LSB, a relocatable object.
    if !obj.starts_with(b"\x7fELF\x02\x01") || u16_at(obj, 16) != Some(ET_REL) {
        return 0;
    }
    let (Some(shoff), Some(shentsize), Some(shnum)) =
        (u64_at(obj, 0x28), u16_at(obj, 0x3a), u16_at(obj, 0x3c))
    else {
        return 0;
    };
    let mut hidden = 0;
    for i in 0..shnum as usize {
        let sh = shoff + i * shentsize as usize;
        if u32_at(obj, sh + 4) != Some(SHT_SYMTAB) {
            continue;
        }
        let (Some(offset), Some(size), Some(first_global)) = (
            u64_at(obj, sh + 0x18),
            u64_at(obj, sh + 0x20),
            u32_at(obj, sh + 0x2c),
        ) else {
            continue;
        };
        for s in first_global as usize..size / SYM_SIZE {
            let at = offset + s * SYM_SIZE;
            let (Some(&info), Some(shndx)) = (obj.get(at + 4), u16_at(obj, at + 6)) else {
                break;
            };
            let bind = info >> 4;
            let global = matches!(bind, STB_GLOBAL | STB_WEAK | STB_GNU_UNIQUE);
            let Some(other) = obj.get_mut(at + 5) else {
                break;
            };
            let visibility = *other & 3;
            if global && shndx != SHN_UNDEF && matches!(visibility, STV_DEFAULT | STV_PROTECTED) {
                *other = (*other & !3) | STV_HIDDEN;
                hidden += 1;
            }
        }
    }
    hidden
}

/// Rewrites a static archive on disk with its symbols hidden (see above),
/// by atomic rename.
pub fn hide_symbols_in_archive_file(path: &Path) -> Result<usize> {
    let mut bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let n = hide_archive_symbols(&mut bytes).with_context(|| format!("in {}", path.display()))?;
    let tmp = path.with_extension("a.tmp");
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::process::Command;

    /// A real archive from the machine's gcc and ar: after hiding, a
    /// program linked with `-rdynamic` against it no longer exports the
    /// library's function or data (global, weak and common), and still
    /// calls it; the undefined reference to libc's puts is untouched.
    #[test]
    fn hidden_archive_symbols_are_linked_but_not_exported() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        fs::write(
            p.join("lib.c"),
            "#include <stdio.h>\n\
             int lib_data = 7;\n\
             int lib_common;\n\
             __attribute__((weak)) int lib_weak(void) { return 1; }\n\
             __attribute__((visibility(\"default\"))) int lib_call(void) { puts(\"x\"); return lib_data + lib_weak() + lib_common; }\n",
        )
        .unwrap();
        fs::write(
            p.join("main.c"),
            "int lib_call(void);\nint main(void) { return lib_call() == 8 ? 0 : 1; }\n",
        )
        .unwrap();
        let run = |args: &[&str]| {
            let st = Command::new(args[0])
                .args(&args[1..])
                .current_dir(p)
                .status()
                .unwrap();
            assert!(st.success(), "{args:?}");
        };
        run(&["gcc", "-fcommon", "-fPIC", "-c", "lib.c"]);
        run(&["ar", "rcs", "liblib.a", "lib.o"]);
        let exported = |exe: &str| -> String {
            let out = Command::new("nm")
                .args(["-D", "--defined-only", exe])
                .current_dir(p)
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        run(&["gcc", "-rdynamic", "main.c", "liblib.a", "-o", "before"]);
        assert!(exported("before").contains("lib_call"));
        let n = hide_symbols_in_archive_file(&p.join("liblib.a")).unwrap();
        assert_eq!(n, 4, "lib_data, lib_common, lib_weak, lib_call");
        run(&["gcc", "-rdynamic", "main.c", "liblib.a", "-o", "after"]);
        let after = exported("after");
        for sym in ["lib_call", "lib_data", "lib_weak", "lib_common"] {
            assert!(!after.contains(sym), "{sym} still exported:\n{after}");
        }
        assert!(exported("after").contains("main"));
        run(&["./after"]);
        // Hiding again finds nothing left to hide.
        assert_eq!(
            hide_symbols_in_archive_file(&p.join("liblib.a")).unwrap(),
            0
        );
    }

    #[test]
    fn not_an_archive_is_an_error() {
        assert!(hide_archive_symbols(&mut b"not an archive".to_vec()).is_err());
    }
}
