//! uv installs our interpreters: `dist/download-metadata.json` lists every
//! 3.x `install_only` archive in dist/ in the format of uv's
//! `--python-downloads-json-url` (uv has no Python 2: a 2.7 user unpacks
//! the archive or installs the .deb). `cargo xtask test` installs a pinned
//! uv and checks that it installs, runs and makes a venv from that file.

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{sha256_file, stdout_of, workspace_root, Cache};

pub const METADATA_FILE: &str = "download-metadata.json";
/// The package the conformance suite's index serves (tests/conformance/src/pip.rs).
const PROBE_PACKAGE: &str = "tlsforge-probe-pkg";

/// The conformance crate's HTTPS package index, running until dropped.
struct Index {
    child: std::process::Child,
    url: String,
    ca: PathBuf,
}

impl Index {
    fn start(dir: &Path) -> Result<Index> {
        use std::io::BufRead;
        fs::create_dir_all(dir)?;
        let ca = dir.join("index-ca.pem");
        let mut child = crate::testing::conformance_bin("index")
            .arg("--ca-out")
            .arg(&ca)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("starting the conformance crate's index server")?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
        let port: u16 = line
            .trim()
            .parse()
            .with_context(|| format!("the index server printed {line:?}, not its port"))?;
        Ok(Index {
            child,
            url: format!("https://localhost:{port}/simple/"),
            ca,
        })
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
const FLAVOUR: &str = "install_only";

/// Writes `dist/download-metadata.json` from the archives' manifests; the
/// `url` of each is `<base_url>/<archive>` or, without a base URL, the
/// archive's `file://` path. Returns the file and how many entries it has.
pub fn write_metadata(dist: &Path, base_url: Option<&str>) -> Result<(PathBuf, usize)> {
    let mut entries = Map::new();
    let mut names: Vec<PathBuf> = fs::read_dir(dist)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    names.sort();
    for archive in names {
        let file = archive.file_name().unwrap().to_string_lossy().to_string();
        let Some(stem) = file.strip_suffix(".tar.gz") else {
            continue;
        };
        if !stem.ends_with(&format!("-{FLAVOUR}")) {
            continue;
        }
        let manifest_path = archive.with_file_name(format!("{stem}.json"));
        let (manifest, uv) = match crate::manifest::Manifest::read(&manifest_path) {
            Ok(m) => (m.id, m.toolchain.uv_platform),
            Err(e) => {
                // (an archive of an older package revision, left in dist/)
                eprintln!("tlsforge: {} is not listed for uv: {e:#}", file);
                continue;
            }
        };
        let version = &manifest.python_version;
        let parts: Vec<u64> = version.split('.').filter_map(|p| p.parse().ok()).collect();
        let [major, minor, patch] = parts[..] else {
            bail!(
                "{}: python_version {version:?} is not X.Y.Z",
                manifest_path.display()
            );
        };
        if major < 3 {
            continue;
        }
        let Some(crate::recipes::UvPlatform { arch, os, libc }) = uv else {
            // (toolchains/<triple>.toml names no uv_platform)
            continue;
        };
        let url = match base_url {
            Some(base) => format!("{}/{file}", base.trim_end_matches('/')),
            None => format!("file://{}", std::path::absolute(&archive)?.display()),
        };
        entries.insert(
            format!("cpython-{version}-{os}-{arch}-{libc}"),
            json!({
                "name": "cpython",
                "arch": {"family": arch, "variant": null},
                "os": os,
                "libc": libc,
                "major": major,
                "minor": minor,
                "patch": patch,
                "prerelease": "",
                "url": url,
                "sha256": sha256_file(&archive)?,
                "variant": null,
                "build": "tlsforge",
            }),
        );
    }
    let path = dist.join(METADATA_FILE);
    let tmp = crate::cache::tempfile_in(dist)?;
    fs::write(
        tmp.path(),
        serde_json::to_vec_pretty(&Value::Object(entries.clone()))?,
    )?;
    tmp.persist(&path)?;
    Ok((path, entries.len()))
}

/// What `cargo xtask test` checks: a pinned uv installs each 3.x archive
/// from the metadata file into a scratch directory, `uv run` prints its
/// OpenSSL, and `uv venv` makes a venv whose python imports ssl.
pub fn check(cache: &Cache, dist: &Path, versions: &[&str], scratch: &Path) -> Result<String> {
    let uv_dir = crate::prereqs::pinned_wheel(
        cache,
        "uv",
        &workspace_root().join("recipes/tests/uv.txt"),
        "bin/uv",
    )?;
    let uv = uv_dir.join("bin/uv");
    let (metadata, n) = write_metadata(dist, None)?;
    let home = scratch.join("uv");
    let uv_cmd = |args: &[&str]| {
        let mut c = Command::new(&uv);
        c.args(args)
            .env("UV_PYTHON_INSTALL_DIR", home.join("pythons"))
            .env("UV_PYTHON_BIN_DIR", home.join("bin"))
            .env("UV_CACHE_DIR", home.join("cache"))
            .env("UV_NO_CONFIG", "1")
            .env_remove("VIRTUAL_ENV")
            .current_dir(scratch);
        c
    };
    let run = |args: &[&str], downloads: &str| -> Result<String> {
        stdout_of(
            uv_cmd(args).env("UV_PYTHON_DOWNLOADS", downloads),
            &format!("uv {}", args.join(" ")),
        )
    };
    // (recipes/openssl.toml: "OpenSSL 4.0.3", "OpenSSL 3.5.…")
    let ours: Vec<String> = crate::recipes::Recipes::load()?
        .openssl
        .iter()
        .map(|o| format!("OpenSSL {} ", o.version))
        .collect();
    let index = Index::start(&home)?;
    let mut said = vec![format!("{n} entries in {}", metadata.display())];
    for &v in versions {
        let json_url = metadata.display().to_string();
        run(
            &[
                "python",
                "install",
                "--python-downloads-json-url",
                &json_url,
                v,
            ],
            "manual",
        )?;
        let openssl = run(
            &[
                "run",
                "--no-project",
                "--python",
                v,
                "python",
                "-c",
                "import ssl; print(ssl.OPENSSL_VERSION)",
            ],
            "never",
        )?;
        if !ours.iter().any(|o| openssl.starts_with(o.as_str())) {
            bail!("uv run --python {v} printed {openssl:?}, not one of our OpenSSLs ({ours:?})");
        }
        let venv = home.join(format!("venv-{v}"));
        let venv_s = venv.display().to_string();
        run(&["venv", "--python", v, &venv_s], "never")?;
        let in_venv = Command::new(venv.join("bin/python"))
            .args([
                "-c",
                "import ssl, sys; print(sys.prefix != sys.base_prefix, ssl.OPENSSL_VERSION)",
            ])
            .output()?;
        let in_venv = String::from_utf8_lossy(&in_venv.stdout).trim().to_string();
        if !in_venv.starts_with("True OpenSSL") {
            bail!("the uv venv of {v} answered {in_venv:?}");
        }
        // uv pip install from the HTTPS test index, trusting its CA
        // through SSL_CERT_FILE, into that venv.
        let venv_python = venv.join("bin/python").display().to_string();
        stdout_of(
            uv_cmd(&[
                "pip",
                "install",
                "--python",
                &venv_python,
                "--index-url",
                &index.url,
                PROBE_PACKAGE,
            ])
            .env("SSL_CERT_FILE", &index.ca)
            .env("UV_PYTHON_DOWNLOADS", "never"),
            &format!(
                "uv pip install {PROBE_PACKAGE} from {} into the venv of {v}",
                index.url
            ),
        )?;
        let imported = Command::new(&venv_python)
            .args(["-c", "import tlsforge_probe_pkg as p; print(p.VALUE)"])
            .output()?;
        let imported = String::from_utf8_lossy(&imported.stdout).trim().to_string();
        if imported != "tlsforge-ok" {
            bail!("the package uv installed into the venv of {v} does not import: {imported:?}");
        }
        said.push(format!(
            "{v}: uv python install, `uv run` prints {openssl}, uv venv, uv pip install from the HTTPS test index (imported: {imported})"
        ));
    }
    Ok(said.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_lists_3x_install_only_archives_in_uvs_format() {
        let d = tempfile::tempdir().unwrap();
        for (v, flavour) in [
            ("3.13.15", "install_only"),
            ("3.13.15", "full"),
            ("2.7.18", "install_only"),
        ] {
            let stem = format!("cpython-{v}+tlsforge-x86_64-unknown-linux-gnu-{flavour}");
            fs::write(
                d.path().join(format!("{stem}.tar.gz")),
                format!("{v} {flavour}"),
            )
            .unwrap();
            let mut m = crate::manifest::tests::sample();
            m.id.python_version = v.into();
            m.id.target_triple = "x86_64-unknown-linux-gnu".into();
            crate::package::write_json(
                &d.path().join(format!("{stem}.json")),
                &m.to_json().unwrap(),
            )
            .unwrap();
        }
        let (path, n) = write_metadata(d.path(), Some("https://mirror.example/tlsforge/")).unwrap();
        assert_eq!(
            n, 1,
            "2.7 (uv has no Python 2) and the full flavour are left out"
        );
        let m: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        let e = &m["cpython-3.13.15-linux-x86_64-gnu"];
        assert_eq!(e["minor"], 13);
        assert_eq!(e["patch"], 15);
        assert_eq!(e["libc"], "gnu");
        assert_eq!(
            e["url"],
            "https://mirror.example/tlsforge/cpython-3.13.15+tlsforge-x86_64-unknown-linux-gnu-install_only.tar.gz"
        );
        assert_eq!(
            e["sha256"],
            crate::util::sha256_bytes(b"3.13.15 install_only")
        );
    }

    #[test]
    fn every_unix_target_names_its_uv_platform() {
        for tc in &crate::recipes::Recipes::load().unwrap().toolchains {
            let uv = tc.uv_platform.as_ref();
            match tc.os {
                crate::recipes::Os::Windows => assert!(uv.is_none(), "{}", tc.triple),
                _ => {
                    let uv = uv.unwrap_or_else(|| panic!("{}: no uv_platform", tc.triple));
                    assert_eq!(uv.arch, tc.arch, "{}", tc.triple);
                    let libc = match (tc.os, tc.fully_static) {
                        (crate::recipes::Os::Macos, _) => "none",
                        (_, true) => "musl",
                        _ => "gnu",
                    };
                    assert_eq!(uv.libc, libc, "{}", tc.triple);
                }
            }
        }
    }
}
