//! A `.deb` per Linux artifact, built with Debian's own `dpkg-deb`: it
//! installs the interpreter under /opt/tlsforge/cpython-<version> (the prefix
//! it was configured for) and touches nothing of the system Python.

use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::recipes::Toolchain;
use crate::util::link_tree;

/// Whether a Linux package (.deb, .rpm) is made for this target at all: a
/// fully static (musl) build is shipped as a tarball only, since its
/// package would share the glibc build's name and install path.
pub fn packaged_for(tc: &Toolchain, builder: &str) -> bool {
    tc.os == crate::recipes::Os::Linux
        && !tc.fully_static
        && Command::new(builder).arg("--version").output().is_ok()
}

pub fn available(tc: &Toolchain) -> bool {
    tc.debian_arch.is_some() && packaged_for(tc, "dpkg-deb")
}

/// Package name per minor version, so 2.7 and 3.13 install side by side.
pub fn package_name(version: &str) -> String {
    let short: Vec<&str> = version.split('.').take(2).collect();
    format!("tlsforge-cpython{}", short.join("."))
}

/// Where `build` puts the `.deb` for this version in `dest`.
pub fn path_for(dest: &Path, version: &str, label: &str, tc: &Toolchain) -> Option<PathBuf> {
    let arch = tc.debian_arch.as_deref()?;
    Some(dest.join(format!(
        "{}_{version}-1+{label}_{arch}.deb",
        package_name(version)
    )))
}

/// Installs `deb` with dpkg (root only) and returns the package name, so the
/// caller can remove it again.
pub fn install(deb: &Path, version: &str) -> Result<String> {
    let out = Command::new("dpkg")
        .arg("-i")
        .arg(deb)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .context("running dpkg -i (installing a .deb needs root and dpkg)")?;
    if !out.status.success() {
        bail!(
            "dpkg -i {} failed: {}",
            deb.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(package_name(version))
}

pub fn remove(package: &str) -> Result<()> {
    let out = Command::new("dpkg")
        .args(["--purge", package])
        .output()
        .context("running dpkg --purge")?;
    if !out.status.success() {
        bail!(
            "dpkg --purge {package} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// `label` is the archive's local version label ("tlsforge", or
/// "tlsforge.openssl35"), so builds against different OpenSSLs don't collide.
pub fn build(root: &Path, meta: &crate::rpm::Meta, tc: &Toolchain, dest: &Path) -> Result<PathBuf> {
    let crate::rpm::Meta {
        version,
        label,
        prefix,
        max_glibc,
        gzip_level,
        maintainer,
        ..
    } = *meta;
    let arch = tc
        .debian_arch
        .as_deref()
        .context("no Debian architecture for this target")?;
    // Staged beside the build as hard links (dpkg-deb only reads them).
    let work =
        crate::cache::tempdir_in(root.parent().context("the installed tree has no parent")?)?;
    let stage = work.path().join("stage");
    let target = stage.join(prefix.trim_start_matches('/'));
    fs::create_dir_all(target.parent().unwrap())?;
    link_tree(root, &target)?;
    fs::remove_file(target.join(crate::util::COMPLETE_MARKER)).ok();
    fs::create_dir_all(stage.join("DEBIAN"))?;
    let depends = max_glibc
        .map(|g| format!("Depends: libc6 (>= {g})\n"))
        .unwrap_or_default();
    let control = format!(
        "Package: {}\nVersion: {version}-1+{label}\nArchitecture: {arch}\nMaintainer: {maintainer}\n{depends}\
         Section: interpreters\nPriority: optional\nDescription: CPython {version} with OpenSSL linked in statically (tlsforge)\n \
         Installed under {prefix}; does not replace or touch the system Python.\n",
        package_name(version)
    );
    fs::write(stage.join("DEBIAN/control"), control)?;
    let deb = path_for(dest, version, label, tc).context("no .deb for this target")?;
    let tmp_deb = crate::cache::tempfile_in(dest)?.into_temp_path();
    let out = Command::new("dpkg-deb")
        .args([
            "--root-owner-group",
            "-Zgzip",
            &format!("-z{gzip_level}"),
            "--build",
        ])
        .arg(&stage)
        .arg(&tmp_deb)
        .env(
            "SOURCE_DATE_EPOCH",
            crate::package::source_date_epoch().to_string(),
        )
        .output()
        .context("running dpkg-deb")?;
    if !out.status.success() {
        bail!("dpkg-deb failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    tmp_deb.persist(&deb)?;
    fs::set_permissions(&deb, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    Ok(deb)
}
