//! A per-run view of the cached root: in a private mount namespace, an
//! overlay whose lower layer is the root (never written: every write of the
//! run, anywhere, lands in the upper layer, a temp dir removed afterwards),
//! with /proc, /dev and the scratch directory (as /tmp) mounted in; then
//! `chroot` with a neutral environment. The network namespace is shared, so
//! servers on the host's 127.0.0.1 are reachable from inside.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};
use tlsforge_conformance::proc::TempDir;

/// Where Debian's ca-certificates puts the bundle, and where our
/// interpreters' ssl module looks when no cafile is given.
pub const PLATFORM_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

pub struct View {
    root: PathBuf,
    scratch: PathBuf,
    layers: TempDir,
}

fn q(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

impl View {
    /// The upper layer starts with the platform bundle holding only
    /// `ca_pem`: minbase has no ca-certificates (not even /etc/ssl), and
    /// the interpreter must trust exactly what this platform trusts.
    pub fn new(root: &Path, scratch: &Path, ca_pem: &[u8]) -> Result<View> {
        for p in [root, scratch] {
            // overlayfs options are split on ',' and ':'.
            if p.display().to_string().contains([',', ':', '\'']) {
                bail!(
                    "{} has a character overlayfs options cannot carry",
                    p.display()
                );
            }
        }
        let layers = TempDir::new("tlsforge-oldroot-view")?;
        for d in ["upper", "work", "merged"] {
            std::fs::create_dir_all(layers.path().join(d))?;
        }
        let bundle = layers.path().join("upper").join(PLATFORM_BUNDLE);
        std::fs::create_dir_all(bundle.parent().unwrap())?;
        std::fs::write(&bundle, ca_pem)?;
        // An installed Debian has /etc/hosts (the installer writes it,
        // debootstrap does not): without it "localhost" would go to DNS.
        if !root.join("etc/hosts").exists() {
            std::fs::write(layers.path().join("upper/etc/hosts"), HOSTS)?;
        }
        Ok(View {
            root: root.to_path_buf(),
            scratch: scratch.to_path_buf(),
            layers,
        })
    }

    /// The namespace set-up, run by `sh -c` (its "$@" is the command).
    fn script(&self, home: &str) -> String {
        let l = self.layers.path();
        let m = l.join("merged");
        format!(
            "set -e\n\
             mount -t overlay overlay -o lowerdir={root},upperdir={u},workdir={w} {m}\n\
             mount -t proc proc {m}/proc\n\
             mount --rbind /dev {m}/dev\n\
             mount --bind {scratch} {m}/tmp\n\
             exec chroot {m} /usr/bin/env -i PATH=/usr/bin:/bin HOME={home} \"$@\"\n",
            root = q(&self.root),
            u = q(&l.join("upper")),
            w = q(&l.join("work")),
            m = q(&m),
            scratch = q(&self.scratch),
            home = q(Path::new(home)),
        )
    }

    /// `argv` (paths as the root sees them) run inside the view.
    pub fn command(&self, argv: &[String], home: &str) -> Command {
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(self.script(home))
            .arg("sh")
            .args(argv)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        c
    }
}
