//! The cache as a thing to look after: temporary directories that belong to
//! a process (and are removed once that process is dead), which entries the
//! current tree's runs used, `cargo xtask cache du` and `cache gc`.
//!
//! Every temporary file or directory under the cache or dist/ is named
//! `.tmp-<pid>-<start>-<random>`: the owner's pid and its start time (so a
//! reused pid is not mistaken for the owner). A `kill -9` leaves such a tree
//! behind; the next run removes it under `locks/reap.lock`.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::util::{Cache, KeyBuilder};

const TMP_PREFIX: &str = ".tmp";

/// `.tmp-<pid>-<start>-`: this process's mark on its temporary files.
fn owner_prefix() -> String {
    let pid = std::process::id();
    format!(
        "{TMP_PREFIX}-{pid}-{}-",
        process_start(pid).unwrap_or_default()
    )
}

/// A temporary directory in `dir` owned by this process.
pub fn tempdir_in(dir: impl AsRef<Path>) -> Result<tempfile::TempDir> {
    let dir = dir.as_ref();
    tempfile::Builder::new()
        .prefix(&owner_prefix())
        .tempdir_in(dir)
        .with_context(|| format!("creating a temporary directory in {}", dir.display()))
}

/// A temporary file in `dir` owned by this process (persisted by rename).
pub fn tempfile_in(dir: impl AsRef<Path>) -> Result<tempfile::NamedTempFile> {
    let dir = dir.as_ref();
    tempfile::Builder::new()
        .prefix(&owner_prefix())
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))
}

/// The start time of a process in clock ticks since boot (Linux), which
/// tells a pid's current holder from an earlier one.
fn process_start(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22; the command name (field 2) may hold spaces, so count
    // from the closing parenthesis.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process that made a temporary entry named `name` still runs.
/// Entries without an owner (made before owners were recorded) count as
/// dead.
fn owner_alive(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix(TMP_PREFIX)
        .and_then(|r| r.strip_prefix('-'))
    else {
        return false;
    };
    let mut parts = rest.splitn(3, '-');
    let (Some(pid), Some(start)) = (parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    // (signal 0 checks existence; EPERM still means it exists)
    let exists = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists
        && match process_start(pid) {
            Some(now) => start == 0 || now == start,
            None => true,
        }
}

/// The temporary entries directly in `dir` whose owner is dead.
fn dead_temporaries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.starts_with(TMP_PREFIX) && !owner_alive(&name)
        })
        .map(|e| e.path())
        .collect()
}

pub struct Reaped {
    pub entries: usize,
    pub bytes: u64,
}

/// Removes the temporary files and trees of dead processes from the cache
/// (its top, each stage, each `downloads/<sha256>/`) and from `dist`.
pub fn reap_dead_owners(cache: &Cache, dist: Option<&Path>) -> Result<Reaped> {
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cache.dir("locks")?.join("reap.lock"))?;
    lock.lock()?;
    let mut dirs = vec![cache.root.clone()];
    dirs.extend(dist.map(Path::to_path_buf));
    for stage in subdirs(&cache.root) {
        if stage.file_name().is_some_and(|n| n == "downloads") {
            dirs.extend(subdirs(&stage));
        }
        dirs.push(stage);
    }
    let mut reaped = Reaped {
        entries: 0,
        bytes: 0,
    };
    for dir in dirs {
        for dead in dead_temporaries(&dir) {
            reaped.bytes += disk_usage(&dead);
            let removed = if dead.is_dir() {
                fs::remove_dir_all(&dead)
            } else {
                fs::remove_file(&dead)
            };
            removed.with_context(|| format!("removing {}", dead.display()))?;
            reaped.entries += 1;
        }
    }
    Ok(reaped)
}

/// Runs the reaper and says what it freed (nothing when there was nothing).
pub fn reap_and_report(cache: &Cache, dist: Option<&Path>) -> Result<()> {
    let r = reap_dead_owners(cache, dist)?;
    if r.entries > 0 {
        eprintln!(
            "tlsforge: removed {} temporary file(s)/tree(s) of builds that were killed ({})",
            r.entries,
            human(r.bytes)
        );
    }
    Ok(())
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return vec![];
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Bytes on disk under `path` (allocated blocks; hard links counted once;
/// symlinks not followed).
pub fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = BTreeSet::new();
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.nlink() > 1 && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        total += meta.blocks() * 512;
        if meta.is_dir() {
            if let Ok(entries) = fs::read_dir(&p) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
    total
}

pub fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b => format!("{:.1} KiB", b as f64 / 1024.0),
    }
}

// ---------------------------------------------------------------------------
// Which entries a run used.

/// Cache entries this process used (hit or built).
static USED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Stages whose entries are keyed outputs that gc may remove; the rest
/// (downloads are handled by their pins; apt's state, logs, locks, the
/// toolchain wrappers and zig's own cache) are left alone.
const COLLECTABLE: &[&str] = &[
    "cpython", "openssl", "deps", "src", "tools", "roots", "wheels", "dev", "repro",
];

/// Records that `entry` (a directory or file in the cache) was used, and
/// refreshes its last-use time.
pub fn note_use(entry: &Path) {
    USED.lock().unwrap().insert(entry.to_path_buf());
    let _ = fs::File::options()
        .append(true)
        .create(true)
        .open(lock_of(entry))
        .and_then(|f| f.set_modified(SystemTime::now()));
}

fn lock_of(entry: &Path) -> PathBuf {
    PathBuf::from(format!("{}.lock", entry.display()))
}

/// A digest of what decides the cache keys: recipes, patches, toolchains
/// and the orchestrator's own source.
pub fn tree_fingerprint() -> Result<String> {
    let root = crate::util::workspace_root();
    let mut key = KeyBuilder::new("tree");
    for dir in ["recipes", "patches", "toolchains", "xtask/src"] {
        for file in crate::util::files_under(&root.join(dir), false)? {
            let rel = file.strip_prefix(&root).unwrap_or(&file);
            key.add(&rel.to_string_lossy(), fs::read(&file)?);
        }
    }
    Ok(key.finish())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Uses {
    command: String,
    tree: String,
    unix_time: u64,
    entries: BTreeSet<PathBuf>,
}

/// Writes `uses/<command>.json` after a successful run: the entries it
/// used with the tree they belong to; gc keeps what the current tree uses.
pub fn record_uses(cache: &Cache, command: &str) -> Result<()> {
    let uses = Uses {
        command: command.to_string(),
        tree: tree_fingerprint()?,
        unix_time: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)?
            .as_secs(),
        entries: USED
            .lock()
            .unwrap()
            .iter()
            .filter_map(|p| p.strip_prefix(&cache.root).ok().map(Path::to_path_buf))
            .collect(),
    };
    let dir = cache.dir("uses")?;
    // (one file per distinct command line; a later run of it replaces it)
    let verb = command.split_whitespace().next().unwrap_or("run");
    let name = format!(
        "{verb}-{}",
        KeyBuilder::new("command").add("line", command).finish()
    );
    let tmp = tempfile_in(&dir)?;
    fs::write(tmp.path(), serde_json::to_vec_pretty(&uses)?)?;
    tmp.persist(dir.join(format!("{name}.json")))?;
    Ok(())
}

fn current_uses(cache: &Cache) -> Result<(Vec<Uses>, BTreeSet<PathBuf>)> {
    let tree = tree_fingerprint()?;
    let mut current = Vec::new();
    if let Ok(entries) = fs::read_dir(cache.root.join("uses")) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "json") {
                if let Ok(u) = serde_json::from_slice::<Uses>(&fs::read(e.path())?) {
                    if u.tree == tree {
                        current.push(u);
                    }
                }
            }
        }
    }
    let used = current
        .iter()
        .flat_map(|u| u.entries.iter().cloned())
        .collect();
    Ok((current, used))
}

/// One cache entry as du and gc see it.
struct Entry {
    path: PathBuf,
    rel: PathBuf,
    bytes: u64,
    last_use: SystemTime,
    in_use: bool,
}

/// The entries of the collectable stages and the downloads.
fn entries(cache: &Cache, used: &BTreeSet<PathBuf>, pinned: &BTreeSet<String>) -> Vec<Entry> {
    let mut out = Vec::new();
    for stage in subdirs(&cache.root) {
        let name = stage.file_name().unwrap().to_string_lossy().to_string();
        let downloads = name == "downloads";
        if !downloads && !COLLECTABLE.contains(&name.as_str()) {
            continue;
        }
        let Ok(children) = fs::read_dir(&stage) else {
            continue;
        };
        for c in children.flatten() {
            let path = c.path();
            let file = c.file_name().to_string_lossy().to_string();
            if file.ends_with(".lock") || file.starts_with(TMP_PREFIX) {
                continue;
            }
            let rel = path.strip_prefix(&cache.root).unwrap().to_path_buf();
            let in_use = if downloads {
                pinned.contains(&file)
            } else {
                used.contains(&rel)
            };
            let last_use = fs::metadata(lock_of(&path))
                .or_else(|_| fs::metadata(&path))
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            out.push(Entry {
                bytes: disk_usage(&path),
                path,
                rel,
                last_use,
                in_use,
            });
        }
    }
    out
}

/// The sha256 of every source the recipes pin (those downloads stay).
fn pinned_downloads() -> Result<BTreeSet<String>> {
    let r = crate::recipes::Recipes::load()?;
    Ok(r.cpython
        .iter()
        .map(|c| c.source.sha256.clone())
        .chain(r.deps.iter().map(|d| d.source.sha256.clone()))
        .collect())
}

fn age(t: SystemTime) -> String {
    let d = SystemTime::now().duration_since(t).unwrap_or_default();
    match d.as_secs() {
        s if s >= 86400 => format!("{}d ago", s / 86400),
        s if s >= 3600 => format!("{}h ago", s / 3600),
        s => format!("{}m ago", s / 60),
    }
}

/// `cargo xtask cache du`: sizes per stage and per entry.
pub fn du(cache: &Cache) -> Result<()> {
    let (current, used) = current_uses(cache)?;
    let list = entries(cache, &used, &pinned_downloads()?);
    let mut by_stage: BTreeMap<String, (u64, usize, u64)> = BTreeMap::new();
    println!("{:<78} {:>10}  {:<9} last use", "entry", "size", "in use");
    for e in &list {
        println!(
            "{:<78} {:>10}  {:<9} {}",
            e.rel.display(),
            human(e.bytes),
            if e.in_use { "yes" } else { "-" },
            age(e.last_use)
        );
        let stage = e
            .rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let s = by_stage.entry(stage.to_string()).or_default();
        s.0 += e.bytes;
        s.1 += 1;
        if !e.in_use {
            s.2 += e.bytes;
        }
    }
    println!();
    println!(
        "{:<12} {:>10} {:>8} {:>14}",
        "stage", "size", "entries", "not in use"
    );
    for (stage, (bytes, n, unused)) in &by_stage {
        println!(
            "{stage:<12} {:>10} {n:>8} {:>14}",
            human(*bytes),
            human(*unused)
        );
    }
    for other in subdirs(&cache.root) {
        let name = other.file_name().unwrap().to_string_lossy().to_string();
        if !by_stage.contains_key(&name) {
            println!(
                "{name:<12} {:>10} {:>8} {:>14}",
                human(disk_usage(&other)),
                "",
                "kept"
            );
        }
    }
    println!(
        "total {}; \"in use\" = used by a recorded run of the current tree ({}), or a download a recipe pins",
        human(disk_usage(&cache.root)),
        if current.is_empty() {
            "none recorded: run `cargo xtask build`".to_string()
        } else {
            current.iter().map(|u| u.command.as_str()).collect::<Vec<_>>().join(", ")
        }
    );
    Ok(())
}

/// `cargo xtask cache gc`: removes entries the current tree's runs did not
/// use (and, with `older_than`, only those not used for that long).
/// Downloads a recipe pins are never removed.
pub fn gc(cache: &Cache, dry_run: bool, older_than: Option<Duration>) -> Result<()> {
    reap_and_report(cache, None)?;
    let (current, used) = current_uses(cache)?;
    if current.is_empty() && older_than.is_none() {
        bail!(
            "no run of the current recipes and code is recorded in {}/uses, so gc cannot tell what they use; \
             run `cargo xtask build` (or `test`) first, or pass --older-than DAYS",
            cache.root.display()
        );
    }
    let now = SystemTime::now();
    let doomed: Vec<Entry> = entries(cache, &used, &pinned_downloads()?)
        .into_iter()
        .filter(|e| !e.in_use)
        .filter(|e| {
            older_than.is_none_or(|d| now.duration_since(e.last_use).unwrap_or_default() >= d)
        })
        .collect();
    let mut freed = 0;
    for e in &doomed {
        println!(
            "{} {:<78} {:>10}  last use {}",
            if dry_run { "would remove" } else { "removing" },
            e.rel.display(),
            human(e.bytes),
            age(e.last_use)
        );
        freed += e.bytes;
        if !dry_run {
            remove_entry(&e.path)?;
        }
    }
    println!(
        "{} {} in {} entries",
        if dry_run { "would free" } else { "freed" },
        human(freed),
        doomed.len()
    );
    Ok(())
}

/// Moves the entry aside (readers see it whole or not at all), then
/// deletes it and its lock file; skips an entry a running build holds.
fn remove_entry(path: &Path) -> Result<()> {
    let lock_path = lock_of(path);
    let lock = fs::File::options().write(true).open(&lock_path).ok();
    if let Some(l) = &lock {
        if l.try_lock().is_err() {
            eprintln!("  skipped {}: a running build holds it", path.display());
            return Ok(());
        }
    }
    // (named after the entry: two removals never share the aside name,
    // and a killed gc leaves a temporary the next run reaps)
    let aside = path.with_file_name(format!(
        "{}gc-{}",
        owner_prefix(),
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    fs::rename(path, &aside).with_context(|| format!("moving {} aside", path.display()))?;
    if aside.is_dir() {
        fs::remove_dir_all(&aside)?;
    } else {
        fs::remove_file(&aside)?;
    }
    let _ = fs::remove_file(&lock_path);
    Ok(())
}

/// For `repro`: gives a second cache the first one's verified inputs —
/// `downloads/<sha256>/<file>`, apt's state and fetched files, the pinned
/// tool wheels — as hard links (copies across file systems).
pub fn share_inputs(from: &Cache, to: &Path) -> Result<usize> {
    let mut shared = 0;
    for stage in ["downloads", "apt"] {
        let src = from.root.join(stage);
        if src.is_dir() {
            shared += link_tree(&src, &to.join(stage))?;
        }
    }
    for tool in subdirs(&from.root.join("tools")) {
        let name = tool.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("ziglang-") && crate::util::is_complete(&tool) {
            shared += link_tree(&tool, &to.join("tools").join(&name))?;
        }
    }
    Ok(shared)
}

/// Recreates `src` at `dst` with every file hard-linked (or copied);
/// returns the number of files.
fn link_tree(src: &Path, dst: &Path) -> Result<usize> {
    let mut n = 0;
    for file in crate::util::files_under(src, true)? {
        let rel = file.strip_prefix(src).unwrap();
        if rel
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with(TMP_PREFIX))
        {
            continue;
        }
        let to = dst.join(rel);
        fs::create_dir_all(to.parent().unwrap())?;
        if fs::symlink_metadata(&file)?.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&file)?, &to)?;
        } else if fs::hard_link(&file, &to).is_err() {
            fs::copy(&file, &to)?;
        }
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_cache() -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache {
            root: dir.path().to_path_buf(),
        };
        (dir, cache)
    }

    /// The pid of a process that has exited (and been waited for).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn temporaries_of_dead_processes_go_and_live_ones_stay() {
        let (_d, cache) = temp_cache();
        let cpython = cache.dir("cpython").unwrap();
        let sha = cache.dir("downloads/abc123").unwrap();
        // A build killed during make: a tree with content.
        let dead = cpython.join(format!(".tmp-{}-12345-AbCdEf", dead_pid()));
        fs::create_dir_all(dead.join("build/Modules")).unwrap();
        fs::write(dead.join("build/Modules/_ssl.o"), vec![0u8; 100_000]).unwrap();
        // A download cut off: a file inside downloads/<sha256>/.
        let partial = sha.join(format!(".tmp-{}-1-XyZ", dead_pid()));
        fs::write(&partial, b"half a tarball").unwrap();
        // Made before owners were recorded.
        let legacy = cpython.join(".tmpQ1w2E3");
        fs::create_dir(&legacy).unwrap();
        // This process's own, and a finished entry.
        let mine = tempdir_in(&cpython).unwrap();
        let entry = cpython.join("3.13.15-x86_64-unknown-linux-gnu-0123456789abcdef");
        fs::create_dir(&entry).unwrap();

        let r = reap_dead_owners(&cache, None).unwrap();
        assert_eq!(r.entries, 3);
        assert!(r.bytes >= 100_000, "{}", r.bytes);
        assert!(!dead.exists() && !partial.exists() && !legacy.exists());
        assert!(mine.path().is_dir(), "a live owner's tree is kept");
        assert!(entry.is_dir(), "finished entries are not temporaries");
        assert_eq!(reap_dead_owners(&cache, None).unwrap().entries, 0);
    }

    #[test]
    fn a_reused_pid_is_not_the_owner() {
        // Our pid with another start time: the process that made it is gone.
        let name = format!(".tmp-{}-1-abc", std::process::id());
        assert!(!owner_alive(&name));
        assert!(owner_alive(&format!("{}abc", owner_prefix())));
    }

    #[test]
    fn repro_shares_downloads_in_their_sha256_layout() {
        let (_a, first) = temp_cache();
        let (_b, second) = temp_cache();
        let src = crate::recipes::Source {
            file: "x.tar.gz".into(),
            size: 5,
            sha256: crate::util::sha256_bytes(b"bytes"),
            urls: vec![],
            debian: None,
        };
        let p = crate::fetch::cache_path(&first, &src).unwrap();
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, b"bytes").unwrap();
        assert_eq!(share_inputs(&first, &second.root).unwrap(), 1);
        let got = crate::fetch::fetch(&second, &src, &[]).unwrap();
        assert_eq!(got.origin, crate::fetch::Origin::Cache);
    }

    #[test]
    fn gc_keeps_what_the_current_tree_used_and_pinned_downloads() {
        let (_d, cache) = temp_cache();
        let used = cache.dir("openssl").unwrap().join("4.0.3-t-aaaa");
        let stale = cache.dir("openssl").unwrap().join("4.0.3-t-bbbb");
        for d in [&used, &stale] {
            fs::create_dir_all(d).unwrap();
            fs::write(d.join("f"), vec![1u8; 10_000]).unwrap();
        }
        fs::write(lock_of(&stale), b"").unwrap();
        let pinned_sha = pinned_downloads().unwrap().into_iter().next().unwrap();
        let pinned = cache.dir(&format!("downloads/{pinned_sha}")).unwrap();
        let unpinned = cache.dir("downloads/0000").unwrap();
        // Refused while no run of the current tree is recorded.
        assert!(gc(&cache, false, None).is_err());
        note_use(&used);
        record_uses(&cache, "build").unwrap();
        gc(&cache, true, None).unwrap();
        assert!(stale.exists(), "--dry-run removes nothing");
        gc(&cache, false, None).unwrap();
        assert!(used.exists() && pinned.exists());
        assert!(!stale.exists() && !lock_of(&stale).exists() && !unpinned.exists());
    }
}
