//! Fetch → extract → patch, composed: a verified, patched source tree in the
//! cache, keyed by the tarball's digest and the patches' contents. The tree
//! is assembled in a temporary directory and renamed into place only when
//! every patch applied, so a failed patch never leaves a half-patched tree.

use anyhow::{Context, Result};
use std::path::PathBuf;

use crate::fetch;
use crate::recipes::Source;
use crate::util::{commit_dir, is_complete, mark_complete, sha256_file, Cache, KeyBuilder};
use crate::{extract, patch};

pub struct Tree {
    pub path: PathBuf,
    pub key: String,
    /// (patch file name, sha256) in the order applied.
    pub patches: Vec<(String, String)>,
    pub fetched_from: fetch::Origin,
    pub cache_hit: bool,
}

pub fn prepare(
    cache: &Cache,
    src: &Source,
    patches: &[PathBuf],
    mirrors: &[String],
    name: &str,
) -> Result<Tree> {
    let fetched = fetch::fetch(cache, src, mirrors)?;
    let mut key = KeyBuilder::new("source-tree");
    key.add("tarball", &src.sha256);
    let mut applied = Vec::new();
    for p in patches {
        let digest = sha256_file(p)?;
        key.add("patch", &digest);
        applied.push((p.file_name().unwrap().to_string_lossy().to_string(), digest));
    }
    let key = key.finish();
    let dest = cache.dir("src")?.join(format!("{name}-{key}"));
    let cache_hit = is_complete(&dest);
    if !cache_hit {
        let tmp = tempfile::tempdir_in(cache.dir("src")?)?;
        let tree = tmp.path().join("tree");
        extract::extract(&fetched.path, &tree)?;
        patch::apply_series(&tree, patches).with_context(|| format!("patching {name}"))?;
        mark_complete(&tree)?;
        commit_dir(&tree, &dest)?;
    }
    Ok(Tree {
        path: dest,
        key,
        patches: applied,
        fetched_from: fetched.origin,
        cache_hit,
    })
}
