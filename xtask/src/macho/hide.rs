//! Private extern (N_PEXT) for the defined symbols of a Mach-O object, so
//! that a static library linked into the interpreter exports none of them;
//! `crate::hide` walks the archive members.

use super::parse::MH_MAGIC_64;

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
    use crate::macho::parse::ARCHIVE_MAGIC;
    use crate::macho::testimg::{symtab_offset, Img, Trie};
    use goblin::mach::header::MH_OBJECT;
    use goblin::mach::MachO;

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
}
