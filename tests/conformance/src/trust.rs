//! Case 51: the interpreter's *default* trust store, with no cafile and no environment override.
//!
//! The probe runs in a private mount namespace (`unshare -m`, propagation private) in which every
//! system trust location the interpreter could read — its own `ssl.get_default_verify_paths()`
//! plus the usual Linux bundle paths and directories — is bind-mounted over with material that
//! holds only the test root. Nothing outside the namespace changes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// Linux CA bundle files and directories (Go's probe list).
const BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];
const DIRS: &[&str] = &["/etc/ssl/certs", "/etc/pki/tls/certs"];

/// How to enter a private mount namespace here, or why we cannot.
fn unshare_prefix() -> Result<Vec<String>, String> {
    static PREFIX: OnceLock<Result<Vec<String>, String>> = OnceLock::new();
    PREFIX
        .get_or_init(|| {
            let mut last = String::from("unshare not found");
            for args in [vec!["-m"], vec!["-m", "-r"]] {
                let r = Command::new("unshare").args(&args).arg("true").output();
                match r {
                    Ok(o) if o.status.success() => {
                        return Ok(std::iter::once("unshare".to_string())
                            .chain(args.iter().map(|s| s.to_string()))
                            .collect())
                    }
                    Ok(o) => last = String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    Err(e) => last = e.to_string(),
                }
            }
            Err(format!("no private mount namespace (unshare -m: {})", last))
        })
        .clone()
}

fn q(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

/// The command that runs `probe.py cases.json` with the fake system store, or why it can't.
pub fn command(
    python: &Path,
    probe: &Path,
    cases: &Path,
    meta: &Value,
    bundle: &Path,
    hashed_dir: &Path,
    work: &Path,
) -> Result<(Command, String), String> {
    let prefix = unshare_prefix()?;
    let vp = &meta["verify_paths"];
    let s = |k: &str| vp[k].as_str().map(PathBuf::from);
    let mut files: Vec<PathBuf> = BUNDLES.iter().map(PathBuf::from).collect();
    let mut dirs: Vec<PathBuf> = DIRS.iter().map(PathBuf::from).collect();
    files.extend([s("openssl_cafile"), s("cafile")].into_iter().flatten());
    dirs.extend([s("openssl_capath"), s("capath")].into_iter().flatten());

    let mut script = String::from("set -e\n");
    let mut notes: Vec<String> = Vec::new();
    // The interpreter's own default cafile may not exist at all (e.g. OPENSSLDIR=/etc/ssl on
    // Debian, which has no /etc/ssl/cert.pem): overlay its directory with a copy that has it.
    if let Some(cafile) = s("openssl_cafile") {
        if std::fs::symlink_metadata(&cafile).is_err() {
            if let Some(parent) = cafile.parent().filter(|p| p.is_dir()) {
                let ovl = work.join("overlay");
                let orig = work.join("orig");
                std::fs::create_dir_all(&ovl).map_err(|e| e.to_string())?;
                std::fs::create_dir_all(&orig).map_err(|e| e.to_string())?;
                let mut subdirs = Vec::new();
                for e in std::fs::read_dir(parent)
                    .map_err(|e| e.to_string())?
                    .flatten()
                {
                    let ft = e.file_type().map_err(|e| e.to_string())?;
                    let dst = ovl.join(e.file_name());
                    if ft.is_symlink() {
                        let t = std::fs::read_link(e.path()).map_err(|e| e.to_string())?;
                        std::os::unix::fs::symlink(t, &dst).map_err(|e| e.to_string())?;
                    } else if ft.is_dir() {
                        std::fs::create_dir_all(&dst).map_err(|e| e.to_string())?;
                        subdirs.push(e.file_name());
                    } else {
                        let _ = std::fs::copy(e.path(), &dst);
                    }
                }
                std::fs::copy(bundle, ovl.join(cafile.file_name().unwrap()))
                    .map_err(|e| e.to_string())?;
                script.push_str(&format!("mount --bind {} {}\n", q(parent), q(&orig)));
                script.push_str(&format!("mount --bind {} {}\n", q(&ovl), q(parent)));
                for sd in subdirs {
                    script.push_str(&format!(
                        "mount --bind {} {}\n",
                        q(&orig.join(&sd)),
                        q(&parent.join(&sd))
                    ));
                }
                notes.push(format!(
                    "{} did not exist: overlaid {}",
                    cafile.display(),
                    parent.display()
                ));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for d in dirs {
        if let Ok(c) = std::fs::canonicalize(&d) {
            if c.is_dir() && seen.insert(c.clone()) {
                script.push_str(&format!("mount --bind {} {}\n", q(hashed_dir), q(&c)));
            }
        }
    }
    for f in files {
        // Checked at run time: after the directory mounts, a path may now resolve into ours.
        script.push_str(&format!(
            "if [ -f {0} ]; then mount --bind {1} {0} || echo 'bind mount over {0} failed' >&2; fi\n",
            q(&f),
            q(bundle)
        ));
    }
    script.push_str("exec \"$0\" \"$1\" \"$2\" 8\n");
    let mut cmd = Command::new(&prefix[0]);
    cmd.args(&prefix[1..])
        .arg("sh")
        .arg("-c")
        .arg(script)
        .arg(python)
        .arg(probe)
        .arg(cases);
    Ok((cmd, notes.join("; ")))
}

// ---- trust-* cases: one distribution's trust layout each -----------------------------------
//
// Each runs the probe in its own private mount namespace where an overlay over /etc (upper on a
// tmpfs: nothing on the host changes) supplies the directories this host lacks (/etc/pki,
// /etc/crypto-policies) and, for macOS, replaces /etc/ssl by a symlink; tmpfs is then mounted over
// /etc/ssl, /etc/pki and /private, so the only CA bundle visible is the test root at that
// distribution's path. The interpreter's own compiled-in locations (from its meta) that lie
// outside these trees are masked too (a tmpfs over a directory, /dev/null over a file).

/// A distribution's trust-store layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layout {
    Debian,
    Rhel,
    Suse,
    Alpine,
    Macos,
    MacosPrivate,
    FedoraCnf,
    Empty,
}

/// Trees that are replaced wholesale in every layout namespace.
const LAYOUT_TREES: &[&str] = &["/etc/ssl", "/etc/pki", "/private", "/etc/crypto-policies"];

impl Layout {
    pub const ALL: &'static [Layout] = &[
        Layout::Debian,
        Layout::Rhel,
        Layout::Suse,
        Layout::Alpine,
        Layout::Macos,
        Layout::MacosPrivate,
        Layout::FedoraCnf,
        Layout::Empty,
    ];

    pub fn id(&self) -> &'static str {
        match self {
            Layout::Debian => "trust-debian",
            Layout::Rhel => "trust-rhel",
            Layout::Suse => "trust-suse",
            Layout::Alpine => "trust-alpine",
            Layout::Macos => "trust-macos",
            Layout::MacosPrivate => "trust-macos-private",
            Layout::FedoraCnf => "trust-fedora-cnf",
            Layout::Empty => "trust-empty",
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            Layout::Debian => "default trust, Debian/Ubuntu: only /etc/ssl/certs/ca-certificates.crt (no hashed dir)",
            Layout::Rhel => "default trust, RHEL/Fedora: /etc/pki/tls/certs/ca-bundle.crt, /etc/ssl/certs -> it",
            Layout::Suse => "default trust, SUSE: only /etc/ssl/ca-bundle.pem",
            Layout::Alpine => "default trust, Alpine: only /etc/ssl/cert.pem",
            Layout::Macos => "default trust, macOS: /private/etc/ssl/cert.pem, /etc/ssl -> /private/etc/ssl",
            Layout::MacosPrivate => "default trust: only /private/etc/ssl/cert.pem (/etc/ssl empty)",
            Layout::FedoraCnf => "default trust, Fedora layout + crypto-policies openssl.cnf (keys other OpenSSLs reject)",
            Layout::Empty => "control: no CA bundle anywhere, default context must refuse",
        }
    }

    /// Accept, except for the control.
    pub fn accepts(&self) -> bool {
        !matches!(self, Layout::Empty)
    }

    /// Needs a /private directory on the host to mount over.
    pub fn needs_private(&self) -> bool {
        matches!(self, Layout::Macos | Layout::MacosPrivate)
    }

    /// (regular files holding the test root, symlinks as (link, target), openssl.cnf copies).
    fn contents(
        &self,
    ) -> (
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
        &'static [&'static str],
    ) {
        const FEDORA_LINKS: &[(&str, &str)] = &[("/etc/ssl/certs", "/etc/pki/tls/certs")];
        match self {
            Layout::Debian => (&["/etc/ssl/certs/ca-certificates.crt"], &[], &[]),
            Layout::Rhel => (&["/etc/pki/tls/certs/ca-bundle.crt"], FEDORA_LINKS, &[]),
            Layout::Suse => (&["/etc/ssl/ca-bundle.pem"], &[], &[]),
            Layout::Alpine => (&["/etc/ssl/cert.pem"], &[], &[]),
            // /etc/ssl itself is the symlink: made in the overlay's upper layer, see layout_command.
            Layout::Macos | Layout::MacosPrivate => (&["/private/etc/ssl/cert.pem"], &[], &[]),
            Layout::FedoraCnf => (
                &["/etc/pki/tls/certs/ca-bundle.crt"],
                FEDORA_LINKS,
                &["/etc/pki/tls/openssl.cnf", "/etc/ssl/openssl.cnf"],
            ),
            Layout::Empty => (&[], &[], &[]),
        }
    }
}

/// Fedora's openssl.cnf skeleton (crypto-policies) as on Fedora 39+.
pub const FEDORA_OPENSSL_CNF: &str = "\
# Fedora-style openssl.cnf (tlsforge conformance): the system-wide crypto policy
openssl_conf = default_modules

[default_modules]
ssl_conf = ssl_module

[ssl_module]
system_default = crypto_policy

[crypto_policy]
.include = /etc/crypto-policies/back-ends/opensslcnf.config
";

/// Fedora's DEFAULT policy back-end for OpenSSL: signature names OpenSSL 3.0 does not know
/// (ML-DSA), and Red Hat-only keys (RHNoEnforceEMSinFIPS, rh-allow-sha1-signatures).
pub const FEDORA_OPENSSLCNF_CONFIG: &str = "\
CipherString = @SECLEVEL=2:kEECDH:kRSA:kEDH:kPSK:kDHEPSK:kECDHEPSK:kRSAPSK:-aDSS:-3DES:!DES:!RC4:!RC2:!IDEA:-SEED:!eNULL:!aNULL:!MD5:-SHA384:-CAMELLIA:-ARIA:-AESCCM8
Ciphersuites = TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256
TLS.MinProtocol = TLSv1.2
TLS.MaxProtocol = TLSv1.3
DTLS.MinProtocol = DTLSv1.2
DTLS.MaxProtocol = DTLSv1.2
SignatureAlgorithms = mldsa44:mldsa65:mldsa87:ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512:ed25519:ed448:rsa_pss_pss_sha256:rsa_pss_pss_sha384:rsa_pss_pss_sha512:rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:RSA+SHA256:RSA+SHA384:RSA+SHA512:ECDSA+SHA224:RSA+SHA224
Groups = X25519MLKEM768:X25519:secp256r1:X448:secp521r1:secp384r1:ffdhe2048:ffdhe3072:ffdhe4096:ffdhe6144:ffdhe8192
Options = RHNoEnforceEMSinFIPS

[rh-allow-sha1-signatures]
rh-allow-sha1-signatures = no
";

/// Files the layouts share, written once per run.
#[derive(Debug, Clone)]
pub struct LayoutFiles {
    pub bundle: PathBuf,
    pub fedora_cnf: PathBuf,
    pub fedora_policy: PathBuf,
}

pub fn write_layout_files(dir: &Path, bundle: &Path) -> std::io::Result<LayoutFiles> {
    let fedora_cnf = dir.join("fedora-openssl.cnf");
    let fedora_policy = dir.join("fedora-opensslcnf.config");
    std::fs::write(&fedora_cnf, FEDORA_OPENSSL_CNF)?;
    std::fs::write(&fedora_policy, FEDORA_OPENSSLCNF_CONFIG)?;
    Ok(LayoutFiles {
        bundle: bundle.to_path_buf(),
        fedora_cnf,
        fedora_policy,
    })
}

fn under_layout_trees(p: &Path) -> bool {
    LAYOUT_TREES.iter().any(|t| p.starts_with(t))
}

/// The interpreter's compiled-in/default trust locations that the layout trees don't cover
/// (resolved on the host): (path, is_dir).
fn outside_locations(meta: &Value) -> Vec<(PathBuf, bool)> {
    let vp = &meta["verify_paths"];
    let mut out: Vec<(PathBuf, bool)> = Vec::new();
    for k in ["openssl_cafile", "cafile", "openssl_capath", "capath"] {
        let Some(p) = vp[k].as_str() else { continue };
        let Ok(c) = std::fs::canonicalize(p) else {
            continue;
        };
        if under_layout_trees(&c) || out.iter().any(|(x, _)| *x == c) {
            continue;
        }
        let is_dir = c.is_dir();
        out.push((c, is_dir));
    }
    out
}

/// Can this machine make the layout namespaces (private mount namespace, tmpfs, overlay on /etc)?
fn layout_capability() -> Result<Vec<String>, String> {
    static CAP: OnceLock<Result<Vec<String>, String>> = OnceLock::new();
    CAP.get_or_init(|| {
        let prefix = unshare_prefix()?;
        let dir = std::env::temp_dir().join(format!("tlsforge-conformance-nscheck-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let script = format!(
            "set -e\nmount --make-rprivate /\nmount -t tmpfs -o mode=755 tmpfs {d}\nmkdir {d}/u {d}/w\n\
             mount -t overlay overlay -o lowerdir=/etc,upperdir={d}/u,workdir={d}/w /etc\nmount -t tmpfs tmpfs /etc/ssl\n",
            d = q(&dir)
        );
        let r = Command::new(&prefix[0]).args(&prefix[1..]).arg("sh").arg("-c").arg(script).output();
        let _ = std::fs::remove_dir(&dir);
        match r {
            Ok(o) if o.status.success() => Ok(prefix),
            Ok(o) => Err(format!("cannot overlay /etc in a private mount namespace: {}", String::from_utf8_lossy(&o.stderr).trim())),
            Err(e) => Err(format!("cannot overlay /etc in a private mount namespace: {}", e)),
        }
    })
    .clone()
}

/// The command that runs `argv` (e.g. `python probe.py cases.json 1`, or pip) inside
/// `layout`'s namespace. `private`: Err(reason) if /private could not be made on the host.
pub fn layout_command(
    layout: Layout,
    argv: &[&std::ffi::OsStr],
    meta: &Value,
    files: &LayoutFiles,
    work: &Path,
    private: &Result<(), String>,
) -> Result<(Command, String), String> {
    let prefix = layout_capability()?;
    if layout.needs_private() {
        if let Err(e) = private {
            return Err(format!("/private cannot be mounted over: {}", e));
        }
    }
    let w = work.join(format!("ns-{}", layout.id()));
    std::fs::create_dir_all(&w).map_err(|e| format!("{}: {}", w.display(), e))?;
    let (s, notes) = layout_script(layout, meta, files, &w);
    let mut cmd = Command::new(&prefix[0]);
    cmd.args(&prefix[1..])
        .arg("sh")
        .arg("-c")
        .arg(s)
        .arg("sh")
        .args(argv);
    Ok((cmd, notes))
}

/// The namespace set-up for `layout` (run by `sh -c` as root in a new mount namespace; ends by
/// exec'ing its arguments) and notes on what else was masked.
/// `w` is an empty scratch directory for the overlay's upper layer.
fn layout_script(layout: Layout, meta: &Value, files: &LayoutFiles, w: &Path) -> (String, String) {
    let w = w.to_path_buf();
    let mut s = String::from("set -e\nmount --make-rprivate /\n");
    // The overlay's upper layer, on a tmpfs that vanishes with the namespace.
    s.push_str(&format!(
        "mount -t tmpfs -o mode=755 tmpfs {w}\nmkdir -p {w}/u/pki {w}/w\n",
        w = q(&w)
    ));
    if layout == Layout::FedoraCnf {
        s.push_str(&format!(
            "mkdir -p {w}/u/crypto-policies/back-ends\ncp {p} {w}/u/crypto-policies/back-ends/opensslcnf.config\n",
            w = q(&w),
            p = q(&files.fedora_policy)
        ));
    }
    if layout == Layout::Macos {
        // A non-directory in the upper layer hides the lower /etc/ssl directory.
        s.push_str(&format!("ln -s /private/etc/ssl {}/u/ssl\n", q(&w)));
    }
    s.push_str(&format!(
        "mount -t overlay overlay -o lowerdir=/etc,upperdir={w}/u,workdir={w}/w /etc\n",
        w = q(&w)
    ));
    if layout != Layout::Macos {
        s.push_str("mount -t tmpfs -o mode=755 tmpfs /etc/ssl\n");
    }
    s.push_str("mount -t tmpfs -o mode=755 tmpfs /etc/pki\n");
    s.push_str("if [ -d /private ]; then mount -t tmpfs -o mode=755 tmpfs /private; fi\n");
    let mut notes = Vec::new();
    for (p, is_dir) in outside_locations(meta) {
        if is_dir {
            s.push_str(&format!("mount -t tmpfs -o mode=755 tmpfs {}\n", q(&p)));
        } else {
            s.push_str(&format!("mount --bind /dev/null {}\n", q(&p)));
        }
        notes.push(format!("masked {}", p.display()));
    }
    let (bundles, links, cnfs) = layout.contents();
    let mkparent = |s: &mut String, p: &str| {
        if let Some(d) = Path::new(p).parent() {
            s.push_str(&format!("mkdir -p {}\n", q(d)));
        }
    };
    for (link, target) in links {
        mkparent(&mut s, target);
        s.push_str(&format!("mkdir -p {}\n", q(Path::new(target))));
        mkparent(&mut s, link);
        s.push_str(&format!(
            "ln -s {} {}\n",
            q(Path::new(target)),
            q(Path::new(link))
        ));
    }
    for b in bundles {
        mkparent(&mut s, b);
        s.push_str(&format!("cp {} {}\n", q(&files.bundle), q(Path::new(b))));
    }
    for c in cnfs {
        mkparent(&mut s, c);
        s.push_str(&format!(
            "cp {} {}\n",
            q(&files.fedora_cnf),
            q(Path::new(c))
        ));
    }
    s.push_str("exec \"$@\"\n");
    (s, notes.join("; "))
}

// ---- /private on the host ---------------------------------------------------------------------
//
// Linux has no /private; a mount needs a mount point. It is created (empty) for the duration of
// the run and removed afterwards if this suite created it. Concurrent runs (other processes, other
// threads) share it: each holds a shared flock on LOCK for its run; whoever can take it exclusively
// when done is the last user and removes /private if MARKER says the suite created it. A crashed
// run leaves the marker, so the next run cleans up.

const PRIVATE: &str = "/private";
const PRIVATE_LOCK: &str = "/tmp/.tlsforge-conformance-private.lock";
const PRIVATE_MARKER: &str = "/tmp/.tlsforge-conformance-private.created";

pub struct PrivateDir {
    lock: std::fs::File,
}

fn flock(f: &std::fs::File, op: i32) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    loop {
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

impl PrivateDir {
    /// Make sure /private exists until the returned guard is dropped.
    pub fn acquire() -> Result<PrivateDir, String> {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            // (a lock file: its content is never read or written)
            .truncate(false)
            .read(true)
            .write(true)
            .open(PRIVATE_LOCK)
            .map_err(|e| format!("{}: {}", PRIVATE_LOCK, e))?;
        flock(&lock, libc::LOCK_EX).map_err(|e| format!("flock {}: {}", PRIVATE_LOCK, e))?;
        if std::fs::symlink_metadata(PRIVATE).is_err() {
            std::fs::create_dir(PRIVATE).map_err(|e| format!("mkdir {}: {}", PRIVATE, e))?;
            std::fs::write(
                PRIVATE_MARKER,
                b"created by tlsforge-conformance; removed when the last run ends\n",
            )
            .map_err(|e| format!("{}: {}", PRIVATE_MARKER, e))?;
        } else if !Path::new(PRIVATE).is_dir() {
            return Err(format!("{} exists and is not a directory", PRIVATE));
        }
        flock(&lock, libc::LOCK_SH).map_err(|e| format!("flock {}: {}", PRIVATE_LOCK, e))?;
        Ok(PrivateDir { lock })
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        // Last user? (Other holders keep a shared lock; the last of them to try gets it.)
        if flock(&self.lock, libc::LOCK_EX | libc::LOCK_NB).is_ok()
            && Path::new(PRIVATE_MARKER).exists()
        {
            // Only an empty directory is removed; what someone put there since stays.
            if std::fs::remove_dir(PRIVATE).is_ok() || std::fs::symlink_metadata(PRIVATE).is_err() {
                let _ = std::fs::remove_file(PRIVATE_MARKER);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(l: Layout, meta: &Value) -> String {
        let files = LayoutFiles {
            bundle: "/T/b.pem".into(),
            fedora_cnf: "/T/f.cnf".into(),
            fedora_policy: "/T/p.config".into(),
        };
        layout_script(l, meta, &files, Path::new("/W")).0
    }

    #[test]
    fn layout_scripts_place_only_the_distribution_bundle() {
        let meta = serde_json::json!({"verify_paths": {"openssl_cafile": "/etc/ssl/cert.pem", "openssl_capath": "/etc/ssl/certs"}});
        let mut ids: Vec<&str> = Layout::ALL.iter().map(|l| l.id()).collect();
        ids.dedup();
        assert_eq!(ids.len(), Layout::ALL.len());
        for l in Layout::ALL {
            let s = script(*l, &meta);
            // Every layout hides the real trees.
            assert!(s.contains("mount --make-rprivate /\n"), "{}", s);
            assert!(
                s.contains("mount -t tmpfs -o mode=755 tmpfs /etc/pki\n"),
                "{}",
                s
            );
            assert!(
                s.contains("if [ -d /private ]; then mount -t tmpfs"),
                "{}",
                s
            );
            assert_eq!(
                s.contains("mount -t tmpfs -o mode=755 tmpfs /etc/ssl\n"),
                *l != Layout::Macos,
                "{}",
                s
            );
            let copies: Vec<&str> = s
                .lines()
                .filter(|x| x.starts_with("cp '/T/b.pem' "))
                .collect();
            let want: &[&str] = match l {
                Layout::Debian => &["cp '/T/b.pem' '/etc/ssl/certs/ca-certificates.crt'"],
                Layout::Rhel | Layout::FedoraCnf => {
                    &["cp '/T/b.pem' '/etc/pki/tls/certs/ca-bundle.crt'"]
                }
                Layout::Suse => &["cp '/T/b.pem' '/etc/ssl/ca-bundle.pem'"],
                Layout::Alpine => &["cp '/T/b.pem' '/etc/ssl/cert.pem'"],
                Layout::Macos | Layout::MacosPrivate => {
                    &["cp '/T/b.pem' '/private/etc/ssl/cert.pem'"]
                }
                Layout::Empty => &[],
            };
            assert_eq!(copies, want, "{}", s);
            assert!(s.ends_with("exec \"$@\"\n"));
        }
        assert!(script(Layout::Macos, &meta).contains("ln -s /private/etc/ssl '/W'/u/ssl\n"));
        assert!(
            script(Layout::Rhel, &meta).contains("ln -s '/etc/pki/tls/certs' '/etc/ssl/certs'\n")
        );
        let f = script(Layout::FedoraCnf, &meta);
        for x in [
            "cp '/T/f.cnf' '/etc/pki/tls/openssl.cnf'",
            "cp '/T/f.cnf' '/etc/ssl/openssl.cnf'",
            "'/W'/u/crypto-policies/back-ends/opensslcnf.config",
        ] {
            assert!(f.contains(x), "{}", f);
        }
    }

    #[test]
    fn locations_outside_the_trees_are_masked() {
        let dir = std::env::temp_dir().join(format!("tlsforge-trust-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("certs")).unwrap();
        std::fs::write(dir.join("cert.pem"), b"x").unwrap();
        let meta = serde_json::json!({"verify_paths": {
            "openssl_cafile": dir.join("cert.pem"), "openssl_capath": dir.join("certs"), "cafile": "/etc/ssl/nonexistent"}});
        let s = script(Layout::Alpine, &meta);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            s.contains(&format!(
                "mount --bind /dev/null '{}'\n",
                dir.join("cert.pem").display()
            )),
            "{}",
            s
        );
        assert!(
            s.contains(&format!(
                "mount -t tmpfs -o mode=755 tmpfs '{}'\n",
                dir.join("certs").display()
            )),
            "{}",
            s
        );
    }

    #[test]
    fn fedora_policy_has_the_keys_other_openssls_reject() {
        for k in [
            "CipherString = @SECLEVEL=2:kEECDH:kRSA:",
            "Ciphersuites = ",
            "TLS.MinProtocol = TLSv1.2",
            "DTLS.MinProtocol",
            "SignatureAlgorithms = mldsa44",
            "Options = RHNoEnforceEMSinFIPS",
            "[rh-allow-sha1-signatures]",
        ] {
            assert!(FEDORA_OPENSSLCNF_CONFIG.contains(k), "{}", k);
        }
        assert!(FEDORA_OPENSSL_CNF
            .contains(".include = /etc/crypto-policies/back-ends/opensslcnf.config"));
    }
}
