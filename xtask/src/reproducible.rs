//! Same inputs, same bytes: what keeps the build machine's paths and clock
//! out of an interpreter, and `cargo xtask repro`, which proves it by
//! building twice in different directories and comparing digests.
//!
//! - Compilers see `-ffile-prefix-map`, so debug info and `__FILE__` name
//!   `/tlsforge/build/…` and `/tlsforge/cache/…` instead of our temp dirs.
//! - `SOURCE_DATE_EPOCH` is set for every child: gcc's `__DATE__`, OpenSSL's
//!   "built on", dpkg-deb's timestamps, and 3.x's pyc files (which then use
//!   checked hashes instead of source mtimes) all follow it.
//! - Text files that record the build (sysconfig data, Makefile,
//!   python-config) have those paths rewritten after `make install`; 2.7's
//!   pyc headers get the fixed mtime every file in the archive carries.

use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use crate::util::files_under;

/// What a build directory is called inside the artifacts.
pub const BUILD_DIR_ALIAS: &str = "/tlsforge/build";
/// What the cache root is called inside the artifacts.
pub const CACHE_ALIAS: &str = "/tlsforge/cache";

/// The path rewrites for one build, most specific first.
pub fn rewrites(cache_root: &Path, work: &Path) -> Vec<(String, String)> {
    vec![
        (work.display().to_string(), BUILD_DIR_ALIAS.to_string()),
        (cache_root.display().to_string(), CACHE_ALIAS.to_string()),
    ]
}

/// Every directory of the build machine `rewrites` knows, and their aliases.
pub fn build_dirs(rewrites: &[(String, String)]) -> Vec<String> {
    rewrites
        .iter()
        .flat_map(|(from, to)| [from.clone(), to.clone()])
        .collect()
}

/// `-ffile-prefix-map` flags for `rewrites`. gcc tries the option given last
/// first, so the most specific mapping goes last.
pub fn prefix_map_flags(rewrites: &[(String, String)]) -> String {
    rewrites
        .iter()
        .rev()
        .map(|(from, to)| format!("-ffile-prefix-map={from}={to}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Makes `SOURCE_DATE_EPOCH` visible to every process we start.
pub fn export_source_date_epoch() {
    if std::env::var_os("SOURCE_DATE_EPOCH").is_none() {
        std::env::set_var(
            "SOURCE_DATE_EPOCH",
            crate::package::source_date_epoch().to_string(),
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && memchr::memmem::find(haystack, needle).is_some()
}

/// Rewrites build paths in every text file under `root` (a file without NUL
/// bytes); returns the files changed.
pub fn scrub_text_files(root: &Path, rewrites: &[(String, String)]) -> Result<Vec<PathBuf>> {
    let files = files_under(root, false)?;
    let changed = crate::util::par_map(&files, |path| scrub_one(path, rewrites))?;
    Ok(changed.into_iter().flatten().collect())
}

fn scrub_one(path: &Path, rewrites: &[(String, String)]) -> Result<Option<PathBuf>> {
    let bytes = fs::read(path)?;
    if bytes.contains(&0) || !rewrites.iter().any(|(f, _)| contains(&bytes, f.as_bytes())) {
        return Ok(None);
    }
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    for (from, to) in rewrites {
        text = text.replace(from.as_str(), to);
    }
    let mode = fs::metadata(path)?.permissions();
    fs::write(path, text)?;
    fs::set_permissions(path, mode)?;
    Ok(Some(path.to_path_buf()))
}

/// Files under `root` that still contain one of `needles`, e.g. a build
/// directory that no rewrite can reach inside a binary.
pub fn files_containing(root: &Path, needles: &[String]) -> Result<Vec<String>> {
    let files = files_under(root, false)?;
    let found = crate::util::par_map(&files, |path| {
        let bytes = fs::read(path)?;
        Ok(needles
            .iter()
            .find(|n| contains(&bytes, n.as_bytes()))
            .map(|n| {
                format!(
                    "{} embeds the build path {n} (in {:?})",
                    path.strip_prefix(root).unwrap_or(path).display(),
                    string_around(&bytes, n.as_bytes())
                )
            }))
    })?;
    Ok(found.into_iter().flatten().collect())
}

/// The printable run of bytes around the first `needle`, to show which
/// string carries the path (a DWARF name, a linker record, a config value).
fn string_around(bytes: &[u8], needle: &[u8]) -> String {
    let Some(at) = memchr::memmem::find(bytes, needle) else {
        return String::new();
    };
    let printable = |b: &u8| (0x20..0x7f).contains(b);
    let start = bytes[..at]
        .iter()
        .rposition(|b| !printable(b))
        .map_or(0, |i| i + 1)
        .max(at.saturating_sub(120));
    let end = bytes[at..]
        .iter()
        .position(|b| !printable(b))
        .map_or(bytes.len(), |i| at + i)
        .min(at + needle.len() + 120);
    String::from_utf8_lossy(&bytes[start..end]).to_string()
}

/// The compiled files that belong to `source` (2.7 and 3.x layouts).
pub fn bytecode_of(source: &Path) -> Vec<PathBuf> {
    let mut out = vec![source.with_extension("pyc"), source.with_extension("pyo")];
    if let (Some(dir), Some(stem)) = (source.parent(), source.file_stem()) {
        if let Ok(entries) = fs::read_dir(dir.join("__pycache__")) {
            let prefix = format!("{}.", stem.to_string_lossy());
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    out.push(e.path());
                }
            }
        }
    }
    out.retain(|p| p.exists());
    out
}

/// 2.7's pyc header is magic (4 bytes) + source mtime (4 bytes, LE); with
/// every file's mtime fixed at `epoch`, the header must say `epoch` too or
/// the pyc would be stale (and differ between builds).
pub fn fix_python2_pyc_mtimes(root: &Path, epoch: u64) -> Result<usize> {
    let mut n = 0;
    for path in files_under(root, false)? {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext != "pyc" && ext != "pyo" {
            continue;
        }
        let mut bytes = fs::read(&path)?;
        if bytes.len() < 8 || bytes[2..4] != [b'\r', b'\n'] {
            bail!("{} does not look like a pyc file", path.display());
        }
        bytes[4..8].copy_from_slice(&(epoch as u32).to_le_bytes());
        fs::write(&path, bytes)?;
        n += 1;
    }
    Ok(n)
}

/// Every file and directory under `root` gets mtime `epoch` (what the
/// archive records, so the installed tree matches the cached one).
pub fn set_mtimes(root: &Path, epoch: u64) -> Result<()> {
    let when = UNIX_EPOCH + Duration::from_secs(epoch);
    for path in files_under(root, false)? {
        fs::File::open(&path)?
            .set_modified(when)
            .with_context(|| format!("setting the mtime of {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_rewrites_text_and_reports_binaries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let work = cache.join("cpython/.tmpAbC/build");
        let rw = rewrites(&cache, &work);
        fs::write(
            dir.path().join("Makefile"),
            format!(
                "srcdir={}\nLDFLAGS=-L{}/deps/lib\n",
                work.display(),
                cache.display()
            ),
        )
        .unwrap();
        fs::write(
            dir.path().join("lib.so"),
            [b"\0ELF".as_slice(), work.display().to_string().as_bytes()].concat(),
        )
        .unwrap();
        let changed = scrub_text_files(dir.path(), &rw).unwrap();
        assert_eq!(changed, [dir.path().join("Makefile")]);
        let text = fs::read_to_string(dir.path().join("Makefile")).unwrap();
        assert_eq!(
            text,
            "srcdir=/tlsforge/build\nLDFLAGS=-L/tlsforge/cache/deps/lib\n"
        );
        let left: Vec<String> = rw.iter().map(|r| r.0.clone()).collect();
        let found = files_containing(dir.path(), &left).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("lib.so embeds"), "{found:?}");
    }

    #[test]
    fn most_specific_prefix_map_is_given_last() {
        let rw = rewrites(Path::new("/c"), Path::new("/c/cpython/.tmp1/build"));
        assert_eq!(
            prefix_map_flags(&rw),
            "-ffile-prefix-map=/c=/tlsforge/cache -ffile-prefix-map=/c/cpython/.tmp1/build=/tlsforge/build"
        );
    }

    #[test]
    fn python2_pyc_header_gets_the_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let pyc = dir.path().join("m.pyc");
        fs::write(&pyc, [0x03, 0xf3, b'\r', b'\n', 1, 2, 3, 4, 0xe3]).unwrap();
        assert_eq!(fix_python2_pyc_mtimes(dir.path(), 0x01020304).unwrap(), 1);
        assert_eq!(
            fs::read(&pyc).unwrap(),
            [0x03, 0xf3, b'\r', b'\n', 4, 3, 2, 1, 0xe3]
        );
        fs::write(&pyc, b"not a pyc").unwrap();
        assert!(fix_python2_pyc_mtimes(dir.path(), 1).is_err());
    }
}
