//! An `.rpm` per Linux artifact for the RHEL/SUSE/Amazon Linux world, built
//! with the real `rpmbuild` (Debian's `rpm` package): it installs under
//! /opt/tlsforge/cpython-<version>, the prefix it was configured for, and
//! requires nothing but the C library (OpenSSL is linked in statically;
//! rpm's automatic dependency scan is off because it would name the
//! interpreter's own extension modules). rpm's post-install scripts (strip,
//! bytecode compilation with the build machine's python) are off: the tree
//! is already what we validated.

use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::recipes::Toolchain;

/// As for the .deb: glibc Linux targets, and only where rpmbuild exists.
pub fn available(tc: &Toolchain) -> bool {
    tc.rpm_arch.is_some() && crate::deb::packaged_for(tc, "rpmbuild")
}

/// The same package name as the .deb: 2.7 and 3.13 install side by side.
pub fn path_for(dest: &Path, version: &str, label: &str, tc: &Toolchain) -> Option<PathBuf> {
    let arch = tc.rpm_arch.as_deref()?;
    Some(dest.join(format!(
        "{}-{version}-1.{label}.{arch}.rpm",
        crate::deb::package_name(version)
    )))
}

/// What a Linux package (.rpm, .deb) says about itself beyond its files.
pub struct Meta<'a> {
    pub version: &'a str,
    pub label: &'a str,
    pub prefix: &'a str,
    pub licenses: &'a [String],
    pub openssl: &'a str,
    pub max_glibc: Option<&'a str>,
    pub gzip_level: u32,
    /// recipes/packaging.toml's `maintainer` (the .deb's field).
    pub maintainer: &'a str,
}

fn spec(m: &Meta, arch: &str, tree: &Path) -> String {
    let name = crate::deb::package_name(m.version);
    let date = changelog_date(crate::package::source_date_epoch());
    let requires = m
        .max_glibc
        .map(|g| format!("Requires: glibc >= {g}\n"))
        .unwrap_or_default();
    format!(
        "%global __os_install_post %{{nil}}\n\
         %global debug_package %{{nil}}\n\
         %global _build_id_links none\n\
         %global _binary_payload w{level}.gzdio\n\
         %global use_source_date_epoch_as_buildtime 1\n\
         %global clamp_mtime_to_source_date_epoch 1\n\
         Name: {name}\n\
         Version: {v}\n\
         Release: 1.{label}\n\
         Summary: CPython {v} with OpenSSL {openssl} linked in statically (tlsforge)\n\
         License: {license}\n\
         BuildArch: {arch}\n\
         AutoReqProv: no\n\
         Provides: {name} = {v}-1.{label}\n\
         {requires}\
         \n%description\n\
         CPython {v} built by tlsforge with OpenSSL {openssl} linked in statically\n\
         and the ssl module's defaults of the newest CPython. Installed under\n\
         {prefix}; it does not replace or touch the system Python.\n\
         \n%install\n\
         mkdir -p %{{buildroot}}{parent}\n\
         cp -al {tree} %{{buildroot}}{prefix}\n\
         rm -f %{{buildroot}}{prefix}/{marker}\n\
         \n%files\n\
         {prefix}\n\
         \n%changelog\n\
         * {date} tlsforge <tlsforge@localhost> - {v}-1.{label}\n\
         - CPython {v} with OpenSSL {openssl} linked in statically, built by tlsforge\n",
        v = m.version,
        level = m.gzip_level,
        label = m.label,
        openssl = m.openssl,
        license = m.licenses.join(" AND "),
        prefix = m.prefix,
        parent = Path::new(m.prefix)
            .parent()
            .unwrap_or(Path::new("/"))
            .display(),
        tree = tree.display(),
        marker = crate::util::COMPLETE_MARKER,
    )
}

/// "Tue Nov 14 2023", the date format of an rpm changelog entry.
fn changelog_date(epoch: u64) -> String {
    let days = (epoch / 86400) as i64;
    // (civil-from-days, Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {day:02} {year}",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize]
    )
}

/// Builds the .rpm of the installed `root` into `dest`.
pub fn build(root: &Path, meta: &Meta, tc: &Toolchain, dest: &Path) -> Result<PathBuf> {
    let arch = tc
        .rpm_arch
        .as_deref()
        .context("no rpm architecture for this target")?;
    let rpm = path_for(dest, meta.version, meta.label, tc).context("no .rpm for this target")?;
    let work =
        crate::cache::tempdir_in(root.parent().context("the installed tree has no parent")?)?;
    let top = work.path().join("rpmbuild");
    let out_dir = work.path().join("out");
    fs::create_dir_all(&out_dir)?;
    let spec_path = work.path().join("package.spec");
    fs::write(&spec_path, spec(meta, arch, root))?;
    let log = work.path().join("rpmbuild.log");
    let out = Command::new("rpmbuild")
        .arg("-bb")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("--define")
        .arg(format!("_rpmdir {}", out_dir.display()))
        .arg("--define")
        .arg("_rpmfilename %{NAME}.rpm")
        .arg("--define")
        .arg("_buildhost tlsforge")
        .arg(&spec_path)
        .env(
            "SOURCE_DATE_EPOCH",
            crate::package::source_date_epoch().to_string(),
        )
        .output()
        .context("running rpmbuild (Debian package `rpm`)")?;
    fs::write(&log, [&out.stdout[..], &out.stderr[..]].concat())?;
    if !out.status.success() {
        bail!(
            "rpmbuild failed for CPython {}: {}",
            meta.version,
            crate::util::log_tail(&log, 20)
        );
    }
    let built = out_dir.join(format!("{}.rpm", crate::deb::package_name(meta.version)));
    let tmp = crate::cache::tempfile_in(dest)?;
    fs::copy(&built, tmp.path())?;
    tmp.persist(&rpm)?;
    fs::set_permissions(&rpm, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    Ok(rpm)
}

/// Installs `rpm` into a scratch root with `rpm --root --nodeps` (nothing
/// on this machine changes) and returns the installed prefix in it.
pub fn install_into(rpm: &Path, scratch_root: &Path, prefix: &str) -> Result<PathBuf> {
    fs::create_dir_all(scratch_root)?;
    for args in [
        vec![
            "--root".into(),
            scratch_root.display().to_string(),
            "--initdb".into(),
        ],
        vec![
            "--root".into(),
            scratch_root.display().to_string(),
            "--nodeps".into(),
            "-i".into(),
            rpm.display().to_string(),
        ],
    ] {
        crate::util::stdout_of(
            Command::new("rpm").args(&args),
            &format!("rpm {}", args.join(" ")),
        )?;
    }
    Ok(scratch_root.join(prefix.trim_start_matches('/')))
}

/// `rpm -qip`: the package's metadata, as a person would check it.
pub fn query(rpm: &Path) -> Result<String> {
    crate::util::stdout_of(
        Command::new("rpm").args(["-qip", "--changelog"]).arg(rpm),
        &format!("rpm -qip {}", rpm.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changelog_dates_are_rpms_format() {
        assert_eq!(changelog_date(0), "Thu Jan 01 1970");
        // SOURCE_DATE_EPOCH of our builds
        assert_eq!(changelog_date(1_700_000_000), "Tue Nov 14 2023");
        assert_eq!(changelog_date(951_782_400), "Tue Feb 29 2000");
    }
}
