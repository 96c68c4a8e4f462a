//! Child processes with a deadline, in their own process group, killed (group and all) on
//! timeout or drop; a counting semaphore; a temp dir removed on drop.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub struct Output {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl Output {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.map(|s| s.success()).unwrap_or(false)
    }
}

/// Kills the child's whole process group when dropped.
struct GroupGuard {
    child: Child,
    pgid: i32,
}

impl GroupGuard {
    fn kill_group(&mut self) {
        unsafe {
            libc::kill(-self.pgid, libc::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill_group();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `cmd` (stdin closed, output captured) for at most `timeout`.
pub fn run_cmd(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let start = Instant::now();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawning {:?}", cmd.get_program()))?;
    let pgid = child.id() as i32;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut guard = GroupGuard { child, pgid };
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = guard.child.try_wait()? {
            break Some(s);
        }
        if start.elapsed() >= timeout {
            timed_out = true;
            guard.kill_group();
            break guard.child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Whatever the child left behind in its group goes too (and unblocks the pipe readers).
    guard.kill_group();
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    drop(guard);
    Ok(Output {
        status,
        stdout,
        stderr,
        timed_out,
        elapsed: start.elapsed(),
    })
}

/// The environment every interpreter under test gets: the caller's, minus anything that would
/// change which trust store or which modules are used.
pub fn probe_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if k.starts_with("PIP_") || k.starts_with("PYTHON") {
            cmd.env_remove(&k);
        }
    }
    for k in [
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "VIRTUAL_ENV",
        "__PYVENV_LAUNCHER__",
    ] {
        cmd.env_remove(k);
    }
    cmd.env("PYTHONIOENCODING", "utf-8");
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    cmd.env("PIP_CONFIG_FILE", "/dev/null");
}

/// `env -i` plus only what a shell needs: what a user's pip sees on a clean machine. Trust can
/// then come only from the platform store or what the caller adds (SSL_CERT_FILE, --cert).
pub fn neutral_env(cmd: &mut Command, home: &std::path::Path) {
    cmd.env_clear();
    cmd.env(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    cmd.env("HOME", home);
    cmd.env("PIP_CONFIG_FILE", "/dev/null");
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
}

pub struct Semaphore {
    n: Mutex<usize>,
    cv: Condvar,
}

pub struct Permit<'a>(&'a Semaphore);

impl Semaphore {
    pub fn new(n: usize) -> Semaphore {
        Semaphore {
            n: Mutex::new(n.max(1)),
            cv: Condvar::new(),
        }
    }
    pub fn acquire(&self) -> Permit<'_> {
        let mut n = self.n.lock().unwrap();
        while *n == 0 {
            n = self.cv.wait(n).unwrap();
        }
        *n -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.n.lock().unwrap() += 1;
        self.0.cv.notify_one();
    }
}

pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos();
        let p = std::env::temp_dir().join(format!("{}-{}-{}", prefix, std::process::id(), nanos));
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("TLSFORGE_CONFORMANCE_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_kills_the_group() {
        let mut c = Command::new("sh");
        c.arg("-c").arg("sleep 30 & sleep 30");
        let o = run_cmd(&mut c, Duration::from_millis(300)).unwrap();
        assert!(o.timed_out);
        assert!(o.elapsed < Duration::from_secs(5));
    }

    #[test]
    fn captures_output() {
        let mut c = Command::new("sh");
        c.arg("-c").arg("echo out; echo err >&2; exit 3");
        let o = run_cmd(&mut c, Duration::from_secs(10)).unwrap();
        assert_eq!(o.stdout.trim(), "out");
        assert_eq!(o.stderr.trim(), "err");
        assert_eq!(o.status.unwrap().code(), Some(3));
        assert!(!o.success());
    }
}
