//! `cargo xtask repro`: builds the selection twice — once from the usual
//! cache, once from scratch in a fresh cache at another path, later — and
//! compares every artifact's sha256. When an archive differs, the members
//! that differ are named, so the leak can be found.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::pipeline::Options;
use crate::util::{sha256_file, Cache};

pub fn run(opts: &Options, keep: bool) -> Result<()> {
    let cache = Cache::from_env()?;
    let scratch = crate::cache::tempdir_in(&cache.dir("repro")?)?;
    // A longer, different path for the second cache catches any build path
    // that leaks into an artifact.
    let second_cache = scratch
        .path()
        .join("second-build-in-another-directory/cache");
    // Downloads are inputs, not outputs: sharing them (they are verified
    // again on use) spares the network, not the build.
    let shared = crate::cache::share_inputs(&cache, &second_cache)?;
    eprintln!(
        "tlsforge repro: the second cache starts with the first's {shared} verified input files"
    );
    let builds = [
        (
            "first (usual cache)",
            cache.root.clone(),
            scratch.path().join("dist-1"),
        ),
        (
            "second (empty cache elsewhere)",
            second_cache.clone(),
            scratch.path().join("dist-2"),
        ),
    ];
    for (what, cache_root, dist) in &builds {
        eprintln!(
            "tlsforge repro: {what} build, cache {}",
            cache_root.display()
        );
        let start = Instant::now();
        let cx = crate::pipeline::BuildContext {
            recipes: crate::recipes::Recipes::load()?,
            cache: Cache {
                root: cache_root.clone(),
            },
            dist: dist.clone(),
        };
        let before = crate::fetch::downloads_so_far();
        crate::pipeline::build_in(&cx, opts).with_context(|| format!("the {what} build failed"))?;
        eprintln!(
            "tlsforge repro: the {what} build downloaded {} file(s)",
            crate::fetch::downloads_so_far() - before
        );
        eprintln!(
            "tlsforge repro: {what} build took {:.1}s",
            start.elapsed().as_secs_f64()
        );
    }
    let first = digests(&builds[0].2)?;
    let second = digests(&builds[1].2)?;
    let mut differ = Vec::new();
    println!("{:<72} {:<16} {:<16}", "artifact", "first", "second");
    for (name, a) in &first {
        let b = second.get(name).map(String::as_str).unwrap_or("missing");
        println!("{name:<72} {:<16} {:<16}", &a[..16], &b[..b.len().min(16)]);
        if a != b {
            differ.push(name.clone());
        }
    }
    for name in second.keys().filter(|n| !first.contains_key(*n)) {
        println!("{name:<72} {:<16} present", "missing");
        differ.push(name.clone());
    }
    if differ.is_empty() {
        println!("reproducible: {} artifacts byte-identical", first.len());
        if !keep {
            drop(scratch);
        } else {
            eprintln!("kept {}", scratch.keep().display());
        }
        return Ok(());
    }
    for name in differ.iter().filter(|n| n.ends_with(".tar.gz")) {
        let members = differing_members(&builds[0].2.join(name), &builds[1].2.join(name))?;
        eprintln!("{name}: {} members differ:", members.len());
        for m in members.iter().take(20) {
            eprintln!("  {m}");
        }
    }
    let kept = scratch.keep();
    bail!(
        "{} of {} artifacts differ; both builds are kept under {}",
        differ.len(),
        first.len(),
        kept.display()
    )
}

fn digests(dist: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(dist).with_context(|| format!("reading {}", dist.display()))? {
        let p = e?.path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_file() && name != "SHA256SUMS" {
            out.insert(name, sha256_file(&p)?);
        }
    }
    Ok(out)
}

/// Member path → sha256 of its header-relevant fields and contents.
fn members(archive: &Path) -> Result<BTreeMap<PathBuf, String>> {
    let file = fs::File::open(archive)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = BTreeMap::new();
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_path_buf();
        let header = format!(
            "{:o} {} {:?}",
            entry.header().mode()?,
            entry.header().mtime()?,
            entry.link_name()?
        );
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        bytes.extend_from_slice(header.as_bytes());
        out.insert(path, crate::util::sha256_bytes(&bytes));
    }
    Ok(out)
}

fn differing_members(a: &Path, b: &Path) -> Result<Vec<String>> {
    let (ma, mb) = (members(a)?, members(b)?);
    let mut out = Vec::new();
    for (p, d) in &ma {
        match mb.get(p) {
            Some(e) if e == d => {}
            Some(_) => out.push(format!("{} (contents or header)", p.display())),
            None => out.push(format!("{} (only in the first)", p.display())),
        }
    }
    for p in mb.keys().filter(|p| !ma.contains_key(*p)) {
        out.push(format!("{} (only in the second)", p.display()));
    }
    Ok(out)
}
