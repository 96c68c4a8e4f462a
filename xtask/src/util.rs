//! Small shared pieces: digests, content keys, the cache layout, running a
//! child process with its output in a log file, and stage timing.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// This program, to run as a child. A `cargo build` during a long build
/// replaces the file; Linux then reports the old path with " (deleted)",
/// and the rebuilt xtask at that path is the one to run.
pub fn xtask_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let text = exe.to_string_lossy();
    Ok(match text.strip_suffix(" (deleted)") {
        Some(path) => PathBuf::from(path),
        None => exe,
    })
}

/// The repository root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Builds a cache key from everything that can change an output. Two builds
/// with the same key produce the same thing, so the second is skipped.
#[derive(Default)]
pub struct KeyBuilder(Sha256);

impl KeyBuilder {
    pub fn new(kind: &str) -> Self {
        let mut k = KeyBuilder(Sha256::new());
        k.add("kind", kind);
        k
    }
    pub fn add(&mut self, name: &str, value: impl AsRef<[u8]>) -> &mut Self {
        // Length-prefixed so ("ab","c") and ("a","bc") differ.
        for part in [name.as_bytes(), value.as_ref()] {
            self.0.update((part.len() as u64).to_le_bytes());
            self.0.update(part);
        }
        self
    }
    /// 16 hex digits are plenty to tell builds apart in one cache.
    pub fn finish(&self) -> String {
        hex::encode(self.0.clone().finalize())[..16].to_string()
    }
}

/// `$TLSFORGE_CACHE`, or `$XDG_CACHE_HOME/tlsforge`, or `~/.cache/tlsforge`.
#[derive(Clone)]
pub struct Cache {
    pub root: PathBuf,
}

impl Cache {
    pub fn from_env() -> Result<Cache> {
        let root = if let Some(dir) = std::env::var_os("TLSFORGE_CACHE") {
            PathBuf::from(dir)
        } else if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
            PathBuf::from(dir).join("tlsforge")
        } else {
            let home =
                std::env::var_os("HOME").context("neither TLSFORGE_CACHE nor HOME is set")?;
            PathBuf::from(home).join(".cache/tlsforge")
        };
        let root = std::path::absolute(&root)?;
        fs::create_dir_all(&root).with_context(|| format!("creating cache {}", root.display()))?;
        Ok(Cache { root })
    }
    /// A sub-directory of the cache, created on first use.
    pub fn dir(&self, name: &str) -> Result<PathBuf> {
        let d = self.root.join(name);
        fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        Ok(d)
    }
    pub fn log_path(&self, name: &str) -> Result<PathBuf> {
        Ok(self.dir("logs")?.join(format!("{name}.log")))
    }
}

/// Marks a finished output directory; a directory without it is debris from
/// an interrupted run and is rebuilt.
pub const COMPLETE_MARKER: &str = ".tlsforge-complete";

pub fn is_complete(dir: &Path) -> bool {
    dir.join(COMPLETE_MARKER).is_file()
}

pub fn mark_complete(dir: &Path) -> Result<()> {
    fs::write(dir.join(COMPLETE_MARKER), b"")?;
    Ok(())
}

/// Holds an exclusive lock on `<dir>.lock` while one process builds `dir`:
/// a second `cargo xtask` wanting the same output waits, then finds it
/// complete instead of building it again beside the first.
pub struct BuildLock(#[allow(dead_code)] fs::File);

pub fn lock_build(dir: &Path) -> Result<BuildLock> {
    crate::cache::note_use(dir);
    let path = PathBuf::from(format!("{}.lock", dir.display()));
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    if file.try_lock().is_err() {
        eprintln!(
            "tlsforge: waiting for another build of {}",
            dir.file_name().unwrap_or_default().to_string_lossy()
        );
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
    }
    Ok(BuildLock(file))
}

/// Every non-directory entry under `root` (files, and symlinks when asked
/// for), recursively, sorted. Symlinks are listed, never followed.
pub fn files_under(root: &Path, with_symlinks: bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let ty = entry.file_type()?;
            if ty.is_dir() {
                stack.push(entry.path());
            } else if ty.is_file() || (with_symlinks && ty.is_symlink()) {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Whether the file starts with bytes that `is_kind` recognises (reads
/// only the first 8 bytes).
pub fn file_starts_with(path: &Path, is_kind: impl Fn(&[u8]) -> bool) -> bool {
    let mut head = Vec::with_capacity(8);
    fs::File::open(path).is_ok_and(|f| f.take(8).read_to_end(&mut head).is_ok() && is_kind(&head))
}

/// PATH with `dir` first, for a child process or this one.
pub fn path_with_first(dir: &Path) -> Result<std::ffi::OsString> {
    let old = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(&old).filter(|d| d != dir));
    Ok(std::env::join_paths(dirs)?)
}

/// Replaces `dest` with `tmp` by rename (same file system), so readers see
/// either the old complete tree or the new complete tree, never half of one.
pub fn commit_dir(tmp: &Path, dest: &Path) -> Result<()> {
    if dest.exists() {
        fs::remove_dir_all(dest).with_context(|| format!("removing stale {}", dest.display()))?;
    }
    fs::rename(tmp, dest).with_context(|| format!("moving {} to {}", tmp.display(), dest.display()))
}

/// Runs `cmd` with stdout and stderr appended to `log`, showing a spinner
/// with the elapsed time. On failure the error names the step, the log, and
/// quotes the log's tail so the cause is visible without opening it.
pub fn run_logged(mut cmd: Command, what: &str, log: &Path) -> Result<Duration> {
    let mut file = fs::OpenOptions::new().create(true).append(true).open(log)?;
    writeln!(file, "\n$ {:?}", cmd)?;
    let err_file = file.try_clone()?;
    cmd.stdout(Stdio::from(file))
        .stderr(Stdio::from(err_file))
        .stdin(Stdio::null());
    let spinner = progress::spinner(what);
    let start = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("{what}: could not start {:?}", cmd.get_program()))?;
    spinner.finish_and_clear();
    let took = start.elapsed();
    if !status.success() {
        let tail = log_tail(log, 40);
        bail!(
            "{what} failed ({status}); full log: {}\n--- last lines ---\n{tail}",
            log.display()
        );
    }
    Ok(took)
}

/// Runs `cmd` and returns its stdout, trimmed; on failure the error says
/// `<what> failed:` and quotes its stderr.
pub fn stdout_of(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("{what}: could not start {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn log_tail(log: &Path, lines: usize) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub mod progress {
    use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
    use std::sync::OnceLock;
    use std::time::Duration;

    /// One set of bars for the process: stages that run side by side each
    /// keep their own line.
    fn bars() -> &'static MultiProgress {
        static BARS: OnceLock<MultiProgress> = OnceLock::new();
        BARS.get_or_init(MultiProgress::new)
    }

    /// A line above the bars (eprintln! would tear a bar that is drawing).
    pub fn println(line: String) {
        if bars().is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = bars().println(line);
        }
    }

    pub fn spinner(msg: &str) -> ProgressBar {
        let bar = bars().add(ProgressBar::new_spinner());
        bar.set_style(ProgressStyle::with_template("  {spinner} {msg} [{elapsed}]").unwrap());
        bar.set_message(msg.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    pub fn bytes(total: u64, msg: &str) -> ProgressBar {
        let bar = bars().add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template("  {msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
                .unwrap(),
        );
        bar.set_message(msg.to_string());
        bar
    }
}

/// Collects how long each stage took and prints the table at the end.
#[derive(Default)]
pub struct Timings {
    // (stages of one target run side by side: OpenSSL beside the deps,
    // one CPython beside another)
    rows: std::sync::Mutex<Vec<(String, Duration, &'static str)>>,
}

impl Timings {
    pub fn record(&self, stage: impl Into<String>, took: Duration, how: &'static str) {
        let stage = stage.into();
        progress::println(format!(
            "  {:<46} {:>8.1}s  {how}",
            stage,
            took.as_secs_f64()
        ));
        self.rows.lock().unwrap().push((stage, took, how));
    }
    /// Times `f` and records it as built, or as a cache hit when it says so.
    pub fn stage<T>(
        &self,
        name: impl Into<String>,
        f: impl FnOnce() -> Result<(T, bool)>,
    ) -> Result<T> {
        let start = Instant::now();
        let (value, hit) = f()?;
        self.record(
            name,
            start.elapsed(),
            if hit { "cache hit" } else { "done" },
        );
        Ok(value)
    }
    pub fn all_cached(&self) -> bool {
        self.rows.lock().unwrap().iter().all(|r| r.2 == "cache hit")
    }
}

/// `f` over `items` on every CPU (work shared through one counter), the
/// results in the items' order; the first error wins.
pub fn par_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let workers = crate::pipeline::jobs_default().clamp(1, items.len().max(1));
    let mut done: Vec<(usize, Result<R>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        out.push((i, f(item)));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a worker thread panicked"))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Copies a directory tree, keeping symlinks as symlinks and file modes.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    cp("-a", src, dst)
}

/// The tree again with every file a hard link (same file system; for
/// readers only, such as dpkg-deb).
pub fn link_tree(src: &Path, dst: &Path) -> Result<()> {
    cp("-al", src, dst)
}

fn cp(flags: &str, src: &Path, dst: &Path) -> Result<()> {
    let status = Command::new("cp")
        .arg(flags)
        .arg(src)
        .arg(dst)
        .status()
        .context("running cp")?;
    if !status.success() {
        bail!("copying {} to {} failed", src.display(), dst.display());
    }
    Ok(())
}
