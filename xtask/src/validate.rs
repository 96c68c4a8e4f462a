//! Stage 6, validate: read the built binaries and refuse any that link
//! OpenSSL dynamically, need a library outside the target's allowlist, export
//! OpenSSL/zlib symbols, or lack the hardening the toolchain promises; then
//! run the interpreter from a copy in an unrelated directory (relocation).

use anyhow::{bail, Context, Result};
use goblin::elf::{dynamic, header, program_header, Elf};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::recipes::{version_key, BinaryFormat, Toolchain};

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub files_checked: usize,
    pub needed: Vec<String>,
    pub max_glibc: Option<String>,
    pub violations: Vec<String>,
    /// System libraries needed that the toolchain's allowlist does not name
    /// (also among `violations`): module pruning should have removed them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_allowed_libraries: Vec<String>,
    /// What the interpreter executables export (for the modules' check).
    #[serde(skip)]
    exports: std::collections::HashSet<String>,
    /// Each shared module's strong undefined symbols that no versioned
    /// system library provides; the interpreter must export them.
    #[serde(skip)]
    unversioned_imports: Vec<(PathBuf, Vec<String>)>,
}

/// Remembers an executable's exports and a shared module's strong
/// undefined symbols that carry no version (a versioned one is bound to a
/// system library by the link; an unversioned one must come from the
/// interpreter). A function the headers declared but the target's libc
/// lacks ends up here: with BIND_NOW the import would fail.
fn record_dynamic_linking(elf: &Elf, path: &Path, is_executable: bool, report: &mut Report) {
    let mut needs = Vec::new();
    for (i, sym) in elf.dynsyms.iter().enumerate() {
        let Some(sym_name) = elf.dynstrtab.get_at(sym.st_name) else {
            continue;
        };
        let defined = sym.st_shndx != 0;
        if is_executable {
            if defined && sym.st_bind() != goblin::elf::sym::STB_LOCAL {
                report.exports.insert(sym_name.to_string());
            }
            continue;
        }
        // 0 and 1: VER_NDX_LOCAL/GLOBAL, i.e. no version needed.
        let unversioned = elf
            .versym
            .as_ref()
            .and_then(|v| v.get_at(i))
            .is_none_or(|v| v.version() <= 1);
        if !defined
            && unversioned
            && sym.st_bind() == goblin::elf::sym::STB_GLOBAL
            && !sym_name.is_empty()
        {
            needs.push(sym_name.to_string());
        }
    }
    if !needs.is_empty() {
        report.unversioned_imports.push((path.to_path_buf(), needs));
    }
}

/// No copy relocations where the build links against zig's glibc stubs
/// (`max_glibc`): a copy relocation gives the executable its own copy of a
/// libc data object, which works only if the link saw libc's aliases of it
/// at one address, and the stubs have `environ` and `__environ` apart: the
/// interpreter's `environ` was then never the one libc fills (gcc_floor.rs).
fn check_copy_relocations(elf: &Elf, name: &str, tc: &Toolchain, report: &mut Report) {
    use goblin::elf::reloc::{R_AARCH64_COPY, R_X86_64_COPY};
    if tc.max_glibc.is_none() {
        return;
    }
    let copy = match elf.header.e_machine {
        header::EM_X86_64 => R_X86_64_COPY,
        header::EM_AARCH64 => R_AARCH64_COPY,
        _ => return,
    };
    for r in elf.dynrelas.iter().chain(elf.dynrels.iter()) {
        if r.r_type == copy {
            let sym = elf
                .dynsyms
                .get(r.r_sym)
                .and_then(|s| elf.dynstrtab.get_at(s.st_name))
                .unwrap_or("?");
            report.violations.push(format!(
                "{name}: copy relocation of {sym} (data read directly from a stub-linked \
                 library; compile with -mno-direct-extern-access or as clang does)"
            ));
        }
    }
}

/// Records the highest GLIBC_x.y version this file needs and, above the
/// target's floor, names each symbol that needs it (a function newer than
/// the floor that the build picked up anyway: the host cannot start it).
fn check_glibc_versions(elf: &Elf, name: &str, tc: &Toolchain, report: &mut Report) {
    // version index (vna_other) -> "2.17"
    let mut glibc = std::collections::HashMap::new();
    for need in elf.verneed.iter().flat_map(|v| v.iter()) {
        for aux in need.iter() {
            if let Some(v) = elf
                .dynstrtab
                .get_at(aux.vna_name)
                .and_then(|s| s.strip_prefix("GLIBC_"))
                .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
            {
                glibc.insert(aux.vna_other, v.to_string());
            }
        }
    }
    if let Some(v) = glibc.values().max_by_key(|v| version_key(v)) {
        if report
            .max_glibc
            .as_deref()
            .is_none_or(|m| version_key(v) > version_key(m))
        {
            report.max_glibc = Some(v.clone());
        }
    }
    let (Some(floor), Some(versym)) = (&tc.max_glibc, &elf.versym) else {
        return;
    };
    let too_new: Vec<String> = elf
        .dynsyms
        .iter()
        .enumerate()
        .filter_map(|(i, sym)| {
            let v = glibc.get(&versym.get_at(i)?.version())?;
            let sym_name = elf.dynstrtab.get_at(sym.st_name)?;
            (version_key(v) > version_key(floor)).then(|| format!("{sym_name}@GLIBC_{v}"))
        })
        .collect();
    if !too_new.is_empty() {
        report.violations.push(format!(
            "{name}: needs glibc newer than the floor {floor} of {}: {}",
            tc.triple,
            too_new.join(", ")
        ));
    }
}

/// Every ELF file the interpreter ships: bin/python* and extension modules.
pub fn elf_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = crate::util::files_under(root, false)?;
    files.retain(|p| crate::util::file_starts_with(p, |head| head.starts_with(b"\x7fELF")));
    Ok(files)
}

/// Checks one ELF file against the toolchain's rules, appending violations.
/// `hidden` names the symbol prefixes of what we link statically
/// (`Recipes::hidden_symbol_prefixes`): none may be exported.
pub fn check_elf(
    path: &Path,
    bytes: &[u8],
    tc: &Toolchain,
    hidden: &[String],
    report: &mut Report,
) -> Result<()> {
    let elf = Elf::parse(bytes).with_context(|| format!("parsing {}", path.display()))?;
    // Object files (config-*/python.o) are link inputs, not loaded code.
    if elf.header.e_type == header::ET_REL {
        return Ok(());
    }
    let name = path.display().to_string();
    // A static executable has no PT_INTERP; it is still the interpreter.
    let is_executable = elf.interpreter.is_some()
        || (tc.fully_static && path.parent().is_some_and(|p| p.ends_with("bin")));
    check_linking(&elf, path, tc, hidden, report);
    check_glibc_versions(&elf, &name, tc, report);
    check_copy_relocations(&elf, &name, tc, report);
    record_dynamic_linking(&elf, path, is_executable, report);
    check_hardening(&elf, &name, is_executable, tc, report);
    check_protectors(&elf, &name, is_executable, tc, report);
    Ok(())
}

/// Static where it must be: no dynamic OpenSSL or zlib, only allowlisted
/// system libraries, none of our static libraries' symbols exported.
fn check_linking(elf: &Elf, path: &Path, tc: &Toolchain, hidden: &[String], report: &mut Report) {
    let name = path.display();
    if tc.fully_static {
        if elf.interpreter.is_some() {
            report.violations.push(format!(
                "{name}: has a dynamic loader (PT_INTERP) but {} is fully static",
                tc.triple
            ));
        }
        if path.extension().is_some_and(|e| e == "so") {
            report.violations.push(format!(
                "{name}: a shared extension module, which a static interpreter cannot load"
            ));
        }
    }
    for lib in &elf.libraries {
        if lib.starts_with("libssl") || lib.starts_with("libcrypto") || lib.starts_with("libz.") {
            report
                .violations
                .push(format!("{name}: links {lib} dynamically"));
        } else if !tc.needed_allowlist.iter().any(|a| a == lib) {
            report.not_allowed_libraries.push(format!("{name}: {lib}"));
            report.violations.push(format!(
                "{name}: needs {lib}, not in the allowlist of {}",
                tc.triple
            ));
        }
        if !report.needed.contains(&lib.to_string()) {
            report.needed.push(lib.to_string());
        }
    }
    for sym in elf.dynsyms.iter() {
        let exported = sym.st_shndx != 0 && sym.st_bind() != goblin::elf::sym::STB_LOCAL;
        if !exported {
            continue;
        }
        if let Some(n) = elf.dynstrtab.get_at(sym.st_name) {
            if hidden.iter().any(|p| n.starts_with(p.as_str())) {
                report.violations.push(format!("{name}: exports {n}"));
                break;
            }
        }
    }
}

/// PIE executables, full RELRO, a non-executable stack.
fn check_hardening(
    elf: &Elf,
    name: &str,
    is_executable: bool,
    tc: &Toolchain,
    report: &mut Report,
) {
    if is_executable && tc.pie && elf.header.e_type != header::ET_DYN {
        report
            .violations
            .push(format!("{name}: not a position-independent executable"));
    }
    let has = |t| elf.program_headers.iter().any(|ph| ph.p_type == t);
    if !has(program_header::PT_GNU_RELRO) {
        report.violations.push(format!("{name}: no RELRO segment"));
    }
    let bind_now = elf.dynamic.as_ref().is_some_and(|d| {
        d.dyns.iter().any(|e| {
            (e.d_tag == dynamic::DT_FLAGS && e.d_val & dynamic::DF_BIND_NOW != 0)
                || (e.d_tag == dynamic::DT_FLAGS_1 && e.d_val & dynamic::DF_1_NOW != 0)
                || e.d_tag == dynamic::DT_BIND_NOW
        })
    });
    if elf.dynamic.is_some() && !bind_now && !tc.fully_static {
        report
            .violations
            .push(format!("{name}: no BIND_NOW (RELRO is partial)"));
    }
    let stack_exec = elf
        .program_headers
        .iter()
        .find(|ph| ph.p_type == program_header::PT_GNU_STACK)
        .is_none_or(|ph| ph.p_flags & program_header::PF_X != 0);
    if stack_exec {
        report.violations.push(format!("{name}: executable stack"));
    }
}

/// The interpreter itself must show -fstack-protector and FORTIFY_SOURCE:
/// both leave imports behind (__stack_chk_fail, __*_chk).
/// (A static executable carries libc's own __stack_chk_fail whatever our
/// flags were, so for it check_tree reads the recorded CFLAGS instead.)
fn check_protectors(
    elf: &Elf,
    name: &str,
    is_executable: bool,
    tc: &Toolchain,
    report: &mut Report,
) {
    let imports: Vec<&str> = elf
        .dynsyms
        .iter()
        .filter(|s| s.st_shndx == 0)
        .filter_map(|s| elf.dynstrtab.get_at(s.st_name))
        .collect();
    // Where the canary is a libc global, a file that has stack-protected
    // code must read libc's: a local definition (zig's compiler_rt has a
    // constant one) would make the canary known to every attacker.
    if let Some(guard) = &tc.stack_guard {
        let protected = is_executable || imports.contains(&"__stack_chk_fail");
        if protected && !imports.contains(&guard.as_str()) {
            report.violations.push(format!(
                "{name}: does not import {guard} from the C library (its stack canary is a local, \
                 predictable definition, or it has no stack protector)"
            ));
        }
    }
    if is_executable && !tc.fully_static {
        if !imports.contains(&"__stack_chk_fail") {
            report.violations.push(format!(
                "{name}: built without a stack protector (no __stack_chk_fail)"
            ));
        }
        if tc.fortify
            && !imports
                .iter()
                .any(|s| s.starts_with("__") && s.ends_with("_chk") && *s != "__stack_chk_fail")
        {
            report.violations.push(format!(
                "{name}: built without FORTIFY_SOURCE (no __*_chk imports)"
            ));
        }
    }
}

/// A static interpreter's symbols cannot show our compile flags (libc brings
/// its own stack-protector symbols), so read the flags CPython recorded in
/// its installed Makefile: the stack protector must be there.
fn check_recorded_cflags(root: &Path, report: &mut Report) -> Result<()> {
    let makefile = fs::read_dir(root.join("lib"))?
        .flatten()
        .flat_map(|d| fs::read_dir(d.path()).into_iter().flatten().flatten())
        .map(|e| e.path().join("Makefile"))
        .find(|p| {
            p.is_file()
                && p.parent()
                    .is_some_and(|d| d.to_string_lossy().contains("/config-"))
        });
    let Some(makefile) = makefile else {
        report
            .violations
            .push("no lib/python*/config-*/Makefile to read the compile flags from".into());
        return Ok(());
    };
    let text = fs::read_to_string(&makefile)?;
    let cflags = text
        .lines()
        .find(|l| l.starts_with("CONFIGURE_CFLAGS="))
        .unwrap_or("");
    if !cflags.contains("-fstack-protector") {
        report.violations.push(format!(
            "{}: CONFIGURE_CFLAGS has no -fstack-protector",
            makefile.display()
        ));
    }
    Ok(())
}

/// Runs every structural check over the installed tree.
/// Every binary of an installed tree against the toolchain's rules;
/// `hidden` as for `check_elf`.
pub fn check_tree(root: &Path, tc: &Toolchain, hidden: &[String]) -> Result<Report> {
    let mut report = Report::default();
    match tc.binary_format {
        BinaryFormat::Elf => {}
        BinaryFormat::Macho => return check_macho_tree(root, tc, hidden),
        other => bail!("validation of {other} binaries is not implemented"),
    }
    for f in elf_files(root)? {
        let bytes = fs::read(&f)?;
        check_elf(&f, &bytes, tc, hidden, &mut report)?;
        report.files_checked += 1;
    }
    // (only against an interpreter: a tree without one has nothing to bind to)
    if !report.exports.is_empty() {
        let (exports, needs) = (
            std::mem::take(&mut report.exports),
            std::mem::take(&mut report.unversioned_imports),
        );
        check_module_imports(&exports, &needs, &mut report);
    }
    if tc.fully_static {
        check_recorded_cflags(root, &mut report)?;
    }
    // Users' extension builds read CC/LDSHARED from here.
    let aliases = [
        crate::reproducible::CACHE_ALIAS.to_string(),
        crate::reproducible::BUILD_DIR_ALIAS.to_string(),
    ];
    report.violations.extend(crate::sysconfig::leftovers(
        root,
        &crate::sysconfig::Rules::new(tc, &aliases)?,
    )?);
    if let (Some(max), Some(seen)) = (&tc.max_glibc, &report.max_glibc) {
        if version_key(seen) > version_key(max) {
            report.violations.push(format!(
                "needs GLIBC_{seen} in all, above the target's floor {max} (files named above)"
            ));
        }
    }
    Ok(report)
}

/// Mach-O: arch, deployment target, only the OS's dylibs, no rpath, PIE,
/// a code signature on arm64, nothing of OpenSSL or the deps exported.
fn check_macho_tree(root: &Path, tc: &Toolchain, hidden: &[String]) -> Result<Report> {
    let min_os = tc.min_os.as_deref().with_context(|| {
        format!(
            "toolchains/{}.toml: a Mach-O target needs min_os",
            tc.triple
        )
    })?;
    let tolerated: Vec<String> = tc
        .tolerated_exports
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    let rules = crate::macho::MachoRules {
        arch: &tc.arch,
        min_os,
        allowed_dylib_prefixes: &tc.needed_allowlist,
        hidden_prefixes: &hidden.iter().map(String::as_str).collect::<Vec<_>>(),
        tolerated_exports: &tolerated,
    };
    let mut report = Report::default();
    // One read per file: the structural checks, the interpreter's exports,
    // and what each extension module needs from it.
    let mut exported = None;
    let mut needs = Vec::new();
    for f in crate::macho::macho_files(root)? {
        let bytes = fs::read(&f)?;
        crate::macho::check_macho(
            &f,
            &bytes,
            &rules,
            &mut report.violations,
            &mut report.needed,
        )?;
        report.files_checked += 1;
        if f.parent() == Some(&root.join("bin")) {
            exported = Some(crate::macho::exported_names(&bytes)?);
        } else if f.extension().is_some_and(|e| e == "so") {
            needs.push((f, crate::macho::python_symbols_needed(&bytes)?));
        }
    }
    if report.files_checked == 0 {
        report
            .violations
            .push(format!("no Mach-O file under {}", root.display()));
    }
    let exported =
        exported.with_context(|| format!("no Mach-O interpreter in {}/bin", root.display()))?;
    check_module_imports(&exported, &needs, &mut report);
    report.needed.sort();
    report.needed.dedup();
    Ok(report)
}

/// Every CPython symbol an extension module needs at load time must be
/// exported by the interpreter (modules bind them with flat lookup; a
/// symbol hidden by visibility would make the module fail to import on the
/// Mac, which this machine cannot try).
fn check_module_imports(
    exported: &std::collections::HashSet<String>,
    needs: &[(PathBuf, Vec<String>)],
    report: &mut Report,
) {
    for (module, needed) in needs {
        let missing: Vec<&String> = needed.iter().filter(|n| !exported.contains(*n)).collect();
        if !missing.is_empty() {
            report.violations.push(format!(
                "{} needs {} from the interpreter, which does not export {} (the module would not import)",
                module.display(),
                missing.iter().take(3).map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                if missing.len() == 1 { "it" } else { "them" }
            ));
        }
    }
}

/// Extension modules that link a library outside the allowlist came from
/// whatever -dev packages the build machine happens to have, not from pinned
/// sources; they are removed so every machine ships the same set, and the
/// manifest lists them with the library each one needed.
pub fn prune_system_linked(root: &Path, tc: &Toolchain) -> Result<Vec<(String, String)>> {
    let mut omitted = Vec::new();
    // (a cross toolchain without a system library directory, like zig's
    // macOS target, cannot link anything outside the pinned deps)
    if tc.binary_format != BinaryFormat::Elf {
        return Ok(omitted);
    }
    for f in elf_files(root)? {
        if f.extension().is_none_or(|e| e != "so") {
            continue;
        }
        let bytes = fs::read(&f)?;
        let elf = Elf::parse(&bytes).with_context(|| format!("parsing {}", f.display()))?;
        if let Some(lib) = elf
            .libraries
            .iter()
            .find(|l| !tc.needed_allowlist.iter().any(|a| a == *l))
        {
            let module = f
                .file_name()
                .unwrap()
                .to_string_lossy()
                .split('.')
                .next()
                .unwrap_or("")
                .to_string();
            omitted.push((
                module,
                format!("needs system library {lib}; not yet built from pinned sources"),
            ));
            fs::remove_file(&f)?;
        }
    }
    omitted.sort();
    Ok(omitted)
}

/// The interpreter's executable inside an installed tree.
pub fn python_exe(root: &Path, python2: bool) -> PathBuf {
    root.join("bin")
        .join(if python2 { "python2" } else { "python3" })
}

/// Copies the tree to a fresh temporary directory and runs it there: proves
/// it is relocatable and that every required module imports.
pub fn smoke_test(
    root: &Path,
    python2: bool,
    run_under: &[String],
    required: &[String],
) -> Result<serde_json::Value> {
    let tmp = tempfile::tempdir()?;
    let moved = tmp.path().join("elsewhere");
    crate::util::copy_tree(root, &moved)?;
    let mut report = check_interpreter(
        &python_exe(&moved, python2),
        python2,
        run_under,
        required,
        Some(&moved),
    )?;
    // (An emulator is the running executable there; only native runs can show it.)
    if run_under.is_empty() {
        check_bare_argv0(&python_exe(&moved, python2), &moved, tmp.path())?;
        report["bare_argv0_finds_home"] = serde_json::Value::Bool(true);
    }
    Ok(report)
}

/// Starts `exe` as `exec -a nothere` would (an argv[0] that is no path and on
/// no PATH), from `cwd`, which is not its own directory, with an empty
/// environment: its `sys.prefix` must still be `home` (it asks the kernel,
/// patches `*-find-home-from-proc-self-exe-under-any-argv0.patch`).
pub fn check_bare_argv0(exe: &Path, home: &Path, cwd: &Path) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let out = Command::new(exe)
        .arg0("nothere")
        .args(["-c", "import sys; print(sys.prefix)"])
        .current_dir(cwd)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let want = std::fs::canonicalize(home)?;
    if !out.status.success() || std::fs::canonicalize(&got).ok().as_deref() != Some(want.as_path())
    {
        bail!(
            "{} started as `exec -a nothere` from {} does not find its home {}: sys.prefix {:?}, {}",
            exe.display(),
            cwd.display(),
            want.display(),
            got,
            String::from_utf8_lossy(&out.stderr).lines().take(3).collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(())
}

/// Runs `exe` (under `run_under` for a foreign target) with a clean
/// environment: TLS 1.3 present, OpenSSL linked in, each of `required`
/// importable, and — when `prefix` is given — `sys.prefix` following it.
/// The result records nothing machine-specific, so manifests stay
/// reproducible.
pub fn check_interpreter(
    exe: &Path,
    python2: bool,
    run_under: &[String],
    required: &[String],
    prefix: Option<&Path>,
) -> Result<serde_json::Value> {
    let script = format!(
        "import importlib, json, sys, ssl, hashlib\n\
         missing = []\n\
         for m in {required:?}:\n\
         \x20   try: importlib.import_module(m)\n\
         \x20   except Exception as e: missing.append('%s (%s)' % (m, e))\n\
         print(json.dumps({{'openssl': ssl.OPENSSL_VERSION, 'tls13': ssl.HAS_TLSv1_3, \
         'verify_paths': list(ssl.get_default_verify_paths()), \
         'sha256': hashlib.sha256(b'x').hexdigest(), 'missing': missing, \
         'imported': len({required:?}) - len(missing), 'prefix': sys.prefix}}))\n"
    );
    // Foreign binaries run under an emulator (qemu-user) when the target says so.
    let mut cmd = match run_under.split_first() {
        Some((emulator, args)) => {
            let mut c = Command::new(emulator);
            c.args(args).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let out = cmd
        .args(
            ["-I", "-c", &script]
                .iter()
                .skip(if python2 { 1 } else { 0 }),
        )
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed the smoke test: {}",
            exe.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut v: serde_json::Value = serde_json::from_str(&text)?;
    if v["tls13"] != serde_json::Value::Bool(true) {
        bail!("{}: ssl.HAS_TLSv1_3 is not True: {text}", exe.display());
    }
    if let Some(missing) = v["missing"].as_array().filter(|m| !m.is_empty()) {
        bail!(
            "{}: required modules do not import: {}",
            exe.display(),
            missing
                .iter()
                .filter_map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let actual_prefix = v["prefix"].as_str().unwrap_or("").to_string();
    if let Some(want) = prefix {
        if !actual_prefix.starts_with(&want.display().to_string()) {
            bail!(
                "{}: sys.prefix ({actual_prefix}) does not follow the relocated tree {}",
                exe.display(),
                want.display()
            );
        }
        v["prefix"] = serde_json::Value::String("<relocated copy>".into());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_argv0_check_compares_sys_prefix_with_the_home() {
        // The system python3 is not relocated: under any argv[0] its home is /usr.
        let exe = Path::new("/usr/bin/python3");
        if !exe.exists() {
            return;
        }
        let cwd = tempfile::tempdir().unwrap();
        check_bare_argv0(exe, Path::new("/usr"), cwd.path()).unwrap();
        let e = check_bare_argv0(exe, cwd.path(), cwd.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("exec -a nothere") && e.contains("sys.prefix \"/usr\""),
            "{e}"
        );
    }

    /// A C program that uses memcpy/printf so FORTIFY has something to check.
    const PROGRAM: &str = "#include <stdio.h>\n#include <string.h>\nint main(int c, char **v) { char b[16]; strcpy(b, v[0]); printf(\"%s\\n\", b); return 0; }\n";
    const HARDENED: &[&str] = &[
        "-O2",
        "-fstack-protector-all",
        "-D_FORTIFY_SOURCE=2",
        "-fPIE",
        "-pie",
        "-Wl,-z,relro,-z,now",
        "-Wl,-z,noexecstack",
    ];

    /// The prefixes recipes/openssl.toml and recipes/deps say are hidden.
    fn hidden() -> Vec<String> {
        crate::recipes::Recipes::load()
            .unwrap()
            .hidden_symbol_prefixes()
    }

    fn toolchain() -> Toolchain {
        let mut tc = gnu_toolchain();
        // These programs are built with the machine's gcc, against its own
        // glibc (2.36 here), not the target's floor; the floor has its own test.
        tc.max_glibc = None;
        tc
    }

    fn gnu_toolchain() -> Toolchain {
        crate::recipes::Recipes::load()
            .unwrap()
            .toolchain(Some("x86_64-unknown-linux-gnu"))
            .unwrap()
            .clone()
    }

    /// A module's unversioned import that the interpreter does not export
    /// (a libc function the headers declared but the libc lacks, or a
    /// library left off the link) is named; one the interpreter exports is not.
    #[test]
    fn module_imports_the_interpreter_does_not_export_are_named() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        fs::create_dir_all(p.join("bin")).unwrap();
        fs::create_dir_all(p.join("lib")).unwrap();
        fs::write(
            p.join("exe.c"),
            "int Py_provided(void) { return 1; }\nint main(void) { return 0; }\n",
        )
        .unwrap();
        fs::write(
            p.join("m.c"),
            "int Py_provided(void);\nint not_in_any_libc(void);\nint f(void) { return Py_provided() + not_in_any_libc(); }\n",
        )
        .unwrap();
        let gcc = |args: &[&str]| {
            assert!(Command::new("gcc")
                .args(args)
                .current_dir(p)
                .status()
                .unwrap()
                .success());
        };
        gcc(&["-fPIE", "-pie", "-rdynamic", "exe.c", "-o", "bin/python3"]);
        gcc(&["-fPIC", "-shared", "m.c", "-o", "lib/m.so"]);
        let r = check_tree(p, &toolchain(), &hidden()).unwrap();
        let v: Vec<&String> = r
            .violations
            .iter()
            .filter(|v| v.contains("would not import"))
            .collect();
        assert_eq!(v.len(), 1, "{:?}", r.violations);
        assert!(
            v[0].contains("lib/m.so") && v[0].contains("not_in_any_libc"),
            "{v:?}"
        );
        assert!(!v[0].contains("Py_provided"), "{v:?}");
    }

    /// `src` compiled by the machine's gcc with the hardening flags.
    fn hardened_program(dir: &Path, name: &str, src: &str) -> PathBuf {
        let c = dir.join(format!("{name}.c"));
        fs::write(&c, src).unwrap();
        let out = dir.join(name);
        let st = Command::new("gcc")
            .args(HARDENED)
            .arg(&c)
            .arg("-o")
            .arg(&out)
            .status()
            .unwrap();
        assert!(st.success(), "gcc failed for {name}");
        out
    }

    /// A binary linked against a glibc newer than the target's floor is
    /// refused, naming the symbol and its version (here the machine's gcc,
    /// whose glibc is at least 2.34: __libc_start_main@GLIBC_2.34).
    #[test]
    fn symbols_above_the_glibc_floor_are_named() {
        let d = tempfile::tempdir().unwrap();
        let out = hardened_program(d.path(), "p", PROGRAM);
        let mut tc = gnu_toolchain();
        tc.max_glibc = Some("2.17".into());
        let mut r = Report::default();
        check_elf(&out, &fs::read(&out).unwrap(), &tc, &hidden(), &mut r).unwrap();
        let seen = r.max_glibc.clone().expect("a glibc version is recorded");
        assert!(version_key(&seen) > version_key("2.17"), "{seen}");
        assert!(
            r.violations
                .iter()
                .any(|v| v.contains("newer than the floor 2.17") && v.contains("@GLIBC_2.")),
            "{:?}",
            r.violations
        );
        // The same binary under its own glibc's ceiling passes this check.
        tc.max_glibc = Some(seen);
        let mut r = Report::default();
        check_elf(&out, &fs::read(&out).unwrap(), &tc, &hidden(), &mut r).unwrap();
        assert!(
            !r.violations.iter().any(|v| v.contains("floor")),
            "{:?}",
            r.violations
        );
    }

    /// gcc's PIE code reads `environ` directly (a copy relocation); at the
    /// stubs' floor that is refused, and not without a floor.
    #[test]
    fn copy_relocations_are_refused_at_the_glibc_floor() {
        let d = tempfile::tempdir().unwrap();
        let out = hardened_program(
            d.path(),
            "env",
            "extern char **environ;\nint main(void) { return environ[0] == 0; }\n",
        );
        let bytes = fs::read(&out).unwrap();
        let mut tc = gnu_toolchain();
        tc.max_glibc = Some("2.99".into());
        let mut r = Report::default();
        check_elf(&out, &bytes, &tc, &hidden(), &mut r).unwrap();
        assert!(
            // (against the real glibc the link may name the alias __environ)
            r.violations
                .iter()
                .any(|v| v.contains("copy relocation of") && v.contains("environ")),
            "{:?}",
            r.violations
        );
        tc.max_glibc = None;
        let mut r = Report::default();
        check_elf(&out, &bytes, &tc, &hidden(), &mut r).unwrap();
        assert!(!r.violations.iter().any(|v| v.contains("copy relocation")));
    }

    /// Compiles `src` with `flags` in `dir`; returns the violations found.
    fn violations(dir: &Path, name: &str, src: &str, flags: &[&str]) -> Vec<String> {
        let c = dir.join(format!("{name}.c"));
        fs::write(&c, src).unwrap();
        let out = dir.join(name);
        let st = Command::new("gcc")
            .args(flags)
            .arg(&c)
            .arg("-o")
            .arg(&out)
            .arg(format!("-L{}", dir.display()))
            .status()
            .unwrap();
        assert!(st.success(), "gcc failed for {name}");
        let mut r = Report::default();
        check_elf(
            &out,
            &fs::read(&out).unwrap(),
            &toolchain(),
            &hidden(),
            &mut r,
        )
        .unwrap();
        r.violations
    }

    fn with(extra: &[&str]) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = HARDENED.to_vec();
        v.extend(
            extra
                .iter()
                .map(|s| &*Box::leak(s.to_string().into_boxed_str())),
        );
        v
    }

    /// A fully static target refuses a dynamically linked interpreter and
    /// any shared extension module.
    #[test]
    fn static_target_rules() {
        let d = tempfile::tempdir().unwrap();
        let mut tc = toolchain();
        tc.fully_static = true;
        tc.needed_allowlist.clear();
        let bin = d.path().join("bin");
        fs::create_dir_all(&bin).unwrap();
        let c = d.path().join("p.c");
        fs::write(&c, PROGRAM).unwrap();
        let build = |out: &Path, flags: &[&str]| {
            let st = Command::new("gcc")
                .args(flags)
                .arg(&c)
                .arg("-o")
                .arg(out)
                .status()
                .unwrap();
            assert!(st.success());
            let mut r = Report::default();
            check_elf(out, &fs::read(out).unwrap(), &tc, &hidden(), &mut r).unwrap();
            r.violations
        };
        let dynamic = build(&bin.join("python3"), HARDENED);
        assert!(
            dynamic.iter().any(|v| v.contains("PT_INTERP")),
            "{dynamic:?}"
        );
        let module = build(&d.path().join("m.so"), &with(&["-shared", "-fPIC"]));
        assert!(
            module.iter().any(|v| v.contains("shared extension module")),
            "{module:?}"
        );
    }

    #[test]
    fn hardened_program_passes() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            violations(d.path(), "good", PROGRAM, HARDENED),
            Vec::<String>::new()
        );
    }

    #[test]
    fn each_missing_hardening_is_reported() {
        let d = tempfile::tempdir().unwrap();
        let cases: &[(&str, Vec<&str>, &str)] = &[
            (
                "nopie",
                with(&["-no-pie", "-fno-PIE"]),
                "position-independent",
            ),
            ("execstack", with(&["-Wl,-z,execstack"]), "executable stack"),
            ("lazy", with(&["-Wl,-z,lazy"]), "BIND_NOW"),
            ("norelro", with(&["-Wl,-z,norelro"]), "RELRO"),
            ("nossp", with(&["-fno-stack-protector"]), "stack protector"),
            (
                "nofortify",
                with(&["-U_FORTIFY_SOURCE", "-D_FORTIFY_SOURCE=0"]),
                "FORTIFY",
            ),
        ];
        for (name, flags, expect) in cases {
            let v = violations(d.path(), name, PROGRAM, flags);
            assert!(
                v.iter().any(|m| m.contains(expect)),
                "{name}: expected '{expect}' in {v:?}"
            );
        }
    }

    #[test]
    fn dynamic_libssl_and_unlisted_libraries_are_reported() {
        let d = tempfile::tempdir().unwrap();
        // Fake shared libraries: only their names matter to the checker.
        for (lib, soname) in [("ssl", "libssl.so.3"), ("frob", "libfrob.so.1")] {
            let c = d.path().join(format!("{lib}.c"));
            fs::write(&c, format!("int {lib}_fn(void) {{ return 1; }}\n")).unwrap();
            let so = d.path().join(format!("lib{lib}.so"));
            assert!(Command::new("gcc")
                .args(["-shared", "-fPIC", &format!("-Wl,-soname,{soname}")])
                .arg(&c)
                .arg("-o")
                .arg(&so)
                .status()
                .unwrap()
                .success());
        }
        let src = "int ssl_fn(void); int frob_fn(void); int main(void) { return ssl_fn() + frob_fn(); }\n";
        let v = violations(
            d.path(),
            "linked",
            src,
            &with(&["-Wl,--no-as-needed", "-lssl", "-lfrob"]),
        );
        assert!(
            v.iter()
                .any(|m| m.contains("links libssl.so.3 dynamically")),
            "{v:?}"
        );
        assert!(
            v.iter()
                .any(|m| m.contains("needs libfrob.so.1, not in the allowlist")),
            "{v:?}"
        );
    }

    #[test]
    fn exported_openssl_symbols_are_reported() {
        let d = tempfile::tempdir().unwrap();
        let src = "int SSL_CTX_new_fake(void) { return 1; }\nint main(void) { return SSL_CTX_new_fake(); }\n";
        let v = violations(d.path(), "exports", src, &with(&["-rdynamic"]));
        assert!(
            v.iter().any(|m| m.contains("exports SSL_CTX_new_fake")),
            "{v:?}"
        );
    }
}
