//! Magics and the small readers both the checks and the fat writer use:
//! recognising a Mach-O file, finding them under a tree, naming cputypes.

use anyhow::Result;
use goblin::mach::constants::cputype::{CPU_TYPE_ARM64, CPU_TYPE_X86_64};
use std::path::{Path, PathBuf};

pub(super) const MH_MAGIC: u32 = 0xfeed_face;
pub(super) const MH_CIGAM: u32 = 0xcefa_edfe;
pub(super) const MH_MAGIC_64: u32 = 0xfeed_facf;
pub(super) const MH_CIGAM_64: u32 = 0xcffa_edfe;
pub(super) const FAT_MAGIC: u32 = 0xcafe_babe;
/// A Java class file shares the fat magic; its next word is its version
/// (major >= 45), a fat header's is a handful of architectures.
const MAX_FAT_ARCHES: u32 = 32;
pub(super) const ARCHIVE_MAGIC: &[u8] = b"!<arch>\n";

pub(super) fn be32(bytes: &[u8], at: usize) -> Option<u32> {
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
pub(super) fn cputype_of(arch: &str) -> Option<u32> {
    match arch {
        "aarch64" | "arm64" => Some(CPU_TYPE_ARM64),
        "x86_64" => Some(CPU_TYPE_X86_64),
        _ => None,
    }
}

pub(super) fn cpu_name(cputype: u32) -> String {
    match cputype {
        CPU_TYPE_ARM64 => "arm64".into(),
        CPU_TYPE_X86_64 => "x86_64".into(),
        other => format!("cputype {other:#x}"),
    }
}

pub(super) fn align_up(n: usize, align: usize) -> usize {
    n.div_ceil(align) * align
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::macho::fat::merge_universal;
    use crate::macho::testimg::Img;
    use std::fs;

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
}
