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
                        return Ok(std::iter::once("unshare".to_string()).chain(args.iter().map(|s| s.to_string())).collect())
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
pub fn command(python: &Path, probe: &Path, cases: &Path, meta: &Value, bundle: &Path, hashed_dir: &Path, work: &Path) -> Result<(Command, String), String> {
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
                for e in std::fs::read_dir(parent).map_err(|e| e.to_string())?.flatten() {
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
                std::fs::copy(bundle, ovl.join(cafile.file_name().unwrap())).map_err(|e| e.to_string())?;
                script.push_str(&format!("mount --bind {} {}\n", q(parent), q(&orig)));
                script.push_str(&format!("mount --bind {} {}\n", q(&ovl), q(parent)));
                for sd in subdirs {
                    script.push_str(&format!("mount --bind {} {}\n", q(&orig.join(&sd)), q(&parent.join(&sd))));
                }
                notes.push(format!("{} did not exist: overlaid {}", cafile.display(), parent.display()));
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
    cmd.args(&prefix[1..]).arg("sh").arg("-c").arg(script).arg(python).arg(probe).arg(cases);
    Ok((cmd, notes.join("; ")))
}
