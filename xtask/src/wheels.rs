//! Stage 3b, bundled wheels: a wheel the CPython tree ships (ensurepip's pip)
//! rebuilt with our patches, inside the source stage's temporary tree so a
//! failure leaves nothing in the cache.
//!
//! For each `[[bundled_wheel]]` of the recipe: check the shipped wheel's
//! sha256, unpack it, apply `patches/wheels/<patches>/series` with the same
//! zero-fuzz applier as CPython's series, delete the files the recipe
//! removes, recompute RECORD, and write the wheel back under the same name:
//! entries in the original order with their original timestamps and modes,
//! deflated by the pinned flate2, so the same inputs give the same bytes.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::recipes::BundledWheel;
use crate::util::{sha256_bytes, sha256_file, KeyBuilder};

/// What one rebuild did (the manifest's and SBOM's record of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rebuilt {
    pub path: String,
    pub name: String,
    pub version: String,
    pub upstream_sha256: String,
    pub sha256: String,
    pub patches: Vec<PatchRef>,
    pub removed: Vec<String>,
}

/// A patch under `patches/wheels/` and its sha256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchRef {
    pub name: String,
    pub sha256: String,
}

/// Everything about the rebuilds that changes the tree, for the source key.
pub fn add_to_key(key: &mut KeyBuilder, wheels: &[BundledWheel]) -> Result<()> {
    for w in wheels {
        key.add("wheel", &w.path).add("wheel-sha256", &w.sha256);
        for p in crate::patch::read_series(&w.patch_dir())? {
            key.add("wheel-patch", sha256_file(&p)?);
        }
        for r in &w.remove {
            key.add("wheel-remove", r);
        }
    }
    Ok(())
}

/// Rebuilds every wheel of `wheels` inside `tree` (a freshly extracted and
/// patched CPython source).
pub fn rebuild_all(tree: &Path, wheels: &[BundledWheel]) -> Result<()> {
    for w in wheels {
        rebuild(tree, w).with_context(|| format!("rebuilding the bundled wheel {}", w.path))?;
    }
    Ok(())
}

/// What the rebuilt wheels in `tree` are (also on a cache hit: the sha256 is
/// read from the tree).
pub fn describe(tree: &Path, wheels: &[BundledWheel]) -> Result<Vec<Rebuilt>> {
    wheels
        .iter()
        .map(|w| {
            let file = Path::new(&w.path)
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let mut parts = file.splitn(3, '-');
            let (name, version) = (
                parts.next().unwrap_or("").to_string(),
                parts.next().unwrap_or("").to_string(),
            );
            let patches = crate::patch::read_series(&w.patch_dir())?
                .iter()
                .map(|p| {
                    // (named as under patches/wheels/, where the series lives)
                    let file = p.file_name().unwrap_or_default().to_string_lossy();
                    Ok(PatchRef {
                        name: format!("{}/{file}", w.patches),
                        sha256: sha256_file(p)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Rebuilt {
                path: w.path.clone(),
                name,
                version,
                upstream_sha256: w.sha256.clone(),
                sha256: sha256_file(&tree.join(&w.path))?,
                patches,
                removed: w.remove.clone(),
            })
        })
        .collect()
}

struct Entry {
    name: String,
    modified: zip::DateTime,
    mode: Option<u32>,
}

fn rebuild(tree: &Path, w: &BundledWheel) -> Result<()> {
    let wheel_path = tree.join(&w.path);
    let bytes = fs::read(&wheel_path).with_context(|| {
        format!(
            "the recipe names {} but the source has no such file",
            w.path
        )
    })?;
    let got = sha256_bytes(&bytes);
    if got != w.sha256 {
        bail!(
            "{} has sha256 {got}, the recipe pins {}; update [[bundled_wheel]] only after reading the new wheel's diff",
            w.path,
            w.sha256
        );
    }
    let series = crate::patch::read_series(&w.patch_dir())?;
    if series.is_empty() {
        bail!(
            "{} has no series: a rebuild needs at least one patch",
            w.patch_dir().display()
        );
    }
    let work = crate::cache::tempdir_in(wheel_path.parent().unwrap_or(tree))?;
    let root = work.path().join("wheel");
    let entries = unpack(&bytes, &root)?;
    crate::patch::apply_series(&root, &series)?;
    for r in &w.remove {
        let p = safe_join(&root, r)?;
        fs::remove_file(&p).with_context(|| format!("removing {r}: the wheel has no such file"))?;
    }
    let record_name = entries
        .iter()
        .map(|e| e.name.as_str())
        .find(|n| n.ends_with(".dist-info/RECORD"))
        .context("the wheel has no .dist-info/RECORD")?
        .to_string();
    // Files a patch created come after the original entries, sorted.
    let mut names: Vec<String> = entries
        .iter()
        .map(|e| e.name.clone())
        .filter(|n| !n.ends_with('/') && safe_join(&root, n).is_ok_and(|p| p.is_file()))
        .collect();
    let mut added = Vec::new();
    walk_files(&root, &root, &mut added)?;
    added.retain(|n| !names.contains(n));
    added.sort();
    names.extend(added);

    let mut record = String::new();
    for n in &names {
        if *n == record_name {
            continue;
        }
        let data = fs::read(root.join(n))?;
        record.push_str(&format!(
            "{n},sha256={},{}\n",
            record_digest(&data),
            data.len()
        ));
    }
    record.push_str(&format!("{record_name},,\n"));
    fs::write(root.join(&record_name), record)?;

    let newest = entries.iter().map(|e| e.modified).max().unwrap_or_default();
    let mut zw = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for n in &names {
        let orig = entries.iter().find(|e| e.name == *n);
        let mut opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(6))
            .last_modified_time(orig.map_or(newest, |e| e.modified));
        opts = opts.unix_permissions(orig.and_then(|e| e.mode).unwrap_or(0o644) & 0o777);
        zw.start_file(n.as_str(), opts)?;
        zw.write_all(&fs::read(root.join(n))?)?;
    }
    let out = zw.finish()?.into_inner();
    let tmp = wheel_path.with_extension("whl.tmp");
    fs::write(&tmp, out)?;
    fs::rename(&tmp, &wheel_path)?;
    Ok(())
}

/// A RECORD hash: urlsafe base64 of the sha256, no padding (PEP 376/427).
fn record_digest(data: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(data))
}

/// `rel` under `root`, refusing absolute paths and `..` (a wheel is an archive
/// like any other: its names must not escape).
fn safe_join(root: &Path, rel: &str) -> Result<PathBuf> {
    let p = Path::new(rel);
    if p.is_absolute()
        || p.components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        bail!("wheel member {rel:?} would land outside the wheel");
    }
    Ok(root.join(p))
}

fn unpack(bytes: &[u8], root: &Path) -> Result<Vec<Entry>> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).context("not a zip file")?;
    let mut entries = Vec::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i)?;
        let name = f.name()?.to_string();
        let dest = safe_join(root, &name)?;
        if name.ends_with('/') {
            fs::create_dir_all(&dest)?;
        } else {
            fs::create_dir_all(dest.parent().unwrap())?;
            let mut data = Vec::new();
            f.read_to_end(&mut data)?;
            fs::write(&dest, data)?;
        }
        entries.push(Entry {
            name,
            modified: f.last_modified().unwrap_or_default(),
            mode: f.unix_mode(),
        });
    }
    Ok(entries)
}

fn walk_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk_files(root, &p, out)?;
        } else {
            out.push(p.strip_prefix(root)?.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel(files: &[(&str, &str)]) -> Vec<u8> {
        let mut zw = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let mut record = String::new();
        for (n, d) in files {
            zw.start_file(*n, zip::write::SimpleFileOptions::default())
                .unwrap();
            zw.write_all(d.as_bytes()).unwrap();
            record.push_str(&format!("{n},sha256=stale,1\n"));
        }
        record.push_str("p-1.dist-info/RECORD,,\n");
        zw.start_file(
            "p-1.dist-info/RECORD",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zw.write_all(record.as_bytes()).unwrap();
        zw.finish().unwrap().into_inner()
    }

    const PATCH: &str = "What: t\nWhy: t\n\ndiff --git a/p/core.py b/p/core.py\n--- a/p/core.py\n+++ b/p/core.py\n@@ -1 +1 @@\n-old\n+new\n";

    fn setup(bytes: &[u8]) -> (tempfile::TempDir, BundledWheel) {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("tree/Lib")).unwrap();
        fs::write(d.path().join("tree/Lib/p-1-py3-none-any.whl"), bytes).unwrap();
        fs::create_dir_all(d.path().join("patches")).unwrap();
        fs::write(d.path().join("patches/series"), "0001.patch\n").unwrap();
        fs::write(d.path().join("patches/0001.patch"), PATCH).unwrap();
        let w = BundledWheel {
            path: "Lib/p-1-py3-none-any.whl".into(),
            sha256: sha256_bytes(bytes),
            patches: d.path().join("patches").display().to_string(),
            remove: vec!["p/cacert.pem".into()],
        };
        (d, w)
    }

    #[test]
    fn rebuild_patches_removes_rewrites_record_and_is_deterministic() {
        let bytes = wheel(&[("p/core.py", "old\n"), ("p/cacert.pem", "frozen\n")]);
        let (d, w) = setup(&bytes);
        let tree = d.path().join("tree");
        rebuild(&tree, &w).unwrap();
        let out = fs::read(tree.join(&w.path)).unwrap();
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(out.clone())).unwrap();
        let names: Vec<String> = (0..z.len())
            .map(|i| z.by_index(i).unwrap().name().unwrap().to_string())
            .collect();
        assert_eq!(names, ["p/core.py", "p-1.dist-info/RECORD"]);
        let mut core = String::new();
        z.by_name("p/core.py")
            .unwrap()
            .read_to_string(&mut core)
            .unwrap();
        assert_eq!(core, "new\n");
        let mut rec = String::new();
        z.by_name("p-1.dist-info/RECORD")
            .unwrap()
            .read_to_string(&mut rec)
            .unwrap();
        assert_eq!(
            rec,
            format!(
                "p/core.py,sha256={},4\np-1.dist-info/RECORD,,\n",
                record_digest(b"new\n")
            )
        );
        // Same input, same bytes.
        fs::write(tree.join(&w.path), &bytes).unwrap();
        rebuild(&tree, &w).unwrap();
        assert_eq!(fs::read(tree.join(&w.path)).unwrap(), out);
    }

    #[test]
    fn wrong_pin_and_escaping_member_are_refused() {
        let bytes = wheel(&[("p/core.py", "old\n"), ("p/cacert.pem", "x\n")]);
        let (d, mut w) = setup(&bytes);
        w.sha256 = "0".repeat(64);
        let e = rebuild(&d.path().join("tree"), &w).unwrap_err().to_string();
        assert!(
            e.contains("Lib/p-1-py3-none-any.whl") && e.contains(&sha256_bytes(&bytes)),
            "{e}"
        );
        let evil = wheel(&[("../escape.py", "x")]);
        let (d, w) = setup(&evil);
        let e = format!("{:#}", rebuild(&d.path().join("tree"), &w).unwrap_err());
        assert!(e.contains("outside the wheel"), "{e}");
        assert!(!d.path().join("tree/escape.py").exists() && !d.path().join("escape.py").exists());
    }

    #[test]
    fn record_digest_is_urlsafe_unpadded_base64() {
        // sha256("") = e3b0c442...; its base64 is 47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU
        assert_eq!(
            record_digest(b""),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }
}
