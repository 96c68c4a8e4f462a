//! Stage 5, CPython: configure/make/install a patched tree with `_ssl`,
//! `_hashlib` and `zlib` compiled into the interpreter (Modules/Setup.local,
//! `*static*`), and every other extension module linked against the static
//! archives of stage 4, so no libssl/libcrypto/libz/libffi/… is needed at
//! run time. `--exclude-libs` names exactly those archives, which keeps
//! their symbols out of the dynamic symbol table.

use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::deps::Deps;
use crate::openssl::Openssl;
use crate::recipes::{CpythonRecipe, Toolchain};
use crate::source::Tree;
use crate::util::{
    commit_dir, copy_tree, is_complete, mark_complete, run_logged, Cache, KeyBuilder,
};

/// Bump when the way we configure or install changes, to invalidate builds.
const BUILD_RECIPE_REVISION: &str = "3";

pub struct Built {
    /// The `--prefix` the interpreter was configured for.
    pub prefix: String,
    /// The installed tree: `<root>/bin/python…`, `<root>/lib/…`.
    pub root: PathBuf,
    pub key: String,
    pub cache_hit: bool,
    pub steps: Vec<(String, Duration)>,
    /// (module, why) for extension modules left out of this build.
    pub omitted: Vec<(String, String)>,
}

const OMITTED_FILE: &str = "omitted-modules.json";

pub fn install_prefix(recipe: &CpythonRecipe) -> String {
    format!("/opt/tlsforge/cpython-{}", recipe.version)
}

/// The `*static*` section that links our libraries into the interpreter.
pub fn setup_local(openssl: &Openssl, deps: &Deps) -> Result<String> {
    let o = openssl.prefix.display();
    let z = deps.get("zlib")?.prefix.display();
    Ok(format!(
        "# Written by tlsforge: link TLS, hashing and zlib statically.\n\
         *static*\n\
         _ssl _ssl.c -DUSE_SSL -I{o}/include {o}/lib/libssl.a {o}/lib/libcrypto.a -lpthread\n\
         _hashlib _hashopenssl.c -I{o}/include {o}/lib/libcrypto.a -lpthread\n\
         zlib zlibmodule.c -I{z}/include {z}/lib/libz.a\n"
    ))
}

/// Linker flags: the toolchain's hardening, our static archives first on the
/// search path, and `--exclude-libs` naming every archive we link so none of
/// their symbols is exported (ALL would also hide libpython's own).
pub fn ldflags(tc: &Toolchain, deps: &Deps) -> String {
    let mut libs = vec!["libssl.a".to_string(), "libcrypto.a".to_string()];
    libs.extend(deps.static_libs());
    format!(
        "{} -L{}/lib -Wl,--exclude-libs,{}",
        tc.ldflags.join(" "),
        deps.prefix.display(),
        libs.join(":")
    )
}

pub fn build(
    cache: &Cache,
    recipe: &CpythonRecipe,
    tree: &Tree,
    openssl: &Openssl,
    deps: &Deps,
    tc: &Toolchain,
    build_python: Option<&Path>,
    jobs: usize,
) -> Result<Built> {
    let prefix = install_prefix(recipe);
    let key = KeyBuilder::new("cpython")
        .add("revision", BUILD_RECIPE_REVISION)
        .add("tree", &tree.key)
        .add("configure", recipe.configure.join(" "))
        .add("openssl", &openssl.key)
        .add("deps", &deps.key)
        .add("toolchain", toml::to_string(tc)?)
        .add("prefix", &prefix)
        .finish();
    let dir = cache
        .dir("cpython")?
        .join(format!("{}-{}-{}", recipe.version, tc.triple, key));
    let root = dir.join("install").join(prefix.trim_start_matches('/'));
    if is_complete(&dir) {
        let omitted = serde_json::from_slice(&fs::read(dir.join(OMITTED_FILE))?)?;
        return Ok(Built {
            prefix,
            root,
            key,
            cache_hit: true,
            steps: vec![],
            omitted,
        });
    }
    let work = tempfile::tempdir_in(cache.dir("cpython")?)?;
    let src = work.path().join("build");
    copy_tree(&tree.path, &src)?;
    fs::write(src.join("Modules/Setup.local"), setup_local(openssl, deps)?)?;
    let staged = work.path().join("out");
    let log = cache.log_path(&format!("cpython-{}-{}", recipe.version, tc.triple))?;
    let _ = fs::remove_file(&log);

    let mut configure = Command::new("./configure");
    configure
        .current_dir(&src)
        .arg(format!("--prefix={prefix}"))
        .arg("--with-ensurepip=no")
        .env("CC", &tc.cc)
        .env("CFLAGS", tc.cflags.join(" "))
        .env("CPPFLAGS", format!("-I{}/include", deps.prefix.display()))
        .env("LDFLAGS", ldflags(tc, deps))
        // configure sees only our .pc files, with static link lines.
        .env("PKG_CONFIG", deps.pkg_config())
        .env("PKG_CONFIG_LIBDIR", deps.prefix.join("lib/pkgconfig"))
        .env("PKG_CONFIG_PATH", "")
        // The pinned expat and libffi, not the copies in the CPython tree.
        .arg("--with-system-expat")
        .arg("--with-system-ffi");
    if let Some(host) = &tc.configure_host {
        let build_python = build_python.context("a cross build needs a native build-Python")?;
        configure
            .arg(format!("--host={host}"))
            .arg(format!(
                "--build={}",
                gnu_triple(&crate::recipes::host_triple())
            ))
            .arg(format!("--with-build-python={}", build_python.display()))
            .args(&tc.config_site);
    }
    configure.args(&recipe.configure);
    // 2.7's setup.py finds OpenSSL itself (Setup.local); 3.x's configure is told.
    if !recipe.is_python2() {
        configure
            .arg(format!("--with-openssl={}", openssl.prefix.display()))
            .arg("--with-openssl-rpath=no");
    }
    let mut steps = Vec::new();
    steps.push((
        "configure".to_string(),
        run_logged(
            configure,
            &format!("configuring CPython {}", recipe.version),
            &log,
        )?,
    ));

    let mut make = Command::new("make");
    make.current_dir(&src).arg(format!("-j{jobs}"));
    steps.push((
        "make".to_string(),
        run_logged(make, &format!("compiling CPython {}", recipe.version), &log)?,
    ));
    check_builtin(&src, &["_ssl", "_hashlib", "zlib"])
        .with_context(|| format!("see {}", log.display()))?;

    let mut install = Command::new("make");
    install
        .current_dir(&src)
        .arg(format!("-j{jobs}"))
        .arg("install")
        .arg(format!("DESTDIR={}", staged.join("install").display()));
    steps.push((
        "make install".to_string(),
        run_logged(
            install,
            &format!("installing CPython {}", recipe.version),
            &log,
        )?,
    ));
    let staged_root = staged.join("install").join(prefix.trim_start_matches('/'));
    if !staged_root.join("bin").is_dir() {
        bail!("make install left no {}/bin", staged_root.display());
    }
    let omitted = crate::validate::prune_system_linked(&staged_root, tc)?;
    fs::write(
        staged.join(OMITTED_FILE),
        serde_json::to_vec_pretty(&omitted)?,
    )?;
    mark_complete(&staged)?;
    commit_dir(&staged, &dir)?;
    Ok(Built {
        prefix,
        root,
        key,
        cache_hit: false,
        steps,
        omitted,
    })
}

/// x86_64-unknown-linux-gnu → x86_64-pc-linux-gnu (autoconf's spelling).
fn gnu_triple(rust_triple: &str) -> String {
    rust_triple.replace("-unknown-linux-", "-pc-linux-")
}

/// makesetup writes the built-in modules into Modules/config.c; if one of
/// ours is missing there, the interpreter would silently lack it.
fn check_builtin(src: &Path, modules: &[&str]) -> Result<()> {
    let config =
        fs::read_to_string(src.join("Modules/config.c")).context("reading Modules/config.c")?;
    for m in modules {
        if !config.contains(&format!("\"{m}\"")) {
            bail!("module {m} is not compiled into the interpreter (Modules/config.c lacks it)");
        }
    }
    Ok(())
}
