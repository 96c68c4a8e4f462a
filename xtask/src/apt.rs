//! The last fetch provider: Debian's archive, reached through the machine's
//! own apt configuration. We never name an archive host ourselves: the URIs
//! come from the system's sources at run time, and apt (with a private state
//! directory, so the system's package lists are untouched) checks the
//! archive's signed Release files before we check our own sha256 pin.

use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::recipes::DebianSource;
use crate::util::Cache;

/// One Debian archive the system's apt knows: its URI and signing keyring.
#[derive(Debug, Clone, PartialEq)]
pub struct Archive {
    pub uri: String,
    pub signed_by: Option<String>,
}

/// Reads deb822 `.sources` and one-line `.list` files; keeps the archives of
/// Debian proper (not -security/-updates suites, not third-party repos).
pub fn system_archives() -> Result<Vec<Archive>> {
    let mut texts = Vec::new();
    for file in ["/etc/apt/sources.list"] {
        if let Ok(t) = fs::read_to_string(file) {
            texts.push((file.to_string(), t));
        }
    }
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext == "sources" || ext == "list" {
                texts.push((p.display().to_string(), fs::read_to_string(&p)?));
            }
        }
    }
    let mut out: Vec<Archive> = Vec::new();
    for (name, text) in texts {
        let found = if name.ends_with(".sources") {
            parse_deb822(&text)
        } else {
            parse_one_line(&text)
        };
        for a in found {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    Ok(out)
}

fn is_debian_proper(suites: &[&str], signed_by: Option<&str>) -> bool {
    let main_suite = suites.iter().any(|s| !s.contains('-'));
    let debian_key = signed_by.is_none_or(|k| k.contains("debian-archive-keyring"));
    main_suite && debian_key
}

pub fn parse_deb822(text: &str) -> Vec<Archive> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_string())
            })
        };
        let (Some(types), Some(uris), Some(suites)) =
            (field("Types"), field("URIs"), field("Suites"))
        else {
            continue;
        };
        if field("Enabled").is_some_and(|e| e == "no")
            || !types
                .split_whitespace()
                .any(|t| t == "deb" || t == "deb-src")
        {
            continue;
        }
        let signed_by = field("Signed-By");
        let suites: Vec<&str> = suites.split_whitespace().collect();
        if is_debian_proper(&suites, signed_by.as_deref()) {
            for uri in uris.split_whitespace() {
                out.push(Archive {
                    uri: uri.trim_end_matches('/').to_string(),
                    signed_by: signed_by.clone(),
                });
            }
        }
    }
    out
}

pub fn parse_one_line(text: &str) -> Vec<Archive> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        let mut words: Vec<&str> = line.split_whitespace().collect();
        if words.first().is_none_or(|w| *w != "deb" && *w != "deb-src") {
            continue;
        }
        let mut signed_by = None;
        if words.get(1).is_some_and(|w| w.starts_with('[')) {
            // Options block: [arch=amd64 signed-by=/path]
            let end = words.iter().position(|w| w.ends_with(']')).unwrap_or(1);
            for opt in &words[1..=end] {
                if let Some(v) = opt
                    .trim_matches(|c| c == '[' || c == ']')
                    .strip_prefix("signed-by=")
                {
                    signed_by = Some(v.to_string());
                }
            }
            words.drain(1..=end);
        }
        if words.len() >= 3 && is_debian_proper(&[words[2]], signed_by.as_deref()) {
            out.push(Archive {
                uri: words[1].trim_end_matches('/').to_string(),
                signed_by,
            });
        }
    }
    out
}

/// The pinned suite, then unstable: when a stable suite's index moves to a
/// new point release, the archive drops the superseded revision's files
/// from the pool unless another suite still lists them, and unstable
/// usually does. The sha256 pin, not the suite, decides what is accepted.
fn suites_for(pinned: &str) -> Vec<String> {
    let mut suites = vec![pinned.to_string()];
    if pinned != "sid" && pinned != "unstable" {
        suites.push("sid".to_string());
    }
    suites
}

/// Downloads `deb.file` with `apt-get source --download-only` against a
/// private sources list for `deb.suite`; returns the path of the orig file.
pub fn fetch_orig(cache: &Cache, deb: &DebianSource) -> Result<PathBuf> {
    if Command::new("apt-get").arg("--version").output().is_err() {
        bail!("apt-get is not available on this machine");
    }
    let archives = system_archives()?;
    if archives.is_empty() {
        bail!("no Debian archive in /etc/apt/sources.list or /etc/apt/sources.list.d");
    }
    let suites = suites_for(&deb.suite);
    let state = cache.dir(&format!("apt/{}", suites.join("+")))?;
    // (two CPython sources fetched side by side share apt's lists)
    let _lock = crate::util::lock_build(&state)?;
    let lists = state.join("lists");
    fs::create_dir_all(lists.join("partial"))?;
    let sources_file = state.join("sources.list");
    let mut sources = String::new();
    for a in &archives {
        let opt = a
            .signed_by
            .as_ref()
            .map(|k| format!("[signed-by={k}] "))
            .unwrap_or_default();
        for suite in &suites {
            sources.push_str(&format!("deb-src {opt}{} {suite} main\n", a.uri));
        }
    }
    fs::write(&sources_file, &sources)?;
    let apt = |args: &[&str], cwd: &Path| -> Result<()> {
        let out = Command::new("apt-get")
            .args([
                "-q",
                "-o",
                &format!("Dir::Etc::SourceList={}", sources_file.display()),
            ])
            .args(["-o", "Dir::Etc::SourceParts=/dev/null"])
            .args(["-o", &format!("Dir::State::Lists={}", lists.display())])
            .args(["-o", "APT::Sandbox::User=root"])
            .args(args)
            .current_dir(cwd)
            .output()
            .context("running apt-get")?;
        if !out.status.success() {
            bail!(
                "apt-get {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    };
    // Source indexes change daily at most; refresh when older than that.
    let fresh = fs::read_dir(&lists)?.filter_map(|e| e.ok()).any(|e| {
        e.file_name().to_string_lossy().ends_with("_Sources")
            && e.metadata().and_then(|m| m.modified()).is_ok_and(|t| {
                SystemTime::now().duration_since(t).unwrap_or_default() < Duration::from_secs(86400)
            })
    });
    if !fresh {
        apt(&["update"], &state)?;
    }
    let work = crate::cache::tempdir_in(&state)?;
    let got = work.path().join(&deb.file);
    // A partial mirror may serve the orig tarball but not the .dsc (apt then
    // fails after downloading it), and Debian drops superseded revisions
    // while newer ones ship the same orig tarball. Our sha256 pin, checked by
    // the caller, decides whether the file is acceptable, so: the pinned
    // revision first, then the suite's current one, and the file counts even
    // when apt reports an error about the rest of the source package.
    let mut errors = Vec::new();
    for wanted in [
        format!("{}={}", deb.package, deb.version),
        deb.package.clone(),
    ] {
        if let Err(e) = apt(&["source", "--download-only", &wanted], work.path()) {
            errors.push(e.to_string());
        }
        if got.is_file() {
            break;
        }
    }
    if !got.is_file() {
        bail!(
            "apt-get source did not produce {}:\n    {}",
            deb.file,
            errors.join("\n    ")
        );
    }
    // Keep it past the temp dir's lifetime; the caller verifies and moves it.
    let kept = state.join(&deb.file);
    fs::rename(&got, &kept)?;
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstable_backs_up_a_stable_suite() {
        assert_eq!(suites_for("trixie"), ["trixie", "sid"]);
        assert_eq!(suites_for("sid"), ["sid"]);
    }

    #[test]
    fn deb822_keeps_debian_main_suites_only() {
        let text = "Types: deb\nURIs: http://archive.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
                    Types: deb\nURIs: http://archive.example/debian-security\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
                    Types: deb\nURIs: https://vendor.example/apt\nSuites: nodistro\nComponents: main\nSigned-By: /usr/share/keyrings/vendor.gpg\n";
        let a = parse_deb822(text);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].uri, "http://archive.example/debian");
    }

    #[test]
    fn one_line_format_with_options() {
        let text = "# comment\ndeb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://archive.example/debian/ bookworm main\ndeb http://archive.example/debian-security bookworm-security main\n";
        let a = parse_one_line(text);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].uri, "http://archive.example/debian");
        assert!(a[0]
            .signed_by
            .as_ref()
            .unwrap()
            .ends_with("debian-archive-keyring.gpg"));
    }
}
