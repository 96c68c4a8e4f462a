//! Mach-O structural validation for macOS interpreters cross-built from
//! Linux with zig cc: the right architecture and deployment target, only
//! system dylibs (never OpenSSL), no LC_RPATH, PIE executables, signed arm64
//! code, and no exported symbols of the libraries we link statically.
//! Also merges two thin images into a universal (fat) file, as `lipo -create`
//! would, since there is no lipo on a Linux build machine.

use anyhow::{bail, Context, Result};
use goblin::mach::constants::cputype::{CPU_TYPE_ARM64, CPU_TYPE_X86_64};
use goblin::mach::fat::FatArch;
use goblin::mach::header::{MH_BUNDLE, MH_DYLIB, MH_EXECUTE, MH_OBJECT, MH_PIE};
use goblin::mach::load_command::{CommandVariant, PLATFORM_MACOS};
use goblin::mach::symbols::{N_ABS, N_EXT, N_PEXT, N_SECT, N_STAB, N_TYPE};
use goblin::mach::{Mach, MachO};
use std::path::{Path, PathBuf};

/// What a Mach-O file of one target must look like.
pub struct MachoRules<'a> {
    /// "aarch64" or "x86_64" (the Rust triple's arch).
    pub arch: &'a str,
    /// The deployment target every LC_BUILD_VERSION (or LC_VERSION_MIN_MACOSX) minos must equal, e.g. "11.0" or "10.15".
    pub min_os: &'a str,
    /// Path prefixes an LC_LOAD_DYLIB / LC_LOAD_WEAK_DYLIB / LC_REEXPORT_DYLIB may start with, e.g. ["/usr/lib/", "/System/Library/"].
    pub allowed_dylib_prefixes: &'a [String],
    /// Symbol-name prefixes (without Mach-O's leading underscore, e.g. "SSL_", "EVP_") that no exported symbol may carry.
    pub hidden_prefixes: &'a [&'a str],
    /// Exact exported names tolerated despite a hidden prefix, each with a
    /// reason in the toolchain file (linker limitations).
    pub tolerated_exports: &'a [String],
}

const MH_MAGIC: u32 = 0xfeed_face;
const MH_CIGAM: u32 = 0xcefa_edfe;
const MH_MAGIC_64: u32 = 0xfeed_facf;
const MH_CIGAM_64: u32 = 0xcffa_edfe;
const FAT_MAGIC: u32 = 0xcafe_babe;
/// A Java class file shares the fat magic; its next word is its version
/// (major >= 45), a fat header's is a handful of architectures.
const MAX_FAT_ARCHES: u32 = 32;
/// Slices of a universal file start on 16 KiB boundaries (2^14).
const FAT_ALIGN_LOG2: u32 = 14;
const FAT_HEADER_SIZE: usize = 8;
const FAT_ARCH_SIZE: usize = 20;
const ARCHIVE_MAGIC: &[u8] = b"!<arch>\n";

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// True when the bytes start with a Mach-O magic (thin 32/64, either endianness) or a fat magic (0xcafebabe, but NOT a Java class file: a fat header's nfat_arch is small, < 32).
pub fn is_macho(bytes: &[u8]) -> bool {
    match be32(bytes, 0) {
        Some(MH_MAGIC | MH_CIGAM | MH_MAGIC_64 | MH_CIGAM_64) => true,
        Some(FAT_MAGIC) => be32(bytes, 4).is_some_and(|n| n < MAX_FAT_ARCHES),
        _ => false,
    }
}

/// Every Mach-O file under root (recursive, regular files only, sorted).
pub fn macho_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = crate::util::files_under(root, false)?;
    files.retain(|p| crate::util::file_starts_with(p, is_macho));
    Ok(files)
}

/// The Mach-O cputype of a Rust triple's arch.
fn cputype_of(arch: &str) -> Option<u32> {
    match arch {
        "aarch64" | "arm64" => Some(CPU_TYPE_ARM64),
        "x86_64" => Some(CPU_TYPE_X86_64),
        _ => None,
    }
}

fn cpu_name(cputype: u32) -> String {
    match cputype {
        CPU_TYPE_ARM64 => "arm64".into(),
        CPU_TYPE_X86_64 => "x86_64".into(),
        other => format!("cputype {other:#x}"),
    }
}

/// "11.0" -> 0x000b0000, "10.15" -> 0x000a0f00, "10.15.7" -> 0x000a0f07
/// (xxxx.yy.zz in nibbles, as LC_BUILD_VERSION stores it).
fn encode_version(v: &str) -> Option<u32> {
    let parts: Vec<&str> = v.trim().split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut n = [0u32; 3];
    for (i, p) in parts.iter().enumerate() {
        n[i] = p.parse().ok()?;
    }
    if n[0] > 0xffff || n[1] > 0xff || n[2] > 0xff {
        return None;
    }
    Some((n[0] << 16) | (n[1] << 8) | n[2])
}

fn decode_version(v: u32) -> String {
    let (major, minor, patch) = (v >> 16, (v >> 8) & 0xff, v & 0xff);
    if patch == 0 {
        format!("{major}.{minor}")
    } else {
        format!("{major}.{minor}.{patch}")
    }
}

/// Checks one file; pushes human-readable violations (each naming the file path and what is wrong and what would be right) into `violations`, and the dylibs seen into `dylibs_seen` (deduplicated by the caller). Errors only when the file cannot be parsed.
pub fn check_macho(
    path: &Path,
    bytes: &[u8],
    rules: &MachoRules,
    violations: &mut Vec<String>,
    dylibs_seen: &mut Vec<String>,
) -> Result<()> {
    let want_cpu = cputype_of(rules.arch)
        .with_context(|| format!("no Mach-O cputype known for arch {:?}", rules.arch))?;
    let min_os = encode_version(rules.min_os)
        .with_context(|| format!("deployment target {:?} is not a version", rules.min_os))?;
    let name = path.display().to_string();
    let parse_err = || format!("parsing {name} as Mach-O");
    match Mach::parse(bytes).with_context(parse_err)? {
        Mach::Binary(macho) => {
            // Object files (config-*/python.o) are link inputs, not loaded code.
            if macho.header.filetype == MH_OBJECT {
                return Ok(());
            }
            check_image(
                &name,
                &macho,
                rules,
                min_os,
                Some(want_cpu),
                violations,
                dylibs_seen,
            )
            .with_context(parse_err)
        }
        Mach::Fat(multi) => {
            let arches: Vec<FatArch> = multi.arches().with_context(parse_err)?;
            let mut images = Vec::new();
            for (i, arch) in arches.iter().enumerate() {
                let slice = arch.slice(bytes);
                if slice.is_empty() {
                    bail!(
                        "{name}: slice {i} ({}) lies outside the file",
                        cpu_name(arch.cputype)
                    );
                }
                // A universal static library holds archives: link inputs.
                if slice.starts_with(ARCHIVE_MAGIC) {
                    continue;
                }
                let macho = MachO::parse(slice, 0)
                    .with_context(|| format!("parsing slice {i} of {name} as Mach-O"))?;
                if macho.header.filetype != MH_OBJECT {
                    images.push((arch.cputype, macho));
                }
            }
            if images.is_empty() {
                return Ok(());
            }
            if !arches.iter().any(|a| a.cputype == want_cpu) {
                let have: Vec<String> = arches.iter().map(|a| cpu_name(a.cputype)).collect();
                violations.push(format!(
                    "{name}: universal binary has no {} slice (has {}); it must contain one for {}",
                    cpu_name(want_cpu),
                    have.join(", "),
                    rules.arch
                ));
            }
            for (cputype, macho) in &images {
                let label = format!("{name} [{} slice]", cpu_name(*cputype));
                check_image(&label, macho, rules, min_os, None, violations, dylibs_seen)
                    .with_context(parse_err)?;
            }
            Ok(())
        }
    }
}

/// Checks one thin image (a whole file or one slice of a universal file).
/// `want_cpu` is None for slices of a universal file, whose architectures
/// differ by design.
fn check_image(
    label: &str,
    macho: &MachO,
    rules: &MachoRules,
    min_os: u32,
    want_cpu: Option<u32>,
    violations: &mut Vec<String>,
    dylibs_seen: &mut Vec<String>,
) -> Result<()> {
    let h = &macho.header;
    // 1. Architecture.
    if let Some(want) = want_cpu {
        if h.cputype != want {
            violations.push(format!(
                "{label}: built for {} (cputype {:#x}), expected {} (cputype {want:#x}) for {}",
                cpu_name(h.cputype),
                h.cputype,
                cpu_name(want),
                rules.arch
            ));
        }
    }

    // 2. Deployment target.
    let mut versions = Vec::new(); // (load command, minos)
    let mut other_platforms = Vec::new();
    let mut signed = false;
    for lc in &macho.load_commands {
        match &lc.command {
            CommandVariant::BuildVersion(bv) if bv.platform == PLATFORM_MACOS => {
                versions.push(("LC_BUILD_VERSION", bv.minos))
            }
            CommandVariant::BuildVersion(bv) => other_platforms.push(bv.platform),
            CommandVariant::VersionMinMacosx(vm) => {
                versions.push(("LC_VERSION_MIN_MACOSX", vm.version))
            }
            CommandVariant::CodeSignature(_) => signed = true,
            _ => {}
        }
    }
    if versions.is_empty() {
        let found = if other_platforms.is_empty() {
            String::new()
        } else {
            format!(
                " (only LC_BUILD_VERSION for platform {})",
                other_platforms
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        violations.push(format!(
            "{label}: no macOS LC_BUILD_VERSION or LC_VERSION_MIN_MACOSX{found}; \
             expected one with minos {}",
            rules.min_os
        ));
    }
    for (cmd, minos) in versions {
        if minos != min_os {
            violations.push(format!(
                "{label}: {cmd} minos is {}, expected the deployment target {}",
                decode_version(minos),
                decode_version(min_os)
            ));
        }
    }

    // 3. Dylibs: libs[0] is the image itself ("self" or its LC_ID_DYLIB);
    // the rest come from LC_{LOAD,LOAD_WEAK,REEXPORT,LAZY_LOAD,LOAD_UPWARD}_DYLIB.
    for lib in macho.libs.iter().skip(1) {
        if !dylibs_seen.iter().any(|d| d == lib) {
            dylibs_seen.push(lib.to_string());
        }
        if lib.contains("libssl") || lib.contains("libcrypto") {
            violations.push(format!(
                "{label}: links OpenSSL dynamically ({lib}); OpenSSL must be linked statically"
            ));
        } else if !rules
            .allowed_dylib_prefixes
            .iter()
            .any(|p| lib.starts_with(p.as_str()))
        {
            violations.push(format!(
                "{label}: loads {lib}, outside the allowed locations ({})",
                rules.allowed_dylib_prefixes.join(", ")
            ));
        }
    }

    // 4. No run-path search.
    for rpath in &macho.rpaths {
        violations.push(format!(
            "{label}: has LC_RPATH {rpath}; a relocatable interpreter must have no run paths"
        ));
    }

    // 5. PIE executables.
    if h.filetype == MH_EXECUTE && h.flags & MH_PIE == 0 {
        violations.push(format!(
            "{label}: executable lacks the MH_PIE flag; it must be position-independent"
        ));
    }

    // 6. Signed arm64 code.
    let loadable = matches!(h.filetype, MH_EXECUTE | MH_DYLIB | MH_BUNDLE);
    if loadable && h.cputype == CPU_TYPE_ARM64 && !signed {
        violations.push(format!(
            "{label}: arm64 image has no LC_CODE_SIGNATURE; macOS on Apple Silicon \
             refuses to run unsigned code (it needs at least an ad-hoc signature)"
        ));
    }

    // 7. Hidden symbols stay hidden.
    let mut exported: Vec<String> = macho
        .exports()
        .context("reading the export trie")?
        .into_iter()
        .map(|e| e.name)
        .collect();
    if exported.is_empty() && h.filetype == MH_EXECUTE {
        for sym in macho.symbols() {
            let (n, nl) = sym.context("reading the symbol table")?;
            let defined = matches!(nl.n_type & N_TYPE, N_SECT | N_ABS);
            if nl.n_type & N_STAB == 0
                && nl.n_type & N_EXT != 0
                && nl.n_type & N_PEXT == 0
                && defined
            {
                exported.push(n.to_string());
            }
        }
    }
    let leaked: Vec<&String> = exported
        .iter()
        .filter(|n| {
            let c = n.strip_prefix('_').unwrap_or(n);
            rules.hidden_prefixes.iter().any(|p| c.starts_with(p))
                && !rules.tolerated_exports.iter().any(|t| t == *n)
        })
        .collect();
    if !leaked.is_empty() {
        let examples: Vec<&str> = leaked.iter().take(3).map(|s| s.as_str()).collect();
        violations.push(format!(
            "{label}: exports {} symbol(s) of statically linked libraries, e.g. {}; \
             they must be hidden",
            leaked.len(),
            examples.join(", ")
        ));
    }
    Ok(())
}

/// The (cputype, cpusubtype) of a thin Mach-O image, or an error.
fn thin_cpu(bytes: &[u8], which: &str) -> Result<(u32, u32)> {
    if !matches!(
        be32(bytes, 0),
        Some(MH_MAGIC | MH_CIGAM | MH_MAGIC_64 | MH_CIGAM_64)
    ) {
        bail!("{which} is not a thin Mach-O image");
    }
    let m = MachO::parse(bytes, 0).with_context(|| format!("parsing {which} as Mach-O"))?;
    Ok((m.header.cputype, m.header.cpusubtype))
}

fn align_up(n: usize, align: usize) -> usize {
    n.div_ceil(align) * align
}

/// Merges two thin Mach-O images of different architectures into one fat (universal) file: fat_header + 2 fat_arch entries (big-endian), each slice aligned to 2^14 bytes (align field 14), slices in the order given. Errors if either is not thin Mach-O or both have the same cputype.
// Not called by the pipeline yet (universal2 packaging is wired separately).
pub fn merge_universal(a: &[u8], b: &[u8]) -> Result<Vec<u8>> {
    let (cpu_a, sub_a) = thin_cpu(a, "the first image")?;
    let (cpu_b, sub_b) = thin_cpu(b, "the second image")?;
    if cpu_a == cpu_b {
        bail!(
            "both images are {}; a universal file needs two different architectures",
            cpu_name(cpu_a)
        );
    }
    let align = 1usize << FAT_ALIGN_LOG2;
    let off_a = align_up(FAT_HEADER_SIZE + 2 * FAT_ARCH_SIZE, align);
    let off_b = align_up(off_a + a.len(), align);
    let total = off_b + b.len();
    if u32::try_from(total).is_err() {
        bail!("a universal file of {total} bytes is too large for 32-bit fat offsets");
    }
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&FAT_MAGIC.to_be_bytes());
    out.extend_from_slice(&2u32.to_be_bytes());
    for (cpu, sub, off, len) in [
        (cpu_a, sub_a, off_a, a.len()),
        (cpu_b, sub_b, off_b, b.len()),
    ] {
        for v in [cpu, sub, off as u32, len as u32, FAT_ALIGN_LOG2] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
    out.resize(off_a, 0);
    out.extend_from_slice(a);
    out.resize(off_b, 0);
    out.extend_from_slice(b);
    Ok(out)
}

/// Names an image exports (its export trie), for a thin image.
pub fn exported_names(bytes: &[u8]) -> Result<std::collections::HashSet<String>> {
    let m = MachO::parse(bytes, 0).context("parsing Mach-O")?;
    Ok(m.exports()
        .map_err(|e| anyhow::anyhow!("reading the export trie: {e}"))?
        .into_iter()
        .map(|e| e.name)
        .collect())
}

/// CPython symbols (`_Py*`, `__Py*`) a thin image leaves undefined: an
/// extension module linked with `-undefined dynamic_lookup` finds them in
/// the interpreter when it loads, or fails to load. Read from the symbol
/// table, which every fixup format keeps.
pub fn python_symbols_needed(bytes: &[u8]) -> Result<Vec<String>> {
    const N_EXT: u8 = 0x01;
    const N_TYPE: u8 = 0x0e;
    let m = MachO::parse(bytes, 0).context("parsing Mach-O")?;
    let mut out = Vec::new();
    for (name, nl) in m.symbols().flatten() {
        let undefined = nl.n_type & N_TYPE == 0 && nl.n_value == 0;
        if nl.n_type & N_EXT != 0
            && undefined
            && (name.starts_with("_Py") || name.starts_with("__Py"))
        {
            out.push(name.to_string());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// N_PEXT on the defined external symbols of one thin 64-bit little-endian
/// MH_OBJECT (anything else is left alone: index members, other formats).
pub(crate) fn hide_object_symbols(obj: &mut [u8]) -> usize {
    const LC_SYMTAB: u32 = 0x2;
    const N_EXT: u8 = 0x01;
    const N_PEXT: u8 = 0x10;
    const N_TYPE: u8 = 0x0e;
    const N_SECT: u8 = 0x0e;
    const N_UNDF: u8 = 0x00;
    let le = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    if le(obj, 0) != Some(MH_MAGIC_64) || le(obj, 12) != Some(1) {
        return 0;
    }
    let ncmds = le(obj, 16).unwrap_or(0);
    let mut cmd_at = 32usize;
    let mut hidden = 0;
    for _ in 0..ncmds {
        let (Some(cmd), Some(cmdsize)) = (le(obj, cmd_at), le(obj, cmd_at + 4)) else {
            break;
        };
        if cmd == LC_SYMTAB {
            let symoff = le(obj, cmd_at + 8).unwrap_or(0) as usize;
            let nsyms = le(obj, cmd_at + 12).unwrap_or(0) as usize;
            for i in 0..nsyms {
                let n_type_at = symoff + i * 16 + 4;
                // A common symbol (`.comm`, e.g. OpenSSL's OPENSSL_ia32cap_P)
                // is undefined with a size in n_value; the link defines it.
                let n_value = obj
                    .get(n_type_at + 4..n_type_at + 12)
                    .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
                let Some(n_type) = obj.get_mut(n_type_at) else {
                    break;
                };
                let defined = *n_type & N_TYPE == N_SECT;
                let common = *n_type & N_TYPE == N_UNDF && n_value != 0;
                if *n_type & N_EXT != 0 && (defined || common) && *n_type & N_PEXT == 0 {
                    *n_type |= N_PEXT;
                    hidden += 1;
                }
            }
        }
        cmd_at += cmdsize.max(8) as usize;
    }
    hidden
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const LC_SEGMENT_64: u32 = 0x19;
    const LC_SYMTAB: u32 = 0x2;
    const LC_LOAD_DYLIB: u32 = 0xc;
    const LC_LOAD_WEAK_DYLIB: u32 = 0x8000_0018;
    const LC_REEXPORT_DYLIB: u32 = 0x8000_001f;
    const LC_RPATH: u32 = 0x8000_001c;
    const LC_CODE_SIGNATURE: u32 = 0x1d;
    const LC_DYLD_INFO_ONLY: u32 = 0x8000_0022;
    const LC_DYLD_EXPORTS_TRIE: u32 = 0x8000_0033;
    const LC_BUILD_VERSION: u32 = 0x32;
    const LC_VERSION_MIN_MACOSX: u32 = 0x24;
    const LC_MAIN: u32 = 0x8000_0028;
    const MH_DYLDLINK: u32 = 0x4;
    const MH_TWOLEVEL: u32 = 0x80;
    const VM_BASE: u64 = 0x1_0000_0000;
    const CPU_TYPE_POWERPC64: u32 = 0x0100_0012;

    #[derive(Clone, Copy, PartialEq)]
    enum Version {
        Build { platform: u32, minos: u32 },
        Min(u32),
        None,
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Trie {
        Exports,
        DyldInfoOnly,
        None,
    }

    /// A minimal, well-formed 64-bit little-endian Mach-O image.
    #[derive(Clone)]
    struct Img {
        cputype: u32,
        filetype: u32,
        flags: u32,
        version: Version,
        dylibs: Vec<(u32, String)>,
        rpaths: Vec<String>,
        signed: bool,
        trie: Trie,
        exports: Vec<String>,
        symtab: Vec<String>,
    }

    fn le32(out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    fn le64(out: &mut Vec<u8>, v: u64) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    fn name16(out: &mut Vec<u8>, s: &str) {
        let mut b = [0u8; 16];
        b[..s.len()].copy_from_slice(s.as_bytes());
        out.extend_from_slice(&b);
    }
    fn pad8(out: &mut Vec<u8>) {
        out.resize(align_up(out.len(), 8), 0);
    }
    /// A load command carrying a string at offset `fixed` (dylib, rpath).
    fn str_cmd(cmd: u32, fixed: usize, s: &str, fields: &[u32]) -> Vec<u8> {
        let size = align_up(fixed + s.len() + 1, 8);
        let mut c = Vec::new();
        le32(&mut c, cmd);
        le32(&mut c, size as u32);
        le32(&mut c, fixed as u32);
        for f in fields {
            le32(&mut c, *f);
        }
        assert_eq!(c.len(), fixed);
        c.extend_from_slice(s.as_bytes());
        c.resize(size, 0);
        c
    }
    /// ULEB128 in exactly two bytes (valid, if not minimal), so node
    /// offsets can be computed before they are written.
    fn uleb2(out: &mut Vec<u8>, v: usize) {
        assert!(v < 1 << 14);
        out.push((v & 0x7f) as u8 | 0x80);
        out.push((v >> 7) as u8);
    }
    /// An export trie whose root has one full-name edge per symbol, each
    /// leading to a terminal node (flags 0 = regular, address).
    fn export_trie(names: &[String]) -> Vec<u8> {
        let root_len = 2 + names.iter().map(|n| n.len() + 1 + 2).sum::<usize>();
        let leaf_len = 1 + 1 + 2 + 1; // size, flags, address(2), nchildren
        let mut t = vec![0u8, names.len() as u8];
        for (i, n) in names.iter().enumerate() {
            t.extend_from_slice(n.as_bytes());
            t.push(0);
            uleb2(&mut t, root_len + i * leaf_len);
        }
        assert_eq!(t.len(), root_len);
        for i in 0..names.len() {
            t.push(3); // terminal info: flags + 2-byte address
            t.push(0);
            uleb2(&mut t, 0x1000 + i * 0x10);
            t.push(0);
        }
        t
    }

    impl Img {
        /// The good arm64 python executable.
        fn exe_arm64() -> Self {
            Img {
                cputype: CPU_TYPE_ARM64,
                filetype: MH_EXECUTE,
                flags: MH_DYLDLINK | MH_TWOLEVEL | MH_PIE,
                version: Version::Build {
                    platform: PLATFORM_MACOS,
                    minos: 0x000b_0000,
                },
                dylibs: vec![(LC_LOAD_DYLIB, "/usr/lib/libSystem.B.dylib".into())],
                rpaths: vec![],
                signed: true,
                trie: Trie::Exports,
                exports: vec!["__mh_execute_header".into(), "_Py_Initialize".into()],
                symtab: vec![],
            }
        }
        fn exe_x86_64() -> Self {
            Img {
                cputype: CPU_TYPE_X86_64,
                signed: false,
                ..Self::exe_arm64()
            }
        }
        fn dylib(cputype: u32) -> Self {
            Img {
                cputype,
                filetype: MH_DYLIB,
                flags: MH_DYLDLINK | MH_TWOLEVEL,
                exports: vec!["_PyInit__ssl".into()],
                ..Self::exe_arm64()
            }
        }

        fn build(&self) -> Vec<u8> {
            let cpusubtype = if self.cputype == CPU_TYPE_X86_64 {
                3
            } else {
                0
            };
            // Fixed-size commands first, so the layout is known before the
            // __LINKEDIT offsets are written.
            let mut strcmds: Vec<Vec<u8>> = Vec::new();
            for (cmd, name) in &self.dylibs {
                // dylib_command: name offset, timestamp, current, compat version
                strcmds.push(str_cmd(*cmd, 24, name, &[2, 0x0001_0000, 0x0001_0000]));
            }
            for p in &self.rpaths {
                strcmds.push(str_cmd(LC_RPATH, 12, p, &[]));
            }
            let seg_size = 72 + 80; // __TEXT with one __text section
            let linkedit_size = 72;
            let version_size = match self.version {
                Version::Build { .. } => 24,
                Version::Min(_) => 16,
                Version::None => 0,
            };
            let main_size = if self.filetype == MH_EXECUTE { 24 } else { 0 };
            let trie_size = match self.trie {
                Trie::Exports => 16,
                Trie::DyldInfoOnly => 48,
                Trie::None => 0,
            };
            let symtab_size = if self.symtab.is_empty() { 0 } else { 24 };
            let sig_size = if self.signed { 16 } else { 0 };
            let sizeofcmds = seg_size
                + linkedit_size
                + version_size
                + main_size
                + trie_size
                + symtab_size
                + sig_size
                + strcmds.iter().map(Vec::len).sum::<usize>();
            let ncmds = 2
                + [version_size, main_size, trie_size, symtab_size, sig_size]
                    .iter()
                    .filter(|s| **s != 0)
                    .count()
                + strcmds.len();
            let code_off = 32 + sizeofcmds;
            let code = [0xc0u8, 0x03, 0x5f, 0xd6, 0, 0, 0, 0]; // ret
            let text_end = align_up(code_off + code.len(), 8);

            // __LINKEDIT: export trie, symbols, strings, signature (last).
            let mut le = Vec::new();
            let trie = export_trie(&self.exports);
            let trie_off = text_end;
            if self.trie != Trie::None {
                le.extend_from_slice(&trie);
                pad8(&mut le);
            }
            let sym_off = text_end + le.len();
            let mut strtab = vec![b' ', 0];
            for (i, s) in self.symtab.iter().enumerate() {
                le32(&mut le, strtab.len() as u32);
                le.push(N_EXT | N_SECT);
                le.push(1);
                le.extend_from_slice(&0u16.to_le_bytes());
                le64(&mut le, VM_BASE + code_off as u64 + i as u64);
                strtab.extend_from_slice(s.as_bytes());
                strtab.push(0);
            }
            let str_off = text_end + le.len();
            pad8(&mut strtab);
            if !self.symtab.is_empty() {
                le.extend_from_slice(&strtab);
            }
            let sig_off = text_end + le.len();
            // An empty embedded-signature SuperBlob (big-endian).
            let sig = [0xfa, 0xde, 0x0c, 0xc0, 0, 0, 0, 12, 0, 0, 0, 0];
            if self.signed {
                le.extend_from_slice(&sig);
                pad8(&mut le);
            }

            let mut out = Vec::new();
            for v in [
                MH_MAGIC_64,
                self.cputype,
                cpusubtype,
                self.filetype,
                ncmds as u32,
                sizeofcmds as u32,
                self.flags,
                0,
            ] {
                le32(&mut out, v);
            }
            // LC_SEGMENT_64 __TEXT + section __text
            le32(&mut out, LC_SEGMENT_64);
            le32(&mut out, seg_size as u32);
            name16(&mut out, "__TEXT");
            le64(&mut out, VM_BASE);
            le64(&mut out, 0x4000);
            le64(&mut out, 0);
            le64(&mut out, text_end as u64);
            for v in [5, 5, 1, 0] {
                le32(&mut out, v); // maxprot, initprot, nsects, flags
            }
            name16(&mut out, "__text");
            name16(&mut out, "__TEXT");
            le64(&mut out, VM_BASE + code_off as u64);
            le64(&mut out, code.len() as u64);
            for v in [code_off as u32, 2, 0, 0, 0x8000_0400, 0, 0, 0] {
                le32(&mut out, v); // offset, align, reloff, nreloc, flags, reserved1-3
            }
            // LC_SEGMENT_64 __LINKEDIT
            le32(&mut out, LC_SEGMENT_64);
            le32(&mut out, linkedit_size as u32);
            name16(&mut out, "__LINKEDIT");
            le64(&mut out, VM_BASE + 0x4000);
            le64(&mut out, 0x4000);
            le64(&mut out, text_end as u64);
            le64(&mut out, le.len() as u64);
            for v in [1, 1, 0, 0] {
                le32(&mut out, v);
            }
            match self.version {
                Version::Build { platform, minos } => {
                    for v in [LC_BUILD_VERSION, 24, platform, minos, 0x000e_0000, 0] {
                        le32(&mut out, v);
                    }
                }
                Version::Min(minos) => {
                    for v in [LC_VERSION_MIN_MACOSX, 16, minos, 0x000e_0000] {
                        le32(&mut out, v);
                    }
                }
                Version::None => {}
            }
            if main_size != 0 {
                le32(&mut out, LC_MAIN);
                le32(&mut out, 24);
                le64(&mut out, code_off as u64);
                le64(&mut out, 0);
            }
            let trie_len = trie.len() as u32;
            match self.trie {
                Trie::Exports => {
                    for v in [LC_DYLD_EXPORTS_TRIE, 16, trie_off as u32, trie_len] {
                        le32(&mut out, v);
                    }
                }
                Trie::DyldInfoOnly => {
                    for v in [LC_DYLD_INFO_ONLY, 48, 0, 0, 0, 0, 0, 0, 0, 0] {
                        le32(&mut out, v);
                    }
                    le32(&mut out, trie_off as u32);
                    le32(&mut out, trie_len);
                }
                Trie::None => {}
            }
            if symtab_size != 0 {
                let n = self.symtab.len() as u32;
                for v in [LC_SYMTAB, 24, sym_off as u32, n, str_off as u32] {
                    le32(&mut out, v);
                }
                le32(&mut out, strtab.len() as u32);
            }
            for c in &strcmds {
                out.extend_from_slice(c);
            }
            if self.signed {
                for v in [LC_CODE_SIGNATURE, 16, sig_off as u32, sig.len() as u32] {
                    le32(&mut out, v);
                }
            }
            assert_eq!(out.len(), code_off, "load commands add up to sizeofcmds");
            out.extend_from_slice(&code);
            out.resize(text_end, 0);
            out.extend_from_slice(&le);
            out
        }
    }

    const HIDDEN: &[&str] = &["SSL_", "OPENSSL_", "EVP_", "X509_", "CRYPTO_"];

    fn allowed() -> Vec<String> {
        vec!["/usr/lib/".into(), "/System/Library/".into()]
    }

    /// Runs check_macho with the usual rules for `arch` and `min_os`.
    fn check_as(bytes: &[u8], arch: &str, min_os: &str) -> (Vec<String>, Vec<String>) {
        let prefixes = allowed();
        let rules = MachoRules {
            arch,
            min_os,
            allowed_dylib_prefixes: &prefixes,
            hidden_prefixes: HIDDEN,
            tolerated_exports: &[],
        };
        let mut v = Vec::new();
        let mut d = Vec::new();
        check_macho(Path::new("bin/python3"), bytes, &rules, &mut v, &mut d).unwrap();
        (v, d)
    }

    /// Where the image's nlist entries start (LC_SYMTAB symoff).
    fn symtab_offset(image: &[u8]) -> usize {
        MachO::parse(image, 0)
            .unwrap()
            .load_commands
            .iter()
            .find_map(|lc| match lc.command {
                goblin::mach::load_command::CommandVariant::Symtab(st) => Some(st.symoff as usize),
                _ => None,
            })
            .unwrap()
    }

    fn check(img: &Img) -> Vec<String> {
        check_as(&img.build(), "aarch64", "11.0").0
    }

    /// Exactly one violation, containing every one of `needles`.
    fn assert_one(v: &[String], needles: &[&str]) {
        assert_eq!(v.len(), 1, "expected one violation, got {v:#?}");
        for n in needles {
            assert!(v[0].contains(n), "{:?} does not mention {n:?}", v[0]);
        }
        assert!(v[0].starts_with("bin/python3"), "{:?} names no file", v[0]);
    }

    fn export_names(m: &MachO) -> Vec<String> {
        m.exports().unwrap().into_iter().map(|e| e.name).collect()
    }

    #[test]
    fn goblin_parses_the_synthesized_images() {
        let bytes = Img::exe_arm64().build();
        let Mach::Binary(m) = Mach::parse(&bytes).unwrap() else {
            panic!("not thin")
        };
        assert_eq!(m.header.cputype, CPU_TYPE_ARM64);
        assert_eq!(m.header.filetype, MH_EXECUTE);
        assert_ne!(m.header.flags & MH_PIE, 0);
        assert_eq!(m.libs, ["self", "/usr/lib/libSystem.B.dylib"]);
        assert!(m.rpaths.is_empty());
        assert_eq!(export_names(&m), ["__mh_execute_header", "_Py_Initialize"]);
        let segs: Vec<String> = m
            .segments
            .iter()
            .map(|s| s.name().unwrap().into())
            .collect();
        assert_eq!(segs, ["__TEXT", "__LINKEDIT"]);
        let sections = m.segments[0].sections().unwrap();
        assert_eq!(sections[0].0.name().unwrap(), "__text");
        assert_eq!(m.entry, VM_BASE + sections[0].0.offset as u64);
        let mut saw_sig = false;
        let mut saw_bv = false;
        for lc in &m.load_commands {
            match &lc.command {
                CommandVariant::CodeSignature(c) => {
                    saw_sig = true;
                    let blob = &bytes[c.dataoff as usize..][..c.datasize as usize];
                    assert_eq!(blob[..4], [0xfa, 0xde, 0x0c, 0xc0]);
                    let le = &m.segments[1];
                    assert!(c.dataoff as u64 >= le.fileoff);
                    assert!((c.dataoff + c.datasize) as u64 <= le.fileoff + le.filesize);
                }
                CommandVariant::BuildVersion(bv) => {
                    saw_bv = true;
                    assert_eq!((bv.platform, bv.minos), (1, 0x000b_0000));
                }
                _ => {}
            }
        }
        assert!(saw_sig && saw_bv);
        // __LINKEDIT runs to the end of the file.
        let le = &m.segments[1];
        assert_eq!((le.fileoff + le.filesize) as usize, bytes.len());

        // The export trie behind LC_DYLD_INFO_ONLY, and LC_SYMTAB symbols.
        let img = Img {
            trie: Trie::DyldInfoOnly,
            symtab: vec!["_main".into(), "_SSL_new".into()],
            dylibs: vec![
                (LC_LOAD_DYLIB, "/usr/lib/libSystem.B.dylib".into()),
                (LC_LOAD_WEAK_DYLIB, "/usr/lib/libz.1.dylib".into()),
            ],
            rpaths: vec!["@loader_path/../lib".into()],
            ..Img::exe_x86_64()
        };
        let bytes = img.build();
        let m = MachO::parse(&bytes, 0).unwrap();
        assert_eq!(export_names(&m), ["__mh_execute_header", "_Py_Initialize"]);
        let syms: Vec<(String, u8)> = m
            .symbols()
            .map(|s| s.unwrap())
            .map(|(n, nl)| (n.to_string(), nl.n_type))
            .collect();
        assert_eq!(
            syms,
            [("_main".into(), 0x0f), ("_SSL_new".to_string(), 0x0f)]
        );
        assert_eq!(m.libs.len(), 3);
        assert_eq!(m.rpaths, ["@loader_path/../lib"]);
    }

    #[test]
    fn good_arm64_executable_passes() {
        let (v, d) = check_as(&Img::exe_arm64().build(), "aarch64", "11.0");
        assert!(v.is_empty(), "{v:#?}");
        assert_eq!(d, ["/usr/lib/libSystem.B.dylib"]);
        // So do a good arm64 extension module and an x86_64 executable.
        assert!(check(&Img::dylib(CPU_TYPE_ARM64)).is_empty());
        let (v, _) = check_as(&Img::exe_x86_64().build(), "x86_64", "11.0");
        assert!(v.is_empty(), "{v:#?}");
    }

    #[test]
    fn wrong_arch() {
        let v = check(&Img::exe_x86_64());
        assert_one(&v, &["x86_64", "arm64", "aarch64"]);
        let (v, _) = check_as(&Img::exe_arm64().build(), "x86_64", "11.0");
        assert_one(&v, &["built for arm64", "x86_64"]);
    }

    #[test]
    fn wrong_minos() {
        let img = Img {
            version: Version::Build {
                platform: PLATFORM_MACOS,
                minos: 0x000c_0000,
            },
            ..Img::exe_arm64()
        };
        assert_one(&check(&img), &["LC_BUILD_VERSION", "12.0", "11.0"]);
        // Versions compare as versions: "11" is 11.0.0.
        assert!(check_as(&Img::exe_arm64().build(), "aarch64", "11")
            .0
            .is_empty());
        // LC_VERSION_MIN_MACOSX counts too: 10.15 = 0x000a0f00.
        let old = Img {
            version: Version::Min(0x000a_0f00),
            ..Img::exe_x86_64()
        };
        assert!(check_as(&old.build(), "x86_64", "10.15").0.is_empty());
        let (v, _) = check_as(&old.build(), "x86_64", "10.13");
        assert_eq!(v.len(), 1, "{v:#?}");
        assert!(v[0].contains("LC_VERSION_MIN_MACOSX") && v[0].contains("10.15"));
        assert!(v[0].contains("10.13"));
    }

    #[test]
    fn version_encoding() {
        assert_eq!(encode_version("11.0"), Some(0x000b_0000));
        assert_eq!(encode_version("10.15"), Some(0x000a_0f00));
        assert_eq!(encode_version("10.15.7"), Some(0x000a_0f07));
        assert_eq!(encode_version("14"), Some(0x000e_0000));
        assert_eq!(encode_version("ten"), None);
        assert_eq!(encode_version("10.256"), None);
        assert_eq!(decode_version(0x000a_0f07), "10.15.7");
        assert_eq!(decode_version(0x000b_0000), "11.0");
    }

    #[test]
    fn missing_build_version() {
        let img = Img {
            version: Version::None,
            ..Img::exe_arm64()
        };
        assert_one(&check(&img), &["no macOS LC_BUILD_VERSION", "11.0"]);
        // A build version for another platform (iOS = 2) is not macOS's.
        let ios = Img {
            version: Version::Build {
                platform: 2,
                minos: 0x000b_0000,
            },
            ..Img::exe_arm64()
        };
        assert_one(&check(&ios), &["no macOS LC_BUILD_VERSION", "platform 2"]);
    }

    #[test]
    fn openssl_dylib_is_reported() {
        let mut img = Img::exe_arm64();
        let ssl = "/opt/homebrew/opt/openssl@3/lib/libssl.3.dylib";
        img.dylibs.push((LC_LOAD_DYLIB, ssl.into()));
        let (v, d) = check_as(&img.build(), "aarch64", "11.0");
        assert_one(&v, &["OpenSSL", ssl]);
        assert_eq!(d, ["/usr/lib/libSystem.B.dylib", ssl]);
        // Even from an allowed location.
        let mut img = Img::exe_arm64();
        img.dylibs
            .push((LC_LOAD_WEAK_DYLIB, "/usr/lib/libcrypto.dylib".into()));
        assert_one(&check(&img), &["OpenSSL", "/usr/lib/libcrypto.dylib"]);
    }

    #[test]
    fn dylib_outside_allowed_prefixes() {
        let mut img = Img::exe_arm64();
        img.dylibs
            .push((LC_LOAD_DYLIB, "/usr/local/lib/libfoo.dylib".into()));
        assert_one(&check(&img), &["/usr/local/lib/libfoo.dylib", "/usr/lib/"]);
        let mut img = Img::dylib(CPU_TYPE_ARM64);
        img.dylibs
            .push((LC_REEXPORT_DYLIB, "@rpath/libpython3.13.dylib".into()));
        assert_one(&check(&img), &["@rpath/libpython3.13.dylib"]);
        // System frameworks are fine.
        let mut img = Img::exe_arm64();
        img.dylibs.push((
            LC_LOAD_DYLIB,
            "/System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation".into(),
        ));
        assert!(check(&img).is_empty());
    }

    #[test]
    fn rpath_is_reported() {
        let mut img = Img::exe_arm64();
        img.rpaths.push("/build/work/lib".into());
        assert_one(&check(&img), &["LC_RPATH", "/build/work/lib"]);
    }

    #[test]
    fn executable_without_pie() {
        let mut img = Img::exe_arm64();
        img.flags &= !MH_PIE;
        assert_one(&check(&img), &["MH_PIE"]);
        // MH_PIE is meaningless for dylibs and is not asked of them.
        let img = Img::dylib(CPU_TYPE_ARM64);
        assert_eq!(img.flags & MH_PIE, 0);
        assert!(check(&img).is_empty());
    }

    #[test]
    fn unsigned_arm64_only() {
        let img = Img {
            signed: false,
            ..Img::exe_arm64()
        };
        assert_one(&check(&img), &["LC_CODE_SIGNATURE", "arm64"]);
        let img = Img {
            signed: false,
            ..Img::dylib(CPU_TYPE_ARM64)
        };
        assert_one(&check(&img), &["LC_CODE_SIGNATURE"]);
        // x86_64 macOS runs unsigned code.
        let img = Img::exe_x86_64();
        assert!(!img.signed);
        assert!(check_as(&img.build(), "x86_64", "11.0").0.is_empty());
        let (v, _) = check_as(&Img::dylib(CPU_TYPE_X86_64).build(), "x86_64", "11.0");
        assert!(v.is_empty(), "{v:#?}");
    }

    #[test]
    fn exported_hidden_symbols() {
        let mut img = Img::exe_arm64();
        img.exports.push("_SSL_new".into());
        img.exports.push("_EVP_sha256".into());
        assert_one(
            &check(&img),
            &["exports 2 symbol", "_SSL_new", "_EVP_sha256"],
        );
        // One violation per file however many symbols, with three examples.
        let mut img = Img::dylib(CPU_TYPE_ARM64);
        img.trie = Trie::DyldInfoOnly;
        for s in [
            "_SSL_new",
            "_SSL_free",
            "_EVP_sha256",
            "_X509_free",
            "_OPENSSL_init",
        ] {
            img.exports.push(s.into());
        }
        let v = check(&img);
        assert_one(
            &v,
            &["exports 5 symbol", "_SSL_new", "_SSL_free", "_EVP_sha256"],
        );
        assert!(!v[0].contains("_X509_free") && !v[0].contains("_OPENSSL_init"));
        // Only one leading underscore is stripped: __SSL_x is not SSL_x.
        let mut img = Img::exe_arm64();
        img.exports.push("__SSL_private".into());
        img.exports.push("_PySSL_new".into());
        assert!(check(&img).is_empty());
    }

    #[test]
    fn executable_symtab_stands_in_for_a_missing_trie() {
        let img = Img {
            trie: Trie::None,
            exports: vec![],
            symtab: vec!["_main".into(), "_Py_Main".into(), "_SSL_new".into()],
            ..Img::exe_arm64()
        };
        assert_one(&check(&img), &["exports 1 symbol", "_SSL_new"]);
        // For dylibs only the export trie counts.
        let img = Img {
            trie: Trie::None,
            exports: vec![],
            symtab: vec!["_SSL_new".into()],
            ..Img::dylib(CPU_TYPE_ARM64)
        };
        assert!(check(&img).is_empty());
    }

    #[test]
    fn object_files_are_skipped() {
        let img = Img {
            filetype: MH_OBJECT,
            cputype: CPU_TYPE_X86_64,
            flags: 0,
            version: Version::None,
            rpaths: vec!["/build".into()],
            signed: false,
            exports: vec!["_SSL_new".into()],
            ..Img::exe_arm64()
        };
        let (v, d) = check_as(&img.build(), "aarch64", "11.0");
        assert!(v.is_empty() && d.is_empty(), "{v:#?} {d:#?}");
    }

    #[test]
    fn unparsable_input_is_an_error() {
        let prefixes = allowed();
        let rules = MachoRules {
            arch: "aarch64",
            min_os: "11.0",
            allowed_dylib_prefixes: &prefixes,
            hidden_prefixes: HIDDEN,
            tolerated_exports: &[],
        };
        let mut bytes = Img::exe_arm64().build();
        bytes.truncate(40); // the header promises load commands that are gone
        let (mut v, mut d) = (Vec::new(), Vec::new());
        assert!(check_macho(Path::new("x"), &bytes, &rules, &mut v, &mut d).is_err());
        let rules = MachoRules {
            arch: "riscv64",
            ..rules
        };
        let good = Img::exe_arm64().build();
        assert!(check_macho(Path::new("x"), &good, &rules, &mut v, &mut d).is_err());
    }

    #[test]
    fn is_macho_recognizes_magics() {
        assert!(is_macho(&Img::exe_arm64().build()));
        for magic in [MH_MAGIC, MH_CIGAM, MH_MAGIC_64, MH_CIGAM_64] {
            assert!(is_macho(&magic.to_be_bytes()), "{magic:#x}");
        }
        let fat = merge_universal(&Img::exe_arm64().build(), &Img::exe_x86_64().build()).unwrap();
        assert!(is_macho(&fat));
        assert!(!is_macho(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0"));
        // A Java 8 class file: 0xcafebabe, minor 0, major 52.
        assert!(!is_macho(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52, 0, 0x1d]));
        assert!(!is_macho(&[0xca, 0xfe, 0xba, 0xbe])); // no nfat_arch
        assert!(!is_macho(&[0xcf, 0xfa, 0xed]));
        assert!(!is_macho(&[]));
    }

    #[test]
    fn macho_files_finds_thin_and_fat() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("lib/python3.13/lib-dynload")).unwrap();
        fs::create_dir_all(root.join("bin")).unwrap();
        let exe = Img::exe_arm64().build();
        let fat = merge_universal(&exe, &Img::exe_x86_64().build()).unwrap();
        fs::write(root.join("bin/python3.13"), &fat).unwrap();
        let so = root.join("lib/python3.13/lib-dynload/_ssl.cpython-313-darwin.so");
        fs::write(&so, Img::dylib(CPU_TYPE_ARM64).build()).unwrap();
        fs::write(root.join("lib/python3.13/os.py"), "import abc\n").unwrap();
        fs::write(
            root.join("lib/Hello.class"),
            [0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52],
        )
        .unwrap();
        fs::write(root.join("lib/elf.so"), b"\x7fELF\x02\x01\x01\0").unwrap();
        fs::write(root.join("lib/tiny"), b"\xcf").unwrap();
        std::os::unix::fs::symlink("python3.13", root.join("bin/python3")).unwrap();
        let found = macho_files(root).unwrap();
        assert_eq!(found, [root.join("bin/python3.13"), so]);
    }

    #[test]
    fn merge_universal_layout() {
        let arm = Img::exe_arm64().build();
        let x86 = Img::exe_x86_64().build();
        let fat = merge_universal(&arm, &x86).unwrap();
        assert!(is_macho(&fat));
        let Mach::Fat(multi) = Mach::parse(&fat).unwrap() else {
            panic!("not fat")
        };
        let arches = multi.arches().unwrap();
        assert_eq!(arches.len(), 2);
        let cpus: Vec<u32> = arches.iter().map(|a| a.cputype).collect();
        assert_eq!(cpus, [CPU_TYPE_ARM64, CPU_TYPE_X86_64]);
        assert_eq!(arches[1].cpusubtype, 3);
        for (a, input) in arches.iter().zip([&arm, &x86]) {
            assert_eq!(a.align, 14);
            assert_eq!(a.offset % 16384, 0);
            assert!(a.offset > 0);
            assert_eq!(a.slice(&fat), &input[..]);
        }
        assert!(arches[1].offset >= arches[0].offset + arches[0].size);
        // Each slice parses as the thin image it was.
        for entry in &multi {
            let goblin::mach::SingleArch::MachO(m) = entry.unwrap() else {
                panic!("archive slice")
            };
            assert_eq!(export_names(&m), ["__mh_execute_header", "_Py_Initialize"]);
        }
        // Order is kept.
        let rev = merge_universal(&x86, &arm).unwrap();
        let Mach::Fat(multi) = Mach::parse(&rev).unwrap() else {
            panic!("not fat")
        };
        assert_eq!(multi.arches().unwrap()[0].cputype, CPU_TYPE_X86_64);
    }

    #[test]
    fn merge_universal_rejects_bad_inputs() {
        let arm = Img::exe_arm64().build();
        let x86 = Img::exe_x86_64().build();
        let err = merge_universal(&arm, &Img::dylib(CPU_TYPE_ARM64).build()).unwrap_err();
        assert!(err.to_string().contains("arm64"), "{err}");
        assert!(merge_universal(&arm, b"\x7fELF\x02\x01\x01\0").is_err());
        let fat = merge_universal(&arm, &x86).unwrap();
        assert!(merge_universal(&fat, &x86).is_err());
        assert!(merge_universal(&[], &x86).is_err());
    }

    #[test]
    fn universal_files_are_checked_per_slice() {
        let arm = Img::exe_arm64().build();
        let x86 = Img::exe_x86_64().build();
        let fat = merge_universal(&arm, &x86).unwrap();
        for arch in ["x86_64", "aarch64"] {
            let (v, d) = check_as(&fat, arch, "11.0");
            assert!(v.is_empty(), "{arch}: {v:#?}");
            assert_eq!(d, ["/usr/lib/libSystem.B.dylib"]);
        }
        // The slice for the target's arch must be there.
        let ppc = Img {
            cputype: CPU_TYPE_POWERPC64,
            ..Img::exe_x86_64()
        };
        let fat = merge_universal(&arm, &ppc.build()).unwrap();
        assert_one(&check_as(&fat, "x86_64", "11.0").0, &["no x86_64 slice"]);
        // Every slice is checked: an rpath in the x86_64 slice, an unsigned
        // arm64 slice.
        let bad_x86 = Img {
            rpaths: vec!["/build/lib".into()],
            ..Img::exe_x86_64()
        };
        let unsigned_arm = Img {
            signed: false,
            ..Img::exe_arm64()
        };
        let fat = merge_universal(&unsigned_arm.build(), &bad_x86.build()).unwrap();
        let (v, _) = check_as(&fat, "x86_64", "11.0");
        assert_eq!(v.len(), 2, "{v:#?}");
        assert!(v[0].contains("[arm64 slice]") && v[0].contains("LC_CODE_SIGNATURE"));
        assert!(v[1].contains("[x86_64 slice]") && v[1].contains("LC_RPATH"));
    }

    #[test]
    fn archive_symbols_become_private_extern_and_are_no_longer_exported() {
        let obj = Img {
            filetype: MH_OBJECT,
            flags: 0,
            signed: false,
            trie: Trie::None,
            exports: vec![],
            symtab: vec!["_OPENSSL_cleanse".into(), "_ffi_call_SYSV".into()],
            ..Img::exe_arm64()
        };
        let mut member = obj.build();
        // Make the second symbol a common one (`.comm`: undefined + size).
        let symoff = symtab_offset(&member);
        member[symoff + 16 + 4] = 0x01; // N_UNDF | N_EXT
        member[symoff + 16 + 5] = 0; // NO_SECT
        member[symoff + 16 + 8..symoff + 16 + 16].copy_from_slice(&40u64.to_le_bytes());
        // GNU-style archive: magic, one member header, the object.
        let mut ar = ARCHIVE_MAGIC.to_vec();
        ar.extend_from_slice(
            format!(
                "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                "cpuid.o/",
                0,
                0,
                0,
                644,
                member.len()
            )
            .as_bytes(),
        );
        ar.extend_from_slice(&member);
        assert_eq!(crate::hide::hide_archive_symbols(&mut ar).unwrap(), 2);
        // Run again: nothing left to hide.
        assert_eq!(
            crate::hide::hide_archive_symbols(&mut ar.clone()).unwrap(),
            0
        );
        // Each symbol is still defined and external, now private extern.
        let hidden_obj = &ar[ARCHIVE_MAGIC.len() + 60..];
        let m = MachO::parse(hidden_obj, 0).unwrap();
        let types: Vec<(String, u8)> = m
            .symbols()
            .flatten()
            .map(|(name, nl)| (name.to_string(), nl.n_type))
            .collect();
        assert_eq!(types.len(), 2, "{types:?}");
        assert_eq!(types[0].1, 0x1f, "{}: N_PEXT | N_SECT | N_EXT", types[0].0);
        assert_eq!(
            types[1].1, 0x11,
            "{}: N_PEXT | N_UNDF | N_EXT (common)",
            types[1].0
        );
        assert!(crate::hide::hide_archive_symbols(&mut b"not an archive".to_vec()).is_err());
    }

    #[test]
    fn a_tolerated_export_is_not_reported_but_others_are() {
        let img = Img {
            exports: vec![
                "_Py_Initialize".into(),
                "_OPENSSL_ia32cap_P".into(),
                "_SSL_new".into(),
            ],
            ..Img::exe_arm64()
        };
        let prefixes = allowed();
        let tolerated = vec!["_OPENSSL_ia32cap_P".to_string()];
        let rules = MachoRules {
            arch: "aarch64",
            min_os: "11.0",
            allowed_dylib_prefixes: &prefixes,
            hidden_prefixes: HIDDEN,
            tolerated_exports: &tolerated,
        };
        let (mut v, mut d) = (Vec::new(), Vec::new());
        check_macho(
            Path::new("bin/python3"),
            &img.build(),
            &rules,
            &mut v,
            &mut d,
        )
        .unwrap();
        assert_one(&v, &["exports 1 symbol", "_SSL_new"]);
    }

    #[test]
    fn a_module_needing_an_unexported_python_symbol_is_found() {
        let exe = Img {
            exports: vec!["_Py_Initialize".into(), "_PyLong_FromLong".into()],
            ..Img::exe_arm64()
        }
        .build();
        let mut module = Img {
            trie: Trie::None,
            exports: vec![],
            symtab: vec!["_PyLong_FromLong".into(), "__PyHidden_Thing".into()],
            ..Img::dylib(CPU_TYPE_ARM64)
        }
        .build();
        // Both symtab entries become undefined references (N_UNDF | N_EXT).
        let symoff = symtab_offset(&module);
        for i in 0..2 {
            let at = symoff + 16 * i;
            module[at + 4] = 0x01;
            module[at + 5] = 0;
            module[at + 8..at + 16].copy_from_slice(&0u64.to_le_bytes());
        }
        let needed = python_symbols_needed(&module).unwrap();
        assert_eq!(needed, ["_PyLong_FromLong", "__PyHidden_Thing"]);
        let exported = exported_names(&exe).unwrap();
        let missing: Vec<&String> = needed.iter().filter(|n| !exported.contains(*n)).collect();
        assert_eq!(missing, ["__PyHidden_Thing"]);
    }
}
