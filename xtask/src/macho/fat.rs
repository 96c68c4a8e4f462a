//! Merging two thin images into a universal (fat) file, as `lipo -create`
//! would, since there is no lipo on a Linux build machine.

use super::parse::{
    align_up, be32, cpu_name, FAT_MAGIC, MH_CIGAM, MH_CIGAM_64, MH_MAGIC, MH_MAGIC_64,
};
use anyhow::{bail, Context, Result};
use goblin::mach::MachO;

/// Slices of a universal file start on 16 KiB boundaries (2^14).
const FAT_ALIGN_LOG2: u32 = 14;
const FAT_HEADER_SIZE: usize = 8;
const FAT_ARCH_SIZE: usize = 20;

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

/// Merges two thin Mach-O images of different architectures into one fat (universal) file: fat_header + 2 fat_arch entries (big-endian), each slice aligned to 2^14 bytes (align field 14), slices in the order given. Errors if either is not thin Mach-O or both have the same cputype.
///
/// universal::merge_trees calls it for every Mach-O file the arm64 and the
/// x86_64 tree both hold, when the pipeline packages a universal2 build.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::macho::parse::is_macho;
    use crate::macho::testimg::{export_names, Img};
    use goblin::mach::constants::cputype::{CPU_TYPE_ARM64, CPU_TYPE_X86_64};
    use goblin::mach::Mach;

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
}
