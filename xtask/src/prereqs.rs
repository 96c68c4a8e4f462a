//! What a fresh machine lacks, installed by the project itself: the tools
//! the pipeline drives. On Debian-like hosts we install missing ones with
//! apt-get (we run as root on build machines); elsewhere we name them.

use anyhow::{bail, Result};
use std::process::Command;

/// (command on PATH or absolute file that must exist, Debian package that provides it)
const BUILD_TOOLS: &[(&str, &str)] = &[
    ("gcc", "gcc"),
    ("make", "make"),
    ("perl", "perl"),
    ("git", "git"),
    // configure reads the static deps through a pkg-config wrapper.
    ("pkg-config", "pkg-config"),
    // SQLite's canonical sources generate the amalgamation with tclsh.
    ("tclsh", "tcl"),
    // expat's Debian source is a git export; its configure is generated.
    ("autoreconf", "autoconf"),
    ("automake", "automake"),
    ("libtoolize", "libtool"),
    // libffi's configure.ac uses LT_SYS_SYMBOL_USCORE from ltdl.m4.
    ("/usr/share/aclocal/ltdl.m4", "libltdl-dev"),
    // The .rpm of each Linux artifact (rpm.rs).
    ("rpmbuild", "rpm"),
];

/// What the tests need besides the build tools: the conformance harness links
/// the system libssl (its servers speak legacy TLS, its PKI signs with MD5),
/// unshare makes the trust-store namespaces, and the reference python3 needs
/// venv (ensurepip) for its pip column.
pub const TEST_TOOLS: &[(&str, &str)] = &[
    ("/usr/include/openssl/ssl.h", "libssl-dev"),
    ("pkg-config", "pkg-config"),
    ("unshare", "util-linux"),
    ("import ensurepip", "python3-venv"),
    // The conformance report rendered and screenshotted (browser.rs).
    ("chromium", "chromium"),
];

/// `what` is an absolute path, a Python import run by the system python3, or a command.
fn have(what: &str) -> bool {
    if let Some(module) = what.strip_prefix("import ") {
        return Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .status()
            .is_ok_and(|s| s.success());
    }
    if what.starts_with('/') {
        return std::path::Path::new(what).exists();
    }
    Command::new("sh")
        .args(["-c", &format!("command -v {what} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

pub fn ensure(tools: &[(&str, &str)]) -> Result<()> {
    // (stages running side by side would otherwise race for dpkg's lock)
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let missing: Vec<&(&str, &str)> = tools.iter().filter(|(c, _)| !have(c)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let pkgs: Vec<&str> = missing.iter().map(|(_, p)| *p).collect();
    if have("apt-get") && is_root() {
        eprintln!("  installing missing tools: {}", pkgs.join(" "));
        let ok = Command::new("apt-get")
            .arg("update")
            .arg("-q")
            .status()?
            .success()
            && Command::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(&pkgs)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()?
                .success();
        if ok {
            return Ok(());
        }
    }
    bail!(
        "missing tools: {}; install them (Debian: apt-get install {})",
        missing
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
            .join(", "),
        pkgs.join(" ")
    )
}

pub fn ensure_build_tools() -> Result<()> {
    ensure(BUILD_TOOLS)
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Installs the wheels of a requirements file (pip, `--require-hashes`: a
/// wheel whose digest is not in the file is refused) into
/// `cache/tools/<name>-<key of the file>`, once; returns that directory.
/// `expect` names a file the wheel must have installed.
pub fn pinned_wheel(
    cache: &crate::util::Cache,
    name: &str,
    requirements: &std::path::Path,
    expect: &str,
) -> Result<std::path::PathBuf> {
    use crate::util::{commit_dir, is_complete, mark_complete, run_logged, KeyBuilder};
    use anyhow::Context;
    let text = std::fs::read(requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let tools = cache.dir("tools")?;
    let dir = tools.join(format!(
        "{name}-{}",
        KeyBuilder::new(name).add("requirements", &text).finish()
    ));
    let _lock = crate::util::lock_build(&dir)?;
    if is_complete(&dir) {
        return Ok(dir);
    }
    ensure(&[("import pip", "python3-pip")])?;
    let work = crate::cache::tempdir_in(&tools)?;
    let out = work.path().join("out");
    let mut pip = Command::new("python3");
    pip.args(["-m", "pip", "install", "--require-hashes", "--no-deps"])
        .args([
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(&out)
        .arg("-r")
        .arg(requirements);
    let log = cache.log_path(name)?;
    run_logged(pip, &format!("installing {name} (pinned digest)"), &log)?;
    if !out.join(expect).is_file() {
        bail!(
            "the {name} wheel installed no {expect}; see {}",
            log.display()
        );
    }
    mark_complete(&out)?;
    commit_dir(&out, &dir)?;
    Ok(dir)
}
