//! Stage 7, package: a deterministic `install_only` archive in `dist/`
//! (sorted entries, fixed owner and mtime, gzip without a timestamp), the
//! manifest inside it as `python/PYTHON.json` and beside it, and SHA256SUMS.

use anyhow::{Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::manifest::{Identity, LinkMode, Manifest, PythonPaths};
use crate::recipes::{Flavour, Packaging, Toolchain};
use crate::util::sha256_file;

/// `SOURCE_DATE_EPOCH` if set, else a fixed date, so archives don't carry
/// the time of the build.
pub fn source_date_epoch() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_700_000_000)
}

/// The local version label: "tlsforge", or "tlsforge.openssl35" for a
/// non-default OpenSSL.
pub fn local_label(openssl_choice: &str, default_choice: &str) -> String {
    if openssl_choice == default_choice {
        "tlsforge".to_string()
    } else {
        format!("tlsforge.openssl{}", openssl_choice.replace('.', ""))
    }
}

pub fn archive_name(
    version: &str,
    openssl_choice: &str,
    default_choice: &str,
    triple: &str,
    flavour: &str,
) -> String {
    format!(
        "cpython-{version}+{}-{triple}-{flavour}.tar.gz",
        local_label(openssl_choice, default_choice)
    )
}

/// What goes into one flavour's archive: which installed files, and which
/// of them are replaced by a stripped copy.
pub struct Contents<'a> {
    pub root: &'a Path,
    pub flavour: &'a Flavour,
    pub packaging: &'a Packaging,
    /// install-root-relative path → stripped copy (for `strip` flavours).
    pub stripped: &'a BTreeMap<PathBuf, PathBuf>,
}

impl Contents<'_> {
    fn includes(&self, rel: &Path) -> bool {
        let left_out = (self.flavour.without_tests && self.packaging.is_test_path(rel))
            || crate::recipes::matches_any(&self.flavour.exclude, rel);
        !left_out
    }
    fn source_of(&self, rel: &Path) -> PathBuf {
        match (self.flavour.strip, self.stripped.get(rel)) {
            (true, Some(copy)) => copy.clone(),
            _ => self.root.join(rel),
        }
    }
}

/// Stripped copies (symbol tables removed) of every executable and shared
/// object under `root`, written into `dir` by `strip`, one per CPU at a time.
pub fn stripped_copies(root: &Path, dir: &Path, strip: &str) -> Result<BTreeMap<PathBuf, PathBuf>> {
    let files: Vec<PathBuf> = crate::validate::elf_files(root)?
        .into_iter()
        .filter(|p| !p.extension().is_some_and(|e| e == "o" || e == "a"))
        .collect();
    let pairs = crate::util::par_map(&files, |file| {
        let rel = file.strip_prefix(root)?.to_path_buf();
        let copy = dir.join(crate::util::sha256_bytes(rel.to_string_lossy().as_bytes()));
        let status = std::process::Command::new(strip)
            .arg("--strip-all")
            .arg("-o")
            .arg(&copy)
            .arg(file)
            .status()
            .with_context(|| format!("running {strip}"))?;
        if !status.success() {
            anyhow::bail!("{strip} --strip-all {} failed", file.display());
        }
        Ok((rel, copy))
    })?;
    Ok(pairs.into_iter().collect())
}

/// Every path under `root`, relative, sorted, directories before contents.
fn walk_sorted(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut children: Vec<PathBuf> = fs::read_dir(root.join(&rel))?
            .map(|e| e.map(|e| rel.join(e.file_name())))
            .collect::<std::io::Result<_>>()?;
        children.sort();
        for c in children.into_iter().rev() {
            let meta = fs::symlink_metadata(root.join(&c))?;
            if meta.is_dir() {
                stack.push(c.clone());
            }
            out.push(c);
        }
    }
    out.sort();
    Ok(out)
}

/// Writes `root` as `python/...` plus `python/PYTHON.json` into `dest`,
/// atomically (temporary file, then rename).
pub fn write_archive(root: &Path, manifest: &Value, dest: &Path) -> Result<()> {
    let everything = Flavour {
        name: "install_only".into(),
        description: String::new(),
        without_tests: false,
        strip: false,
        exclude: vec![],
        gzip_level: 6,
    };
    let packaging = Packaging {
        flavour: vec![],
        test_dirs: vec![],
        package_gzip_level: 6,
        zstd_level: None,
        maintainer: String::new(),
        install_prefix: String::new(),
    };
    write_flavour(
        &Contents {
            root,
            flavour: &everything,
            packaging: &packaging,
            stripped: &BTreeMap::new(),
        },
        manifest,
        dest,
    )
}

/// Every flavour's archive, manifest and SBOM, the archives written side
/// by side (one thread each; gzip is the cost).
pub fn write_flavours(
    root: &Path,
    packaging: &Packaging,
    archives: &[(String, PathBuf)],
    manifest: &Manifest,
    cache: &crate::util::Cache,
    tc: &Toolchain,
) -> Result<()> {
    let scratch = crate::cache::tempdir_in(cache.dir("cpython")?)?;
    let strip = strip_tool(tc);
    let stripped = match (&strip, packaging.flavour.iter().any(|f| f.strip)) {
        (Some(tool), true) => stripped_copies(root, scratch.path(), tool)?,
        _ => BTreeMap::new(),
    };
    std::thread::scope(|scope| -> Result<()> {
        let mut handles = Vec::new();
        for flavour in &packaging.flavour {
            if flavour.strip && strip.is_none() {
                eprintln!(
                    "tlsforge: no {} archive for {}: no strip tool here for {} files",
                    flavour.name, tc.triple, tc.binary_format
                );
                continue;
            }
            let (_, dest) = archives
                .iter()
                .find(|(f, _)| *f == flavour.name)
                .context("internal: an archive path per flavour")?;
            let stripped = &stripped;
            handles.push(scope.spawn(move || -> Result<()> {
                let mut manifest = manifest.clone();
                manifest.id.format = format!("tlsforge-{}", flavour.name);
                manifest.flavour = Some(flavour.clone());
                let sbom = crate::sbom::cyclonedx(&manifest);
                let manifest = manifest.to_json()?;
                let contents = Contents {
                    root,
                    flavour,
                    packaging,
                    stripped,
                };
                write_flavour(&contents, &manifest, dest)?;
                let beside = write_manifest_beside(dest, &manifest)?;
                write_json(&beside.with_extension("cdx.json"), &sbom)
            }));
        }
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("an archive writer panicked"))??;
        }
        Ok(())
    })
}

/// binutils' strip reads this machine's ELF files; other formats and
/// architectures get no stripped archive for now.
fn strip_tool(tc: &Toolchain) -> Option<String> {
    (tc.binary_format == crate::recipes::BinaryFormat::Elf && tc.runs_here())
        .then(|| "strip".to_string())
}

/// One flavour's archive of `contents`, written like `write_archive`.
pub fn write_flavour(contents: &Contents, manifest: &Value, dest: &Path) -> Result<()> {
    let root = contents.root;
    let mtime = source_date_epoch();
    let parent = dest.parent().unwrap();
    fs::create_dir_all(parent)?;
    let tmp = crate::cache::tempfile_in(parent)?;
    let gz = flate2::GzBuilder::new().mtime(0).write(
        tmp.as_file(),
        flate2::Compression::new(contents.flavour.gzip_level),
    );
    // The same tar stream into zstd too, when asked: one walk, two files.
    let tmp_zst = match contents.packaging.zstd_level {
        Some(_) => Some(crate::cache::tempfile_in(parent)?),
        None => None,
    };
    let zst = match (&tmp_zst, contents.packaging.zstd_level) {
        (Some(t), Some(level)) => Some(zstd::stream::write::Encoder::new(t.as_file(), level)?),
        _ => None,
    };
    let mut tar = tar::Builder::new(BothCompressors { gz, zst });
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);
    let header_for = |meta: &fs::Metadata| {
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(meta, tar::HeaderMode::Deterministic);
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        h
    };
    for rel in walk_sorted(root)? {
        if rel
            .file_name()
            .is_some_and(|n| n == crate::util::COMPLETE_MARKER)
        {
            continue;
        }
        if !contents.includes(&rel) {
            continue;
        }
        let full = contents.source_of(&rel);
        let meta = fs::symlink_metadata(&full)?;
        let name = Path::new("python").join(&rel);
        let mut h = header_for(&meta);
        if meta.file_type().is_symlink() {
            h.set_size(0);
            tar.append_link(&mut h, &name, fs::read_link(&full)?)?;
        } else if meta.is_dir() {
            h.set_size(0);
            tar.append_data(&mut h, &name, std::io::empty())?;
        } else {
            tar.append_data(&mut h, &name, fs::File::open(&full)?)?;
        }
    }
    let manifest_bytes = serde_json::to_vec_pretty(manifest)?;
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_mtime(mtime);
    h.set_size(manifest_bytes.len() as u64);
    tar.append_data(&mut h, "python/PYTHON.json", manifest_bytes.as_slice())?;
    let BothCompressors { gz, zst } = tar.into_inner()?;
    gz.finish()?;
    if let Some(z) = zst {
        z.finish()?;
    }
    if let Some(t) = tmp_zst {
        t.as_file().sync_all()?;
        publish(t, &zst_path(dest))?;
    }
    tmp.as_file().sync_all()?;
    publish(tmp, dest)
}

/// `<name>.tar.zst` beside `<name>.tar.gz`.
pub fn zst_path(gz: &Path) -> PathBuf {
    PathBuf::from(format!(
        "{}.tar.zst",
        gz.display().to_string().trim_end_matches(".tar.gz")
    ))
}

/// What the tar builder writes, fed to gzip and (optionally) zstd.
struct BothCompressors<G: Write, Z: Write> {
    gz: G,
    zst: Option<Z>,
}

impl<G: Write, Z: Write> Write for BothCompressors<G, Z> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.gz.write_all(buf)?;
        if let Some(z) = &mut self.zst {
            z.write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.gz.flush()?;
        if let Some(z) = &mut self.zst {
            z.flush()?;
        }
        Ok(())
    }
}

/// Moves a finished temporary file into dist/, readable by everyone (a
/// temporary file is created 0600).
fn publish(tmp: tempfile::NamedTempFile, dest: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))?;
    tmp.persist(dest)
        .with_context(|| format!("writing {}", dest.display()))?;
    Ok(())
}

/// Rewrites `dist/SHA256SUMS` from every archive, .deb and manifest present.
pub fn write_sha256sums(dist: &Path) -> Result<()> {
    let mut sums = BTreeMap::new();
    for e in fs::read_dir(dist)? {
        let p = e?.path();
        let n = p.file_name().unwrap().to_string_lossy().to_string();
        if n.ends_with(".tar.gz")
            || n.ends_with(".tar.zst")
            || n.ends_with(".deb")
            || n.ends_with(".rpm")
            || (n.starts_with("cpython-") && n.ends_with(".json"))
        {
            sums.insert(n, sha256_file(&p)?);
        }
    }
    let mut tmp = crate::cache::tempfile_in(dist)?;
    for (n, s) in &sums {
        writeln!(tmp, "{s}  {n}")?;
    }
    publish(tmp, &dist.join("SHA256SUMS"))
}

/// The manifest that sits beside an archive: `<name>.json` for `<name>.tar.gz`.
pub fn manifest_path(archive: &Path) -> PathBuf {
    PathBuf::from(format!(
        "{}.json",
        archive.display().to_string().trim_end_matches(".tar.gz")
    ))
}

pub fn write_manifest_beside(dest_archive: &Path, manifest: &Value) -> Result<PathBuf> {
    let path = manifest_path(dest_archive);
    write_json(&path, manifest)?;
    Ok(path)
}

/// Writes pretty JSON atomically, world-readable.
pub fn write_json(path: &Path, value: &Value) -> Result<()> {
    let mut tmp = crate::cache::tempfile_in(path.parent().unwrap())?;
    tmp.write_all(&serde_json::to_vec_pretty(value)?)?;
    publish(tmp, path)
}

/// Bump when what `package` writes changes, so dist/ is rewritten (an
/// edited flavour of recipes/packaging.toml repackages by itself: each
/// archive's manifest records the flavour it was written with).
pub const PACKAGE_REVISION: u32 = 11;

/// What `sysconfig.get_platform()` says on the target (wheel tags follow it).
fn platform_tag(tc: &Toolchain) -> String {
    match (tc.os, &tc.min_os) {
        (crate::recipes::Os::Macos, Some(min)) => {
            let arch = if tc.arch == "aarch64" {
                "arm64"
            } else {
                &tc.arch
            };
            format!("macosx-{min}-{arch}")
        }
        _ => format!("{}_{}", tc.os, tc.arch),
    }
}

/// The fields every manifest has, for this interpreter on this target.
pub fn manifest_base(version: &str, tc: &Toolchain, python2: bool) -> Identity {
    let short: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
    let nodot = short.replace('.', "");
    // 2.7 is built with --enable-unicode=ucs4: its ABI tag is cp27mu.
    let abi = if python2 {
        format!("cp{nodot}mu")
    } else {
        format!("cp{nodot}")
    };
    let stdlib = format!("lib/python{short}");
    Identity {
        manifest_version: "8".into(),
        format: "tlsforge-install_only".into(),
        target_triple: tc.triple.clone(),
        python_version: version.into(),
        python_major_minor_version: short.clone(),
        python_tag: format!("cp{nodot}"),
        python_abi_tag: abi,
        python_platform_tag: platform_tag(tc),
        python_exe: format!("bin/python{}", if python2 { "2" } else { "3" }),
        python_stdlib: stdlib.clone(),
        python_paths: PythonPaths {
            stdlib: stdlib.clone(),
            platstdlib: stdlib.clone(),
            purelib: format!("{stdlib}/site-packages"),
            platlib: format!("{stdlib}/site-packages"),
            include: format!("include/python{short}"),
            scripts: "bin".into(),
            data: String::new(),
        },
        link_mode: if tc.fully_static {
            LinkMode::Static
        } else {
            LinkMode::StaticLibs
        },
        tlsforge_package_revision: PACKAGE_REVISION,
        build_date_epoch: source_date_epoch(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zst_beside_the_gz_holds_the_same_members() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("r");
        fs::create_dir_all(root.join("lib")).unwrap();
        fs::write(root.join("lib/a.py"), "x = 1\n".repeat(1000)).unwrap();
        std::os::unix::fs::symlink("a.py", root.join("lib/b.py")).unwrap();
        let flavour = Flavour {
            name: "install_only".into(),
            description: String::new(),
            without_tests: false,
            strip: false,
            exclude: vec![],
            gzip_level: 3,
        };
        let mut packaging = Packaging {
            flavour: vec![],
            test_dirs: vec![],
            package_gzip_level: 3,
            zstd_level: Some(3),
            maintainer: String::new(),
            install_prefix: String::new(),
        };
        let contents = |p: &Packaging| -> Vec<(String, Vec<u8>)> {
            let dest = d.path().join("out/x.tar.gz");
            let stripped = BTreeMap::new();
            let c = Contents {
                root: &root,
                flavour: &flavour,
                packaging: p,
                stripped: &stripped,
            };
            write_flavour(&c, &serde_json::json!({"a": 1}), &dest).unwrap();
            let read = |r: Box<dyn std::io::Read>| -> Vec<(String, Vec<u8>)> {
                let mut a = tar::Archive::new(r);
                a.entries()
                    .unwrap()
                    .map(|e| {
                        let mut e = e.unwrap();
                        let mut bytes = Vec::new();
                        std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
                        (e.path().unwrap().display().to_string(), bytes)
                    })
                    .collect()
            };
            let gz = read(Box::new(flate2::read::GzDecoder::new(
                fs::File::open(&dest).unwrap(),
            )));
            if p.zstd_level.is_some() {
                let zst = read(Box::new(
                    zstd::stream::read::Decoder::new(fs::File::open(zst_path(&dest)).unwrap())
                        .unwrap(),
                ));
                assert_eq!(gz, zst);
            } else {
                assert!(!zst_path(&dest).exists());
            }
            gz
        };
        let members = contents(&packaging);
        let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "python/lib",
                "python/lib/a.py",
                "python/lib/b.py",
                "python/PYTHON.json"
            ]
        );
        let _ = fs::remove_dir_all(d.path().join("out"));
        packaging.zstd_level = None;
        assert_eq!(contents(&packaging), members);
    }

    #[test]
    fn archive_is_byte_identical_across_runs_and_mtimes() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("r");
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::write(root.join("bin/python3"), b"#!elf").unwrap();
        std::os::unix::fs::symlink("python3", root.join("bin/python")).unwrap();
        let m = serde_json::json!({"a": 1});
        write_archive(&root, &m, &d.path().join("one.tar.gz")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        fs::write(root.join("bin/python3"), b"#!elf").unwrap(); // new mtime
        write_archive(&root, &m, &d.path().join("two.tar.gz")).unwrap();
        assert_eq!(
            sha256_file(&d.path().join("one.tar.gz")).unwrap(),
            sha256_file(&d.path().join("two.tar.gz")).unwrap()
        );
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(
            fs::File::open(d.path().join("one.tar.gz")).unwrap(),
        ));
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "python/bin",
                "python/bin/python",
                "python/bin/python3",
                "python/PYTHON.json"
            ]
        );
    }

    #[test]
    fn names_follow_the_convention() {
        assert_eq!(
            archive_name(
                "3.13.5",
                "4.0",
                "4.0",
                "x86_64-unknown-linux-gnu",
                "install_only"
            ),
            "cpython-3.13.5+tlsforge-x86_64-unknown-linux-gnu-install_only.tar.gz"
        );
        assert!(
            archive_name("2.7.18", "3.5", "4.0", "t", "full").contains("+tlsforge.openssl35-t-")
        );
    }
}
