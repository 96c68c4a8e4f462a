//! Structural validation of the Mach-O files of one target: the right
//! architecture and deployment target, only system dylibs (never OpenSSL),
//! no LC_RPATH, PIE executables, signed arm64 code, and no exported symbols
//! of the libraries we link statically.

use super::parse::{cpu_name, cputype_of, ARCHIVE_MAGIC};
use anyhow::{bail, Context, Result};
use goblin::mach::constants::cputype::CPU_TYPE_ARM64;
use goblin::mach::fat::FatArch;
use goblin::mach::header::{Header, MH_BUNDLE, MH_DYLIB, MH_EXECUTE, MH_OBJECT, MH_PIE};
use goblin::mach::load_command::{CommandVariant, PLATFORM_MACOS};
use goblin::mach::symbols::{N_ABS, N_EXT, N_PEXT, N_SECT, N_STAB, N_TYPE};
use goblin::mach::{Mach, MachO, MultiArch};
use std::path::Path;

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
            let slices = loaded_slices(&name, bytes, &multi)?;
            if slices.images.is_empty() {
                return Ok(());
            }
            if !slices.arches.iter().any(|a| a.cputype == want_cpu) {
                let have: Vec<String> = slices.arches.iter().map(|a| cpu_name(a.cputype)).collect();
                violations.push(format!(
                    "{name}: universal binary has no {} slice (has {}); it must contain one for {}",
                    cpu_name(want_cpu),
                    have.join(", "),
                    rules.arch
                ));
            }
            for (cputype, macho) in &slices.images {
                let label = format!("{name} [{} slice]", cpu_name(*cputype));
                check_image(&label, macho, rules, min_os, None, violations, dylibs_seen)
                    .with_context(parse_err)?;
            }
            Ok(())
        }
    }
}

/// The slices of a universal file, and those of them that are loaded code.
struct Slices<'a> {
    arches: Vec<FatArch>,
    /// (cputype, image) of each slice that is neither an archive nor an
    /// object file.
    images: Vec<(u32, MachO<'a>)>,
}

/// Parses every slice of a universal file; archives and object files (link
/// inputs) are not kept as images. Errors when a slice cannot be parsed.
fn loaded_slices<'a>(name: &str, bytes: &'a [u8], multi: &MultiArch<'a>) -> Result<Slices<'a>> {
    let arches: Vec<FatArch> = multi
        .arches()
        .with_context(|| format!("parsing {name} as Mach-O"))?;
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
    Ok(Slices { arches, images })
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
        check_arch(label, h, want, rules, violations);
    }
    // 2. Deployment target.
    check_deployment_target(label, macho, rules, min_os, violations);
    // 3. Dylibs.
    check_dylibs(label, macho, rules, violations, dylibs_seen);
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
    let signed = macho
        .load_commands
        .iter()
        .any(|lc| matches!(lc.command, CommandVariant::CodeSignature(_)));
    let loadable = matches!(h.filetype, MH_EXECUTE | MH_DYLIB | MH_BUNDLE);
    if loadable && h.cputype == CPU_TYPE_ARM64 && !signed {
        violations.push(format!(
            "{label}: arm64 image has no LC_CODE_SIGNATURE; macOS on Apple Silicon \
             refuses to run unsigned code (it needs at least an ad-hoc signature)"
        ));
    }
    // 7. Hidden symbols stay hidden.
    check_hidden_exports(label, macho, rules, violations)
}

fn check_arch(
    label: &str,
    h: &Header,
    want: u32,
    rules: &MachoRules,
    violations: &mut Vec<String>,
) {
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

/// Every macOS LC_BUILD_VERSION and LC_VERSION_MIN_MACOSX has minos
/// `min_os`, and there is at least one.
fn check_deployment_target(
    label: &str,
    macho: &MachO,
    rules: &MachoRules,
    min_os: u32,
    violations: &mut Vec<String>,
) {
    let mut versions = Vec::new(); // (load command, minos)
    let mut other_platforms = Vec::new();
    for lc in &macho.load_commands {
        match &lc.command {
            CommandVariant::BuildVersion(bv) if bv.platform == PLATFORM_MACOS => {
                versions.push(("LC_BUILD_VERSION", bv.minos))
            }
            CommandVariant::BuildVersion(bv) => other_platforms.push(bv.platform),
            CommandVariant::VersionMinMacosx(vm) => {
                versions.push(("LC_VERSION_MIN_MACOSX", vm.version))
            }
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
}

/// Dylibs: libs[0] is the image itself ("self" or its LC_ID_DYLIB); the
/// rest come from LC_{LOAD,LOAD_WEAK,REEXPORT,LAZY_LOAD,LOAD_UPWARD}_DYLIB.
/// None may be OpenSSL, all must lie under an allowed prefix.
fn check_dylibs(
    label: &str,
    macho: &MachO,
    rules: &MachoRules,
    violations: &mut Vec<String>,
    dylibs_seen: &mut Vec<String>,
) {
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
}

/// No exported name carries a hidden prefix, unless it is tolerated.
fn check_hidden_exports(
    label: &str,
    macho: &MachO,
    rules: &MachoRules,
    violations: &mut Vec<String>,
) -> Result<()> {
    let exported = exported_or_external(macho)?;
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

/// The names in the export trie; for an executable without one, its
/// defined external (not private extern, not debug) symbols instead.
fn exported_or_external(macho: &MachO) -> Result<Vec<String>> {
    let mut exported: Vec<String> = macho
        .exports()
        .context("reading the export trie")?
        .into_iter()
        .map(|e| e.name)
        .collect();
    if exported.is_empty() && macho.header.filetype == MH_EXECUTE {
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
    Ok(exported)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::macho::fat::merge_universal;
    use crate::macho::testimg::{
        Img, Trie, Version, CPU_TYPE_POWERPC64, LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB,
        LC_REEXPORT_DYLIB,
    };
    use goblin::mach::constants::cputype::CPU_TYPE_X86_64;

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
}
