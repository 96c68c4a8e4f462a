//! C libraries the interpreter links statically besides OpenSSL (zlib, …),
//! built from pinned sources with their own `configure`/`make`.

use anyhow::Result;
use std::path::PathBuf;
use std::process::Command;

use crate::recipes::{DepRecipe, Toolchain};
use crate::source;
use crate::util::{
    commit_dir, copy_tree, is_complete, mark_complete, run_logged, Cache, KeyBuilder,
};

pub struct Dep {
    pub version: String,
    pub prefix: PathBuf,
    pub key: String,
    pub sha256: String,
    pub license: String,
    pub cache_hit: bool,
}

pub fn build(
    cache: &Cache,
    recipe: &DepRecipe,
    tc: &Toolchain,
    mirrors: &[String],
    jobs: usize,
) -> Result<Dep> {
    let tree = source::prepare(cache, &recipe.source, &[], mirrors, &recipe.name)?;
    let key = KeyBuilder::new("dep")
        .add("tree", &tree.key)
        .add("target", &tc.triple)
        .add("cc", &tc.cc)
        .add("cflags", tc.cflags.join(" "))
        .add("configure", recipe.configure.join(" "))
        .finish();
    let dir = cache.dir("deps")?.join(format!(
        "{}-{}-{}-{key}",
        recipe.name, recipe.version, tc.triple
    ));
    let done = |cache_hit| Dep {
        version: recipe.version.clone(),
        prefix: dir.join("install"),
        key: key.clone(),
        sha256: recipe.source.sha256.clone(),
        license: recipe.license.clone(),
        cache_hit,
    };
    if is_complete(&dir) {
        return Ok(done(true));
    }
    let work = tempfile::tempdir_in(cache.dir("deps")?)?;
    let build_dir = work.path().join("build");
    copy_tree(&tree.path, &build_dir)?;
    let staged = work.path().join("out");
    let prefix = staged.join("install");
    let log = cache.log_path(&format!("{}-{}-{}", recipe.name, recipe.version, tc.triple))?;
    let _ = std::fs::remove_file(&log);
    let step = |args: &[String], what: &str| -> Result<()> {
        let mut cmd = Command::new(&args[0]);
        cmd.args(&args[1..])
            .current_dir(&build_dir)
            .env("CC", &tc.cc)
            .env("CFLAGS", tc.cflags.join(" "));
        if let Some(host) = &tc.configure_host {
            // zlib's configure derives ar/ranlib from CHOST.
            cmd.env("CHOST", host);
        }
        run_logged(cmd, what, &log)?;
        Ok(())
    };
    let mut configure = vec![
        "./configure".to_string(),
        format!("--prefix={}", prefix.display()),
    ];
    configure.extend(recipe.configure.iter().cloned());
    step(&configure, &format!("configuring {}", recipe.name))?;
    let mut make = vec!["make".to_string(), format!("-j{jobs}")];
    make.extend(recipe.make_targets.iter().cloned());
    step(&make, &format!("building {}", recipe.name))?;
    let mut install = vec!["make".to_string()];
    install.extend(recipe.install_targets.iter().cloned());
    step(&install, &format!("installing {}", recipe.name))?;
    mark_complete(&staged)?;
    commit_dir(&staged, &dir)?;
    Ok(done(false))
}
