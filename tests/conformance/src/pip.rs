//! Cases 53*: pip (bootstrapped with ensurepip) installs a package from a local HTTPS index, in
//! a neutral environment (`env -i`, PIP_CONFIG_FILE=/dev/null), with trust given one way per
//! case: SSL_CERT_FILE only, `--cert` only, or only a distribution's platform bundle (the trust-*
//! namespace layouts); and refuses a wrongly named index and one signed by an untrusted CA.
//!
//! The harness builds a tiny pure-Python wheel, serves a PEP 503 simple index for it, and per
//! interpreter: bootstraps pip into a throw-away place (a venv on 3.x; `ensurepip --user` with a
//! temporary HOME/PYTHONUSERBASE on 2.7), then installs with `--target` into a temp dir, so the
//! interpreter's own installation is never written to.

use std::collections::HashMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::proc::{neutral_env, run_cmd};
use crate::report::Observed;
use crate::server::Site;
use crate::trust::{self, Layout, LayoutFiles};

pub const PKG_NAME: &str = "tlsforge-probe-pkg";
pub const PKG_MODULE: &str = "tlsforge_probe_pkg";
pub const PKG_VERSION: &str = "1.0";
pub const PKG_VALUE: &str = "tlsforge-ok";

fn b64url_nopad(data: &[u8]) -> String {
    openssl::base64::encode_block(data)
        .replace('+', "-")
        .replace('/', "_")
        .trim_end_matches('=')
        .to_string()
}

/// (file name, bytes) of a pure-Python py2.py3 wheel holding `tlsforge_probe_pkg`.
pub fn build_wheel() -> Result<(String, Vec<u8>)> {
    let dist = format!("{}-{}", PKG_MODULE, PKG_VERSION);
    let files: Vec<(String, Vec<u8>)> = vec![
        (format!("{}/__init__.py", PKG_MODULE), format!("VALUE = \"{}\"\n", PKG_VALUE).into_bytes()),
        (
            format!("{}.dist-info/METADATA", dist),
            format!(
                "Metadata-Version: 2.1\nName: {}\nVersion: {}\nSummary: Probe package served by the tlsforge conformance suite\n",
                PKG_NAME, PKG_VERSION
            )
            .into_bytes(),
        ),
        (
            format!("{}.dist-info/WHEEL", dist),
            b"Wheel-Version: 1.0\nGenerator: tlsforge-conformance\nRoot-Is-Purelib: true\nTag: py2-none-any\nTag: py3-none-any\n"
                .to_vec(),
        ),
        (format!("{}.dist-info/top_level.txt", dist), format!("{}\n", PKG_MODULE).into_bytes()),
    ];
    let mut record = String::new();
    for (name, data) in &files {
        record.push_str(&format!(
            "{},sha256={},{}\n",
            name,
            b64url_nopad(&openssl::sha::sha256(data)),
            data.len()
        ));
    }
    record.push_str(&format!("{}.dist-info/RECORD,,\n", dist));
    let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in files.iter().chain(std::iter::once(&(
        format!("{}.dist-info/RECORD", dist),
        record.into_bytes(),
    ))) {
        zw.start_file(name.as_str(), opts)?;
        zw.write_all(data)?;
    }
    let bytes = zw.finish()?.into_inner();
    Ok((format!("{}-py2.py3-none-any.whl", dist), bytes))
}

/// The PEP 503 simple index serving the wheel (plus "/" for plain GETs).
pub fn index_site() -> Result<Arc<Site>> {
    let (file, wheel) = build_wheel()?;
    let digest: String = openssl::sha::sha256(&wheel)
        .iter()
        .map(|b| format!("{:02x}", b))
        .collect();
    let mut pages: HashMap<String, (String, Vec<u8>)> = HashMap::new();
    let html = |body: String| {
        (
            "text/html".to_string(),
            format!("<!DOCTYPE html>\n<html><body>\n{}</body></html>\n", body).into_bytes(),
        )
    };
    pages.insert(
        "/".into(),
        ("text/plain".into(), format!("{}\n", PKG_VALUE).into_bytes()),
    );
    pages.insert(
        "/simple/".into(),
        html(format!("<a href=\"/simple/{0}/\">{0}</a>\n", PKG_NAME)),
    );
    pages.insert(
        format!("/simple/{}/", PKG_NAME),
        html(format!(
            "<a href=\"/packages/{0}#sha256={1}\">{0}</a>\n",
            file, digest
        )),
    );
    pages.insert(
        format!("/packages/{}", file),
        ("application/octet-stream".into(), wheel),
    );
    Ok(Arc::new(Site { pages }))
}

/// How one pip case gives pip its trust, and which index it dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipCase {
    /// Only SSL_CERT_FILE names the test root.
    CertFile,
    /// Only `--cert` names it.
    CertFlag,
    /// Only the distribution's platform bundle holds it (trust-* namespace).
    Layout(Layout),
    /// SSL_CERT_FILE trust, index certificate for another host: must refuse.
    WrongHost,
    /// SSL_CERT_FILE trust, index chain to a CA nobody trusts: must refuse.
    UntrustedCa,
}

impl PipCase {
    /// The distribution layouts pip must work in.
    pub const LAYOUTS: &'static [Layout] =
        &[Layout::Debian, Layout::Rhel, Layout::Suse, Layout::Alpine];
}

/// Ports of the three index servers.
#[derive(Debug, Clone, Copy, Default)]
pub struct IndexPorts {
    pub good: Option<u16>,
    pub wrong_host: Option<u16>,
    pub untrusted: Option<u16>,
}

impl IndexPorts {
    /// The index `case` dials.
    fn for_case(&self, case: PipCase) -> Option<u16> {
        match case {
            PipCase::WrongHost => self.wrong_host,
            PipCase::UntrustedCa => self.untrusted,
            _ => self.good,
        }
    }
}

pub struct PipResult {
    /// case id -> (what pip did, detail)
    pub outcomes: HashMap<String, (Observed, String)>,
    pub pip_version: String,
    /// "SSL_CERT_FILE alone works; platform store works (debian, rhel, suse, alpine); ..."
    pub summary: String,
}

impl PipResult {
    /// Every case answered with the same observation (pip could not be bootstrapped).
    pub fn all(cases: &[(String, PipCase)], observed: Observed, pip_version: &str) -> PipResult {
        PipResult {
            outcomes: cases
                .iter()
                .map(|(id, _)| (id.clone(), (observed.clone(), String::new())))
                .collect(),
            pip_version: pip_version.into(),
            summary: String::new(),
        }
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("DEPRECATION:"))
        .collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join(" | ")
}

/// Did pip fail because TLS verification failed (and not because it crashed)?
fn tls_failure(out: &str) -> bool {
    let o = out.to_ascii_lowercase();
    [
        "certificate verify failed",
        "certificate_verify_failed",
        "did not match expected hostname",
        "doesn't match",
        "hostname mismatch",
        "sslcertverificationerror",
        "sslerror",
        "problem confirming the ssl certificate",
    ]
    .iter()
    .any(|k| o.contains(k))
}

/// (python that runs the bootstrapped pip, extra environment, how it was bootstrapped)
type Bootstrapped = (PathBuf, Vec<(String, String)>, String);

/// Bootstrap pip for `python` under `work`.
fn bootstrap(python: &Path, major: u32, work: &Path, deadline: Instant) -> Result<Bootstrapped> {
    let home = work.join("home");
    std::fs::create_dir_all(&home)?;
    let mut env = vec![];
    let left = || deadline.saturating_duration_since(Instant::now());
    if major >= 3 {
        let venv = work.join("venv");
        let mut c = Command::new(python);
        c.args(["-m", "venv"]).arg(&venv);
        neutral_env(&mut c, &home);
        let o = run_cmd(&mut c, left().min(Duration::from_secs(60)))?;
        let vpy = venv.join("bin/python");
        if o.success() && vpy.exists() {
            return Ok((
                vpy,
                env,
                "python -m venv (ensurepip inside the venv)".into(),
            ));
        }
        // fall through to ensurepip --user (e.g. a venv module without ensurepip)
    }
    let userbase = work.join("userbase");
    env.push(("PYTHONUSERBASE".into(), userbase.display().to_string()));
    let mut c = Command::new(python);
    c.args(["-m", "ensurepip", "--user"]);
    neutral_env(&mut c, &home);
    c.envs(env.iter().cloned());
    let o = run_cmd(&mut c, left().min(Duration::from_secs(60)))?;
    if !o.success() {
        anyhow::bail!(
            "ensurepip --user failed: {}",
            tail(&(o.stdout + &o.stderr), 3)
        );
    }
    Ok((
        python.to_path_buf(),
        env,
        "ensurepip --user with a temporary HOME/PYTHONUSERBASE".into(),
    ))
}

pub struct PipJob<'a> {
    pub python: &'a Path,
    pub major: u32,
    pub work: &'a Path,
    pub ca_pem: &'a Path,
    pub ports: IndexPorts,
    /// (case id, case) to run.
    pub cases: &'a [(String, PipCase)],
    /// For the layout cases: the interpreter's meta, the layout files, /private's state.
    pub meta: &'a serde_json::Value,
    pub layout_files: &'a LayoutFiles,
    pub private: &'a Result<(), String>,
    pub timeout: Duration,
}

pub fn run(job: &PipJob) -> PipResult {
    match run_inner(job) {
        Ok(r) => r,
        Err(e) => PipResult::all(
            job.cases,
            Observed::Error {
                message: format!("{:#}", e),
            },
            "?",
        ),
    }
}

/// Python code that imports the installed package from a `--target` dir (argv: dir, module).
const IMPORT_CHECK_PY: &str = include_str!("py/import_check.py");

/// A bootstrapped pip, for one job.
struct Pip<'a> {
    job: &'a PipJob<'a>,
    /// The python that runs the bootstrapped pip, and its extra environment.
    py: PathBuf,
    env: Vec<(String, String)>,
    home: PathBuf,
    deadline: Instant,
}

impl Pip<'_> {
    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// `c` in the neutral environment with the bootstrap's variables.
    fn neutral(&self, c: &mut Command) {
        neutral_env(c, &self.home);
        c.envs(self.env.iter().cloned());
    }

    /// `pip --version`'s output.
    fn version(&self, how: &str) -> Result<String> {
        let mut c = Command::new(&self.py);
        c.args(["-m", "pip", "--version"]);
        self.neutral(&mut c);
        let v = run_cmd(&mut c, self.left().min(Duration::from_secs(30)))?;
        let pip_version = v.stdout.trim().to_string();
        if !v.success() {
            anyhow::bail!("pip --version failed after {}: {}", how, tail(&v.stderr, 3));
        }
        Ok(pip_version)
    }

    /// The pip install command for `case` into `target`.
    fn install_command(&self, case: PipCase, target: &Path) -> Result<Command> {
        let job = self.job;
        let port = job
            .ports
            .for_case(case)
            .context("index server not running")?;
        let mut argv: Vec<std::ffi::OsString> = vec![self.py.clone().into()];
        for a in [
            "-m",
            "pip",
            "install",
            "--isolated",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--no-input",
            "--retries",
            "0",
            "--timeout",
            "15",
            "--index-url",
        ] {
            argv.push(a.into());
        }
        argv.push(format!("https://localhost:{}/simple/", port).into());
        if case == PipCase::CertFlag {
            argv.push("--cert".into());
            argv.push(job.ca_pem.into());
        }
        argv.push("--target".into());
        argv.push(target.into());
        argv.push(PKG_NAME.into());
        let mut c = match case {
            PipCase::Layout(l) => {
                let refs: Vec<&std::ffi::OsStr> = argv.iter().map(|a| a.as_os_str()).collect();
                trust::layout_command(l, &refs, job.meta, job.layout_files, job.work, job.private)
                    .map_err(|e| anyhow::anyhow!("{} namespace: {}", l.id(), e))?
                    .0
            }
            _ => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        self.neutral(&mut c);
        if matches!(
            case,
            PipCase::CertFile | PipCase::WrongHost | PipCase::UntrustedCa
        ) {
            c.env("SSL_CERT_FILE", job.ca_pem);
        }
        Ok(c)
    }

    /// One pip install in a neutral environment; Ok((installed and importable, detail)).
    fn install(&self, case: PipCase, target: &str) -> Result<(bool, String)> {
        let target = self.job.work.join(target);
        let mut c = self.install_command(case, &target)?;
        let o = run_cmd(&mut c, self.left().min(Duration::from_secs(45)))?;
        let all = format!("{}\n{}", o.stdout, o.stderr);
        if o.timed_out {
            return Ok((false, format!("timed out: {}", tail(&all, 2))));
        }
        if !o.success() {
            return Ok((false, tail(&all, 3)));
        }
        // Installed: import it from the target dir.
        let mut c = Command::new(&self.py);
        c.arg("-c")
            .arg(IMPORT_CHECK_PY)
            .arg(&target)
            .arg(PKG_MODULE);
        self.neutral(&mut c);
        let imp = run_cmd(&mut c, self.left().min(Duration::from_secs(20)))?;
        if imp.stdout.trim() == PKG_VALUE {
            Ok((
                true,
                format!("installed and imported ({})", tail(&o.stdout, 1)),
            ))
        } else {
            Ok((
                false,
                format!("pip said ok but import failed: {}", tail(&imp.stderr, 2)),
            ))
        }
    }
}

/// The summary line's parts: which ways of giving trust worked and which did not.
#[derive(Default)]
struct Tally<'a> {
    works: Vec<String>,
    fails: Vec<String>,
    layouts_ok: Vec<&'a str>,
}

impl<'a> Tally<'a> {
    /// `case` (described as `what`; empty: not part of the summary) installed or not.
    fn record(&mut self, case: &'a PipCase, what: &str, ok: bool) {
        if what.is_empty() {
            return;
        }
        match (ok, case) {
            (true, PipCase::Layout(l)) => self.layouts_ok.push(l.id().trim_start_matches("trust-")),
            (true, _) => self.works.push(format!("{} works", what)),
            (false, PipCase::Layout(l)) => self.fails.push(format!("{} does not work", l.id())),
            (false, _) => self.fails.push(format!("{} does not work", what)),
        }
    }

    fn summary(mut self) -> String {
        if !self.layouts_ok.is_empty() {
            self.works.push(format!(
                "platform store works ({})",
                self.layouts_ok.join(", ")
            ));
        }
        self.works
            .into_iter()
            .chain(self.fails)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What an install's result means for the case: accepted, refused by TLS, or an error.
fn install_observed(ok: bool, detail: &str) -> Observed {
    if ok {
        Observed::Accept {
            version: None,
            cipher: None,
            alpn: None,
        }
    } else if tls_failure(detail) {
        Observed::Refuse {
            class: "pip".into(),
            message: detail.to_string(),
        }
    } else {
        Observed::Error {
            message: format!("pip failed, but not with a TLS error: {}", detail),
        }
    }
}

fn run_inner(job: &PipJob) -> Result<PipResult> {
    let deadline = Instant::now() + job.timeout;
    std::fs::create_dir_all(job.work)?;
    let home = job.work.join("home");
    let (py, env, how) =
        bootstrap(job.python, job.major, job.work, deadline).context("bootstrapping pip")?;
    let pip = Pip {
        job,
        py,
        env,
        home,
        deadline,
    };
    let short_version = pip
        .version(&how)?
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");

    let mut outcomes = HashMap::new();
    let mut tally = Tally::default();
    for (n, (id, case)) in job.cases.iter().enumerate() {
        let (trust, what) = match case {
            PipCase::CertFile => ("SSL_CERT_FILE", "SSL_CERT_FILE alone"),
            PipCase::CertFlag => ("--cert", "--cert"),
            PipCase::Layout(l) => (l.id(), "platform store"),
            PipCase::WrongHost => ("SSL_CERT_FILE; index certificate for other.test", ""),
            PipCase::UntrustedCa => ("SSL_CERT_FILE; index chain to an untrusted root", ""),
        };
        let entry = match pip.install(*case, &format!("target-{}", n)) {
            Err(e) => (
                Observed::Error {
                    message: format!("{:#}", e),
                },
                String::new(),
            ),
            Ok((ok, detail)) => {
                tally.record(case, what, ok);
                (
                    install_observed(ok, &detail),
                    format!("{}; {}; trust: {}; {}", how, short_version, trust, detail),
                )
            }
        };
        outcomes.insert(id.clone(), entry);
    }
    Ok(PipResult {
        outcomes,
        pip_version: short_version,
        summary: tally.summary(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_has_record_and_module() {
        let (name, bytes) = build_wheel().unwrap();
        assert_eq!(name, "tlsforge_probe_pkg-1.0-py2.py3-none-any.whl");
        let mut z = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let names: Vec<String> = (0..z.len())
            .map(|i| z.by_index(i).unwrap().name().unwrap().to_string())
            .collect();
        assert!(names.contains(&"tlsforge_probe_pkg/__init__.py".to_string()));
        assert!(names.contains(&"tlsforge_probe_pkg-1.0.dist-info/RECORD".to_string()));
        let mut rec = String::new();
        std::io::Read::read_to_string(
            &mut z
                .by_name("tlsforge_probe_pkg-1.0.dist-info/RECORD")
                .unwrap(),
            &mut rec,
        )
        .unwrap();
        assert!(rec.contains("tlsforge_probe_pkg/__init__.py,sha256="));
        assert_eq!(b64url_nopad(&[0xfb, 0xff]), "-_8");
    }
}
