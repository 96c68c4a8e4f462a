//! CPython's own test suite (regrtest) on a built interpreter, run from the
//! unpacked archive (a relocated copy), in a neutral environment, from a
//! directory that is not its own, with no network resources.
//!
//! Two lists per version steer it, both in `patches/<version>/`:
//! - `SKIPS`: tests that cannot apply (Windows-only, SSLv2/SSLv3, network).
//! - `EXPECTED-FAILURES`: tests this machine makes fail. Each entry needs a
//!   reason, must fail on our interpreter (a stale entry is an error) and,
//!   when a stock interpreter of the same minor version is on the machine,
//!   must fail there too: then it is the environment, not our build.
//!
//! Both lists are left out of the main run (`--ignorefile`, and `-x` for a
//! whole module); anything else that fails, fails the command.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::pipeline::Artifact;
use crate::util::workspace_root;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// test_ssl, test_hashlib, test_httplib, test_urllib2_localnet.
    Tls,
    /// Every test module of the version's own suite.
    Full,
}

/// recipes/tests/stdlib-tls.txt: the modules of the TLS scope (the same
/// `test_id  # reason` lines as SKIPS).
fn tls_modules() -> Result<Vec<String>> {
    let file = workspace_root().join("recipes/tests/stdlib-tls.txt");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let modules: Vec<String> = parse_list(&text, &file)?
        .into_iter()
        .map(|e| e.id)
        .collect();
    if modules.is_empty() {
        bail!("{} names no test module", file.display());
    }
    Ok(modules)
}

/// One line of SKIPS or EXPECTED-FAILURES: `test_id  # reason`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListEntry {
    /// `test_module`, `test_module.Class` or `test_module.Class.test_method`.
    pub id: String,
    pub reason: String,
}

impl ListEntry {
    fn module(&self) -> &str {
        self.id.split('.').next().unwrap()
    }
    fn whole_module(&self) -> bool {
        !self.id.contains('.')
    }
}

/// Parses a list; every entry must say why it is there.
pub fn parse_list(text: &str, file: &Path) -> Result<Vec<ListEntry>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let (id, reason) = match line.split_once('#') {
            Some((id, reason)) => (id.trim(), reason.trim()),
            None => (line.trim(), ""),
        };
        if id.is_empty() {
            continue;
        }
        if reason.is_empty() {
            bail!(
                "{}:{}: `{id}` has no reason; write `{id}  # why it fails or cannot run here`",
                file.display(),
                n + 1
            );
        }
        if !id.starts_with("test_") || id.contains(char::is_whitespace) {
            bail!(
                "{}:{}: `{id}` is not a test id; expected test_module[.Class[.test_method]]",
                file.display(),
                n + 1
            );
        }
        out.push(ListEntry {
            id: id.to_string(),
            reason: reason.to_string(),
        });
    }
    Ok(out)
}

fn load_list(version: &str, name: &str) -> Result<(PathBuf, Vec<ListEntry>)> {
    let file = workspace_root().join("patches").join(version).join(name);
    let entries = match std::fs::read_to_string(&file) {
        Ok(text) => parse_list(&text, &file)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    Ok((file, entries))
}

/// Counts from regrtest's summary (test modules; for 3.12+ also test cases).
#[derive(Debug, Default, PartialEq)]
pub struct Counts {
    pub ok: usize,
    pub failed: usize,
    pub skipped: usize,
    /// 3.12+: "Total tests: run=37,654 failures=0 skipped=1,895".
    pub cases: Option<String>,
    /// Modules that failed and were re-run verbosely (`-w`); the counts are
    /// those after the re-run.
    pub rerun: Vec<String>,
}

pub fn parse_summary(out: &str) -> Counts {
    let mut c = Counts::default();
    for line in out.lines() {
        let line = line.trim();
        if let Some(at) = line.find("Re-running ") {
            let what = &line[at + "Re-running ".len()..];
            if what.contains("failed tests") {
                // the summary is printed again after the re-run
                (c.ok, c.failed, c.skipped) = (0, 0, 0);
            } else if let Some(name) = what
                .trim_start_matches("test ")
                .split_whitespace()
                .next()
                .map(|w| w.trim_matches('\''))
                .filter(|w| w.starts_with("test_"))
            {
                c.rerun.push(name.to_string());
            }
            continue;
        }
        // ("All 356 tests OK." when nothing failed or was skipped)
        let mut words = line.trim_start_matches("All ").split_whitespace();
        let (Some(n), Some(unit), Some(what)) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        let (Ok(n), true) = (n.parse::<usize>(), unit == "test" || unit == "tests") else {
            if let Some(rest) = line.strip_prefix("Total tests: ") {
                c.cases = Some(rest.to_string());
            }
            continue;
        };
        // (not "10 tests skipped (resource denied):", already counted)
        match what {
            "OK." => c.ok = n,
            "failed:" => c.failed = n,
            "skipped:" => c.skipped = n,
            _ => {}
        }
    }
    c
}

/// The regrtest command of `exe` (2.7's has no package `__main__`).
fn regrtest(exe: &Path, python2: bool, work: &Path) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(["-m", if python2 { "test.regrtest" } else { "test" }]);
    // Neutral: no SSL_CERT_FILE or PYTHON* from the caller, a HOME of its own,
    // started from a directory that is not the interpreter's.
    let home = work.join("home");
    let _ = std::fs::create_dir_all(&home);
    // SIGINT as at a terminal: a runner started in the background (`cmd &`,
    // nohup, some CI agents) inherits it ignored, Python then installs no
    // KeyboardInterrupt handler, and the tests that send SIGINT
    // (test_subprocess.test_send_signal, test_regrtest.test_interrupted) fail.
    // SAFETY: signal() is async-signal-safe; nothing else runs in the child.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &home)
        .env("TMPDIR", work)
        .current_dir(work);
    cmd
}

fn log_stem(a: &Artifact) -> String {
    a.archive
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches("-install_only.tar.gz")
        .to_string()
}

/// Runs `cmd` with stdout and stderr going to `log` as they come (so a long
/// run can be followed), and returns its status with stdout read back.
fn run_logged(cmd: &mut Command, log: &Path) -> Result<Output> {
    let file = std::fs::File::create(log)?;
    let status = cmd.stdout(file.try_clone()?).stderr(file).status()?;
    Ok(Output {
        status,
        stdout: std::fs::read(log)?,
        stderr: Vec::new(),
    })
}

/// Patterns for `--ignore`/`--match` naming a class or method by its id
/// without the `test.` package: 3.x compares a dotted pattern without glob
/// characters with the whole id, so the id is turned into globs (which 2.7's
/// patched regrtest matches the same way).
fn globs(id: &str) -> [String; 2] {
    [format!("*.{id}"), format!("*.{id}.*")]
}

/// Runs one list entry alone; true when it fails (and really ran).
fn entry_fails(exe: &Path, python2: bool, e: &ListEntry, work: &Path) -> Result<bool> {
    let mut cmd = regrtest(exe, python2, work);
    cmd.arg(e.module());
    if !e.whole_module() {
        // Globs match the whole id (`test.test_x.Class.test_y`), in 2.7 too.
        for g in globs(&e.id) {
            cmd.args(["-m", &g]);
        }
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let ran_nothing = text.contains("ran no tests") || text.contains("NO TESTS RAN");
    Ok(!out.status.success() && !ran_nothing && parse_summary(&text).failed > 0)
}

/// The stock interpreter of the same minor version on this machine, if any:
/// pyenv's build (newest patch release), else the distribution's.
pub fn stock_interpreter(series: &str) -> Option<PathBuf> {
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
    pyenv
        .and_then(|root| pyenv_interpreter(&root, series))
        .or_else(|| Some(PathBuf::from(format!("/usr/bin/python{series}"))).filter(|p| p.exists()))
}

/// pyenv's newest `<series>.N` under `root/versions` (not `3.13t`, not `3.1`).
fn pyenv_interpreter(root: &Path, series: &str) -> Option<PathBuf> {
    let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(root.join("versions"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|d| {
            let name = d.file_name().to_string_lossy().to_string();
            let rest = name.strip_prefix(series)?.strip_prefix('.')?;
            let key = crate::recipes::version_key(&name);
            rest.parse::<u32>().ok()?;
            let exe = d.path().join("bin").join(format!("python{series}"));
            exe.exists().then_some((key, exe))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

/// Runs the suite; returns (passed, one-paragraph summary).
pub fn run(a: &Artifact, exe: &Path, scope: Scope, jobs: usize) -> Result<(bool, String)> {
    let (skips_file, skips) = load_list(&a.version, "SKIPS")?;
    let (expected_file, expected) = match scope {
        Scope::Full => load_list(&a.version, "EXPECTED-FAILURES")?,
        Scope::Tls => (PathBuf::new(), Vec::new()),
    };
    let work = tempfile::Builder::new().prefix("regrtest-").tempdir()?;
    let left_out: Vec<&ListEntry> = skips.iter().chain(&expected).collect();
    let ignore_file = work.path().join("ignore.txt");
    std::fs::write(
        &ignore_file,
        left_out
            .iter()
            .filter(|e| !e.whole_module())
            .flat_map(|e| globs(&e.id))
            .map(|g| format!("{g}\n"))
            .collect::<String>(),
    )?;

    let mut cmd = suite_command(
        exe,
        a.python2,
        scope,
        jobs,
        work.path(),
        &ignore_file,
        &left_out,
    )?;
    let which = match scope {
        Scope::Tls => "stdlib-tests",
        Scope::Full => "stdlib-full",
    };
    let log = crate::util::Cache::from_env()?.log_path(&format!("{which}-{}", log_stem(a)))?;
    println!(
        "  cpython {}: {which} running; follow it with: tail -f {}",
        a.version,
        log.display()
    );
    let out = run_logged(&mut cmd, &log).with_context(|| format!("running {}", exe.display()))?;
    let counts = parse_summary(&String::from_utf8_lossy(&out.stdout));
    let mut ok = out.status.success();
    let mut detail = format!(
        "{} modules OK, {} failed, {} skipped{}; {} left out by {}",
        counts.ok,
        counts.failed,
        counts.skipped,
        counts
            .cases
            .as_ref()
            .map(|c| format!(" (test cases: {c})"))
            .unwrap_or_default(),
        skips.len(),
        rel(&skips_file)
    );
    if !counts.rerun.is_empty() {
        detail.push_str(&format!(
            "; re-run alone in verbose mode after failing under -j: {}",
            counts.rerun.join(", ")
        ));
    }

    // Each expected failure must fail here, and on the stock interpreter.
    if !expected.is_empty() {
        let (all_hold, said) = expected_failures_hold(a, exe, &expected, work.path())?;
        ok &= all_hold;
        detail.push_str(&format!(
            "; {} expected failures in {}{said}",
            expected.len(),
            rel(&expected_file)
        ));
    }
    detail.push_str(&format!("; log {}", log.display()));
    Ok((ok, detail))
}

/// regrtest for one scope: the TLS modules, or everything with workers,
/// re-runs and a timeout; `left_out` as -x modules and --ignorefile globs.
fn suite_command(
    exe: &Path,
    python2: bool,
    scope: Scope,
    jobs: usize,
    work: &Path,
    ignore_file: &Path,
    left_out: &[&ListEntry],
) -> Result<Command> {
    let mut cmd = regrtest(exe, python2, work);
    // The header names the platform: proves which interpreter really ran.
    cmd.arg("--header").arg("--ignorefile").arg(ignore_file);
    match scope {
        Scope::Tls => {
            cmd.args(tls_modules()?);
        }
        Scope::Full => {
            // Many tests sleep or wait on sockets: two workers more than
            // cores, as regrtest's own -j0.
            cmd.arg(format!("-j{}", jobs + 2));
            // A failed module runs again alone, verbosely, as CPython's CI
            // does; it passes only if that run passes, and is named below.
            cmd.arg("-w");
            if !python2 {
                // A hung test fails after 20 minutes instead of hanging CI.
                cmd.arg("--timeout=1200");
            }
            let whole: Vec<&str> = left_out
                .iter()
                .filter(|e| e.whole_module())
                .map(|e| e.id.as_str())
                .collect();
            if !whole.is_empty() {
                cmd.arg("-x").args(whole);
            }
        }
    }
    Ok(cmd)
}

/// Every expected failure fails here and on the stock interpreter of the
/// same series (when the machine has one); the verdict and one line each.
fn expected_failures_hold(
    a: &Artifact,
    exe: &Path,
    expected: &[ListEntry],
    work: &Path,
) -> Result<(bool, String)> {
    let series = a
        .version
        .rsplit_once('.')
        .map(|(s, _)| s)
        .unwrap_or(&a.version);
    let stock = stock_interpreter(series);
    let mut ok = true;
    let mut lines = Vec::new();
    for e in expected {
        let here = entry_fails(exe, a.python2, e, work)?;
        let there = match &stock {
            Some(s) => Some(entry_fails(s, a.python2, e, work)?),
            None => None,
        };
        let verdict = match (here, there) {
            (false, _) => {
                ok = false;
                "PASSES here: remove it from the list"
            }
            (true, Some(false)) => {
                ok = false;
                "passes on the stock interpreter: ours to fix, not the environment's"
            }
            (true, Some(true)) => "fails here and on stock",
            (true, None) => "fails here (no stock interpreter to compare)",
        };
        lines.push(format!("\n    {}: {verdict} ({})", e.id, e.reason));
    }
    let compared = stock
        .map(|s| format!(", compared with {}", s.display()))
        .unwrap_or_default();
    Ok((ok, format!("{compared}{}", lines.concat())))
}

fn rel(p: &Path) -> String {
    p.strip_prefix(workspace_root())
        .unwrap_or(p)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_entries_need_a_reason_and_a_test_id() {
        let f = Path::new("patches/9.9/EXPECTED-FAILURES");
        let ok = parse_list("# comment\n\ntest_socket.X.test_y  # no VSOCK here\n", f).unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].module(), "test_socket");
        assert!(!ok[0].whole_module());
        let e = parse_list("test_import\n", f).unwrap_err().to_string();
        assert!(
            e.contains("EXPECTED-FAILURES:1") && e.contains("no reason"),
            "{e}"
        );
        let e = parse_list("socket.X  # why\n", f).unwrap_err().to_string();
        assert!(e.contains("not a test id"), "{e}");
    }

    #[test]
    fn committed_lists_parse_and_every_entry_has_a_reason() {
        let mut seen = 0;
        for dir in std::fs::read_dir(workspace_root().join("patches")).unwrap() {
            for name in ["SKIPS", "EXPECTED-FAILURES"] {
                let f = dir.as_ref().unwrap().path().join(name);
                if let Ok(text) = std::fs::read_to_string(&f) {
                    seen += parse_list(&text, &f).unwrap().len();
                }
            }
        }
        assert!(seen > 0, "no SKIPS or EXPECTED-FAILURES entries found");
    }

    #[test]
    fn stock_interpreter_is_pyenvs_newest_of_the_series() {
        let d = tempfile::tempdir().unwrap();
        for v in [
            "3.13.0",
            "3.13.9",
            "3.13.10",
            "3.1.5",
            "3.13t-dev",
            "3.130.1",
        ] {
            let bin = d.path().join("versions").join(v).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::write(
                bin.join(format!("python{}", &v[..v.rfind('.').unwrap()])),
                "",
            )
            .unwrap();
            std::fs::write(bin.join("python3.13"), "").unwrap();
        }
        assert_eq!(
            pyenv_interpreter(d.path(), "3.13").unwrap(),
            d.path().join("versions/3.13.10/bin/python3.13")
        );
        assert!(pyenv_interpreter(d.path(), "2.7").is_none());
    }

    #[test]
    fn summaries_of_2_7_and_3_13_are_counted() {
        let py27 = "356 tests OK.\n5 tests failed:\n    test_import\n34 tests skipped:\n";
        assert_eq!(
            parse_summary(py27),
            Counts {
                ok: 356,
                failed: 5,
                skipped: 34,
                cases: None,
                rerun: vec![]
            }
        );
        let py313 =
            "== Tests result: SUCCESS ==\n\n21 tests skipped:\n    test_x\n\n10 tests skipped (resource denied):\n\n470 tests OK.\n\n\
                     Total duration: 9 min\nTotal tests: run=37,654 skipped=1,895\n";
        let c = parse_summary(py313);
        assert_eq!((c.ok, c.failed, c.skipped), (470, 0, 21));
        assert_eq!(c.cases.as_deref(), Some("run=37,654 skipped=1,895"));
        assert_eq!(parse_summary("1 test failed:\n    test_x\n").failed, 1);
        assert_eq!(parse_summary("All 356 tests OK.\n").ok, 356);
        let rerun_27 = "350 tests OK.\n2 tests failed:\n    test_a test_b\n\nRe-running failed tests in verbose mode\n\
                        Re-running test 'test_a' in verbose mode\nRe-running test 'test_b' in verbose mode\n\
                        1 test failed again:\n    test_b\n350 tests OK.\n1 test failed:\n    test_b\n";
        let c = parse_summary(rerun_27);
        assert_eq!((c.ok, c.failed), (350, 1));
        assert_eq!(c.rerun, ["test_a", "test_b"]);
        let rerun_313 = "1 test failed:\n    test_socket\n\nRe-running 1 failed tests in verbose mode (matching: testStream)\n\
                         0:11:30 load avg: 1.0 Re-running test_socket in verbose mode (matching: testStream)\n\
                         470 tests OK.\n";
        let c = parse_summary(rerun_313);
        assert_eq!((c.ok, c.failed), (470, 0));
        assert_eq!(c.rerun, ["test_socket"]);
    }
}
