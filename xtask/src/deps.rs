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
    let key = key.finish();
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
    let final_prefix = dir.join("install");
    let destdir = work.path().join("destdir");
    let staged = work.path().join("out");
    let prefix = staged.join("install");
    fs::create_dir_all(&staged)?;
    let log = cache.log_path(&format!("{}-{}-{}", recipe.name, recipe.version, tc.triple))?;
    let _ = fs::remove_file(&log);

    let tools = Tools::for_toolchain(tc, compilers, &final_prefix);
    let cppflags: Vec<String> = required
        .iter()
        .map(|r| format!("-I{}/include", r.prefix.display()))
        .collect();
    let ldflags: Vec<String> = required
        .iter()
        .map(|r| format!("-L{}/lib", r.prefix.display()))
        .collect();
    let build_dir = match &recipe.subdir {
        Some(sub) => build_dir.join(sub),
        None => build_dir,
    };
    let cflags = format!(
        "{} {} {}",
        tc.cflags_with_headers(cache)?,
        tc.library_cflags.join(" "),
        prefix_map_flags(&reproducible::rewrites(&cache.root, work.path()))
    );
    let step = |args: Vec<String>, what: String| -> Result<()> {
        let mut cmd = Command::new(&args[0]);
        cmd.args(&args[1..])
            .current_dir(&build_dir)
            .env("CC", &compilers.cc)
            .env("AR", &tools.ar)
            .env("RANLIB", &tools.ranlib)
            .env("CFLAGS", &cflags)
            .env("CPPFLAGS", cppflags.join(" "))
            .env("LDFLAGS", ldflags.join(" "))
            // Deps never look at the build machine's .pc files.
            .env("PKG_CONFIG_LIBDIR", "/nonexistent")
            .env("PKG_CONFIG_PATH", "");
        if let (Some(host), None) = (&tc.configure_host, &tc.zig) {
            // zlib's configure derives ar/ranlib from CHOST (for a darwin
            // CHOST it would want Apple's libtool: zig's AR is given instead).
            cmd.env("CHOST", host);
        }
        run_logged(cmd, &what, &log)?;
        Ok(())
    };
    let expand =
        |args: &[String]| -> Vec<String> { args.iter().map(|a| tools.expand(a)).collect() };
    let mut make = vec!["make".to_string(), format!("-j{jobs}")];
    make.extend(expand(&recipe.make_args));
    match recipe.build {
        DepBuild::Autoconf => {
            if !recipe.bootstrap.is_empty() {
                step(
                    recipe.bootstrap.clone(),
                    format!("bootstrapping {}", recipe.name),
                )?;
            }
            let mut configure = vec![
                "./configure".to_string(),
                format!("--prefix={}", final_prefix.display()),
            ];
            if let Some(host) = &tc.configure_host {
                configure.push(format!("--host={host}"));
            }
            configure.extend(expand(&recipe.configure));
            // zlib's hand-written configure rejects --host; it uses CHOST.
            if recipe.name == "zlib" {
                configure.retain(|a| !a.starts_with("--host="));
            }
            step(configure, format!("configuring {}", recipe.name))?;
            step(make, format!("building {}", recipe.name))?;
            let mut install = vec!["make".to_string()];
            install.extend(recipe.install_targets.iter().cloned());
            install.push(format!("DESTDIR={}", destdir.display()));
            step(install, format!("installing {}", recipe.name))?;
            let installed = destdir.join(final_prefix.strip_prefix("/")?);
            fs::rename(&installed, &prefix)
                .with_context(|| format!("{} installed nothing under its prefix", recipe.name))?;
        }
        DepBuild::Make => {
            step(make, format!("building {}", recipe.name))?;
            for (file, subdir) in &recipe.install_files {
                let to = prefix.join(subdir);
                // (a `make` build has no install step of its own)
                fs::create_dir_all(&to)?;
                let name = Path::new(file).file_name().context("install_files entry")?;
                fs::copy(build_dir.join(file), to.join(name))
                    .with_context(|| format!("installing {} from {}", file, recipe.name))?;
            }
        }
    }
    for (lib, alias) in &recipe.lib_aliases {
        fs::copy(prefix.join("lib").join(lib), prefix.join("lib").join(alias))
            .with_context(|| format!("copying {lib} to {alias}"))?;
    }
    if !recipe.pc_files.is_empty() {
        let pc_dir = prefix.join("lib/pkgconfig");
        fs::create_dir_all(&pc_dir)?;
        for (name, text) in &recipe.pc_files {
            fs::write(pc_dir.join(name), text)?;
        }
    }
    for lib in &recipe.libs {
        let path = prefix.join("lib").join(lib);
        if path.is_file() && tc.hides_archive_symbols() {
            crate::hide::hide_symbols_in_archive_file(&path)?;
        }
        if !path.is_file() {
            bail!(
                "{} installed no lib/{lib}, which recipes/deps/{}.toml promises; see {}",
                recipe.name,
                recipe.name,
                log.display()
            );
        }
    }
    mark_complete(&staged)?;
    commit_dir(&staged, &dir)?;
    Ok(done(false))
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
