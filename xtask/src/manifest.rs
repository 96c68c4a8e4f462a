//! The manifest of one artifact: `python/PYTHON.json` inside the archive
//! and `<archive>.json` beside it. Its field names follow
//! python-build-standalone's PYTHON.json where the two overlap, so tools
//! that read theirs read ours; the rest says how this one was built.
//!
//! It is written through `serde_json::Value` (see `to_json`), whose maps
//! are sorted: the bytes do not depend on the order of the fields below.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::recipes::{Flavour, Toolchain};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    #[serde(flatten)]
    pub id: Identity,
    /// The CPython build's cache key: the same key, the same tree.
    pub build_key: String,
    pub configured_prefix: String,
    pub optimisation: crate::optimise::Optimisation,
    pub openssl: OpensslRecord,
    pub licenses: Vec<String>,
    pub inputs: Vec<Input>,
    pub patches: Vec<crate::wheels::PatchRef>,
    pub bundled_wheels: Vec<crate::wheels::Rebuilt>,
    pub toolchain: Toolchain,
    pub validation: crate::validate::Report,
    pub omitted_modules: Vec<OmittedModule>,
    /// What the relocated interpreter reported about itself (its own JSON),
    /// or nothing for a target this machine cannot run.
    pub smoke_test: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavour: Option<Flavour>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub universal2: Option<Universal2>,
}

/// What the interpreter is and where its parts are: the fields that
/// python-build-standalone's PYTHON.json has too.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Identity {
    /// The layout of this file (bumped when a field changes meaning).
    #[serde(rename = "version")]
    pub manifest_version: String,
    /// `tlsforge-<flavour>`.
    pub format: String,
    pub target_triple: String,
    pub python_version: String,
    pub python_major_minor_version: String,
    pub python_tag: String,
    pub python_abi_tag: String,
    pub python_platform_tag: String,
    pub python_exe: String,
    pub python_stdlib: String,
    pub python_paths: PythonPaths,
    pub link_mode: LinkMode,
    pub tlsforge_package_revision: u32,
    pub build_date_epoch: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PythonPaths {
    pub stdlib: String,
    pub platstdlib: String,
    pub purelib: String,
    pub platlib: String,
    pub include: String,
    pub scripts: String,
    pub data: String,
}

/// OpenSSL and the libraries of recipes/deps are always linked statically.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum LinkMode {
    /// One static executable with every extension module built in.
    #[serde(rename = "static")]
    Static,
    /// Libraries static, the stdlib's extension modules shared objects in
    /// lib-dynload.
    #[serde(rename = "static-libs")]
    StaticLibs,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OpensslRecord {
    pub version: String,
    pub choice: String,
    #[serde(rename = "crate")]
    pub crate_name: String,
    pub configure_options: Vec<String>,
    pub openssldir: String,
    pub license: String,
}

/// One source that went into the build (the SBOM's components).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Input {
    pub name: String,
    pub version: String,
    pub license: String,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Where it came from when not a file of ours (a crate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What `sha256` is the hash of, when not `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256_of: Option<String>,
    /// The stdlib modules that need this library.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OmittedModule {
    pub module: String,
    pub reason: String,
}

/// How a universal2 archive was merged from its two slices.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Universal2 {
    pub slices: Universal2Slices,
    /// (arm64 build key, x86_64 build key, package revision): the same
    /// pair again is not merged again.
    pub slice_keys: (String, String, u32),
    pub fat_files: usize,
    pub identical_files: usize,
    pub differing_files_taken_from_arm64: Vec<String>,
    pub single_architecture_files: Vec<String>,
    pub validation: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Universal2Slices {
    pub arm64: Option<String>,
    pub x86_64: Option<String>,
}

impl Manifest {
    /// The JSON value written to disk (maps sorted, so field order in the
    /// struct does not change the bytes).
    pub fn to_json(&self) -> Result<serde_json::Value> {
        Ok(serde_json::to_value(self)?)
    }

    /// The manifest beside `archive` (`<name>.json`).
    pub fn read_beside(archive: &Path) -> Result<Manifest> {
        Manifest::read(&crate::package::manifest_path(archive))
    }

    pub fn read(path: &Path) -> Result<Manifest> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a tlsforge manifest of this revision; rebuild with `cargo xtask build`",
                path.display()
            )
        })
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::recipes::Recipes;

    /// A manifest as the pipeline writes one, for the readers' tests.
    pub fn sample() -> Manifest {
        let recipes = Recipes::load().unwrap();
        let tc = recipes.toolchain(None).unwrap().clone();
        let input = |name: &str, sha256: &str| Input {
            name: name.into(),
            version: "1".into(),
            license: "MIT".into(),
            sha256: sha256.into(),
            file: Some(format!("{name}.tar.gz")),
            source: None,
            sha256_of: None,
            modules: None,
        };
        Manifest {
            id: crate::package::manifest_base("3.13.5", &tc, false),
            build_key: "k".into(),
            configured_prefix: "/opt/tlsforge/cpython-3.13.5".into(),
            optimisation: crate::optimise::Optimisation {
                profile: "quick".into(),
                pgo: false,
                lto: false,
                notes: vec![],
                flags: vec![],
                training_task: None,
            },
            openssl: OpensslRecord {
                version: "4.0.3".into(),
                choice: "current".into(),
                crate_name: "openssl-src 400.0.2+4.0.3".into(),
                configure_options: vec!["no-shared".into()],
                openssldir: tc.openssldir.clone(),
                license: "Apache-2.0".into(),
            },
            licenses: vec!["Apache-2.0".into(), "MIT".into()],
            inputs: vec![input("cpython", "ab"), input("openssl", "cd")],
            patches: vec![crate::wheels::PatchRef {
                name: "0001-x.patch".into(),
                sha256: "ef".into(),
            }],
            bundled_wheels: vec![crate::wheels::Rebuilt {
                path: "Lib/x.whl".into(),
                name: "pip".into(),
                version: "19.2.3".into(),
                upstream_sha256: "old".into(),
                sha256: "new".into(),
                patches: vec![crate::wheels::PatchRef {
                    name: "pip-19.2.3/0001-a.patch".into(),
                    sha256: "ab".into(),
                }],
                removed: vec!["pip/_vendor/certifi/cacert.pem".into()],
            }],
            toolchain: tc,
            validation: crate::validate::Report::default(),
            omitted_modules: vec![OmittedModule {
                module: "_tkinter".into(),
                reason: "no Tk".into(),
            }],
            smoke_test: Some(serde_json::json!({"openssl": "OpenSSL 4.0.3"})),
            flavour: None,
            universal2: None,
        }
    }

    #[test]
    fn written_manifest_reads_back_the_same() {
        let m = sample();
        let text = serde_json::to_string_pretty(&m.to_json().unwrap()).unwrap();
        let back: Manifest = serde_json::from_str(&text).unwrap();
        let mut written = m.clone();
        written.toolchain.ci_runner = None; // (CI metadata, never written)
        assert_eq!(back, written);
        // python-build-standalone's names at the top level, ours beside them.
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["version"], "8");
        assert_eq!(v["python_paths"]["purelib"], "lib/python3.13/site-packages");
        assert_eq!(v["openssl"]["crate"], "openssl-src 400.0.2+4.0.3");
        assert!(v.get("flavour").is_none() && v.get("universal2").is_none());
    }

    #[test]
    fn a_manifest_missing_a_field_is_refused_with_its_path() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("m.json");
        std::fs::write(&path, r#"{"version": "8"}"#).unwrap();
        let err = format!("{:#}", Manifest::read(&path).unwrap_err());
        assert!(
            err.contains("m.json") && err.contains("missing field"),
            "{err}"
        );
    }
}
