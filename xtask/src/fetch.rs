//! Stage 1, fetch: get a pinned file into the content-addressed cache.
//!
//! Providers are tried in order: cache → mirrors → upstream URLs → Debian's
//! archive (through this machine's own apt configuration). Every byte is
//! checked against the pinned size and sha256 before it lands in the cache,
//! and it lands by rename, so the cache never holds a partial or wrong file.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::apt;
use crate::recipes::Source;
use crate::util::{progress, sha256_file, Cache};

/// Where a fetched file came from, for the timing line and the manifest.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    Cache,
    Provider(String),
}

pub struct Fetched {
    pub path: PathBuf,
    pub origin: Origin,
}

/// `downloads/<sha256>/<file>`: a file's address is its digest.
pub fn cache_path(cache: &Cache, src: &Source) -> Result<PathBuf> {
    Ok(cache.dir("downloads")?.join(&src.sha256).join(&src.file))
}

/// Files this process got from a provider (not the cache): `repro` shows
/// that its second build downloads nothing the first one verified.
static DOWNLOADED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub fn downloads_so_far() -> usize {
    DOWNLOADED.load(std::sync::atomic::Ordering::Relaxed)
}

fn downloaded(file: &str, from: &str) {
    DOWNLOADED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    crate::util::progress::println(format!("  fetched {file} from {from} (sha256 verified)"));
}

pub fn fetch(cache: &Cache, src: &Source, mirrors: &[String]) -> Result<Fetched> {
    let dest = cache_path(cache, src)?;
    if dest.exists() {
        let actual = sha256_file(&dest)?;
        if actual == src.sha256 {
            return Ok(Fetched {
                path: dest,
                origin: Origin::Cache,
            });
        }
        eprintln!(
            "  warning: cached {} is corrupt (sha256 {actual}, pinned {}); removing it and fetching again",
            src.file, src.sha256
        );
        fs::remove_file(&dest)?;
    }
    fs::create_dir_all(dest.parent().unwrap())?;

    let mut failures = Vec::new();
    let mut urls: Vec<String> = mirrors
        .iter()
        .map(|m| format!("{}/{}", m.trim_end_matches('/'), src.file))
        .collect();
    urls.extend(src.urls.iter().cloned());
    for url in &urls {
        match download_verified(url, src, &dest) {
            Ok(()) => {
                downloaded(&src.file, url);
                return Ok(Fetched {
                    path: dest,
                    origin: Origin::Provider(url.clone()),
                });
            }
            Err(e) => failures.push(format!("{url}: {e:#}")),
        }
    }
    if let Some(deb) = &src.debian {
        let what = format!(
            "Debian archive ({} {} in {})",
            deb.package, deb.version, deb.suite
        );
        match apt::fetch_orig(cache, deb).and_then(|got| {
            let tmp = crate::cache::tempfile_in(dest.parent().unwrap())?;
            fs::copy(&got, tmp.path())?;
            verify(tmp.path(), src)?;
            tmp.persist(&dest)?;
            Ok(())
        }) {
            Ok(()) => {
                downloaded(&src.file, &what);
                return Ok(Fetched {
                    path: dest,
                    origin: Origin::Provider(what),
                });
            }
            Err(e) => failures.push(format!("{what}: {e:#}")),
        }
    }
    // Leave no empty `downloads/<wrong digest>/` behind a failed fetch.
    let _ = fs::remove_dir(dest.parent().unwrap());
    bail!(
        "could not fetch {} (sha256 {}); every provider failed:\n  - {}",
        src.file,
        src.sha256,
        if failures.is_empty() {
            "no provider is configured".to_string()
        } else {
            failures.join("\n  - ")
        }
    )
}

/// Checks size and digest; the error names the file and both digests.
pub fn verify(path: &Path, src: &Source) -> Result<()> {
    let size = fs::metadata(path)?.len();
    let actual = sha256_file(path)?;
    if actual != src.sha256 {
        bail!(
            "sha256 mismatch for {}: expected {}, got {} ({} bytes, pinned size {})",
            src.file,
            src.sha256,
            actual,
            size,
            src.size
        );
    }
    if size != src.size {
        bail!(
            "size mismatch for {}: expected {} bytes, got {size}",
            src.file,
            src.size
        );
    }
    Ok(())
}

fn download_verified(url: &str, src: &Source, dest: &Path) -> Result<()> {
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(600))
        .build()?;
    let mut resp = client.get(url).send()?.error_for_status()?;
    let total = resp.content_length().unwrap_or(src.size);
    // Files this size take more than a second here; smaller ones get no bar.
    let bar = (total > 4 << 20).then(|| progress::bytes(total, &src.file));
    let mut tmp = crate::cache::tempfile_in(dest.parent().unwrap())?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0u64;
    loop {
        let n = resp.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got += n as u64;
        if got > src.size {
            bail!("server sent more than the pinned {} bytes", src.size);
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n])?;
        if let Some(b) = &bar {
            b.set_position(got);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let actual = hex::encode(hasher.finalize());
    if actual != src.sha256 {
        bail!(
            "sha256 mismatch for {}: expected {}, got {actual}",
            src.file,
            src.sha256
        );
    }
    tmp.as_file().sync_all()?;
    tmp.persist(dest)
        .context("moving the download into the cache")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source_for(bytes: &[u8], name: &str) -> Source {
        Source {
            file: name.into(),
            size: bytes.len() as u64,
            sha256: crate::util::sha256_bytes(bytes),
            urls: vec![],
            debian: None,
        }
    }

    fn temp_cache() -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache {
            root: dir.path().to_path_buf(),
        };
        (dir, cache)
    }

    #[test]
    fn cached_file_with_right_digest_is_a_hit() {
        let (_d, cache) = temp_cache();
        let src = source_for(b"hello tarball", "x.tar.gz");
        let p = cache_path(&cache, &src).unwrap();
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, b"hello tarball").unwrap();
        let got = fetch(&cache, &src, &[]).unwrap();
        assert_eq!(got.origin, Origin::Cache);
    }

    #[test]
    fn tampered_cache_entry_is_removed_and_refetched_from_a_mirror() {
        let (_d, cache) = temp_cache();
        let body = b"the real bytes of a source tarball".to_vec();
        let src = source_for(&body, "y.tar.gz");
        let p = cache_path(&cache, &src).unwrap();
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let mut flipped = body.clone();
        flipped[3] ^= 1;
        fs::write(&p, &flipped).unwrap();
        // A local mirror: a file:// URL is not supported by reqwest, so serve over HTTP.
        let server = tiny_http_server(body.clone());
        let got = fetch(&cache, &src, &[server]).unwrap();
        assert!(matches!(got.origin, Origin::Provider(_)));
        assert_eq!(fs::read(&p).unwrap(), body);
    }

    #[test]
    fn wrong_pin_names_file_and_both_digests_and_leaves_nothing() {
        let (_d, cache) = temp_cache();
        let body = b"some bytes".to_vec();
        let mut src = source_for(&body, "z.tar.gz");
        let actual = src.sha256.clone();
        src.sha256 = "0".repeat(64);
        let server = tiny_http_server(body);
        let err = format!("{:#}", fetch(&cache, &src, &[server]).err().unwrap());
        assert!(err.contains("z.tar.gz"), "{err}");
        assert!(err.contains(&"0".repeat(64)), "{err}");
        assert!(err.contains(&actual), "{err}");
        let dir = cache_path(&cache, &src).unwrap();
        assert!(!dir.exists());
        assert!(
            !dir.parent().unwrap().exists(),
            "no partial file and no empty digest directory left"
        );
    }

    #[test]
    fn every_failed_provider_is_listed() {
        let (_d, cache) = temp_cache();
        let mut src = source_for(b"abc", "w.tar.gz");
        src.urls = vec!["http://127.0.0.1:9/nothing-listens-here/w.tar.gz".into()];
        let err = format!(
            "{:#}",
            fetch(&cache, &src, &["http://127.0.0.1:9/mirror".into()])
                .err()
                .unwrap()
        );
        assert!(err.contains("127.0.0.1:9/mirror/w.tar.gz"), "{err}");
        assert!(err.contains("nothing-listens-here"), "{err}");
    }

    /// Serves `body` once per connection on an ephemeral loopback port.
    fn tiny_http_server(body: Vec<u8>) -> String {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(4) {
                let mut s = stream.unwrap();
                let mut req = [0u8; 2048];
                let _ = s.read(&mut req);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(&body);
            }
        });
        format!("http://{addr}")
    }
}
