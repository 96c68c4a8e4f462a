//! Stage 4, dependencies: the C libraries the interpreter and its extension
//! modules link statically (zlib, bzip2, xz, libffi, expat, ncurses,
//! readline, sqlite, libuuid), each built once per target from a pinned
//! source (`recipes/deps/*.toml`) and then merged into one prefix that
//! CPython's configure and setup.py search first.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::compilers::Compilers;
use crate::recipes::{DepBuild, DepRecipe, Toolchain};
use crate::reproducible::{self, prefix_map_flags};
use crate::source;
use crate::util::{
    commit_dir, copy_tree, is_complete, mark_complete, run_logged, Cache, KeyBuilder, Timings,
};

/// Bump when the way deps are built or merged changes.
const DEPS_REVISION: &str = "4";

pub struct Dep {
    pub recipe: DepRecipe,
    pub prefix: PathBuf,
    pub key: String,
    pub cache_hit: bool,
}

/// Every dependency of one target, plus the merged prefix CPython builds against.
pub struct Deps {
    pub list: Vec<Dep>,
    /// include/, lib/ (static archives only), lib/pkgconfig/, bin/pkg-config.
    pub prefix: PathBuf,
    pub key: String,
    /// (module, why) for the modules whose dependency this target leaves
    /// out (toolchain `without_deps`).
    pub left_out: Vec<(String, String)>,
}

impl Deps {
    pub fn get(&self, name: &str) -> Result<&Dep> {
        self.list
            .iter()
            .find(|d| d.recipe.name == name)
            .with_context(|| format!("no dependency {name} in recipes/deps"))
    }
    /// Every static archive we link, for `-Wl,--exclude-libs,…`.
    pub fn static_libs(&self) -> Vec<String> {
        self.list
            .iter()
            .flat_map(|d| d.recipe.libs.iter().cloned())
            .collect()
    }
    /// The wrapper that makes configure's pkg-config see only our `.pc`
    /// files, with static link lines.
    pub fn pkg_config(&self) -> PathBuf {
        self.prefix.join("bin/pkg-config")
    }
}

/// Groups recipes into waves: each wave needs only earlier waves, so the
/// recipes of one wave build side by side (configure runs on one CPU).
pub fn build_waves(recipes: &[DepRecipe]) -> Result<Vec<Vec<&DepRecipe>>> {
    for r in recipes {
        for req in &r.requires {
            if !recipes.iter().any(|x| &x.name == req) {
                bail!(
                    "recipes/deps/{}.toml requires {req}, which has no recipe",
                    r.name
                );
            }
        }
    }
    let mut waves: Vec<Vec<&DepRecipe>> = Vec::new();
    let mut placed = 0;
    while placed < recipes.len() {
        let done = |name: &String| waves.iter().flatten().any(|d| &d.name == name);
        let wave: Vec<&DepRecipe> = recipes
            .iter()
            .filter(|r| !done(&r.name) && r.requires.iter().all(done))
            .collect();
        if wave.is_empty() {
            bail!("recipes/deps: the `requires` lists form a cycle");
        }
        placed += wave.len();
        waves.push(wave);
    }
    Ok(waves)
}

/// Every dependency of recipes/deps the target wants (cache hits when
/// built), and their merged prefix for CPython's configure.
pub fn build_all(
    cache: &Cache,
    all: &crate::recipes::Recipes,
    tc: &Toolchain,
    compilers: &Compilers,
    jobs: usize,
    t: &Timings,
    guard: impl Fn(bool) -> Result<()> + Sync,
) -> Result<Deps> {
    let (recipes, mirrors) = (&all.deps, &all.mirrors);
    let mut list: Vec<Dep> = Vec::new();
    let mut left_out = Vec::new();
    for (name, why) in &tc.without_deps {
        let r = recipes.iter().find(|r| &r.name == name).with_context(|| {
            format!(
                "toolchains/{}.toml: without_deps names {name}, which has no recipes/deps/{name}.toml",
                tc.triple
            )
        })?;
        for m in &r.modules {
            left_out.push((
                m.clone(),
                format!("needs {name}, not built for this target: {why}"),
            ));
        }
    }
    let wanted: Vec<DepRecipe> = recipes
        .iter()
        .filter(|r| !tc.without_deps.iter().any(|(name, _)| name == &r.name))
        .cloned()
        .collect();
    for wave in build_waves(&wanted)? {
        let built = crate::util::par_map(&wave, |recipe| {
            let required: Vec<&Dep> = list
                .iter()
                .filter(|d| recipe.requires.contains(&d.recipe.name))
                .collect();
            t.stage(format!("dep {} {}", recipe.name, recipe.version), || {
                let d = build_one(cache, recipe, &required, tc, compilers, mirrors, jobs)?;
                guard(d.cache_hit)?;
                let hit = d.cache_hit;
                Ok((d, hit))
            })
        })?;
        list.extend(built);
    }
    let mut key = KeyBuilder::new("deps-merged");
    key.add("revision", DEPS_REVISION);
    for d in &list {
        key.add(&d.recipe.name, &d.key);
    }
    let key = key.finish();
    let prefix = cache
        .dir("deps")?
        .join(format!("merged-{}-{key}", tc.triple));
    crate::cache::note_use(&prefix);
    if !is_complete(&prefix) {
        let work = crate::cache::tempdir_in(cache.dir("deps")?)?;
        let merged = work.path().join("merged");
        fs::create_dir_all(merged.join("bin"))?;
        for d in &list {
            merge_into(&d.prefix, &merged)?;
        }
        remove_shared_objects(&merged.join("lib"))?;
        write_pkg_config_wrapper(&merged.join("bin/pkg-config"), &prefix)?;
        mark_complete(&merged)?;
        commit_dir(&merged, &prefix)?;
    }
    Ok(Deps {
        list,
        prefix,
        key,
        left_out,
    })
}

fn build_one(
    cache: &Cache,
    recipe: &DepRecipe,
    required: &[&Dep],
    tc: &Toolchain,
    compilers: &Compilers,
    mirrors: &[String],
    jobs: usize,
) -> Result<Dep> {
    let tree = source::prepare(cache, &recipe.source, &[], &[], mirrors, &recipe.name)?;
    let key = dep_key(recipe, &tree, required, tc, compilers)?;
    let dir = cache.dir("deps")?.join(format!(
        "{}-{}-{}-{key}",
        recipe.name, recipe.version, tc.triple
    ));
    let done = |cache_hit| Dep {
        recipe: recipe.clone(),
        prefix: dir.join("install"),
        key: key.clone(),
        cache_hit,
    };
    let _lock = crate::util::lock_build(&dir)?;
    if is_complete(&dir) {
        return Ok(done(true));
    }
    let work = crate::cache::tempdir_in(cache.dir("deps")?)?;
    let build_dir = work.path().join("build");
    copy_tree(&tree.path, &build_dir)?;
    // configure sees the final prefix (so .pc files and any compiled-in
    // paths name where the tree will live); `make install` writes under
    // DESTDIR, and the staged tree is renamed into place when complete.
    let staged = work.path().join("out");
    fs::create_dir_all(&staged)?;
    let log = cache.log_path(&format!("{}-{}-{}", recipe.name, recipe.version, tc.triple))?;
    let _ = fs::remove_file(&log);
    let b = OneBuild {
        recipe,
        tc,
        compilers,
        tools: Tools::for_toolchain(tc, compilers, &dir.join("install")),
        final_prefix: dir.join("install"),
        destdir: work.path().join("destdir"),
        prefix: staged.join("install"),
        build_dir: match &recipe.subdir {
            Some(sub) => build_dir.join(sub),
            None => build_dir,
        },
        cflags: format!(
            "{} {} {}",
            tc.cflags_with_headers(cache)?,
            tc.library_cflags.join(" "),
            prefix_map_flags(&reproducible::rewrites(&cache.root, work.path()))
        ),
        required,
        log: &log,
    };
    match recipe.build {
        DepBuild::Autoconf => b.autoconf(jobs)?,
        DepBuild::Make => b.make_and_copy(jobs)?,
    }
    b.finish_install()?;
    mark_complete(&staged)?;
    commit_dir(&staged, &dir)?;
    Ok(done(false))
}

/// Everything that changes what one dependency's build makes.
fn dep_key(
    recipe: &DepRecipe,
    tree: &source::Tree,
    required: &[&Dep],
    tc: &Toolchain,
    compilers: &Compilers,
) -> Result<String> {
    let mut key = KeyBuilder::new("dep");
    key.add("revision", DEPS_REVISION)
        .add("recipe", toml::to_string(recipe)?)
        .add("tree", &tree.key)
        .add("target", &tc.triple)
        .add("cc", &compilers.key)
        .add("cflags", tc.library_cflags_all());
    if tc.sdk_stubs.is_some() {
        key.add("sdk-stubs", tc.sdk_stubs_key()?);
    }
    if tc.hides_archive_symbols() {
        key.add("hide-symbols", "true");
    }
    for r in required {
        key.add("requires", &r.key);
    }
    Ok(key.finish())
}

/// One dependency's build in its temporary tree.
struct OneBuild<'a> {
    recipe: &'a DepRecipe,
    tc: &'a Toolchain,
    compilers: &'a Compilers,
    tools: Tools,
    /// Where the tree will live in the cache (what configure is told).
    final_prefix: PathBuf,
    destdir: PathBuf,
    /// Where the staged install is (renamed to the final place at the end).
    prefix: PathBuf,
    build_dir: PathBuf,
    cflags: String,
    required: &'a [&'a Dep],
    log: &'a Path,
}

impl OneBuild<'_> {
    /// One command in the build tree, with the compiler and flags in its
    /// environment, logged.
    fn step(&self, args: Vec<String>, what: String) -> Result<()> {
        let flags = |f: &str, sub: &str| -> String {
            self.required
                .iter()
                .map(|r| format!("{f}{}/{sub}", r.prefix.display()))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut cmd = Command::new(&args[0]);
        cmd.args(&args[1..])
            .current_dir(&self.build_dir)
            .env("CC", &self.compilers.cc)
            .env("AR", &self.tools.ar)
            .env("RANLIB", &self.tools.ranlib)
            .env("CFLAGS", &self.cflags)
            .env("CPPFLAGS", flags("-I", "include"))
            .env("LDFLAGS", flags("-L", "lib"))
            // Deps never look at the build machine's .pc files.
            .env("PKG_CONFIG_LIBDIR", "/nonexistent")
            .env("PKG_CONFIG_PATH", "");
        if let (Some(host), None) = (&self.tc.configure_host, &self.tc.zig) {
            // zlib's configure derives ar/ranlib from CHOST (for a darwin
            // CHOST it would want Apple's libtool: zig's AR is given instead).
            cmd.env("CHOST", host);
        }
        run_logged(cmd, &what, self.log)?;
        Ok(())
    }

    fn expand(&self, args: &[String]) -> Vec<String> {
        args.iter().map(|a| self.tools.expand(a)).collect()
    }

    fn make(&self, jobs: usize) -> Vec<String> {
        let mut make = vec!["make".to_string(), format!("-j{jobs}")];
        make.extend(self.expand(&self.recipe.make_args));
        make
    }

    /// configure; make; make install (into DESTDIR, then moved to the stage).
    fn autoconf(&self, jobs: usize) -> Result<()> {
        let (recipe, name) = (self.recipe, &self.recipe.name);
        if !recipe.bootstrap.is_empty() {
            self.step(recipe.bootstrap.clone(), format!("bootstrapping {name}"))?;
        }
        let mut configure = vec![
            "./configure".to_string(),
            format!("--prefix={}", self.final_prefix.display()),
        ];
        if let (Some(host), true) = (&self.tc.configure_host, recipe.configure_takes_host) {
            configure.push(format!("--host={host}"));
        }
        configure.extend(self.expand(&recipe.configure));
        self.step(configure, format!("configuring {name}"))?;
        self.step(self.make(jobs), format!("building {name}"))?;
        let mut install = vec!["make".to_string()];
        install.extend(recipe.install_targets.iter().cloned());
        install.push(format!("DESTDIR={}", self.destdir.display()));
        self.step(install, format!("installing {name}"))?;
        let installed = self.destdir.join(self.final_prefix.strip_prefix("/")?);
        fs::rename(&installed, &self.prefix)
            .with_context(|| format!("{name} installed nothing under its prefix"))?;
        Ok(())
    }

    /// make, then `install_files` copied (a `make` build has no install).
    fn make_and_copy(&self, jobs: usize) -> Result<()> {
        let recipe = self.recipe;
        self.step(self.make(jobs), format!("building {}", recipe.name))?;
        for (file, subdir) in &recipe.install_files {
            let to = self.prefix.join(subdir);
            fs::create_dir_all(&to)?;
            let name = Path::new(file).file_name().context("install_files entry")?;
            fs::copy(self.build_dir.join(file), to.join(name))
                .with_context(|| format!("installing {} from {}", file, recipe.name))?;
        }
        Ok(())
    }

    /// Aliases, .pc files, hidden symbols, and every promised library there.
    fn finish_install(&self) -> Result<()> {
        let (recipe, lib) = (self.recipe, self.prefix.join("lib"));
        for (from, alias) in &recipe.lib_aliases {
            fs::copy(lib.join(from), lib.join(alias))
                .with_context(|| format!("copying {from} to {alias}"))?;
        }
        if !recipe.pc_files.is_empty() {
            let pc_dir = lib.join("pkgconfig");
            fs::create_dir_all(&pc_dir)?;
            for (name, text) in &recipe.pc_files {
                fs::write(pc_dir.join(name), text)?;
            }
        }
        for name in &recipe.libs {
            let path = lib.join(name);
            if path.is_file() && self.tc.hides_archive_symbols() {
                crate::hide::hide_symbols_in_archive_file(&path)?;
            }
            if !path.is_file() {
                bail!(
                    "{} installed no lib/{name}, which recipes/deps/{}.toml promises; see {}",
                    recipe.name,
                    recipe.name,
                    self.log.display()
                );
            }
        }
        Ok(())
    }
}

/// The binutils matching the toolchain's compiler.
struct Tools {
    ar: String,
    ranlib: String,
    vars: BTreeMap<&'static str, String>,
}

impl Tools {
    fn for_toolchain(tc: &Toolchain, compilers: &Compilers, prefix: &Path) -> Tools {
        let (ar, ranlib) = (compilers.ar.clone(), compilers.ranlib.clone());
        let vars = BTreeMap::from([
            ("{prefix}", prefix.display().to_string()),
            ("{cc}", compilers.cc.clone()),
            ("{ar}", ar.clone()),
            ("{ranlib}", ranlib.clone()),
            ("{cflags}", tc.library_cflags_all()),
        ]);
        Tools { ar, ranlib, vars }
    }
    fn expand(&self, arg: &str) -> String {
        self.vars
            .iter()
            .fold(arg.to_string(), |acc, (k, v)| acc.replace(k, v))
    }
}

/// `cp -a from/. into/`: merges one install tree into another.
fn merge_into(from: &Path, into: &Path) -> Result<()> {
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(into)
        .status()
        .context("running cp")?;
    if !status.success() {
        bail!("merging {} into {} failed", from.display(), into.display());
    }
    Ok(())
}

/// Only static archives may be found by the linker: a stray `.so` (or a
/// libtool `.la` pointing at one) would make a module link dynamically.
fn remove_shared_objects(lib: &Path) -> Result<()> {
    for entry in fs::read_dir(lib)? {
        let path = entry?.path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".la") || name.contains(".so") {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// configure scripts call `$PKG_CONFIG`; this one reads only our `.pc` files
/// (with `--define-prefix`, so their prefix is wherever the tree now lives)
/// and always answers with static link lines (readline also needs ncurses).
fn write_pkg_config_wrapper(path: &Path, final_prefix: &Path) -> Result<()> {
    let script = format!(
        "#!/bin/sh\n# Written by tlsforge: pkg-config over the pinned static dependencies only.\n\
         PKG_CONFIG_LIBDIR='{}/lib/pkgconfig' PKG_CONFIG_PATH= exec pkg-config --static --define-prefix \"$@\"\n",
        final_prefix.display()
    );
    fs::write(path, script)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(name: &str, requires: &[&str]) -> DepRecipe {
        toml::from_str(&format!(
            "name = \"{name}\"\nversion = \"1\"\nlicense = \"MIT\"\nlibs = []\nrequires = {requires:?}\n\
             [source]\nfile = \"x\"\nsize = 1\nsha256 = \"00\"\n"
        ))
        .unwrap()
    }

    #[test]
    fn requirements_come_in_an_earlier_wave() {
        let rs = vec![
            recipe("readline", &["ncurses"]),
            recipe("zlib", &[]),
            recipe("ncurses", &[]),
            recipe("sqlite3", &["zlib"]),
            recipe("history", &["readline"]),
        ];
        let waves: Vec<Vec<_>> = build_waves(&rs)
            .unwrap()
            .iter()
            .map(|w| w.iter().map(|r| r.name.as_str()).collect())
            .collect();
        assert_eq!(
            waves,
            [
                vec!["zlib", "ncurses"],
                vec!["readline", "sqlite3"],
                vec!["history"]
            ]
        );
    }

    #[test]
    fn unknown_requirement_and_cycle_are_errors() {
        let err = build_waves(&[recipe("readline", &["termcap"])]).unwrap_err();
        assert!(err.to_string().contains("requires termcap"), "{err}");
        let err = build_waves(&[recipe("a", &["b"]), recipe("b", &["a"])]).unwrap_err();
        assert!(err.to_string().contains("cycle"), "{err}");
    }
}
