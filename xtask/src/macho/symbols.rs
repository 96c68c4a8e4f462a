//! What a thin image exports, and which CPython symbols it leaves undefined
//! for the interpreter to provide: validation compares the two.

use anyhow::{Context, Result};
use goblin::mach::MachO;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::macho::testimg::{symtab_offset, Img, Trie};
    use goblin::mach::constants::cputype::CPU_TYPE_ARM64;

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
