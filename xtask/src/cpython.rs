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

use crate::compilers::Compilers;
use crate::deps::Deps;
use crate::openssl::Openssl;
use crate::optimise::{Optimisation, Step};
use crate::recipes::{BinaryFormat, CpythonRecipe, Modules, Os, Profile, Toolchain};
use crate::reproducible::{self, prefix_map_flags};
use crate::source::Tree;
use crate::util::{
    commit_dir, copy_tree, is_complete, mark_complete, run_logged, Cache, KeyBuilder,
};

/// Bump when the way we configure or install changes, to invalidate builds.
const BUILD_RECIPE_REVISION: &str = "7";

/// configure checks whose answer would come from the state of the build
/// machine rather than the target: under `nice -n 19`, nice(1) cannot
/// raise the niceness further and configure concludes the libc's nice()
/// is broken (found by `cargo xtask repro`: pyconfig.h differed).
const PINNED_CONFIGURE_ANSWERS: &[&str] = &["ac_cv_broken_nice=no"];

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
    pub optimisation: Optimisation,
}

const OMITTED_FILE: &str = "omitted-modules.json";

/// The step after `make install` that is ours, not CPython's build: the
/// orchestration overhead line counts it.
pub const POST_INSTALL_STEP: &str =
    "debug info, config for users' compilers, build paths, timestamps";

/// The `*static*` section that links our libraries into the interpreter.
pub fn setup_local(openssl: &Openssl, deps: &Deps, tc: &Toolchain) -> Result<String> {
    let o = openssl.prefix.display();
    let z = deps.get("zlib")?.prefix.display();
    // (macOS has threads in libSystem, and no libpthread to name)
    let pthread = if tc.os == Os::Macos { "" } else { " -lpthread" };
    Ok(format!(
        "# Written by tlsforge: link TLS, hashing and zlib statically.\n\
         *static*\n\
         _ssl _ssl.c -DUSE_SSL -I{o}/include {o}/lib/libssl.a {o}/lib/libcrypto.a{pthread}\n\
         _hashlib _hashopenssl.c -I{o}/include {o}/lib/libcrypto.a{pthread}\n\
         zlib zlibmodule.c -I{z}/include {z}/lib/libz.a\n"
    ))
}

/// Linker flags: the toolchain's hardening, our static archives first on the
/// search path, and `--exclude-libs` naming every archive we link so none of
/// their symbols is exported (ALL would also hide libpython's own).
pub fn ldflags(tc: &Toolchain, deps: &Deps, cache: &Cache) -> Result<String> {
    let link_flags: Vec<&str> = tc
        .ldflags
        .iter()
        .map(String::as_str)
        .filter(|f| !(strips_after_install(tc) && *f == "-Wl,-S"))
        .collect();
    let mut flags = format!(
        "{} {} -L{}/lib",
        link_flags.join(" "),
        tc.sdk_ldflags(cache)?,
        deps.prefix.display()
    );
    // (a positional archive: zig's linker takes no -Wl,<file>, and it is
    // searched wherever it stands on the line)
    if let Some(runtime) = tc.runtime_library_path()? {
        flags.push_str(&format!(" {}", runtime.display()));
    }
    // (Mach-O has no --exclude-libs: Toolchain::hides_archive_symbols)
    if !tc.hides_archive_symbols() {
        let mut libs = vec!["libssl.a".to_string(), "libcrypto.a".to_string()];
        libs.extend(deps.static_libs());
        flags.push_str(&format!(" -Wl,--exclude-libs,{}", libs.join(":")));
    }
    Ok(flags.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// zig's ELF linker reads -S as "strip everything", symbol table
/// included; CPython's binaries are linked with their symbols instead and
/// lose only their debug info after `make install` (`objcopy
/// --strip-debug`), so a backtrace or gdb still names functions.
fn strips_after_install(tc: &Toolchain) -> bool {
    tc.zig.is_some() && tc.binary_format == BinaryFormat::Elf
}

/// Debug info out of every ELF executable and shared object (it names the
/// build's directories); the symbol table stays. With `gcc_archives`, also
/// out of the static libraries and python.o of a gcc LTO build, with their
/// LTO sections: gcc-version-specific IR beside the machine code, which
/// would double libpythonX.Y.a (users' links take the machine code).
fn strip_debug_info(root: &Path, gcc_archives: bool) -> Result<()> {
    let link_input = |p: &Path| p.extension().is_some_and(|e| e == "o" || e == "a");
    let mut files: Vec<PathBuf> = crate::validate::elf_files(root)?
        .into_iter()
        .filter(|p| !link_input(p))
        .collect();
    if gcc_archives {
        files.extend(
            crate::util::files_under(root, false)?
                .into_iter()
                .filter(|p| {
                    link_input(p)
                        && crate::util::file_starts_with(p, |h| {
                            h.starts_with(b"!<arch>\n") || h.starts_with(b"\x7fELF")
                        })
                }),
        );
    }
    crate::util::par_map(&files, |path| {
        let out = Command::new("objcopy")
            .arg("--strip-debug")
            .args(if link_input(path) {
                &[
                    "--remove-section=.gnu.lto_*",
                    "--remove-section=.gnu.debuglto_*",
                ][..]
            } else {
                &[]
            })
            .arg(path)
            .output()
            .context("running objcopy (binutils)")?;
        if !out.status.success() {
            bail!(
                "objcopy --strip-debug {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    })?;
    Ok(())
}

/// `make install` puts libpythonX.Y.a both in lib/ and in config-*/;
/// lib/'s becomes a relative symlink to the other.
fn link_duplicate_static_library(root: &Path) -> Result<()> {
    for entry in fs::read_dir(root.join("lib"))?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !(name.starts_with("libpython") && name.ends_with(".a")) {
            continue;
        }
        let short = name.trim_start_matches("libpython").trim_end_matches(".a");
        let stdlib = root.join("lib").join(format!("python{short}"));
        let twin = fs::read_dir(&stdlib)?
            .flatten()
            .map(|e| e.path().join(&name))
            .find(|p| {
                p.parent()
                    .and_then(|d| d.file_name())
                    .is_some_and(|d| d.to_string_lossy().starts_with("config"))
                    && p.is_file()
            });
        if let Some(twin) = twin {
            if fs::read(&twin)? == fs::read(entry.path())? {
                let rel = twin.strip_prefix(root.join("lib"))?;
                fs::remove_file(entry.path())?;
                std::os::unix::fs::symlink(rel, entry.path())?;
            }
        }
    }
    Ok(())
}

/// What a CPython build is made from and against, besides its tree.
pub struct Inputs<'a> {
    pub cache: &'a Cache,
    pub recipe: &'a CpythonRecipe,
    pub openssl: &'a Openssl,
    pub deps: &'a Deps,
    pub tc: &'a Toolchain,
    pub compilers: &'a Compilers,
    /// A native interpreter of the same version, for cross builds.
    pub build_python: Option<&'a Path>,
    /// `--prefix` (recipes/packaging.toml `install_prefix`).
    pub prefix: String,
}

impl Inputs<'_> {
    /// The C compiler for this CPython (zig's clang, or gcc at the same
    /// floor for the series `[cpython_gcc]` names).
    pub fn cc(&self) -> crate::compilers::CpythonCc {
        self.compilers.for_cpython(&self.recipe.series)
    }

    /// `[cpython_gcc]`'s build-only flags when gcc compiles this CPython
    /// (with its libraries, for the link).
    fn route_flags(&self, link: bool) -> String {
        match &self.tc.cpython_gcc {
            Some(route) if self.cc().gcc_floor => {
                let flags: Vec<&str> = match link {
                    true => route.build_only_flags().map(String::as_str).collect(),
                    false => route.build_flags.iter().map(String::as_str).collect(),
                };
                flags.join(" ")
            }
            _ => String::new(),
        }
    }
}

pub fn build(
    inputs: &Inputs,
    tree: &Tree,
    modules: &Modules,
    profile: &Profile,
    jobs: usize,
) -> Result<Built> {
    let Inputs {
        cache, recipe, tc, ..
    } = *inputs;
    let prefix = inputs.prefix.clone();
    let plan = crate::optimise::plan(profile, tc, &inputs.cc(), recipe.is_python2())?;
    let key = build_key(inputs, tree, &plan, profile)?;
    let dir = cache
        .dir("cpython")?
        .join(format!("{}-{}-{}", recipe.version, tc.triple, key));
    let root = dir.join("install").join(prefix.trim_start_matches('/'));
    let _lock = crate::util::lock_build(&dir)?;
    if is_complete(&dir) {
        let omitted = serde_json::from_slice(&fs::read(dir.join(OMITTED_FILE))?)?;
        return Ok(Built {
            prefix,
            root,
            key,
            cache_hit: true,
            steps: vec![],
            omitted,
            optimisation: plan.summary,
        });
    }
    let work = crate::cache::tempdir_in(cache.dir("cpython")?)?;
    let src = work.path().join("build");
    copy_tree(&tree.path, &src)?;
    let staged = work.path().join("out");
    let rewrites = reproducible::rewrites(&cache.root, work.path());
    let log = cache.log_path(&format!("cpython-{}-{}", recipe.version, tc.triple))?;
    let _ = fs::remove_file(&log);
    let configure = configure_command(inputs, &plan, &src, &rewrites)?;
    let make = Make {
        src: &src,
        jobs,
        vars: plan.make_vars(&work.path().join("pgo")),
        path: configure.path.clone(),
        log: &log,
        version: &recipe.version,
    };
    let mut steps = vec![(
        "configure".to_string(),
        run_logged(
            configure.command,
            &format!("configuring CPython {}", recipe.version),
            &log,
        )?,
    )];
    steps.extend(compile(&make, &plan, &work.path().join("pgo"))?);
    steps.push(("make install".to_string(), install(&make, recipe, &staged)?));
    let staged_root = staged.join("install").join(prefix.trim_start_matches('/'));
    if !staged_root.join("bin").is_dir() {
        bail!("make install left no {}/bin", staged_root.display());
    }
    let mut on_purpose = modules.omitted.get(recipe.is_python2()).clone();
    for (module, why) in &inputs.deps.left_out {
        on_purpose
            .entry(module.clone())
            .or_insert_with(|| why.clone());
    }
    let omitted = omitted_modules(&staged_root, &src, tc, &on_purpose)?;
    let started = std::time::Instant::now();
    post_install(inputs, &staged_root, &prefix, &rewrites)?;
    steps.push((POST_INSTALL_STEP.to_string(), started.elapsed()));
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
        optimisation: plan.summary,
    })
}

/// Everything that changes what the build makes (and nothing else).
fn build_key(
    inputs: &Inputs,
    tree: &Tree,
    plan: &crate::optimise::Plan,
    profile: &Profile,
) -> Result<String> {
    let (recipe, tc) = (inputs.recipe, inputs.tc);
    Ok(KeyBuilder::new("cpython")
        .add("revision", BUILD_RECIPE_REVISION)
        .add("tree", &tree.key)
        .add("configure", recipe.configure.join(" "))
        .add("openssl", &inputs.openssl.key)
        .add("deps", &inputs.deps.key)
        .add("toolchain", tc.build_key_text()?)
        .add("cc", inputs.cc().key)
        .add("prefix", &inputs.prefix)
        .add("optimisation", serde_json::to_string(&plan.summary)?)
        .add("profile", serde_json::to_string(profile)?)
        .finish())
}

/// How every `make` of one build runs.
struct Make<'a> {
    src: &'a Path,
    jobs: usize,
    /// The optimisation plan's variables (PGO flags, profile paths).
    vars: Vec<String>,
    /// PATH with the build-Python first, for cross builds.
    path: Option<std::ffi::OsString>,
    log: &'a Path,
    version: &'a str,
}

impl Make<'_> {
    fn command<S: AsRef<std::ffi::OsStr>>(&self, targets: &[S]) -> Command {
        let mut make = Command::new("make");
        make.current_dir(self.src)
            .arg(format!("-j{}", self.jobs))
            .args(targets)
            .args(&self.vars);
        if let Some(path) = &self.path {
            make.env("PATH", path);
        }
        make
    }
}

/// The plan's make steps (with PGO: instrumented build, training run,
/// build from the profile); then the modules that must be built in.
fn compile(
    make: &Make,
    plan: &crate::optimise::Plan,
    pgo_dir: &Path,
) -> Result<Vec<(String, std::time::Duration)>> {
    let mut steps = Vec::new();
    for step in plan.steps() {
        match step {
            Step::Make(name, targets) => {
                let what = format!("CPython {}: {name}", make.version);
                let cmd = make.command(&targets);
                steps.push((name.to_string(), run_logged(cmd, &what, make.log)?));
            }
            Step::Train => steps.push((
                "PGO training run".to_string(),
                plan.train(make.src, pgo_dir, make.log)?,
            )),
            Step::Touch(file) => fs::write(make.src.join(file), "")?,
        }
    }
    check_builtin(make.src, &["_ssl", "_hashlib", "zlib"])
        .with_context(|| format!("see {}", make.log.display()))?;
    Ok(steps)
}

/// `make install` into the stage's DESTDIR.
fn install(make: &Make, recipe: &CpythonRecipe, staged: &Path) -> Result<std::time::Duration> {
    let mut install = make.command(&["install"]);
    install.arg(format!("DESTDIR={}", staged.join("install").display()));
    if make.path.is_some() && recipe.is_python2() {
        install.arg(python2_cross_install_interpreter(make.src)?);
    }
    run_logged(
        install,
        &format!("installing CPython {}", recipe.version),
        make.log,
    )
}

/// Ours after `make install`: debug info, the duplicate static library,
/// the config users' compilers read, build paths and bytecode.
fn post_install(
    inputs: &Inputs,
    staged_root: &Path,
    prefix: &str,
    rewrites: &[(String, String)],
) -> Result<()> {
    let (recipe, tc) = (inputs.recipe, inputs.tc);
    if strips_after_install(tc) {
        strip_debug_info(staged_root, inputs.cc().gcc_floor)?;
    }
    link_duplicate_static_library(staged_root)?;
    let config_for_users = crate::sysconfig::for_users(
        staged_root,
        &crate::sysconfig::Rules::new(tc, &reproducible::build_dirs(rewrites))?,
    )?;
    make_reproducible(
        staged_root,
        prefix,
        rewrites,
        config_for_users,
        recipe.is_python2(),
        &python_for_bytecode(staged_root, recipe, tc, inputs.build_python)?,
    )
}

/// The toolchain's C flags without its -O level (CPython's OPT keeps its
/// own), CPython's and 2.7's extras, and the build-path rewrites.
fn cflags(inputs: &Inputs, rewrites: &[(String, String)]) -> Result<String> {
    let (tc, recipe) = (inputs.tc, inputs.recipe);
    Ok([
        crate::optimise::without_optimisation_level(
            &tc.cflags_with_headers(inputs.cache)?
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>(),
        )
        .join(" "),
        tc.cpython_cflags.join(" "),
        if recipe.is_python2() {
            tc.cflags_python2.join(" ")
        } else {
            String::new()
        },
        prefix_map_flags(rewrites),
        inputs.route_flags(false),
    ]
    .join(" ")
    // (empty parts must not leave runs of spaces: they are recorded in
    // sysconfig, and the text should not depend on which optional flags a
    // toolchain happens to leave empty)
    .split_whitespace()
    .collect::<Vec<_>>()
    .join(" "))
}

/// `./configure` for `src` with our compiler, flags, dependencies and
/// the plan's optimisation, and the PATH the build's make commands need.
pub struct Configure {
    pub command: Command,
    pub path: Option<std::ffi::OsString>,
}

pub fn configure_command(
    inputs: &Inputs,
    plan: &crate::optimise::Plan,
    src: &Path,
    rewrites: &[(String, String)],
) -> Result<Configure> {
    let Inputs {
        cache,
        recipe,
        openssl,
        deps,
        tc,
        compilers,
        build_python,
        ref prefix,
    } = *inputs;
    fs::write(
        src.join("Modules/Setup.local"),
        setup_local(openssl, deps, tc)?,
    )?;
    let cc = inputs.cc().name;
    let mut configure = Command::new("./configure");
    configure
        .current_dir(src)
        .arg(format!("--prefix={prefix}"))
        .arg("--with-ensurepip=no")
        .env("CC", &cc)
        .env("CFLAGS", cflags(inputs, rewrites)?)
        .env("CPPFLAGS", format!("-I{}/include", deps.prefix.display()))
        .env(
            "LDFLAGS",
            [
                inputs.route_flags(true),
                ldflags(tc, deps, cache)?,
                plan.link_flags().join(" "),
            ]
            .join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        )
        // configure sees only our .pc files, with static link lines.
        .env("PKG_CONFIG", deps.pkg_config())
        .env("PKG_CONFIG_LIBDIR", deps.prefix.join("lib/pkgconfig"))
        .env("PKG_CONFIG_PATH", "");
    // (gcc's LTO objects want binutils' ar and ranlib, which configure
    // finds; they index the objects through gcc's linker plugin)
    if let (Some(cxx), false) = (&compilers.cxx, inputs.cc().gcc_floor) {
        configure
            .env("CXX", cxx)
            .env("AR", &compilers.ar)
            .env("RANLIB", &compilers.ranlib);
    }
    for (name, value) in &tc.configure_env {
        let value = value
            .replace("{cc}", &cc)
            .replace("{cxx}", compilers.cxx.as_deref().unwrap_or("c++"));
        configure.env(name, value);
    }
    // The pinned expat and libffi, not the copies in the CPython tree.
    if deps.get("expat").is_ok() {
        configure.arg("--with-system-expat");
    }
    if deps.get("libffi").is_ok() {
        configure.arg("--with-system-ffi");
    }
    // 2.7's configure finds its build-Python as `python2.7` on PATH, and
    // its Makefile runs it by that name.
    let path_with_build_python = match (&tc.configure_host, build_python) {
        (Some(_), Some(python)) => Some(crate::util::path_with_first(
            python
                .parent()
                .context("build-Python path has no directory")?,
        )?),
        _ => None,
    };
    if let Some(path) = &path_with_build_python {
        configure.env("PATH", path);
    }
    if let (Some(host), true) = (&tc.configure_host, tc.is_cross()) {
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
    if tc.fully_static {
        // 3.13's configure builds every Setup.stdlib module into the
        // interpreter when asked (a static binary cannot dlopen).
        configure.env("MODULE_BUILDTYPE", "static");
    }
    plan.configure(&mut configure, &compilers.ar);
    configure.args(PINNED_CONFIGURE_ANSWERS);
    configure.args(&tc.cpython_configure);
    configure.args(&recipe.configure);
    // 2.7's setup.py finds OpenSSL itself (Setup.local); 3.x's configure is told.
    if !recipe.is_python2() {
        configure
            .arg(format!("--with-openssl={}", openssl.prefix.display()))
            .arg("--with-openssl-rpath=no");
    }
    Ok(Configure {
        command: configure,
        path: path_with_build_python,
    })
}

/// 2.7's `make install` byte-compiles with its build-Python and a
/// PYTHONPATH that starts with the target's extension modules, which the
/// build machine cannot load ("invalid ELF header" for a Mach-O _struct.so).
/// It gets a PYTHONPATH with only the target's sysconfig data and the
/// pure-Python library instead.
fn python2_cross_install_interpreter(src: &Path) -> Result<String> {
    let makefile = fs::read_to_string(src.join("Makefile"))?;
    let var = |name: &str| {
        makefile
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim_start().strip_prefix('='))
            .map(|v| v.trim().to_string())
            .with_context(|| format!("no {name} in CPython's Makefile"))
    };
    let machdep = var("MACHDEP")?;
    let sysconfig_only = src.join("build/sysconfigdata-only");
    fs::create_dir_all(&sysconfig_only)?;
    let built = fs::read_dir(src.join("build"))?
        .flatten()
        .map(|e| e.path().join("_sysconfigdata.py"))
        .find(|p| p.is_file())
        .context("2.7's build left no build/lib.*/_sysconfigdata.py")?;
    fs::copy(&built, sysconfig_only.join("_sysconfigdata.py"))?;
    let s = src.display();
    Ok(format!(
        "PYTHON_FOR_BUILD=_PYTHON_PROJECT_BASE={s} _PYTHON_HOST_PLATFORM={machdep} \
         PYTHONPATH={s}/build/sysconfigdata-only:{s}/Lib:{s}/Lib/plat-{machdep} python2.7"
    ))
}

/// Modules the build does not contain: those pruned because they linked a
/// library outside the allowlist, and those `recipes/modules.toml` leaves
/// out on purpose (with its reason).
fn omitted_modules(
    root: &Path,
    src: &Path,
    tc: &Toolchain,
    on_purpose: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<(String, String)>> {
    let mut omitted = crate::validate::prune_system_linked(root, tc)?;
    for (module, why) in omitted.iter_mut() {
        if let Some(reason) = on_purpose.get(module) {
            *why = format!("{reason} ({why})");
        }
    }
    let config = fs::read_to_string(src.join("Modules/config.c")).unwrap_or_default();
    let dynload: Vec<String> = fs::read_dir(root.join("lib"))?
        .flatten()
        .map(|e| e.path().join("lib-dynload"))
        .filter(|p| p.is_dir())
        .flat_map(|p| fs::read_dir(p).into_iter().flatten().flatten())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    for (module, why) in on_purpose {
        let built_in = config.contains(&format!("\"{module}\""));
        let shared = dynload.iter().any(|f| f.starts_with(&format!("{module}.")));
        if !built_in && !shared && !omitted.iter().any(|(m, _)| m == module) {
            omitted.push((module.clone(), why.clone()));
        }
    }
    omitted.sort();
    Ok(omitted)
}

/// An interpreter of this version that runs here, to recompile bytecode:
/// the one just built (natively or under the target's emulator), else the
/// cross build's native build-Python.
fn python_for_bytecode(
    root: &Path,
    recipe: &CpythonRecipe,
    tc: &Toolchain,
    build_python: Option<&Path>,
) -> Result<Vec<String>> {
    if tc.can_run() {
        let mut cmd = tc.run_under.clone();
        cmd.push(
            crate::validate::python_exe(root, recipe.is_python2())
                .display()
                .to_string(),
        );
        return Ok(cmd);
    }
    let p = build_python.context("no interpreter to recompile bytecode with")?;
    Ok(vec![p.display().to_string()])
}

/// After `make install`: build paths out of text files (recompiling the
/// bytecode of any changed module), pyc headers and mtimes fixed, and a
/// check that no file still names a build directory.
fn make_reproducible(
    root: &Path,
    prefix: &str,
    rewrites: &[(String, String)],
    also_changed: Vec<PathBuf>,
    python2: bool,
    python: &[String],
) -> Result<()> {
    let mut changed = reproducible::scrub_text_files(root, rewrites)?;
    for p in also_changed {
        if !changed.contains(&p) {
            changed.push(p);
        }
    }
    let sources: Vec<&PathBuf> = changed
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    if !sources.is_empty() {
        for s in &sources {
            for b in reproducible::bytecode_of(s) {
                fs::remove_file(b)?;
            }
        }
        // The same names make install would have recorded (co_filename).
        let pairs: Vec<String> = sources
            .iter()
            .flat_map(|s| {
                [
                    s.display().to_string(),
                    format!("{prefix}/{}", s.strip_prefix(root).unwrap().display()),
                ]
            })
            .collect();
        // 2.7 writes .pyo files when run with -O.
        let flags: &[&[&str]] = if python2 { &[&[], &["-O"]] } else { &[&[]] };
        for f in flags {
            let out = Command::new(&python[0])
                .args(&python[1..])
                .args(*f)
                .args(["-c", include_str!("py/recompile.py")])
                .args(&pairs)
                .output()
                .context("recompiling bytecode")?;
            if !out.status.success() {
                bail!(
                    "recompiling bytecode failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    let epoch = crate::package::source_date_epoch();
    if python2 {
        reproducible::fix_python2_pyc_mtimes(root, epoch)?;
    }
    reproducible::set_mtimes(root, epoch)?;
    let needles: Vec<String> = rewrites.iter().map(|(from, _)| from.clone()).collect();
    let left = reproducible::files_containing(root, &needles)?;
    if !left.is_empty() {
        bail!(
            "build paths survive in the installed tree:\n  {}",
            left.join("\n  ")
        );
    }
    Ok(())
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
