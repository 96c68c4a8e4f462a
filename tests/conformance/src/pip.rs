//! Case 53: pip (bootstrapped with ensurepip) installs a package from a local HTTPS index.
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

use crate::proc::{probe_env, run_cmd};
use crate::report::Observed;
use crate::server::Site;

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

pub struct PipResult {
    pub good: (Observed, String),
    pub wrong: (Observed, String),
    /// What happened when only SSL_CERT_FILE (no --cert) pointed at the test CA.
    pub cert_file_note: String,
    pub pip_version: String,
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
    let mut env = vec![("HOME".to_string(), home.display().to_string())];
    let left = || deadline.saturating_duration_since(Instant::now());
    if major >= 3 {
        let venv = work.join("venv");
        let mut c = Command::new(python);
        c.args(["-m", "venv"]).arg(&venv);
        probe_env(&mut c);
        c.envs(env.iter().cloned());
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
    probe_env(&mut c);
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
    pub good_port: Option<u16>,
    pub wrong_port: Option<u16>,
    pub timeout: Duration,
}

pub fn run(job: &PipJob) -> PipResult {
    match run_inner(job) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("{:#}", e);
            PipResult {
                good: (
                    Observed::Error {
                        message: msg.clone(),
                    },
                    String::new(),
                ),
                wrong: (
                    Observed::Error {
                        message: msg.clone(),
                    },
                    String::new(),
                ),
                cert_file_note: "not run".into(),
                pip_version: "?".into(),
            }
        }
    }
}

fn run_inner(job: &PipJob) -> Result<PipResult> {
    let deadline = Instant::now() + job.timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    std::fs::create_dir_all(job.work)?;
    let (py, env, how) =
        bootstrap(job.python, job.major, job.work, deadline).context("bootstrapping pip")?;

    let mut c = Command::new(&py);
    c.args(["-m", "pip", "--version"]);
    probe_env(&mut c);
    c.envs(env.iter().cloned());
    let v = run_cmd(&mut c, left().min(Duration::from_secs(30)))?;
    let pip_version = v.stdout.trim().to_string();
    if !v.success() {
        anyhow::bail!("pip --version failed after {}: {}", how, tail(&v.stderr, 3));
    }

    let install = |port: u16, target: &str, use_cert_flag: bool| -> Result<(bool, String)> {
        let mut c = Command::new(&py);
        c.args([
            "-m",
            "pip",
            "install",
            "--isolated",
            "--no-cache-dir",
            "--disable-pip-version-check",
        ]);
        c.args(["--no-input", "--retries", "0", "--timeout", "15"]);
        c.arg("--index-url")
            .arg(format!("https://localhost:{}/simple/", port));
        if use_cert_flag {
            c.arg("--cert").arg(job.ca_pem);
        }
        c.arg("--target").arg(job.work.join(target)).arg(PKG_NAME);
        probe_env(&mut c);
        c.envs(env.iter().cloned());
        if !use_cert_flag {
            c.env("SSL_CERT_FILE", job.ca_pem);
        }
        let o = run_cmd(&mut c, left().min(Duration::from_secs(45)))?;
        let all = format!("{}\n{}", o.stdout, o.stderr);
        if o.timed_out {
            return Ok((false, format!("timed out: {}", tail(&all, 2))));
        }
        if !o.success() {
            return Ok((false, tail(&all, 3)));
        }
        // Installed: import it from the target dir.
        let mut c = Command::new(&py);
        c.arg("-c").arg(format!(
            "import sys; sys.path.insert(0, {:?}); import {} as m; print(m.VALUE)",
            job.work.join(target).display().to_string(),
            PKG_MODULE
        ));
        probe_env(&mut c);
        c.envs(env.iter().cloned());
        let imp = run_cmd(&mut c, left().min(Duration::from_secs(20)))?;
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
    };

    let good = match job.good_port {
        None => (
            Observed::NotServable {
                reason: "index server not running".into(),
            },
            String::new(),
        ),
        Some(p) => {
            let (ok, detail) = install(p, "target-good", true)?;
            let obs = if ok {
                Observed::Accept {
                    version: None,
                    cipher: None,
                    alpn: None,
                }
            } else if tls_failure(&detail) {
                Observed::Refuse {
                    class: "pip".into(),
                    message: detail.clone(),
                }
            } else {
                Observed::Error {
                    message: detail.clone(),
                }
            };
            (
                obs,
                format!("{}; pip {}; --cert CA; {}", how, pip_version, detail),
            )
        }
    };
    let wrong = match job.wrong_port {
        None => (
            Observed::NotServable {
                reason: "index server not running".into(),
            },
            String::new(),
        ),
        Some(p) => {
            let (ok, detail) = install(p, "target-wrong", true)?;
            let obs = if ok {
                Observed::Accept {
                    version: None,
                    cipher: None,
                    alpn: None,
                }
            } else if tls_failure(&detail) {
                Observed::Refuse {
                    class: "pip".into(),
                    message: detail.clone(),
                }
            } else {
                Observed::Error {
                    message: format!("pip failed, but not with a TLS error: {}", detail),
                }
            };
            (obs, format!("index certificate for other.test; {}", detail))
        }
    };
    let cert_file_note = match job.good_port {
        Some(p) if left() > Duration::from_secs(5) => match install(p, "target-env", false) {
            Ok((true, _)) => "SSL_CERT_FILE alone works".to_string(),
            Ok((false, d)) => format!(
                "SSL_CERT_FILE alone does not work ({})",
                d.chars().take(160).collect::<String>()
            ),
            Err(e) => format!("SSL_CERT_FILE run failed: {:#}", e),
        },
        _ => "not run (time)".into(),
    };
    Ok(PipResult {
        good,
        wrong,
        cert_file_note,
        pip_version,
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
