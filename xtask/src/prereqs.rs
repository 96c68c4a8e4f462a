//! What a fresh machine lacks, installed by the project itself: the tools
//! the pipeline drives. On Debian-like hosts we install missing ones with
//! apt-get (we run as root on build machines); elsewhere we name them.

use anyhow::{bail, Result};
use std::process::Command;

/// (command that must exist, Debian package that provides it)
const BUILD_TOOLS: &[(&str, &str)] = &[("gcc", "gcc"), ("make", "make"), ("perl", "perl"), ("git", "git")];

/// What the tests need besides the build tools: the OpenSSL CLI serves the
/// legacy-protocol scenarios, unshare makes the trust-store namespaces.
pub const TEST_TOOLS: &[(&str, &str)] = &[("openssl", "openssl"), ("unshare", "util-linux")];

fn have(cmd: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {cmd} >/dev/null")]).status().is_ok_and(|s| s.success())
}

pub fn ensure(tools: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&(&str, &str)> = tools.iter().filter(|(c, _)| !have(c)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let pkgs: Vec<&str> = missing.iter().map(|(_, p)| *p).collect();
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    if have("apt-get") && is_root {
        eprintln!("  installing missing tools: {}", pkgs.join(" "));
        let ok = Command::new("apt-get").arg("update").arg("-q").status()?.success()
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
        missing.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", "),
        pkgs.join(" ")
    )
}

pub fn ensure_build_tools() -> Result<()> {
    ensure(BUILD_TOOLS)
}
