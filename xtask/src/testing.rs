//! `validate` and `test`: what the README's test command runs. Unit tests
//! first, then the default set is built (cache hits when nothing changed),
//! each archive is unpacked somewhere unrelated, and the TLS suites run on
//! the unpacked interpreters: the conformance suite (real handshakes) and
//! CPython's whole test suite (xtask/src/regrtest.rs).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::pipeline::{self, Artifact, Options};
use crate::recipes::{Recipes, Toolchain};
use crate::regrtest::{self, Scope};
use crate::util::workspace_root;
use crate::validate;

/// A conformance column: its name and the interpreter it runs.
type Column = (String, PathBuf);

pub fn validate(opts: &Options, paths: &[PathBuf]) -> Result<()> {
    let recipes = Recipes::load()?;
    // `--target macos` validates each of the group's targets.
    if let (Some(members), true) = (opts.per_group_member(&recipes), paths.is_empty()) {
        for (_, one) in members {
            validate(&one, paths)?;
        }
        return Ok(());
    }
    let tc = recipes.toolchain(opts.target.as_deref())?;
    let trees: Vec<PathBuf> = if paths.is_empty() {
        pipeline::build(opts)?.into_iter().map(|a| a.root).collect()
    } else {
        paths.to_vec()
    };
    let mut bad = 0;
    for t in &trees {
        let r = validate::check_tree(t, tc, &recipes.hidden_symbol_prefixes())?;
        if r.violations.is_empty() {
            println!(
                "ok    {} ({} {} files, links {}, max GLIBC_{})",
                t.display(),
                r.files_checked,
                tc.binary_format,
                r.needed.join(" "),
                r.max_glibc.as_deref().unwrap_or("-")
            );
        } else {
            bad += 1;
            println!("FAIL  {}\n  - {}", t.display(), r.violations.join("\n  - "));
        }
    }
    if bad > 0 {
        bail!("{bad} tree(s) failed validation");
    }
    Ok(())
}

fn unpack_archive(path: &Path, python2: bool, dir: &Path) -> Result<PathBuf> {
    let mut archive = crate::extract::open_archive(path)?;
    archive
        .unpack(dir)
        .with_context(|| format!("unpacking {}", path.display()))?;
    let exe = validate::python_exe(&dir.join("python"), python2);
    if !exe.exists() {
        bail!("{} has no {}", path.display(), exe.display());
    }
    Ok(exe)
}

/// Unpacks one flavour's archive into `dir`; returns a runnable interpreter
/// (under an emulator: a wrapper script that starts it there).
pub fn unpack_runnable(a: &Artifact, flavour: &str, tc: &Toolchain, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let exe = unpack_archive(a.archive_of(flavour)?, a.python2, dir)?;
    if tc.run_under.is_empty() {
        return Ok(exe);
    }
    use std::os::unix::fs::PermissionsExt;
    let wrapper = dir.join("python-under-emulator");
    let quoted: Vec<String> = tc
        .run_under
        .iter()
        .chain([&exe.display().to_string()])
        .map(|w| format!("'{w}'"))
        .collect();
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec {} \"$@\"\n", quoted.join(" ")),
    )?;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))?;
    Ok(wrapper)
}

/// Counts kept for the one summary line at the end.
#[derive(Default)]
pub struct Tally {
    passed: usize,
    failed: usize,
    lines: Vec<String>,
}

impl Tally {
    pub fn add(&mut self, what: String, ok: bool, detail: String) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        self.lines.push(format!(
            "{} {what}{}",
            if ok { "PASS" } else { "FAIL" },
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        ));
    }

    /// A step's outcome with how long it took since `started`: its text, or
    /// its error.
    pub fn add_timed(&mut self, what: &str, started: Instant, r: Result<String>) {
        let what = format!("{what} ({:.0}s)", started.elapsed().as_secs_f64());
        match r {
            Ok(detail) => self.add(what, true, detail),
            Err(e) => self.add(what, false, format!("{e:#}")),
        }
    }

    /// Prints every line and the one summary line; fails if anything failed.
    pub fn finish(self) -> Result<()> {
        for l in &self.lines {
            println!("{l}");
        }
        println!("{} passed, {} failed", self.passed, self.failed);
        if self.failed > 0 {
            bail!("{} check(s) failed", self.failed);
        }
        Ok(())
    }
}

/// The toolchain `--target` names (the host by default).
fn target_toolchain(opts: &Options) -> Result<Toolchain> {
    Ok(Recipes::load()?.toolchain(opts.target.as_deref())?.clone())
}

/// Builds (or reuses) the selected interpreters and unpacks each archive
/// into `dir`, so the suites test what users download, not the cache.
/// A foreign target's interpreter is run through a wrapper script that starts
/// it under the toolchain's emulator (qemu-user).
pub fn unpacked(opts: &Options, tc: &Toolchain, dir: &Path) -> Result<Vec<(Artifact, PathBuf)>> {
    if !tc.can_run() {
        bail!(
            "{} binaries cannot run on this machine; only build and validate apply",
            tc.triple
        );
    }
    let mut out = Vec::new();
    for a in pipeline::build(opts)? {
        let first = a.archives[0].0.clone();
        let exe = unpack_runnable(&a, &first, tc, &dir.join(&a.version))?;
        out.push((a, exe));
    }
    Ok(out)
}

/// Where the report goes and which cases run: under an emulator a venv's own
/// interpreter cannot be exec'd (no binfmt registration here), so the pip
/// cases are left out of that subset. Each non-host target's report gets its
/// own folder.
fn conformance_setup(tc: &Toolchain) -> Result<(Option<String>, PathBuf)> {
    let dist = pipeline::dist_dir()?;
    let filter = (!tc.run_under.is_empty()).then(|| "!pip".to_string());
    Ok(if tc.triple == crate::recipes::host_triple() {
        (filter, dist.join("conformance"))
    } else {
        (filter, dist.join(format!("conformance-{}", tc.triple)))
    })
}

/// `cargo run` of one of the conformance crate's programs (the suite, the
/// old-root harness); arguments follow.
pub fn conformance_bin(bin: &str) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "run",
        "--quiet",
        "-p",
        "tlsforge-conformance",
        "--bin",
        bin,
        "--",
    ])
    .current_dir(workspace_root());
    cmd
}

/// Runs the conformance harness (tests/conformance) on the interpreters,
/// with the machine's python3 as the reference column; returns its verdict.
fn run_conformance(
    interpreters: &[(String, PathBuf)],
    (filter, out_dir): (Option<String>, PathBuf),
) -> Result<(bool, String)> {
    let mut cmd = conformance_bin("conformance");
    for (column, exe) in interpreters {
        cmd.arg("--python")
            .arg(format!("{column}={}", exe.display()));
    }
    cmd.arg("--out").arg(&out_dir);
    if let Some(f) = filter {
        cmd.arg("--filter").arg(f);
    }
    let status = cmd.status().context("running the conformance harness")?;
    Ok((
        status.success(),
        format!("report in {}", out_dir.join("conformance.html").display()),
    ))
}

/// Conformance columns: `tlsforge-<version>` for each unpacked archive.
fn columns(interpreters: &[(Artifact, PathBuf)]) -> Vec<(String, PathBuf)> {
    interpreters
        .iter()
        .map(|(a, exe)| (format!("tlsforge-{}", a.version), exe.clone()))
        .collect()
}

/// The `.deb`s installed for a test run; purged again when dropped.
struct InstalledDebs(Vec<String>);

impl Drop for InstalledDebs {
    fn drop(&mut self) {
        for p in &self.0 {
            if let Err(e) = crate::deb::remove(p) {
                eprintln!("warning: {e}");
            }
        }
    }
}

/// Installs each artifact's `.deb` with dpkg, checks that the installed
/// interpreter imports every required module, and returns its conformance
/// column (`tlsforge-<version>-deb`). Needs root, dpkg and a host target.
fn install_debs(
    recipes: &Recipes,
    interpreters: &[(Artifact, PathBuf)],
    tc: &Toolchain,
) -> Result<(InstalledDebs, Vec<(String, PathBuf)>)> {
    if !tc.runs_here() {
        bail!("{} packages cannot be installed on this machine", tc.triple);
    }
    let modules = &recipes.modules;
    let mut installed = InstalledDebs(Vec::new());
    let mut cols = Vec::new();
    for (a, _) in interpreters {
        let deb = a
            .deb
            .as_ref()
            .with_context(|| format!("no .deb was built for CPython {}", a.version))?;
        installed.0.push(crate::deb::install(deb, &a.version)?);
        let exe = crate::validate::python_exe(Path::new(&a.prefix), a.python2);
        let report = crate::validate::check_interpreter(
            &exe,
            a.python2,
            &[],
            &modules.required_for(a.python2, tc),
            Some(Path::new(&a.prefix)),
        )
        .with_context(|| format!("the interpreter installed from {}", deb.display()))?;
        eprintln!(
            "  installed {}: {} imports {} required modules, {}",
            deb.file_name().unwrap().to_string_lossy(),
            exe.display(),
            report["imported"],
            report["openssl"].as_str().unwrap_or("")
        );
        cols.push((format!("tlsforge-{}-deb", a.version), exe));
    }
    Ok((installed, cols))
}

/// Installs each `.rpm` into its own scratch root (`rpm --root --nodeps`),
/// checks `rpm -qip` and the installed interpreter's imports; returns what
/// was checked and the interpreters as conformance columns.
fn install_rpms(
    recipes: &Recipes,
    interpreters: &[(Artifact, PathBuf)],
    tc: &Toolchain,
    scratch: &Path,
) -> Result<(Vec<String>, Vec<Column>)> {
    let modules = &recipes.modules;
    let mut said = Vec::new();
    let mut cols = Vec::new();
    for (a, _) in interpreters {
        let rpm = a
            .rpm
            .as_ref()
            .with_context(|| format!("no .rpm was built for CPython {}", a.version))?;
        let info = crate::rpm::query(rpm)?;
        for field in ["Name", "Version", "Release", "License", "Summary"] {
            if !info.lines().any(|l| l.starts_with(field)) {
                bail!("rpm -qip {} shows no {field}", rpm.display());
            }
        }
        if !info.contains("linked in statically, built by tlsforge") {
            bail!(
                "rpm -qip --changelog {} shows no changelog entry",
                rpm.display()
            );
        }
        let root = crate::rpm::install_into(
            rpm,
            &scratch.join(format!("rpm-root-{}", a.version)),
            &a.prefix,
        )?;
        let exe = crate::validate::python_exe(&root, a.python2);
        let report = crate::validate::check_interpreter(
            &exe,
            a.python2,
            &[],
            &modules.required_for(a.python2, tc),
            Some(&root),
        )
        .with_context(|| format!("the interpreter installed from {}", rpm.display()))?;
        said.push(format!(
            "{}: rpm -qip shows name, version, release, license, changelog; {} imports {} required modules",
            rpm.file_name().unwrap().to_string_lossy(),
            exe.strip_prefix(scratch).unwrap_or(&exe).display(),
            report["imported"]
        ));
        cols.push((format!("tlsforge-{}-rpm", a.version), exe));
    }
    Ok((said, cols))
}

pub fn conform(opts: &Options, from_deb: bool) -> Result<()> {
    crate::prereqs::ensure(crate::prereqs::TEST_TOOLS)?;
    let recipes = Recipes::load()?;
    let tc = recipes.toolchain(opts.target.as_deref())?.clone();
    let tmp = tempfile::tempdir()?;
    let interpreters = unpacked(opts, &tc, tmp.path())?;
    let (_installed, cols) = if from_deb {
        install_debs(&recipes, &interpreters, &tc)?
    } else {
        (InstalledDebs(Vec::new()), columns(&interpreters))
    };
    let (ok, detail) = run_conformance(&cols, conformance_setup(&tc)?)?;
    if !ok {
        bail!("conformance suite failed; {detail}");
    }
    Ok(())
}

pub fn stdlib(opts: &Options, scope: Scope) -> Result<()> {
    let tc = target_toolchain(opts)?;
    let tmp = tempfile::tempdir()?;
    let mut tally = Tally::default();
    for (a, _) in unpacked(opts, &tc, tmp.path())? {
        let exe = unpack_runnable(
            &a,
            FULL,
            &tc,
            &tmp.path().join(format!("{}-{FULL}", a.version)),
        )?;
        stdlib_step(&a, &exe, scope, opts.jobs, &mut tally)?;
    }
    tally.finish()
}

/// The flavour with the test suite (recipes/packaging.toml).
const FULL: &str = "full";
/// The flavour without symbol tables.
const STRIPPED: &str = "install_only_stripped";

/// The other flavours of each artifact (install_only is checked by the
/// caller): unpacked, the binary checks, the smoke test; for the full
/// archive, gdb resolving an `_ssl` function from its symbol table; for the
/// stripped one, no symbol table left. Returns the stripped interpreters
/// as conformance columns and the full ones for CPython's suite.
fn flavour_checks(
    recipes: &Recipes,
    interpreters: &[(Artifact, PathBuf)],
    tc: &Toolchain,
    dir: &Path,
    tally: &mut Tally,
) -> Result<(Vec<Column>, Vec<PathBuf>)> {
    let modules = &recipes.modules;
    let mut columns = Vec::new();
    let mut full = Vec::new();
    for (a, _) in interpreters {
        for (flavour, archive) in a.archives.iter().skip(1) {
            let t = Instant::now();
            let d = dir.join(format!("{}-{flavour}", a.version));
            let exe = unpack_runnable(a, flavour, tc, &d)?;
            let tree = d.join("python");
            let report = validate::check_tree(&tree, tc, &recipes.hidden_symbol_prefixes())?;
            let mut problems = report.violations.clone();
            if let Err(e) = validate::smoke_test(
                &tree,
                a.python2,
                &tc.run_under,
                &modules.required_for(a.python2, tc),
            ) {
                problems.push(format!("smoke test: {e:#}"));
            }
            let real_exe = validate::python_exe(&tree, a.python2);
            let symbols = match flavour.as_str() {
                FULL => symbol_resolves_in_gdb(&real_exe),
                STRIPPED => has_no_symbol_table(&real_exe),
                _ => Ok(String::new()),
            };
            let symbols = symbols.unwrap_or_else(|e| {
                problems.push(format!("{e:#}"));
                String::new()
            });
            let size = std::fs::metadata(archive)?.len() as f64 / 1e6;
            tally.add(
                format!(
                    "{flavour} archive of {}: binary checks, smoke test ({:.0}s)",
                    a.version,
                    t.elapsed().as_secs_f64()
                ),
                problems.is_empty(),
                format!(
                    "{size:.1} MB, {} ELF files{}{}",
                    report.files_checked,
                    if symbols.is_empty() {
                        String::new()
                    } else {
                        format!("; {symbols}")
                    },
                    problems
                        .iter()
                        .map(|v| format!("\n    {v}"))
                        .collect::<String>()
                ),
            );
            match flavour.as_str() {
                FULL => full.push(exe),
                STRIPPED => columns.push((format!("tlsforge-{}-stripped", a.version), exe)),
                _ => {}
            }
        }
    }
    Ok((columns, full))
}

/// gdb's `info symbol` at the address of the `_ssl` module's handshake
/// function names it: the symbol table made it into the archive.
fn symbol_resolves_in_gdb(exe: &Path) -> Result<String> {
    crate::prereqs::ensure(&[("gdb", "gdb")])?;
    let bytes = std::fs::read(exe)?;
    let elf = goblin::elf::Elf::parse(&bytes)?;
    let (name, addr) = elf
        .syms
        .iter()
        .filter(|s| s.is_function() && s.st_value != 0)
        .filter_map(|s| Some((elf.strtab.get_at(s.st_name)?.to_string(), s.st_value)))
        .find(|(n, _)| n.contains("do_handshake") && !n.starts_with("SSL_"))
        .with_context(|| {
            format!(
                "{}: no _ssl handshake function in the symbol table",
                exe.display()
            )
        })?;
    let out = Command::new("gdb")
        .args(["-batch", "-nx", "-ex"])
        .arg(format!("info symbol 0x{addr:x}"))
        .arg(exe)
        .output()
        .context("running gdb")?;
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !said.starts_with(&format!("{name} in section")) {
        bail!(
            "gdb `info symbol 0x{addr:x}` in {} said {said:?}, not {name}",
            exe.display()
        );
    }
    Ok(format!("gdb: {said}"))
}

fn has_no_symbol_table(exe: &Path) -> Result<String> {
    let bytes = std::fs::read(exe)?;
    let elf = goblin::elf::Elf::parse(&bytes)?;
    if !elf.syms.is_empty() {
        bail!(
            "{} still has a symbol table ({} symbols)",
            exe.display(),
            elf.syms.len()
        );
    }
    Ok("no symbol table".to_string())
}

/// One version's run of CPython's own suite, as a line of the tally.
fn stdlib_step(
    a: &Artifact,
    exe: &Path,
    scope: Scope,
    jobs: usize,
    tally: &mut Tally,
) -> Result<()> {
    let t = Instant::now();
    let (ok, detail) = regrtest::run(a, exe, scope, jobs)?;
    tally.add(
        format!(
            "{} cpython {} ({:.0}s)",
            match scope {
                Scope::Tls => "stdlib TLS tests",
                Scope::Full => "stdlib full suite",
            },
            a.version,
            t.elapsed().as_secs_f64()
        ),
        ok,
        detail,
    );
    Ok(())
}

pub fn test(opts: &Options) -> Result<()> {
    let start = Instant::now();
    crate::prereqs::ensure(crate::prereqs::TEST_TOOLS)?;
    let mut tally = Tally::default();
    let recipes = Recipes::load()?;
    let tc = recipes.toolchain(opts.target.as_deref())?.clone();
    let old_root_step = tc.runs_here() && tc.max_glibc.is_some() && crate::prereqs::is_root();
    if old_root_step {
        crate::oldroot::prepare_in_background();
    }

    // 1. Unit and integration tests of the Rust code.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let ok = Command::new(&cargo)
        .args(["test", "--workspace", "--quiet"])
        .current_dir(workspace_root())
        .status()?
        .success();
    tally.add("cargo test --workspace".into(), ok, String::new());

    // 2. Build what the suites need (cache hits when nothing changed), and
    //    check again, on what users download, each unpacked archive.
    let tmp = tempfile::tempdir()?;
    let interpreters = unpacked(opts, &tc, tmp.path())?;
    binary_checks(
        &interpreters,
        &tc,
        &recipes.hidden_symbol_prefixes(),
        &mut tally,
    )?;
    let (stripped_cols, full_exes) =
        flavour_checks(&recipes, &interpreters, &tc, tmp.path(), &mut tally)?;
    let mut cols = columns(&interpreters);
    cols.extend(stripped_cols);

    // 3. Each .deb and .rpm installed; their interpreters join the run.
    let (_installed, package_cols) =
        package_columns(&recipes, &interpreters, &tc, tmp.path(), &mut tally)?;
    cols.extend(package_cols);

    // 4. Real handshakes: the conformance suite on every interpreter at
    //    once, and its report as a person sees it, in a browser.
    conformance_step(&cols, &tc, &mut tally)?;

    // 5. The artifacts where users run them: inside a Debian 11 root
    //    (glibc 2.31, older than this machine's), and a manylinux wheel.
    if old_root_step {
        let t = Instant::now();
        if let Err(e) = crate::oldroot::test_step(&tc, tmp.path(), &interpreters, &mut tally) {
            tally.add(
                format!("old root ({:.0}s)", t.elapsed().as_secs_f64()),
                false,
                format!("{e:#}"),
            );
        }
    }

    // 5b. uv installs our 3.x archives from dist/download-metadata.json.
    if tc.runs_here() && tc.triple.contains("-linux-gnu") {
        uv_step(&interpreters, tmp.path(), &mut tally)?;
    }

    // 6. CPython's whole test suite, from each version's full archive.
    if full_exes.len() != interpreters.len() {
        tally.add(
            "stdlib full suite".into(),
            false,
            format!(
                "{} of {} versions have a full archive (recipes/packaging.toml)",
                full_exes.len(),
                interpreters.len()
            ),
        );
    }
    for ((a, _), exe) in interpreters.iter().zip(&full_exes) {
        stdlib_step(a, exe, Scope::Full, opts.jobs, &mut tally)?;
    }
    println!("tlsforge test: {:.0}s", start.elapsed().as_secs_f64());
    tally.finish()
}

/// The binary checks of validate.rs on each unpacked archive, with its
/// highest glibc symbol version printed.
fn binary_checks(
    interpreters: &[(Artifact, PathBuf)],
    tc: &Toolchain,
    hidden: &[String],
    tally: &mut Tally,
) -> Result<()> {
    for (a, exe) in interpreters {
        // (under an emulator `exe` is the wrapper beside python/)
        let tree = match exe.ancestors().find(|d| d.ends_with("python")) {
            Some(t) => t.to_path_buf(),
            None => exe.with_file_name("python"),
        };
        let r = validate::check_tree(&tree, tc, hidden)?;
        tally.add(
            format!("binary checks of the {} archive", a.version),
            r.violations.is_empty(),
            format!(
                "{} ELF files, max GLIBC_{} (floor {}){}",
                r.files_checked,
                r.max_glibc.as_deref().unwrap_or("-"),
                tc.max_glibc.as_deref().unwrap_or("none"),
                r.violations
                    .iter()
                    .map(|v| format!("\n    {v}"))
                    .collect::<String>()
            ),
        );
    }
    Ok(())
}

/// The .deb of each (installed as root on the host target, purged when the
/// returned guard drops) and the .rpm of each (into a scratch root with
/// rpm --root); their conformance columns.
fn package_columns(
    recipes: &Recipes,
    interpreters: &[(Artifact, PathBuf)],
    tc: &Toolchain,
    scratch: &Path,
    tally: &mut Tally,
) -> Result<(Option<InstalledDebs>, Vec<Column>)> {
    let mut cols = Vec::new();
    let installed = if tc.runs_here() && crate::deb::available(tc) && crate::prereqs::is_root() {
        let t = Instant::now();
        let (installed, deb_cols) = install_debs(recipes, interpreters, tc)?;
        tally.add(
            format!(
                "install .debs, import check ({:.0}s)",
                t.elapsed().as_secs_f64()
            ),
            true,
            format!("{} packages", installed.0.len()),
        );
        cols.extend(deb_cols);
        Some(installed)
    } else {
        tally.add(
            ".deb install".into(),
            true,
            "skipped: needs root, dpkg and the host target".into(),
        );
        None
    };
    if tc.runs_here() && crate::rpm::available(tc) {
        let t = Instant::now();
        match install_rpms(recipes, interpreters, tc, scratch) {
            Ok((said, rpm_cols)) => {
                tally.add(
                    format!(
                        "install .rpms into a scratch root ({:.0}s)",
                        t.elapsed().as_secs_f64()
                    ),
                    true,
                    said.join("; "),
                );
                cols.extend(rpm_cols);
            }
            Err(e) => tally.add("install .rpms".into(), false, format!("{e:#}")),
        }
    }
    Ok((installed, cols))
}

/// The conformance suite on every column, then its report in Chromium.
fn conformance_step(cols: &[Column], tc: &Toolchain, tally: &mut Tally) -> Result<()> {
    let t = Instant::now();
    let setup = conformance_setup(tc)?;
    let report_dir = setup.1.clone();
    let (ok, detail) = run_conformance(cols, setup)?;
    tally.add(
        format!("conformance suite ({:.0}s)", t.elapsed().as_secs_f64()),
        ok,
        detail,
    );
    let t = Instant::now();
    let r = crate::browser::check_report(&report_dir);
    tally.add_timed("conformance report in headless Chromium", t, r);
    Ok(())
}

/// uv installs, runs and makes venvs from our 3.x archives.
fn uv_step(interpreters: &[(Artifact, PathBuf)], scratch: &Path, tally: &mut Tally) -> Result<()> {
    let t = Instant::now();
    let versions: Vec<&str> = interpreters
        .iter()
        .filter(|(a, _)| !a.python2)
        .map(|(a, _)| a.version.as_str())
        .collect();
    let r = crate::uv::check(
        &crate::util::Cache::from_env()?,
        &crate::pipeline::dist_dir()?,
        &versions,
        scratch,
    );
    tally.add_timed(
        "uv (recipes/tests/uv.txt) from dist/download-metadata.json",
        t,
        r,
    );
    Ok(())
}
