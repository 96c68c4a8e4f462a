//! Fetch → extract → patch, composed: a verified, patched source tree in the
//! cache, keyed by the tarball's digest and the patches' contents. The tree
//! is assembled in a temporary directory and renamed into place only when
//! every patch applied, so a failed patch never leaves a half-patched tree.
//! Bundled wheels (ensurepip's pip) are rebuilt in the same temporary tree.

use anyhow::{Context, Result};
use std::path::PathBuf;

use crate::fetch;
use crate::recipes::{BundledWheel, Source};
use crate::util::{commit_dir, is_complete, mark_complete, sha256_file, Cache, KeyBuilder};
use crate::{extract, patch, wheels};

pub struct Tree {
    pub path: PathBuf,
    pub key: String,
    /// (patch file name, sha256) in the order applied.
    pub patches: Vec<(String, String)>,
    /// The bundled wheels rebuilt in this tree.
    pub wheels: Vec<wheels::Rebuilt>,
    pub fetched_from: fetch::Origin,
    pub cache_hit: bool,
}

pub fn prepare(
    cache: &Cache,
    src: &Source,
    patches: &[PathBuf],
    bundled_wheels: &[BundledWheel],
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
    wheels::add_to_key(&mut key, bundled_wheels)?;
    let key = key.finish();
    let dest = cache.dir("src")?.join(format!("{name}-{key}"));
    crate::cache::note_use(&dest);
    let cache_hit = is_complete(&dest);
    if !cache_hit {
        let tmp = crate::cache::tempdir_in(cache.dir("src")?)?;
        let tree = tmp.path().join("tree");
        extract::extract(&fetched.path, &tree)?;
        patch::apply_series(&tree, patches).with_context(|| format!("patching {name}"))?;
        wheels::rebuild_all(&tree, bundled_wheels).with_context(|| format!("patching {name}"))?;
        mark_complete(&tree)?;
        commit_dir(&tree, &dest)?;
    }
    let wheels = wheels::describe(&dest, bundled_wheels)?;
    Ok(Tree {
        wheels,
        path: dest,
        key,
        patches: applied,
        fetched_from: fetched.origin,
        cache_hit,
    })
}
