//! `oldroot --root DIR --scratch DIR --python LABEL=PATH:MAJOR [--modules LABEL=m1,m2] ...`
//!
//! Runs interpreters inside an old distribution root (made by `cargo xtask
//! oldroot-test`): per interpreter, does it start; do the required modules
//! import; a verified TLS 1.3 handshake to a server here on 127.0.0.1 with
//! trust from the platform bundle path only, and a wrong hostname refused;
//! pip from ensurepip installing from a local HTTPS index. PATH is where the
//! interpreter is inside the root (the scratch dir is the root's /tmp).
//! Prints a PASS/FAIL table and `N passed, M failed`; exits 1 on any failure.

mod view;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::json;
use tlsforge_conformance::pip;
use tlsforge_conformance::pki::{dns, Factory, Spec};
use tlsforge_conformance::proc::run_cmd;
use tlsforge_conformance::server::{start_tls, App, Chain, Listener, TlsSpec};

use view::View;

const CHECK_PY: &str = include_str!("check.py");
/// The name the handshake checks ask for; the index is at `localhost` (an
/// IP literal URL trips pip's truststore: "check_hostname requires
/// server_hostname").
const GOOD_HOST: &str = "oldroot.test";
const WRONG_HOST: &str = "wrong.test";
/// What check.py reports, in order, after `start`.
const CHECKS: &[&str] = &["imports", "tls13", "wrong-host", "pip"];
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// A hang is a failure: venv + ensurepip + two pip runs fit easily.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

struct Python {
    label: String,
    /// The executable as the root sees it.
    path: String,
    major: u32,
    modules: Vec<String>,
}

struct Args {
    root: PathBuf,
    scratch: PathBuf,
    pythons: Vec<Python>,
}

/// `LABEL=PATH:MAJOR`.
fn python_spec(spec: &str) -> Result<Python> {
    let (label, rest) = spec.split_once('=').context("expected LABEL=PATH:MAJOR")?;
    let (path, major) = rest.rsplit_once(':').context("expected LABEL=PATH:MAJOR")?;
    if label.is_empty() || !path.starts_with('/') {
        bail!("expected LABEL=/PATH/IN/ROOT:MAJOR, got {spec:?}");
    }
    Ok(Python {
        label: label.into(),
        path: path.into(),
        major: major
            .parse()
            .with_context(|| format!("major in {spec:?}"))?,
        modules: Vec::new(),
    })
}

fn parse(args: Vec<String>) -> Result<Args> {
    let (mut root, mut scratch, mut pythons) = (None, None, Vec::new());
    let mut modules: HashMap<String, Vec<String>> = HashMap::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--root" => root = Some(PathBuf::from(val()?)),
            "--scratch" => scratch = Some(PathBuf::from(val()?)),
            "--python" => pythons.push(python_spec(&val()?)?),
            "--modules" => {
                let v = val()?;
                let (label, list) = v.split_once('=').context("expected LABEL=m1,m2")?;
                let names = list.split(',').filter(|m| !m.is_empty());
                modules.insert(label.into(), names.map(str::to_string).collect());
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    for p in &mut pythons {
        p.modules = modules.remove(&p.label).unwrap_or_default();
    }
    if pythons.is_empty() {
        bail!("no --python given");
    }
    Ok(Args {
        root: root.context("--root is required")?,
        scratch: scratch.context("--scratch is required")?,
        pythons,
    })
}

/// One JSON line of check.py.
#[derive(Debug, Clone, Deserialize, PartialEq)]
struct Line {
    id: String,
    ok: bool,
    detail: String,
    ms: u64,
}

/// The check lines in a script's stdout; anything else (an interpreter's
/// noise, a half-written line after a kill) is skipped.
fn parse_lines(stdout: &str) -> HashMap<String, Line> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Line>(l.trim()).ok())
        .map(|l| (l.id.clone(), l))
        .collect()
}

/// The test CA, a leaf for GOOD_HOST and localhost, and two servers with it:
/// an echo server for the handshake checks and pip's PEP 503 index.
struct Servers {
    ca_pem: Vec<u8>,
    echo: Listener,
    index: Listener,
}

fn start_servers() -> Result<Servers> {
    let f = Factory::new();
    let ca = f.issue(&Spec::ca("tlsforge oldroot test CA"), None)?;
    let leaf = f.issue(
        &Spec::leaf(GOOD_HOST).sans(vec![dns(GOOD_HOST), dns("localhost")]),
        Some(&ca),
    )?;
    let chain = Chain {
        certs: vec![leaf.cert.clone()],
        key: leaf.key.clone(),
    };
    let index = TlsSpec {
        app: App::Http(pip::index_site()?),
        ..TlsSpec::new(chain.clone())
    };
    Ok(Servers {
        ca_pem: tlsforge_conformance::pki::pem(&[&ca.cert])?,
        echo: start_tls(TlsSpec::new(chain)).context("echo server")?,
        index: start_tls(index).context("index server")?,
    })
}

/// A row of the table.
struct Row {
    label: String,
    check: String,
    ok: bool,
    secs: f64,
    detail: String,
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Check a: the interpreter starts at all (an old glibc shows here).
fn start(view: &View, py: &Python, home: &str) -> Result<Row> {
    let argv = [
        py.path.clone(),
        "-c".into(),
        "import sys; print(sys.version)".into(),
    ];
    let o = run_cmd(&mut view.command(&argv, home), START_TIMEOUT)?;
    // The version it prints must be of the major we were told it is.
    let ok = o.success() && o.stdout.starts_with(&format!("{}.", py.major));
    let detail = if ok {
        o.stdout.split_whitespace().collect::<Vec<_>>().join(" ")
    } else if o.success() {
        format!("not Python {}: {}", py.major, tail(&o.stdout, 2))
    } else if o.timed_out {
        format!("no answer in {}s", START_TIMEOUT.as_secs())
    } else {
        format!(
            "exit {:?}: {}",
            o.status.and_then(|s| s.code()),
            tail(&o.stderr, 2)
        )
    };
    Ok(Row {
        label: py.label.clone(),
        check: "start".into(),
        ok,
        secs: o.elapsed.as_secs_f64(),
        detail,
    })
}

/// check.py's configuration for one interpreter, written into the scratch dir.
fn script_config(py: &Python, servers: &Servers, work: &str) -> serde_json::Value {
    json!({
        "modules": py.modules,
        "tls_port": servers.echo.port,
        "good_host": GOOD_HOST,
        "wrong_host": WRONG_HOST,
        "index_url": format!("https://localhost:{}/simple/", servers.index.port),
        "package": pip::PKG_NAME,
        "module": pip::PKG_MODULE,
        "value": pip::PKG_VALUE,
        "work": work,
    })
}

/// Checks b-d: check.py under the interpreter, one row per expected check.
fn checks(view: &View, args: &Args, py: &Python, servers: &Servers) -> Result<Vec<Row>> {
    let name: String = py
        .label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let work = format!("/tmp/work-{name}");
    std::fs::create_dir_all(args.scratch.join(format!("work-{name}/home")))?;
    let config = format!("oldroot-{name}.json");
    std::fs::write(
        args.scratch.join(&config),
        script_config(py, servers, &work).to_string(),
    )?;
    let argv = [
        py.path.clone(),
        "/tmp/oldroot-check.py".into(),
        format!("/tmp/{config}"),
    ];
    let o = run_cmd(
        &mut view.command(&argv, &format!("{work}/home")),
        SCRIPT_TIMEOUT,
    )?;
    let lines = parse_lines(&o.stdout);
    let why_missing = if o.timed_out {
        format!("no result: killed after {}s", SCRIPT_TIMEOUT.as_secs())
    } else {
        format!(
            "no result: check.py exited {:?}: {}",
            o.status,
            tail(&o.stderr, 2)
        )
    };
    Ok(CHECKS
        .iter()
        .map(|id| match lines.get(*id) {
            Some(l) => row(py, id, l.ok, l.ms as f64 / 1000.0, l.detail.clone()),
            None => row(py, id, false, 0.0, why_missing.clone()),
        })
        .collect())
}

fn row(py: &Python, check: &str, ok: bool, secs: f64, detail: String) -> Row {
    Row {
        label: py.label.clone(),
        check: check.into(),
        ok,
        secs,
        detail,
    }
}

fn run(args: &Args) -> Result<Vec<Row>> {
    let servers = start_servers()?;
    let view = View::new(&args.root, &args.scratch, &servers.ca_pem)?;
    std::fs::write(args.scratch.join("oldroot-check.py"), CHECK_PY)?;
    let mut rows = Vec::new();
    for py in &args.pythons {
        eprintln!("  oldroot: {} ({})", py.label, py.path);
        let first = start(&view, py, "/tmp")?;
        let started = first.ok;
        rows.push(first);
        if started {
            rows.extend(checks(&view, args, py, &servers)?);
        } else {
            let why = "not run: the interpreter did not start";
            rows.extend(CHECKS.iter().map(|id| row(py, id, false, 0.0, why.into())));
        }
    }
    Ok(rows)
}

fn print_table(root: &Path, rows: &[Row]) -> bool {
    println!(
        "oldroot: {} (overlay view, scratch as /tmp)",
        root.display()
    );
    let w = rows.iter().map(|r| r.label.len()).max().unwrap_or(0);
    for r in rows {
        let mark = if r.ok { "PASS" } else { "FAIL" };
        println!(
            "{mark}  {:<w$}  {:<10} {:>6.1}s  {}",
            r.label, r.check, r.secs, r.detail
        );
    }
    let failed = rows.iter().filter(|r| !r.ok).count();
    println!("{} passed, {failed} failed", rows.len() - failed);
    failed == 0
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1).collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("oldroot: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(rows) if print_table(&args.root, &rows) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("oldroot: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_spec_splits_label_path_major() {
        let p = python_spec("tlsforge-3.13.5=/tmp/3.13.5/python/bin/python3:3").unwrap();
        assert_eq!(p.label, "tlsforge-3.13.5");
        assert_eq!(p.path, "/tmp/3.13.5/python/bin/python3");
        assert_eq!(p.major, 3);
        assert!(python_spec("x=relative/python:3").is_err());
        assert!(python_spec("x=/usr/bin/python").is_err());
    }

    #[test]
    fn parse_lines_keeps_check_lines_only() {
        let out = "warning: noise\n\
            {\"id\": \"imports\", \"ok\": true, \"detail\": \"17 modules\", \"ms\": 40}\n\
            {\"meta\": 1}\n\
            {\"id\": \"tls13\", \"ok\": false, \"detail\": \"TLSv1.2\", \"ms\": 12}\n\
            {\"id\": \"pip\", \"ok\": tr";
        let lines = parse_lines(out);
        assert_eq!(lines.len(), 2);
        assert!(lines["imports"].ok);
        assert_eq!(lines["tls13"].detail, "TLSv1.2");
        assert!(!lines.contains_key("pip"));
    }

    #[test]
    fn check_py_reports_every_expected_check() {
        for id in CHECKS {
            assert!(CHECK_PY.contains(&format!("(\"{id}\", ")), "{id} missing");
        }
    }
}
