//! Stage 2, extract: unpack a verified `.tar.gz`/`.tgz`/`.tar.xz` into a
//! directory, dropping the archive's top-level folder.
//!
//! Every entry is checked before anything is written: absolute paths, `..`
//! components, links pointing outside the tree and special files are refused
//! with an error naming the entry. Callers extract into a fresh temporary
//! directory, so a refused archive leaves nothing behind.

use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

pub fn open_archive(path: &Path) -> Result<tar::Archive<Box<dyn Read>>> {
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let reader: Box<dyn Read> = if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)))
    } else if name.ends_with(".tar.xz") {
        Box::new(liblzma::read::XzDecoder::new(std::io::BufReader::new(file)))
    } else {
        bail!("{name}: unsupported archive type (expected .tar.gz, .tgz or .tar.xz)");
    };
    Ok(tar::Archive::new(reader))
}

/// Normalises `p` lexically; `None` if it climbs above its starting point.
fn normalise(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// The entry's path inside the tree, top-level folder stripped.
fn inner_path(raw: &Path) -> Result<Option<PathBuf>> {
    if raw.is_absolute() {
        bail!("absolute path");
    }
    if raw.components().any(|c| c == Component::ParentDir) {
        bail!("path contains '..'");
    }
    let mut comps = raw.components().filter(|c| *c != Component::CurDir);
    comps.next(); // the archive's top-level folder, e.g. Python-3.13.5/
    let rest: PathBuf = comps.collect();
    Ok((!rest.as_os_str().is_empty()).then_some(rest))
}

pub fn extract(archive_path: &Path, dest: &Path) -> Result<()> {
    let mut archive = open_archive(archive_path)?;
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    fs::create_dir_all(dest)?;
    let name = archive_path.display();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let refuse =
            |why: String| anyhow::anyhow!("{name}: refusing entry '{}': {why}", raw.display());
        let Some(rel) = inner_path(&raw).map_err(|e| refuse(e.to_string()))? else {
            continue;
        };
        let kind = entry.header().entry_type();
        use tar::EntryType::*;
        match kind {
            Regular | Directory | Continuous | GNULongName | XGlobalHeader | XHeader => {}
            Symlink => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| refuse("symlink without target".into()))?;
                if target.is_absolute() {
                    return Err(refuse(format!(
                        "symlink to absolute path {}",
                        target.display()
                    )));
                }
                let joined = rel.parent().unwrap_or(Path::new("")).join(&target);
                if normalise(&joined).is_none() {
                    return Err(refuse(format!(
                        "symlink {} points outside the tree",
                        target.display()
                    )));
                }
            }
            Link => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| refuse("hard link without target".into()))?;
                let target_rel =
                    inner_path(&target).map_err(|e| refuse(format!("hard link target: {e}")))?;
                if target_rel.is_none() {
                    return Err(refuse("hard link to the archive root".into()));
                }
            }
            other => return Err(refuse(format!("unsupported entry type {other:?}"))),
        }
        if matches!(kind, XGlobalHeader | XHeader) {
            continue;
        }
        let out = dest.join(&rel);
        // No write may pass through a symlink that an earlier entry created.
        let mut walk = dest.to_path_buf();
        for c in rel.parent().unwrap_or(Path::new("")).components() {
            walk.push(c);
            if walk
                .symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink())
            {
                return Err(refuse(format!("parent {} is a symlink", walk.display())));
            }
        }
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent)?;
        }
        if kind == Link {
            let target = dest.join(inner_path(&entry.link_name()?.unwrap())?.unwrap());
            let _ = fs::remove_file(&out);
            fs::hard_link(&target, &out).with_context(|| format!("linking {}", out.display()))?;
            continue;
        }
        entry
            .unpack(&out)
            .with_context(|| format!("{name}: unpacking '{}'", raw.display()))?;
    }
    Ok(())
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Builds a .tar.gz from (path, kind, data-or-link-target) triples.
    pub fn make_tgz(dir: &Path, entries: &[(&str, char, &str)]) -> PathBuf {
        let path = dir.join("test.tar.gz");
        let gz = flate2::write::GzEncoder::new(
            fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        for (p, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            // Write the name bytes raw: tar's safe setters refuse '..' and '/',
            // and the point here is to build hostile archives.
            let name = p.as_bytes();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_mode(0o644);
            match kind {
                'f' => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(data.len() as u64);
                    h.set_cksum();
                    b.append(&h, data.as_bytes()).unwrap();
                }
                'd' => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    h.set_cksum();
                    b.append(&h, &[][..]).unwrap();
                }
                'l' | 'h' => {
                    h.set_entry_type(if *kind == 'l' {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    });
                    h.set_size(0);
                    let t = data.as_bytes();
                    h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
                    h.set_cksum();
                    b.append(&h, &[][..]).unwrap();
                }
                _ => unreachable!(),
            }
        }
        b.into_inner().unwrap().finish().unwrap();
        path
    }

    fn try_extract(entries: &[(&str, char, &str)]) -> (tempfile::TempDir, Result<()>) {
        let dir = tempfile::tempdir().unwrap();
        let tgz = make_tgz(dir.path(), entries);
        let r = extract(&tgz, &dir.path().join("out"));
        (dir, r)
    }

    #[test]
    fn good_archive_extracts_without_top_folder() {
        let (dir, r) = try_extract(&[
            ("Python-9/", 'd', ""),
            ("Python-9/README", 'f', "hi"),
            ("Python-9/Lib/link", 'l', "../README"),
            ("Python-9/hard", 'h', "Python-9/README"),
        ]);
        r.unwrap();
        let out = dir.path().join("out");
        assert_eq!(fs::read_to_string(out.join("README")).unwrap(), "hi");
        assert_eq!(fs::read_to_string(out.join("Lib/link")).unwrap(), "hi");
        assert_eq!(fs::read_to_string(out.join("hard")).unwrap(), "hi");
    }

    #[test]
    fn dotdot_is_refused_by_name() {
        let (dir, r) = try_extract(&[("Python-9/../../evil", 'f', "x")]);
        let e = r.unwrap_err().to_string();
        assert!(e.contains("Python-9/../../evil") && e.contains(".."), "{e}");
        assert!(!dir.path().join("evil").exists());
    }

    #[test]
    fn absolute_path_is_refused() {
        let (_dir, r) = try_extract(&[("/tmp/tlsforge-abs-evil", 'f', "x")]);
        assert!(r.unwrap_err().to_string().contains("absolute"));
        assert!(!Path::new("/tmp/tlsforge-abs-evil").exists());
    }

    #[test]
    fn escaping_symlinks_are_refused() {
        for target in ["../../etc", "/etc/passwd", "a/../../.."] {
            let (_dir, r) = try_extract(&[("P/x", 'l', target)]);
            let e = r.unwrap_err().to_string();
            assert!(e.contains("P/x") && e.contains("symlink"), "{target}: {e}");
        }
    }

    #[test]
    fn write_through_an_inner_symlink_is_refused() {
        // Even a link that stays inside must not become a path for later writes.
        let (_dir, r) =
            try_extract(&[("P/sub", 'd', ""), ("P/l", 'l', "sub"), ("P/l/f", 'f', "x")]);
        assert!(r.unwrap_err().to_string().contains("is a symlink"));
    }

    #[test]
    fn hard_link_outside_is_refused() {
        let (_dir, r) = try_extract(&[("P/h", 'h', "../../etc/passwd")]);
        assert!(r.unwrap_err().to_string().contains("hard link"));
    }
}
