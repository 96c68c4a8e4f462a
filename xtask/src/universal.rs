//! universal2: after `--target macos` built both Macs, one tree whose every
//! Mach-O file holds the arm64 and the x86_64 image (what `lipo -create`
//! makes; there is no lipo here, macho::merge_universal writes the fat
//! header). Other files must be the same in both trees; the few that are
//! not (sysconfig data naming the target) are taken from arm64 and listed.

use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::macho::{is_macho, merge_universal};
use crate::manifest::{Manifest, Universal2, Universal2Slices};
use crate::pipeline::Artifact;
use crate::recipes::{Os, Toolchain};

pub const TRIPLE: &str = "universal2-apple-darwin";

#[derive(Default)]
pub struct Merged {
    pub fat_files: usize,
    pub same_files: usize,
    /// Non-Mach-O files whose content differs by architecture (arm64's kept).
    pub differing: Vec<String>,
    /// Files only one architecture has.
    pub only_in_one: Vec<String>,
}

/// Relative paths of every file and symlink under `root`.
fn entries(root: &Path) -> Result<BTreeSet<PathBuf>> {
    crate::util::files_under(root, true)?
        .into_iter()
        .map(|p| Ok(p.strip_prefix(root)?.to_path_buf()))
        .collect()
}

/// Merges the arm64 tree and the x86_64 tree into `out` (which must not exist).
pub fn merge_trees(arm64: &Path, x86_64: &Path, out: &Path) -> Result<Merged> {
    let mut m = Merged::default();
    let a = entries(arm64)?;
    let b = entries(x86_64)?;
    for rel in b.difference(&a) {
        m.only_in_one
            .push(format!("{} (x86_64 only)", rel.display()));
        copy_entry(&x86_64.join(rel), &out.join(rel))?;
    }
    for rel in &a {
        let (from_a, from_b, to) = (arm64.join(rel), x86_64.join(rel), out.join(rel));
        fs::create_dir_all(to.parent().unwrap())?;
        let meta = fs::symlink_metadata(&from_a)?;
        if meta.file_type().is_symlink() || !b.contains(rel) {
            if !meta.file_type().is_symlink() {
                m.only_in_one
                    .push(format!("{} (arm64 only)", rel.display()));
            }
            copy_entry(&from_a, &to)?;
            continue;
        }
        let (bytes_a, bytes_b) = (fs::read(&from_a)?, fs::read(&from_b)?);
        if is_macho(&bytes_a) && is_macho(&bytes_b) {
            let fat = merge_universal(&bytes_a, &bytes_b)
                .with_context(|| format!("merging {}", rel.display()))?;
            fs::write(&to, fat)?;
            m.fat_files += 1;
        } else {
            if bytes_a != bytes_b {
                m.differing.push(rel.display().to_string());
            } else {
                m.same_files += 1;
            }
            fs::write(&to, &bytes_a)?;
        }
        fs::set_permissions(&to, fs::Permissions::from_mode(meta.permissions().mode()))?;
    }
    Ok(m)
}

fn copy_entry(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to.parent().unwrap())?;
    let meta = fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(from)?, to)?;
    } else {
        fs::copy(from, to)?;
    }
    Ok(())
}

/// For each CPython version built for both Macs of the group (`groups`
/// in toolchains/: its arm64 and x86_64 macOS members): the merged tree,
/// packaged with a manifest derived from the arm64 one. Returns the
/// archives written (none for a group without both Macs).
pub fn package_all(
    group: &[&Toolchain],
    artifacts: &[(String, Artifact)],
    dist: &Path,
) -> Result<Vec<PathBuf>> {
    let mac = |arch: &str| {
        group
            .iter()
            .find(|t| t.os == Os::Macos && t.arch == arch)
            .map(|t| t.triple.clone())
    };
    let (Some(arm_triple), Some(intel_triple)) = (mac("aarch64"), mac("x86_64")) else {
        return Ok(Vec::new());
    };
    let mut written = Vec::new();
    for (triple, arm) in artifacts.iter().filter(|(t, _)| *t == arm_triple) {
        let Some((_, intel)) = artifacts
            .iter()
            .find(|(t, a)| *t == intel_triple && a.version == arm.version)
        else {
            continue;
        };
        let name = arm
            .archive
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(triple.as_str(), TRIPLE);
        let archive = dist.join(&name);
        let mut manifest = Manifest::read_beside(&arm.archive)?;
        let intel_manifest = Manifest::read_beside(&intel.archive)?;
        // The two slices' manifests identify what was merged; the same pair
        // again is not merged again.
        let slices = (
            manifest.build_key.clone(),
            intel_manifest.build_key.clone(),
            manifest.id.tlsforge_package_revision,
        );
        if archive.exists()
            && Manifest::read_beside(&archive)
                .is_ok_and(|m| m.universal2.is_some_and(|u| u.slice_keys == slices))
        {
            continue;
        }
        let work = crate::cache::tempdir_in(dist)?;
        let tree = work.path().join("tree");
        let merged = merge_trees(&arm.root, &intel.root, &tree)?;
        if merged.fat_files == 0 {
            bail!("universal2 {}: no Mach-O file was merged", arm.version);
        }
        manifest.id.target_triple = TRIPLE.into();
        // The oldest macOS either slice runs on (x86_64's), as python.org names it.
        manifest.id.python_platform_tag = intel_manifest
            .id
            .python_platform_tag
            .replace("x86_64", "universal2");
        let file_name = |a: &Path| a.file_name().map(|n| n.to_string_lossy().to_string());
        manifest.universal2 = Some(Universal2 {
            slices: Universal2Slices {
                arm64: file_name(&arm.archive),
                x86_64: file_name(&intel.archive),
            },
            slice_keys: slices,
            fat_files: merged.fat_files,
            identical_files: merged.same_files,
            differing_files_taken_from_arm64: merged.differing.clone(),
            single_architecture_files: merged.only_in_one.clone(),
            validation:
                "each slice was validated in its own archive; the merge copies them byte for byte"
                    .into(),
        });
        let manifest = manifest.to_json()?;
        crate::package::write_archive(&tree, &manifest, &archive)?;
        crate::package::write_manifest_beside(&archive, &manifest)?;
        eprintln!(
            "tlsforge: universal2 {}: {} fat Mach-O files, {} identical, {} differing (arm64's kept), {} single-arch",
            arm.version,
            merged.fat_files,
            merged.same_files,
            merged.differing.len(),
            merged.only_in_one.len()
        );
        written.push(archive);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_files_are_kept_and_differences_are_listed() {
        let d = tempfile::tempdir().unwrap();
        let (a, b, out) = (d.path().join("a"), d.path().join("b"), d.path().join("out"));
        for (root, text) in [(&a, "arm64"), (&b, "x86_64")] {
            fs::create_dir_all(root.join("lib")).unwrap();
            fs::write(root.join("lib/same.py"), "print(1)\n").unwrap();
            fs::write(root.join("lib/sysconfig.py"), text).unwrap();
            std::os::unix::fs::symlink("same.py", root.join("lib/link.py")).unwrap();
        }
        fs::write(a.join("lib/only-arm.txt"), "x").unwrap();
        let m = merge_trees(&a, &b, &out).unwrap();
        assert_eq!(m.same_files, 1);
        assert_eq!(m.fat_files, 0);
        assert_eq!(m.differing, ["lib/sysconfig.py"]);
        assert_eq!(m.only_in_one, ["lib/only-arm.txt (arm64 only)"]);
        assert_eq!(
            fs::read_to_string(out.join("lib/sysconfig.py")).unwrap(),
            "arm64"
        );
        assert_eq!(
            fs::read_link(out.join("lib/link.py")).unwrap(),
            Path::new("same.py")
        );
    }
}
