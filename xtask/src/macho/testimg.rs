//! A builder of minimal, well-formed 64-bit little-endian Mach-O images for
//! the tests of every submodule, and the readers those tests share.

use super::parse::{align_up, MH_MAGIC_64};
use goblin::mach::constants::cputype::{CPU_TYPE_ARM64, CPU_TYPE_X86_64};
use goblin::mach::header::{MH_DYLIB, MH_EXECUTE, MH_PIE};
use goblin::mach::load_command::{CommandVariant, PLATFORM_MACOS};
use goblin::mach::symbols::{N_EXT, N_SECT};
use goblin::mach::{Mach, MachO};

const LC_SEGMENT_64: u32 = 0x19;
const LC_SYMTAB: u32 = 0x2;
pub(super) const LC_LOAD_DYLIB: u32 = 0xc;
pub(super) const LC_LOAD_WEAK_DYLIB: u32 = 0x8000_0018;
pub(super) const LC_REEXPORT_DYLIB: u32 = 0x8000_001f;
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
pub(super) const CPU_TYPE_POWERPC64: u32 = 0x0100_0012;
/// LC_SEGMENT_64 __TEXT with one __text section.
const TEXT_SEG_SIZE: usize = 72 + 80;
/// LC_SEGMENT_64 __LINKEDIT, no sections.
const LINKEDIT_SEG_SIZE: usize = 72;
/// The code in __text: `ret`, padded.
const CODE: [u8; 8] = [0xc0, 0x03, 0x5f, 0xd6, 0, 0, 0, 0];
/// An empty embedded-signature SuperBlob (big-endian).
const SIGNATURE: [u8; 12] = [0xfa, 0xde, 0x0c, 0xc0, 0, 0, 0, 12, 0, 0, 0, 0];

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Version {
    Build { platform: u32, minos: u32 },
    Min(u32),
    None,
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Trie {
    Exports,
    DyldInfoOnly,
    None,
}

/// A minimal, well-formed 64-bit little-endian Mach-O image.
#[derive(Clone)]
pub(super) struct Img {
    pub(super) cputype: u32,
    pub(super) filetype: u32,
    pub(super) flags: u32,
    pub(super) version: Version,
    pub(super) dylibs: Vec<(u32, String)>,
    pub(super) rpaths: Vec<String>,
    pub(super) signed: bool,
    pub(super) trie: Trie,
    pub(super) exports: Vec<String>,
    pub(super) symtab: Vec<String>,
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

/// Where the pieces of an image go: the sizes of its load commands (0 for
/// one it lacks) and the file offsets they imply.
struct Layout {
    /// The load commands carrying a string (dylibs, rpaths), encoded.
    strcmds: Vec<Vec<u8>>,
    main_size: usize,
    symtab_size: usize,
    sizeofcmds: usize,
    ncmds: usize,
    /// Where the code of __text starts, right after the load commands.
    code_off: usize,
    /// Where __TEXT ends and __LINKEDIT starts.
    text_end: usize,
}

/// The contents of __LINKEDIT (export trie, symbols, strings, signature
/// last) and where each part lies in the file.
struct Linkedit {
    bytes: Vec<u8>,
    trie_off: usize,
    trie_len: usize,
    sym_off: usize,
    str_off: usize,
    strtab_len: usize,
    sig_off: usize,
}

impl Img {
    /// The good arm64 python executable.
    pub(super) fn exe_arm64() -> Self {
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
    pub(super) fn exe_x86_64() -> Self {
        Img {
            cputype: CPU_TYPE_X86_64,
            signed: false,
            ..Self::exe_arm64()
        }
    }
    pub(super) fn dylib(cputype: u32) -> Self {
        Img {
            cputype,
            filetype: MH_DYLIB,
            flags: MH_DYLDLINK | MH_TWOLEVEL,
            exports: vec!["_PyInit__ssl".into()],
            ..Self::exe_arm64()
        }
    }

    /// The image's bytes: header, load commands, __TEXT, __LINKEDIT.
    pub(super) fn build(&self) -> Vec<u8> {
        let layout = self.layout();
        let linkedit = self.linkedit(&layout);
        let mut out = Vec::new();
        self.write_header(&mut out, &layout);
        write_segments(&mut out, &layout, &linkedit);
        self.write_version(&mut out);
        if layout.main_size != 0 {
            le32(&mut out, LC_MAIN);
            le32(&mut out, 24);
            le64(&mut out, layout.code_off as u64);
            le64(&mut out, 0);
        }
        self.write_trie_command(&mut out, &linkedit);
        if layout.symtab_size != 0 {
            let n = self.symtab.len() as u32;
            let (sym_off, str_off) = (linkedit.sym_off as u32, linkedit.str_off as u32);
            for v in [LC_SYMTAB, 24, sym_off, n, str_off] {
                le32(&mut out, v);
            }
            le32(&mut out, linkedit.strtab_len as u32);
        }
        for c in &layout.strcmds {
            out.extend_from_slice(c);
        }
        if self.signed {
            let (sig_off, sig_len) = (linkedit.sig_off as u32, SIGNATURE.len() as u32);
            for v in [LC_CODE_SIGNATURE, 16, sig_off, sig_len] {
                le32(&mut out, v);
            }
        }
        assert_eq!(
            out.len(),
            layout.code_off,
            "load commands add up to sizeofcmds"
        );
        out.extend_from_slice(&CODE);
        out.resize(layout.text_end, 0);
        out.extend_from_slice(&linkedit.bytes);
        out
    }

    /// Fixed-size commands first, so the layout is known before the
    /// __LINKEDIT offsets are written.
    fn layout(&self) -> Layout {
        let mut strcmds: Vec<Vec<u8>> = Vec::new();
        for (cmd, name) in &self.dylibs {
            // dylib_command: name offset, timestamp, current, compat version
            strcmds.push(str_cmd(*cmd, 24, name, &[2, 0x0001_0000, 0x0001_0000]));
        }
        for p in &self.rpaths {
            strcmds.push(str_cmd(LC_RPATH, 12, p, &[]));
        }
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
        let optional = [version_size, main_size, trie_size, symtab_size, sig_size];
        let sizeofcmds = TEXT_SEG_SIZE
            + LINKEDIT_SEG_SIZE
            + optional.iter().sum::<usize>()
            + strcmds.iter().map(Vec::len).sum::<usize>();
        let ncmds = 2 + optional.iter().filter(|s| **s != 0).count() + strcmds.len();
        let code_off = 32 + sizeofcmds;
        Layout {
            strcmds,
            main_size,
            symtab_size,
            sizeofcmds,
            ncmds,
            code_off,
            text_end: align_up(code_off + CODE.len(), 8),
        }
    }

    /// __LINKEDIT: export trie, symbols, strings, signature (last).
    fn linkedit(&self, layout: &Layout) -> Linkedit {
        let text_end = layout.text_end;
        let mut le = Vec::new();
        let trie = export_trie(&self.exports);
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
            le64(&mut le, VM_BASE + layout.code_off as u64 + i as u64);
            strtab.extend_from_slice(s.as_bytes());
            strtab.push(0);
        }
        let str_off = text_end + le.len();
        pad8(&mut strtab);
        if !self.symtab.is_empty() {
            le.extend_from_slice(&strtab);
        }
        let sig_off = text_end + le.len();
        if self.signed {
            le.extend_from_slice(&SIGNATURE);
            pad8(&mut le);
        }
        Linkedit {
            bytes: le,
            trie_off: text_end,
            trie_len: trie.len(),
            sym_off,
            str_off,
            strtab_len: strtab.len(),
            sig_off,
        }
    }

    fn write_header(&self, out: &mut Vec<u8>, layout: &Layout) {
        let cpusubtype = if self.cputype == CPU_TYPE_X86_64 {
            3
        } else {
            0
        };
        for v in [
            MH_MAGIC_64,
            self.cputype,
            cpusubtype,
            self.filetype,
            layout.ncmds as u32,
            layout.sizeofcmds as u32,
            self.flags,
            0,
        ] {
            le32(out, v);
        }
    }

    /// LC_BUILD_VERSION or LC_VERSION_MIN_MACOSX, if the image has one.
    fn write_version(&self, out: &mut Vec<u8>) {
        match self.version {
            Version::Build { platform, minos } => {
                for v in [LC_BUILD_VERSION, 24, platform, minos, 0x000e_0000, 0] {
                    le32(out, v);
                }
            }
            Version::Min(minos) => {
                for v in [LC_VERSION_MIN_MACOSX, 16, minos, 0x000e_0000] {
                    le32(out, v);
                }
            }
            Version::None => {}
        }
    }

    /// The command pointing at the export trie, if the image has one.
    fn write_trie_command(&self, out: &mut Vec<u8>, linkedit: &Linkedit) {
        let (trie_off, trie_len) = (linkedit.trie_off as u32, linkedit.trie_len as u32);
        match self.trie {
            Trie::Exports => {
                for v in [LC_DYLD_EXPORTS_TRIE, 16, trie_off, trie_len] {
                    le32(out, v);
                }
            }
            Trie::DyldInfoOnly => {
                for v in [LC_DYLD_INFO_ONLY, 48, 0, 0, 0, 0, 0, 0, 0, 0] {
                    le32(out, v);
                }
                le32(out, trie_off);
                le32(out, trie_len);
            }
            Trie::None => {}
        }
    }
}

/// LC_SEGMENT_64 __TEXT (with its section __text) and __LINKEDIT.
fn write_segments(out: &mut Vec<u8>, layout: &Layout, linkedit: &Linkedit) {
    let (code_off, text_end) = (layout.code_off, layout.text_end);
    le32(out, LC_SEGMENT_64);
    le32(out, TEXT_SEG_SIZE as u32);
    name16(out, "__TEXT");
    le64(out, VM_BASE);
    le64(out, 0x4000);
    le64(out, 0);
    le64(out, text_end as u64);
    for v in [5, 5, 1, 0] {
        le32(out, v); // maxprot, initprot, nsects, flags
    }
    name16(out, "__text");
    name16(out, "__TEXT");
    le64(out, VM_BASE + code_off as u64);
    le64(out, CODE.len() as u64);
    for v in [code_off as u32, 2, 0, 0, 0x8000_0400, 0, 0, 0] {
        le32(out, v); // offset, align, reloff, nreloc, flags, reserved1-3
    }
    le32(out, LC_SEGMENT_64);
    le32(out, LINKEDIT_SEG_SIZE as u32);
    name16(out, "__LINKEDIT");
    le64(out, VM_BASE + 0x4000);
    le64(out, 0x4000);
    le64(out, text_end as u64);
    le64(out, linkedit.bytes.len() as u64);
    for v in [1, 1, 0, 0] {
        le32(out, v);
    }
}

/// Where the image's nlist entries start (LC_SYMTAB symoff).
pub(super) fn symtab_offset(image: &[u8]) -> usize {
    MachO::parse(image, 0)
        .unwrap()
        .load_commands
        .iter()
        .find_map(|lc| match lc.command {
            CommandVariant::Symtab(st) => Some(st.symoff as usize),
            _ => None,
        })
        .unwrap()
}

/// The names in a parsed image's export trie.
pub(super) fn export_names(m: &MachO) -> Vec<String> {
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
