//! Stage 3, patch: apply `patches/<version>/series` in order, zero fuzz.
//!
//! `git apply` is the applier: it needs exact context (no fuzz) and applies
//! each patch all-or-nothing. It runs with GIT_CEILING_DIRECTORIES so that a
//! repository enclosing the tree is never consulted.

use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The patch files named by `dir/series`, in order. Blank lines and `#`
/// comments are ignored; a named file that is missing is an error.
pub fn read_series(dir: &Path) -> Result<Vec<PathBuf>> {
    let series = dir.join("series");
    if !series.exists() {
        return Ok(vec![]);
    }
    let text = fs::read_to_string(&series)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let name = line.split('#').next().unwrap().trim();
        if name.is_empty() {
            continue;
        }
        let p = dir.join(name);
        if !p.is_file() {
            bail!(
                "{}:{}: patch '{name}' does not exist",
                series.display(),
                n + 1
            );
        }
        out.push(p);
    }
    Ok(out)
}

/// Applies one patch to `tree`; the error names the patch, the hunk and why.
pub fn apply(tree: &Path, patch: &Path) -> Result<()> {
    let ceiling = tree.parent().unwrap_or(tree);
    let out = Command::new("git")
        .args(["apply", "-p1", "--whitespace=nowarn", "--verbose"])
        .arg(patch)
        .current_dir(tree)
        .env("GIT_CEILING_DIRECTORIES", ceiling)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .context("running git apply (is git installed?)")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let detail = explain_failure(patch, &stderr);
        bail!("patch {} does not apply: {detail}", patch.display());
    }
    Ok(())
}

/// Turns git's "patch failed: FILE:LINE" into "hunk #N of FILE (@@ … @@)".
fn explain_failure(patch: &Path, stderr: &str) -> String {
    let reasons: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    let failed = stderr
        .lines()
        .find_map(|l| l.strip_prefix("error: patch failed: "));
    let Some((file, line)) = failed.and_then(|f| f.rsplit_once(':')) else {
        return reasons.join("; ");
    };
    let text = fs::read_to_string(patch).unwrap_or_default();
    let mut current = "";
    let mut n = 0;
    for l in text.lines() {
        if let Some(f) = l.strip_prefix("+++ b/") {
            current = f;
            n = 0;
        } else if l.starts_with("@@ ") {
            n += 1;
            let start = l
                .trim_start_matches("@@ -")
                .split([',', ' '])
                .next()
                .unwrap_or("");
            if current == file && start == line {
                return format!(
                    "hunk #{n} of {file} ({l}) no longer matches the source; {}",
                    reasons.join("; ")
                );
            }
        }
    }
    reasons.join("; ")
}

/// Applies every patch of the series in order; stops at the first failure.
pub fn apply_series(tree: &Path, patches: &[PathBuf]) -> Result<()> {
    for p in patches {
        apply(tree, p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "What: change greeting\nWhy: test\n\ndiff --git a/hello.txt b/hello.txt\n--- a/hello.txt\n+++ b/hello.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n";

    fn tree_with(content: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("src")).unwrap();
        fs::write(d.path().join("src/hello.txt"), content).unwrap();
        d
    }

    #[test]
    fn applies_with_header_text() {
        let d = tree_with("one\ntwo\nthree\n");
        fs::write(d.path().join("p.patch"), PATCH).unwrap();
        apply(&d.path().join("src"), &d.path().join("p.patch")).unwrap();
        assert_eq!(
            fs::read_to_string(d.path().join("src/hello.txt")).unwrap(),
            "one\nTWO\nthree\n"
        );
    }

    #[test]
    fn no_fuzz_and_error_names_patch_and_hunk() {
        // The context line "three" changed: fuzz would accept this, we must not.
        let d = tree_with("one\ntwo\nTHREE\n");
        fs::write(d.path().join("p.patch"), PATCH).unwrap();
        let e = apply(&d.path().join("src"), &d.path().join("p.patch"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("p.patch") && e.contains("hunk #1 of hello.txt"),
            "{e}"
        );
        assert_eq!(
            fs::read_to_string(d.path().join("src/hello.txt")).unwrap(),
            "one\ntwo\nTHREE\n"
        );
    }

    #[test]
    fn series_names_missing_patch() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("series"), "# comment\n0001-a.patch\n").unwrap();
        let e = read_series(d.path()).unwrap_err().to_string();
        assert!(e.contains("0001-a.patch") && e.contains("series:2"), "{e}");
    }

    #[test]
    fn committed_series_files_name_existing_patches_with_headers() {
        let root = crate::util::workspace_root().join("patches");
        let dirs = fs::read_dir(&root)
            .unwrap()
            .chain(fs::read_dir(root.join("wheels")).unwrap())
            .flatten();
        for dir in dirs {
            for p in read_series(&dir.path()).unwrap() {
                let text = fs::read_to_string(&p).unwrap();
                let header = text.split("diff --git").next().unwrap();
                for field in ["What:", "Why:"] {
                    assert!(
                        header.contains(field),
                        "{} lacks a '{field}' header",
                        p.display()
                    );
                }
            }
        }
    }
}
