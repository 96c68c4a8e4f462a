//! `cargo xtask dev`: the patch author's loop. One configured build tree
//! per (CPython version, target, OpenSSL, deps, toolchain) under
//! `cache/dev/`; on each run the series is applied to a fresh copy of the
//! pristine source, only the files whose content changed are copied into
//! the build tree (the others keep their timestamps), and `make` rebuilds
//! what depends on them. Then the tree's interpreter says what it is and,
//! if asked, runs stdlib tests or code.
//!
//! It never writes release cache entries: `build` and CI stay clean
//! builds keyed by content. It uses the `quick` profile (no PGO or LTO:
//! a training run per edit would defeat the loop).

use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::cpython::{self, Configure};
use crate::pipeline::{self, Options};
use crate::util::{
    commit_dir, copy_tree, files_under, is_complete, mark_complete, run_logged, KeyBuilder,
    Timings, COMPLETE_MARKER,
};
use crate::{extract, fetch, patch, reproducible};

const DEV_PROFILE: &str = "quick";

/// Files we write into the tree ourselves; the pristine copy never
/// overwrites them.
const OURS: &[&str] = &["Modules/Setup.local", COMPLETE_MARKER];

/// What the loop remembers between runs.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct State {
    /// The source files of the patched tree last synced into the build
    /// tree (a file a patch no longer creates is removed).
    sources: BTreeSet<PathBuf>,
}

pub struct Request<'a> {
    pub tests: &'a [String],
    pub code: Option<&'a str>,
}

pub fn run(opts: &Options, req: &Request) -> Result<()> {
    let start = Instant::now();
    let t = Timings::default();
    let recipes = &crate::recipes::Recipes::load()?;
    let cache = &crate::util::Cache::from_env()?;
    crate::cache::reap_and_report(cache, None)?;
    let tc = pipeline::buildable_toolchain(recipes, opts)?;
    let recipe = one_native_version(recipes, tc, opts)?;
    let target = pipeline::prepare_target(recipes, cache, tc, opts, &t)?;
    let v = &recipe.version;
    let inputs = cpython::Inputs {
        cache,
        recipe,
        openssl: &target.openssl,
        deps: &target.deps,
        tc,
        compilers: &target.compilers,
        build_python: None,
        prefix: recipes.packaging.install_prefix(&recipe.version),
    };
    let profile = recipes.profile(Some(DEV_PROFILE))?;
    let plan = crate::optimise::plan(profile, tc, &inputs.cc(), recipe.is_python2())?;
    let key = KeyBuilder::new("dev-tree")
        .add("tarball", &recipe.source.sha256)
        .add("configure", recipe.configure.join(" "))
        .add("openssl", &target.openssl.key)
        .add("deps", &target.deps.key)
        .add("toolchain", tc.build_key_text()?)
        .add("cc", inputs.cc().key)
        .add("optimisation", serde_json::to_string(&plan.summary)?)
        .finish();
    let dir = cache.dir("dev")?.join(format!("{v}-{}-{key}", tc.triple));
    let _lock = crate::util::lock_build(&dir)?;
    fs::create_dir_all(&dir)?;
    let log = cache.log_path(&format!("dev-cpython-{v}-{}", tc.triple))?;
    let work = crate::cache::tempdir_in(&dir)?;
    let patched = patched_copy(&inputs, &recipes.mirrors, &dir, work.path(), &t)?;
    let tree = dir.join("tree");
    let mut driven = update_tree(&inputs, &plan, &dir, &patched, &log, &t)?;

    let mut make = Command::new("make");
    make.current_dir(&tree)
        .arg(format!("-j{}", opts.jobs))
        .args(plan.make_vars(&dir.join("pgo")));
    let took = run_logged(make, &format!("CPython {v}: make (incremental)"), &log)?;
    t.record("make", took, "done");
    driven += took;

    let python = tree_python(&tree);
    let took = Instant::now();
    let said = interpreter_check(&python)?;
    t.record("interpreter check", took.elapsed(), "done");
    let wall = start.elapsed();
    eprintln!(
        "tlsforge dev: {said} from {} in {:.1}s (configure/make {:.1}s, orchestration {:.1}s)",
        python.display(),
        wall.as_secs_f64(),
        driven.as_secs_f64(),
        (wall - driven).as_secs_f64()
    );
    after_build(&python, recipe.is_python2(), req)
}

/// The one native CPython the loop works on.
fn one_native_version<'r>(
    recipes: &'r crate::recipes::Recipes,
    tc: &crate::recipes::Toolchain,
    opts: &Options,
) -> Result<&'r crate::recipes::CpythonRecipe> {
    if tc.is_cross() {
        bail!(
            "the dev loop builds for this machine; {} is a cross target: use `cargo xtask build --target {}`",
            tc.triple,
            tc.triple
        );
    }
    match pipeline::selected(recipes, &opts.pythons)?.as_slice() {
        [one] => Ok(*one),
        several => bail!(
            "`dev` works on one CPython version at a time: pass --python VERSION (the selection named {})",
            several
                .iter()
                .map(|r| r.version.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The series applied to a fresh copy of the pristine source (extracted
/// once): a patch that fails leaves the build tree as it was.
fn patched_copy(
    inputs: &cpython::Inputs,
    mirrors: &[String],
    dir: &Path,
    work: &Path,
    t: &Timings,
) -> Result<PathBuf> {
    let (recipe, v) = (inputs.recipe, &inputs.recipe.version);
    let series = patch::read_series(&recipe.patch_dir())?;
    let pristine = dir.join("pristine");
    if !is_complete(&pristine) {
        let took = Instant::now();
        let fetched = fetch::fetch(inputs.cache, &recipe.source, mirrors)?;
        let tmp = crate::cache::tempdir_in(dir)?;
        let tree = tmp.path().join("tree");
        extract::extract(&fetched.path, &tree)?;
        mark_complete(&tree)?;
        commit_dir(&tree, &pristine)?;
        t.record("extract the pristine source (once)", took.elapsed(), "done");
    }
    let took = Instant::now();
    let patched = work.join("patched");
    copy_tree(&pristine, &patched)?;
    patch::apply_series(&patched, &series)
        .with_context(|| format!("patching CPython {v}; the build tree is unchanged"))?;
    t.record(
        format!("apply the series ({} patches)", series.len()),
        took.elapsed(),
        "done",
    );
    Ok(patched)
}

/// Brings `dir/tree` to the patched source: only the changed files carried
/// over (timestamps of the others kept, so make rebuilds only what they
/// touch), or, the first time, the whole tree configured. Returns the time
/// configure took.
fn update_tree(
    inputs: &cpython::Inputs,
    plan: &crate::optimise::Plan,
    dir: &Path,
    patched: &Path,
    log: &Path,
    t: &Timings,
) -> Result<std::time::Duration> {
    let tree = dir.join("tree");
    let state_path = dir.join("state.json");
    let configured = is_complete(&tree) && state_path.is_file();
    let sources = source_files(patched)?;
    let mut driven = std::time::Duration::ZERO;
    if configured {
        let took = Instant::now();
        let state: State = serde_json::from_slice(&fs::read(&state_path)?)
            .with_context(|| format!("reading {}", state_path.display()))?;
        let changed = sync(patched, &tree, &sources, &state.sources)?;
        t.record(
            format!(
                "carry over changed files ({} copied, {} removed)",
                changed.copied.len(),
                changed.removed
            ),
            took.elapsed(),
            "done",
        );
        for f in changed.copied.iter().take(8) {
            eprintln!("      changed: {}", f.display());
        }
    } else {
        if tree.exists() {
            fs::remove_dir_all(&tree)?;
        }
        fs::rename(patched, &tree)?;
        let rewrites = reproducible::rewrites(&inputs.cache.root, dir);
        let Configure { command, path } =
            cpython::configure_command(inputs, plan, &tree, &rewrites)?;
        if path.is_some() {
            bail!("internal: a native dev build needs no build-Python");
        }
        let v = &inputs.recipe.version;
        let took = run_logged(command, &format!("configuring CPython {v}"), log)?;
        t.record("configure (first run only)", took, "done");
        driven += took;
        mark_complete(&tree)?;
    }
    // (written before make: a failed make still leaves a tree in sync)
    write_state(&state_path, &State { sources })?;
    Ok(driven)
}

/// "3.13.15 OpenSSL 4.0.3 …" from the rebuilt interpreter.
fn interpreter_check(python: &Path) -> Result<String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import sys, ssl; print(sys.version.split()[0] + ' ' + ssl.OPENSSL_VERSION)",
        ])
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "the rebuilt interpreter does not start or cannot import ssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `--run CODE`, then `--test MODULE…`, on the rebuilt interpreter.
fn after_build(python: &Path, python2: bool, req: &Request) -> Result<()> {
    if let Some(code) = req.code {
        run_visible(Command::new(python).args(["-c", code]), "the --run code")?;
    }
    if !req.tests.is_empty() {
        let mut cmd = Command::new(python);
        if python2 {
            cmd.args(["-m", "test.regrtest"]);
        } else {
            cmd.args(["-m", "test"]);
        }
        cmd.args(["-u", "all,-network,-cpu"]).args(req.tests);
        run_visible(&mut cmd, "the stdlib tests")?;
    }
    Ok(())
}

/// The interpreter in a build tree (`python.exe` where the file system
/// folds case, as on macOS).
fn tree_python(tree: &Path) -> PathBuf {
    let exe = tree.join("python.exe");
    if exe.is_file() {
        exe
    } else {
        tree.join("python")
    }
}

fn run_visible(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn write_state(path: &Path, state: &State) -> Result<()> {
    let tmp = crate::cache::tempfile_in(path.parent().unwrap())?;
    fs::write(tmp.path(), serde_json::to_vec(state)?)?;
    tmp.persist(path)?;
    Ok(())
}

/// The files (and symlinks) of a source tree, relative to it.
fn source_files(root: &Path) -> Result<BTreeSet<PathBuf>> {
    Ok(files_under(root, true)?
        .into_iter()
        .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
        .filter(|p| !OURS.iter().any(|o| p == Path::new(o)))
        .collect())
}

struct Changed {
    copied: Vec<PathBuf>,
    removed: usize,
}

/// Makes the sources in `tree` equal to `patched`, touching only files
/// whose content differs (make sees them as new) and removing files the
/// last series created but this one does not. Build outputs are left.
fn sync(
    patched: &Path,
    tree: &Path,
    now: &BTreeSet<PathBuf>,
    before: &BTreeSet<PathBuf>,
) -> Result<Changed> {
    let mut copied = Vec::new();
    for rel in now {
        let from = patched.join(rel);
        let to = tree.join(rel);
        if same_content(&from, &to) {
            continue;
        }
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        let meta = fs::symlink_metadata(&from)?;
        if fs::symlink_metadata(&to).is_ok() {
            fs::remove_file(&to)?;
        }
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else {
            // (a copy gets the current time: make rebuilds what uses it)
            fs::copy(&from, &to)
                .with_context(|| format!("copying {} into the build tree", rel.display()))?;
        }
        copied.push(rel.clone());
    }
    let mut removed = 0;
    for rel in before.difference(now) {
        if fs::remove_file(tree.join(rel)).is_ok() {
            removed += 1;
        }
    }
    Ok(Changed { copied, removed })
}

fn same_content(a: &Path, b: &Path) -> bool {
    let (Ok(ma), Ok(mb)) = (fs::symlink_metadata(a), fs::symlink_metadata(b)) else {
        return false;
    };
    if ma.file_type().is_symlink() || mb.file_type().is_symlink() {
        return ma.file_type().is_symlink()
            && mb.file_type().is_symlink()
            && fs::read_link(a).ok() == fs::read_link(b).ok();
    }
    ma.len() == mb.len()
        && ma.permissions() == mb.permissions()
        && fs::read(a).ok() == fs::read(b).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn mtime(p: &Path) -> SystemTime {
        fs::metadata(p).unwrap().modified().unwrap()
    }

    #[test]
    fn only_changed_files_are_touched_and_dropped_ones_removed() {
        let d = tempfile::tempdir().unwrap();
        let (patched, tree) = (d.path().join("patched"), d.path().join("tree"));
        for root in [&patched, &tree] {
            write(root, "Modules/_ssl.c", "int x = 1;\n");
            write(root, "Lib/ssl.py", "import _ssl\n");
        }
        write(&tree, "Lib/added_by_old_patch.py", "x = 1\n");
        write(&tree, "Modules/_ssl.o", "object code");
        let old = SystemTime::now() - Duration::from_secs(3600);
        for f in ["Modules/_ssl.c", "Lib/ssl.py"] {
            fs::File::options()
                .write(true)
                .open(tree.join(f))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        write(&patched, "Modules/_ssl.c", "int x = 2;\n");
        let now = source_files(&patched).unwrap();
        let mut before = now.clone();
        before.insert("Lib/added_by_old_patch.py".into());

        let changed = sync(&patched, &tree, &now, &before).unwrap();
        assert_eq!(changed.copied, vec![PathBuf::from("Modules/_ssl.c")]);
        assert_eq!(changed.removed, 1);
        assert_eq!(
            fs::read_to_string(tree.join("Modules/_ssl.c")).unwrap(),
            "int x = 2;\n"
        );
        assert!(mtime(&tree.join("Modules/_ssl.c")) > old + Duration::from_secs(1800));
        assert_eq!(
            mtime(&tree.join("Lib/ssl.py")),
            old,
            "unchanged files keep their time"
        );
        assert!(!tree.join("Lib/added_by_old_patch.py").exists());
        assert!(tree.join("Modules/_ssl.o").exists(), "build outputs stay");
        // A second sync of the same series changes nothing.
        let again = sync(&patched, &tree, &now, &now).unwrap();
        assert!(again.copied.is_empty() && again.removed == 0);
    }
}
