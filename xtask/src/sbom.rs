//! A CycloneDX 1.5 SBOM per artifact, derived from the manifest: every
//! source that went into the interpreter with its version, sha256 and
//! license, and our patches as the CPython component's pedigree.

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::manifest::Manifest;
use crate::util::{sha256_bytes, workspace_root};

/// The sha256 Cargo recorded for a crate in Cargo.lock (crates carry
/// OpenSSL's sources, so this digest pins them).
pub fn crate_checksum(name: &str, version: &str) -> Result<String> {
    let lock: toml::Value = toml::from_str(&std::fs::read_to_string(
        workspace_root().join("Cargo.lock"),
    )?)?;
    lock["package"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"].as_str() == Some(name) && p["version"].as_str() == Some(version))
        .and_then(|p| p["checksum"].as_str().map(String::from))
        .with_context(|| format!("Cargo.lock has no checksum for {name} {version}"))
}

pub fn cyclonedx(manifest: &Manifest) -> Value {
    let python_version = &manifest.id.python_version;
    let components: Vec<Value> = manifest
        .inputs
        .iter()
        .map(|i| {
            let mut c = json!({
                "type": "library",
                "name": i.name,
                "version": i.version,
                "hashes": [{"alg": "SHA-256", "content": i.sha256}],
                "licenses": [{"license": {"id": i.license}}],
            });
            if i.name == "cpython" {
                c["pedigree"] = json!({
                    "patches": manifest.patches.iter().map(|p| json!({
                        "type": "backport",
                        "diff": {"url": format!("patches/{python_version}/{}", p.name)},
                    })).collect::<Vec<_>>()
                });
            }
            c
        })
        .chain(
            // ensurepip's rebuilt wheels: what ships, and what it was made from.
            manifest.bundled_wheels.iter().map(|w| {
                json!({
                    "type": "library",
                    "name": w.name,
                    "version": w.version,
                    "hashes": [{"alg": "SHA-256", "content": w.sha256}],
                    "licenses": [{"license": {"id": "MIT"}}],
                    "properties": [{"name": "path", "value": w.path}],
                    "pedigree": {
                        "ancestors": [{"type": "library", "name": w.name, "version": w.version,
                                       "hashes": [{"alg": "SHA-256", "content": w.upstream_sha256}]}],
                        "patches": w.patches.iter().map(|p| json!({
                            "type": "unofficial",
                            "diff": {"url": format!("patches/wheels/{}", p.name)},
                        })).collect::<Vec<_>>(),
                        "notes": format!("removed: {}", w.removed.join(", ")),
                    },
                })
            }),
        )
        .collect();
    // Deterministic serial number: same inputs, same SBOM.
    let digest = sha256_bytes(
        serde_json::to_string(&components)
            .unwrap_or_default()
            .as_bytes(),
    );
    let serial = format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &digest[0..8],
        &digest[8..12],
        &digest[12..16],
        &digest[16..20],
        &digest[20..32]
    );
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "component": {"type": "application", "name": "tlsforge-cpython", "version": python_version},
            "properties": [{"name": "target_triple", "value": manifest.id.target_triple}],
        },
        "components": components,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbom_lists_inputs_with_hashes_and_patches() {
        let m = crate::manifest::tests::sample();
        let s = cyclonedx(&m);
        let components = s["components"].as_array().unwrap();
        assert_eq!(components.len(), m.inputs.len() + m.bundled_wheels.len());
        assert_eq!(s["components"][1]["name"], "openssl");
        assert_eq!(
            s["components"][1]["hashes"][0]["content"],
            m.inputs[1].sha256
        );
        assert_eq!(
            s["components"][0]["pedigree"]["patches"][0]["diff"]["url"],
            "patches/3.13.5/0001-x.patch"
        );
        assert_eq!(s, cyclonedx(&m), "deterministic");
    }

    #[test]
    fn sbom_lists_rebuilt_wheels_with_their_ancestor_and_patches() {
        let m = crate::manifest::tests::sample();
        let c = &cyclonedx(&m)["components"][m.inputs.len()];
        assert_eq!(c["name"], "pip");
        assert_eq!(c["hashes"][0]["content"], "new");
        assert_eq!(c["pedigree"]["ancestors"][0]["hashes"][0]["content"], "old");
        assert_eq!(
            c["pedigree"]["patches"][0]["diff"]["url"],
            "patches/wheels/pip-19.2.3/0001-a.patch"
        );
        assert!(c["pedigree"]["notes"]
            .as_str()
            .unwrap()
            .contains("cacert.pem"));
    }

    #[test]
    fn openssl_crate_is_pinned_in_the_lockfile() {
        assert_eq!(
            crate_checksum("openssl-src", "400.0.2+4.0.3")
                .unwrap()
                .len(),
            64
        );
    }
}
