//! The whole road, stage by stage: fetch → extract → patch → OpenSSL →
//! deps → CPython → validate → package. Each stage is its own module; this
//! one only wires them together, times them and writes the manifest.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Instant;

use crate::manifest::{self, Manifest};
use crate::recipes::{CpythonRecipe, Recipes, Toolchain};
use crate::util::{workspace_root, Cache, Timings};
use crate::{cpython, deps, openssl, package, patch, source, validate};

#[derive(Clone)]
pub struct Options {
    pub pythons: Vec<String>,
    pub target: Option<String>,
    pub openssl: Option<String>,
    /// recipes/profiles.toml; None: its default.
    pub profile: Option<String>,
    pub jobs: usize,
    /// `package`: re-package only what is already built; never compile.
    pub require_cached: bool,
}

impl Options {
    /// `--target macos` and other group names: the same selection once per
    /// member target (None when the target is not a group).
    pub fn per_group_member(&self, recipes: &Recipes) -> Option<Vec<(String, Options)>> {
        let members = recipes.group(self.target.as_deref()?);
        (!members.is_empty()).then(|| {
            members
                .into_iter()
                .map(|tc| {
                    let one = Options {
                        target: Some(tc.triple.clone()),
                        ..self.clone()
                    };
                    (tc.triple.clone(), one)
                })
                .collect()
        })
    }
}

pub struct Artifact {
    pub version: String,
    pub python2: bool,
    /// The first flavour's archive (install_only).
    pub archive: PathBuf,
    /// (flavour, archive) for every flavour of recipes/packaging.toml.
    pub archives: Vec<(String, PathBuf)>,
    /// The installed tree in the cache (runnable on the build machine).
    pub root: PathBuf,
    /// The Debian package, for Linux targets dpkg-deb can package.
    pub deb: Option<PathBuf>,
    /// The RPM package, where rpmbuild exists.
    pub rpm: Option<PathBuf>,
    /// The configured prefix, where the `.deb` installs it.
    pub prefix: String,
    /// The OpenSSL build it links (include/, lib/libcrypto.a) in the cache.
    pub openssl_prefix: PathBuf,
}

impl Artifact {
    /// The archive of one flavour (`full`, `install_only_stripped`, …).
    pub fn archive_of(&self, flavour: &str) -> Result<&std::path::Path> {
        self.archives
            .iter()
            .find(|(f, _)| f == flavour)
            .map(|(_, p)| p.as_path())
            .with_context(|| {
                format!(
                    "CPython {} has no {flavour} archive (recipes/packaging.toml)",
                    self.version
                )
            })
    }
}

pub fn dist_dir() -> Result<PathBuf> {
    let d = std::env::var_os("TLSFORGE_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("dist"));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

pub fn selected<'a>(recipes: &'a Recipes, pythons: &[String]) -> Result<Vec<&'a CpythonRecipe>> {
    // `all`: every version we support, i.e. that has a patch series for
    // OpenSSL 4 (a recipe without one cannot build against it).
    if pythons.iter().any(|p| p == "all") {
        return Ok(recipes
            .cpython
            .iter()
            .filter(|r| patch::read_series(&r.patch_dir()).is_ok_and(|s| !s.is_empty()))
            .collect());
    }
    // No --python: the recipes marked `default = true`.
    if pythons.is_empty() {
        return Ok(recipes.cpython.iter().filter(|r| r.default).collect());
    }
    pythons.iter().map(|w| recipes.python(w)).collect()
}

/// What one run builds with, read once and passed down. `repro` makes a
/// second one for its build in another cache and dist directory.
pub struct BuildContext {
    pub recipes: Recipes,
    pub cache: Cache,
    pub dist: PathBuf,
}

impl BuildContext {
    /// The recipes of this checkout, `$TLSFORGE_CACHE` and `$TLSFORGE_DIST`.
    pub fn from_env() -> Result<BuildContext> {
        Ok(BuildContext {
            recipes: Recipes::load()?,
            cache: Cache::from_env()?,
            dist: dist_dir()?,
        })
    }
}

pub fn build(opts: &Options) -> Result<Vec<Artifact>> {
    build_in(&BuildContext::from_env()?, opts)
}

/// The selection of `opts`, built with `cx`'s recipes into its cache and
/// dist directory.
pub fn build_in(cx: &BuildContext, opts: &Options) -> Result<Vec<Artifact>> {
    std::fs::create_dir_all(&cx.dist)?;
    crate::cache::reap_and_report(&cx.cache, Some(&cx.dist))?;
    build_selection(cx, opts)
}

fn build_selection(cx: &BuildContext, opts: &Options) -> Result<Vec<Artifact>> {
    let start = Instant::now();
    let (recipes, cache, dist) = (&cx.recipes, &cx.cache, &cx.dist);
    if let Some(members) = opts.per_group_member(recipes) {
        let mut by_target = Vec::new();
        for (triple, one) in members {
            for a in build_selection(cx, &one)? {
                by_target.push((triple.clone(), a));
            }
        }
        let group = recipes.group(opts.target.as_deref().unwrap_or_default());
        if !crate::universal::package_all(&group, &by_target, dist)?.is_empty() {
            write_indexes(dist)?;
        }
        return Ok(by_target.into_iter().map(|(_, a)| a).collect());
    }
    let tc = buildable_toolchain(recipes, opts)?;
    let ossl_recipe = recipes.openssl(opts.openssl.as_deref())?;
    let pythons = selected(recipes, &opts.pythons)?;
    // Versions this target cannot build are skipped with the toolchain's reason.
    let (ok, skipped): (Vec<_>, Vec<_>) = pythons
        .into_iter()
        .partition(|r| tc.why_not_python(r).is_none());
    for r in &skipped {
        eprintln!(
            "tlsforge: skipping CPython {} for {}: {} (toolchains/{}.toml)",
            r.version,
            tc.triple,
            tc.why_not_python(r).unwrap_or_default(),
            tc.triple
        );
    }
    if ok.is_empty() {
        bail!(
            "nothing to build for {}: {}",
            tc.triple,
            skipped
                .first()
                .and_then(|r| tc.why_not_python(r))
                .unwrap_or_default()
        );
    }
    let pythons = ok;
    eprintln!(
        "tlsforge: {} for {} with OpenSSL {} (cache {})",
        pythons
            .iter()
            .map(|p| p.version.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        tc.triple,
        ossl_recipe.version,
        cache.root.display()
    );
    let t = Timings::default();
    let target = prepare_target(recipes, cache, tc, opts, &t)?;
    // A cross build runs a native interpreter of the same version during the
    // build (to compile the stdlib, run setup steps): build those first.
    let mut build_pythons = std::collections::HashMap::new();
    if tc.is_cross() {
        eprintln!(
            "tlsforge: {} is a cross target; building the native build-Pythons first",
            tc.triple
        );
        let native = Options {
            target: None,
            pythons: pythons.iter().map(|p| p.version.clone()).collect(),
            ..opts.clone()
        };
        for a in build_selection(cx, &native)? {
            let short: String = a.version.split('.').take(2).collect::<Vec<_>>().join(".");
            build_pythons.insert(a.version.clone(), a.root.join(format!("bin/python{short}")));
        }
    }
    let cx = TargetContext {
        cache,
        recipes,
        tc,
        target: &target,
        opts,
        timings: &t,
        dist: dist.clone(),
    };
    // Two CPythons side by side: one's configure, PGO training and install
    // run on one CPU while the other's make uses the rest.
    let artifacts = crate::util::par_map(&pythons, |recipe| {
        let build_python = build_pythons
            .get(&recipe.version)
            .map(|p: &PathBuf| p.as_path());
        build_one(&cx, recipe, build_python)
    })?;
    // Re-hashing every archive in dist/ is only needed when one changed.
    if !t.all_cached() || !dist.join("SHA256SUMS").exists() {
        write_indexes(dist)?;
    }
    let wall = start.elapsed().as_secs_f64();
    if t.all_cached() {
        eprintln!("tlsforge: nothing changed; every stage was a cache hit ({wall:.1}s)");
    } else {
        eprintln!("tlsforge: done in {wall:.1}s");
    }
    for a in &artifacts {
        eprintln!("  {}", a.archive.display());
    }
    Ok(artifacts)
}

/// The toolchain `opts` names, refused when it cannot be built yet.
pub fn buildable_toolchain<'r>(recipes: &'r Recipes, opts: &Options) -> Result<&'r Toolchain> {
    let tc = recipes.toolchain(opts.target.as_deref())?;
    if !tc.status.is_buildable() {
        bail!(
            "target {} cannot be built yet ({}): {}",
            tc.triple,
            tc.status,
            tc.reason.as_deref().unwrap_or("see README")
        );
    }
    Ok(tc)
}

/// What every CPython of one target builds against.
pub struct Target {
    pub compilers: crate::compilers::Compilers,
    pub openssl: openssl::Openssl,
    pub deps: deps::Deps,
}

/// The target's tools, compilers, OpenSSL and dependencies: cache hits
/// when nothing changed, built otherwise.
pub fn prepare_target(
    recipes: &Recipes,
    cache: &Cache,
    tc: &Toolchain,
    opts: &Options,
    t: &Timings,
) -> Result<Target> {
    crate::prereqs::ensure_build_tools()?;
    let packages: Vec<(&str, &str)> = tc
        .packages
        .iter()
        .map(|(c, p)| (c.as_str(), p.as_str()))
        .collect();
    crate::prereqs::ensure(&packages)?;
    let ossl_recipe = recipes.openssl(opts.openssl.as_deref())?;
    let compilers = crate::compilers::Compilers::for_toolchain(tc, cache)?;
    // OpenSSL's build is make-bound and the deps' configure-bound: side by
    // side they fill both CPUs.
    let (ossl, deps) = std::thread::scope(|scope| {
        let ossl = scope.spawn(|| {
            t.stage(
                format!("openssl {} ({})", ossl_recipe.version, tc.triple),
                || {
                    guard_cached(
                        opts,
                        openssl::build(cache, ossl_recipe, tc, &compilers, opts.jobs).map(|o| {
                            let hit = o.cache_hit;
                            (o, hit)
                        }),
                    )
                },
            )
        });
        let deps = deps::build_all(cache, recipes, tc, &compilers, opts.jobs, t, |hit| {
            guard_cached(opts, Ok(((), hit))).map(|_| ())
        });
        (
            ossl.join().expect("the OpenSSL build thread panicked"),
            deps,
        )
    });
    let (ossl, deps) = (ossl?, deps?);
    Ok(Target {
        compilers,
        openssl: ossl,
        deps,
    })
}

/// SHA256SUMS and uv's download metadata, from what dist/ holds.
fn write_indexes(dist: &std::path::Path) -> Result<()> {
    package::write_sha256sums(dist)?;
    crate::uv::write_metadata(dist, None)?;
    Ok(())
}

fn guard_cached<T>(opts: &Options, r: Result<(T, bool)>) -> Result<(T, bool)> {
    // A build that had to compile while re-packaging only is an error.
    match r {
        Ok((_, false)) if opts.require_cached => {
            bail!("`package` found a stage that is not built yet; run `cargo xtask build` first")
        }
        other => other,
    }
}

/// What the CPython builds of one target share, made once by `build`.
struct TargetContext<'a> {
    cache: &'a Cache,
    recipes: &'a Recipes,
    tc: &'a Toolchain,
    target: &'a Target,
    opts: &'a Options,
    timings: &'a Timings,
    dist: PathBuf,
}

/// One CPython: source, build, then (unless dist/ already holds this very
/// build) validation, smoke test, manifest and packages.
fn build_one(
    cx: &TargetContext,
    recipe: &CpythonRecipe,
    build_python: Option<&std::path::Path>,
) -> Result<Artifact> {
    let v = &recipe.version;
    let tree = source_stage(cx, recipe)?;
    let built = build_stage(cx, recipe, &tree, build_python)?;
    for (step, took) in &built.steps {
        crate::util::progress::println(format!(
            "      {v} {step:<37} {:>8.1}s",
            took.as_secs_f64()
        ));
    }
    let artifact = artifact_for(cx, recipe, &built);
    // Two xtask runs packaging the same artifact take turns.
    let _lock = crate::util::lock_build(
        &cx.cache
            .dir("locks")?
            .join(artifact.archive.file_name().unwrap_or_default()),
    )?;
    if is_packaged(&artifact, &built.key, &cx.recipes.packaging) {
        cx.timings.record(
            format!("cpython {v}: validate + package"),
            std::time::Duration::ZERO,
            "cache hit",
        );
        return Ok(artifact);
    }
    let ours_from = Instant::now();
    let report = cx.timings.stage(format!("cpython {v}: validate"), || {
        Ok((validated(v, &built, cx)?, false))
    })?;
    let smoke = if cx.tc.can_run() {
        Some(
            cx.timings
                .stage(format!("cpython {v}: smoke test (relocated copy)"), || {
                    let required = cx.recipes.modules.required_for(recipe.is_python2(), cx.tc);
                    let r = validate::smoke_test(
                        &built.root,
                        recipe.is_python2(),
                        &cx.tc.run_under,
                        &required,
                    )?;
                    Ok((r, false))
                })?,
        )
    } else {
        None
    };
    let manifest = manifest_for(cx, recipe, &tree, &built, report, smoke)?;
    cx.timings.stage(format!("cpython {v}: package"), || {
        package_stage(cx, &artifact, &built, &manifest).map(|()| ((), false))
    })?;
    if !built.cache_hit {
        report_overhead(v, &built.steps, ours_from.elapsed());
    }
    Ok(artifact)
}

/// Fetch, extract and patch (a cache hit when the patched tree exists).
fn source_stage(cx: &TargetContext, recipe: &CpythonRecipe) -> Result<source::Tree> {
    let v = &recipe.version;
    let series = patch::read_series(&recipe.patch_dir())?;
    let title = format!(
        "cpython {v}: fetch, extract, patch ({} patches)",
        series.len()
    );
    let tree = cx.timings.stage(title, || {
        let tree = source::prepare(
            cx.cache,
            &recipe.source,
            &series,
            &recipe.bundled_wheel,
            &cx.recipes.mirrors,
            &format!("cpython-{v}"),
        )?;
        let hit = tree.cache_hit && tree.fetched_from == crate::fetch::Origin::Cache;
        Ok((tree, hit))
    })?;
    if cx.opts.require_cached && !tree.cache_hit {
        bail!("CPython {v} is not built yet; run `cargo xtask build --python {v}` first");
    }
    Ok(tree)
}

fn build_stage(
    cx: &TargetContext,
    recipe: &CpythonRecipe,
    tree: &source::Tree,
    build_python: Option<&std::path::Path>,
) -> Result<cpython::Built> {
    let inputs = cpython::Inputs {
        cache: cx.cache,
        recipe,
        openssl: &cx.target.openssl,
        deps: &cx.target.deps,
        tc: cx.tc,
        compilers: &cx.target.compilers,
        build_python,
        prefix: cx.recipes.packaging.install_prefix(&recipe.version),
    };
    let profile = cx.recipes.profile(cx.opts.profile.as_deref())?;
    cx.timings
        .stage(format!("cpython {}: build", recipe.version), || {
            let built = cpython::build(&inputs, tree, &cx.recipes.modules, profile, cx.opts.jobs)?;
            let hit = built.cache_hit;
            guard_cached(cx.opts, Ok((built, hit)))
        })
}

/// Where this build's archives and packages go in dist/.
fn artifact_for(cx: &TargetContext, recipe: &CpythonRecipe, built: &cpython::Built) -> Artifact {
    let (v, tc, ossl) = (&recipe.version, cx.tc, &cx.target.openssl.recipe);
    let archives: Vec<(String, PathBuf)> = cx
        .recipes
        .packaging
        .flavour
        .iter()
        .map(|f| {
            let name = package::archive_name(
                v,
                &ossl.choice,
                &cx.recipes.openssl_default,
                &tc.triple,
                &f.name,
            );
            (f.name.clone(), cx.dist.join(name))
        })
        .collect();
    let label = package::local_label(&ossl.choice, &cx.recipes.openssl_default);
    Artifact {
        version: v.clone(),
        python2: recipe.is_python2(),
        archive: archives[0].1.clone(),
        archives,
        root: built.root.clone(),
        deb: crate::deb::available(tc)
            .then(|| crate::deb::path_for(&cx.dist, v, &label, tc))
            .flatten(),
        rpm: crate::rpm::available(tc)
            .then(|| crate::rpm::path_for(&cx.dist, v, &label, tc))
            .flatten(),
        prefix: built.prefix.clone(),
        openssl_prefix: cx.target.openssl.prefix.clone(),
    }
}

/// dist/ already holds every archive and package of exactly this build.
fn is_packaged(a: &Artifact, build_key: &str, packaging: &crate::recipes::Packaging) -> bool {
    // The same build, the same package code and the flavour's recipe as it
    // stands (its manifest records the flavour it was written with).
    let same_build = |flavour: &str, archive: &std::path::Path| {
        crate::manifest::Manifest::read_beside(archive).is_ok_and(|m| {
            m.build_key == build_key
                && m.id.tlsforge_package_revision == package::PACKAGE_REVISION
                && m.flavour
                    .is_some_and(|f| f.name == flavour && packaging.flavour.contains(&f))
        })
    };
    let zst_there =
        |p: &std::path::Path| packaging.zstd_level.is_none() || package::zst_path(p).exists();
    a.archives
        .iter()
        .all(|(f, p)| p.exists() && zst_there(p) && same_build(f, p))
        && [&a.deb, &a.rpm]
            .iter()
            .all(|p| p.as_ref().is_none_or(|p| p.exists()))
}

/// The binary checks of validate.rs; any violation fails the build.
fn validated(v: &str, built: &cpython::Built, cx: &TargetContext) -> Result<validate::Report> {
    let report = validate::check_tree(&built.root, cx.tc, &cx.recipes.hidden_symbol_prefixes())?;
    if !report.not_allowed_libraries.is_empty() {
        bail!(
            "internal: system-linked modules survived pruning: {:?}",
            report.not_allowed_libraries
        );
    }
    if !report.violations.is_empty() {
        bail!(
            "CPython {v} failed validation:\n  - {}",
            report.violations.join("\n  - ")
        );
    }
    Ok(report)
}

/// The manifest of this build (each flavour then sets `format` and
/// `flavour`).
fn manifest_for(
    cx: &TargetContext,
    recipe: &CpythonRecipe,
    tree: &source::Tree,
    built: &cpython::Built,
    validation: validate::Report,
    smoke_test: Option<serde_json::Value>,
) -> Result<Manifest> {
    let (v, tc, ossl) = (&recipe.version, cx.tc, &cx.target.openssl.recipe);
    let mut inputs = vec![
        manifest::Input {
            name: "cpython".into(),
            version: v.clone(),
            license: "PSF-2.0".into(),
            sha256: recipe.source.sha256.clone(),
            file: Some(recipe.source.file.clone()),
            source: None,
            sha256_of: None,
            modules: None,
        },
        manifest::Input {
            name: "openssl".into(),
            version: ossl.version.clone(),
            license: ossl.license.clone(),
            sha256: crate::sbom::crate_checksum(
                "openssl-src",
                ossl.crate_name.trim_start_matches("openssl-src "),
            )?,
            file: None,
            source: Some(ossl.crate_name.clone()),
            sha256_of: Some("the openssl-src crate (Cargo.lock)".into()),
            modules: None,
        },
    ];
    inputs.extend(cx.target.deps.list.iter().map(|d| manifest::Input {
        name: d.recipe.name.clone(),
        version: d.recipe.version.clone(),
        license: d.recipe.license.clone(),
        sha256: d.recipe.source.sha256.clone(),
        file: Some(d.recipe.source.file.clone()),
        source: None,
        sha256_of: None,
        modules: Some(d.recipe.modules.clone()),
    }));
    let mut licenses: Vec<String> = inputs.iter().map(|i| i.license.clone()).collect();
    licenses.sort();
    licenses.dedup();
    let source_modules = module_names_in(&tree.path);
    let omitted_modules = built
        .omitted
        .iter()
        .chain(tc.not_importable.iter())
        // (a dependency left out names its modules for every version;
        // 2.7 has no _uuid, for instance)
        .filter(|(m, _)| source_modules.contains(m.as_str()))
        .map(|(m, why)| manifest::OmittedModule {
            module: m.clone(),
            reason: why.clone(),
        })
        .collect();
    Ok(Manifest {
        build_key: built.key.clone(),
        configured_prefix: built.prefix.clone(),
        optimisation: built.optimisation.clone(),
        openssl: manifest::OpensslRecord {
            version: ossl.version.clone(),
            choice: ossl.choice.clone(),
            crate_name: ossl.crate_name.clone(),
            configure_options: ossl.options.clone(),
            openssldir: tc.openssldir.clone(),
            license: ossl.license.clone(),
        },
        licenses,
        inputs,
        patches: tree
            .patches
            .iter()
            .map(|(name, sha256)| crate::wheels::PatchRef {
                name: name.clone(),
                sha256: sha256.clone(),
            })
            .collect(),
        bundled_wheels: tree.wheels.clone(),
        toolchain: tc.clone(),
        validation,
        omitted_modules,
        smoke_test,
        flavour: None,
        universal2: None,
        id: package::manifest_base(v, tc, recipe.is_python2()),
    })
}

/// Every flavour's archive, with the .deb and the .rpm written beside them.
fn package_stage(
    cx: &TargetContext,
    artifact: &Artifact,
    built: &cpython::Built,
    manifest: &Manifest,
) -> Result<()> {
    let (tc, ossl) = (cx.tc, &cx.target.openssl.recipe);
    let label = package::local_label(&ossl.choice, &cx.recipes.openssl_default);
    let package_meta = crate::rpm::Meta {
        version: &artifact.version,
        label: &label,
        prefix: &built.prefix,
        licenses: &manifest.licenses,
        openssl: &ossl.version,
        max_glibc: manifest.validation.max_glibc.as_deref(),
        gzip_level: cx.recipes.packaging.package_gzip_level,
        maintainer: &cx.recipes.packaging.maintainer,
    };
    let dist = &cx.dist;
    // An earlier build's .deb/.rpm must not stand beside this build's
    // archives (is_packaged only asks that they exist).
    for old in [&artifact.deb, &artifact.rpm].into_iter().flatten() {
        let _ = std::fs::remove_file(old);
    }
    let written = std::thread::scope(|scope| -> Result<()> {
        // The .deb and the .rpm one after the other, beside the archives:
        // both stage the tree as hard links, and link(2) changes a file's
        // ctime, which dpkg-deb's tar reports as "file changed as we read
        // it" when the .rpm's staging overlaps its read.
        let packages = scope.spawn(|| -> Result<()> {
            if crate::deb::available(tc) {
                crate::deb::build(&built.root, &package_meta, tc, dist)?;
            }
            if crate::rpm::available(tc) {
                crate::rpm::build(&built.root, &package_meta, tc, dist)?;
            }
            Ok(())
        });
        package::write_flavours(
            &built.root,
            &cx.recipes.packaging,
            &artifact.archives,
            manifest,
            cx.cache,
            tc,
        )?;
        packages
            .join()
            .map_err(|_| anyhow::anyhow!("the .deb/.rpm writer panicked"))?
    });
    if written.is_err() {
        // Without their manifests the archives do not count as packaged,
        // so the next build packages again instead of a cache hit.
        for (_, archive) in &artifact.archives {
            let _ = std::fs::remove_file(package::manifest_path(archive));
        }
    }
    written
}

/// Our own time next to the configure/make/install it drove: the
/// post-install step plus validation, smoke test and packaging.
fn report_overhead(
    v: &str,
    steps: &[(String, std::time::Duration)],
    after_install: std::time::Duration,
) {
    let (ours, driven): (Vec<_>, Vec<_>) = steps
        .iter()
        .partition(|(name, _)| name == cpython::POST_INSTALL_STEP);
    let ours = ours.iter().map(|(_, d)| *d).sum::<std::time::Duration>() + after_install;
    let driven: std::time::Duration = driven.iter().map(|(_, d)| *d).sum();
    eprintln!(
        "  cpython {v}: orchestration overhead {:.1}s = {:.1}% of the {:.1}s configure/make/install it drove",
        ours.as_secs_f64(),
        100.0 * ours.as_secs_f64() / driven.as_secs_f64().max(0.001),
        driven.as_secs_f64()
    );
}

/// Every word of the files that name this CPython's extension modules
/// (setup.py for 2.x, Modules/Setup* for both): a module it can build is
/// among them.
fn module_names_in(src: &std::path::Path) -> std::collections::HashSet<String> {
    let files = [
        "setup.py",
        "Modules/Setup.stdlib.in",
        "Modules/Setup.dist",
        "Modules/Setup",
    ];
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(src.join(f)).ok())
        .flat_map(|text| {
            text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `patches check`: every series applies with zero fuzz to its pristine source.
pub fn check_patches() -> Result<()> {
    let recipes = Recipes::load()?;
    let cache = Cache::from_env()?;
    let mut failures = 0;
    for r in &recipes.cpython {
        let series = patch::read_series(&r.patch_dir())?;
        if series.is_empty() {
            println!("{:<8} no series", r.version);
            continue;
        }
        let fetched = match crate::fetch::fetch(&cache, &r.source, &recipes.mirrors) {
            Ok(f) => f,
            Err(e) => {
                failures += 1;
                println!(
                    "{:<8} cannot fetch the pristine source: {}",
                    r.version,
                    e.to_string().lines().next().unwrap_or("")
                );
                continue;
            }
        };
        let tmp = crate::cache::tempdir_in(cache.dir("src")?)?;
        let tree = tmp.path().join("tree");
        crate::extract::extract(&fetched.path, &tree)?;
        let applied = patch::apply_series(&tree, &series)
            .and_then(|()| crate::wheels::rebuild_all(&tree, &r.bundled_wheel));
        match applied {
            Ok(()) => println!("{:<8} {} patches apply cleanly", r.version, series.len()),
            Err(e) => {
                failures += 1;
                println!("{:<8} FAILED: {e:#}", r.version);
            }
        }
    }
    // Generated patches: the committed file must equal a fresh generation.
    match crate::ssldata::check() {
        Ok(()) => println!(
            "{:<8} generated {} is up to date",
            crate::ssldata::PYTHON,
            crate::ssldata::PATCH
        ),
        Err(e) => {
            failures += 1;
            println!("{:<8} FAILED: {e:#}", crate::ssldata::PYTHON);
        }
    }
    if failures > 0 {
        bail!("{failures} check(s) failed");
    }
    Ok(())
}

pub fn jobs_default() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}
