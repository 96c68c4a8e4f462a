//! The whole road, stage by stage: fetch → extract → patch → OpenSSL →
//! deps → CPython → validate → package. Each stage is its own module; this
//! one only wires them together, times them and writes the manifest.

use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

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

    /// The command-line arguments that select the same builds.
    pub fn as_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for p in &self.pythons {
            args.extend(["--python".to_string(), p.clone()]);
        }
        if let Some(t) = &self.target {
            args.extend(["--target".to_string(), t.clone()]);
        }
        if let Some(o) = &self.openssl {
            args.extend(["--openssl".to_string(), o.clone()]);
        }
        if let Some(p) = &self.profile {
            args.extend(["--profile".to_string(), p.clone()]);
        }
        args.extend(["--jobs".to_string(), self.jobs.to_string()]);
        args
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

pub fn build(opts: &Options) -> Result<Vec<Artifact>> {
    let start = Instant::now();
    let recipes = Recipes::load()?;
    let cache = Cache::from_env()?;
    crate::cache::reap_and_report(&cache, Some(&dist_dir()?))?;
    if let Some(members) = opts.per_group_member(&recipes) {
        let mut by_target = Vec::new();
        for (triple, one) in members {
            for a in build(&one)? {
                by_target.push((triple.clone(), a));
            }
        }
        let dist = dist_dir()?;
        if !crate::universal::package_all(&by_target, &dist)?.is_empty() {
            write_indexes(&dist)?;
        }
        return Ok(by_target.into_iter().map(|(_, a)| a).collect());
    }
    let tc = buildable_toolchain(&recipes, opts)?;
    let ossl_recipe = recipes.openssl(opts.openssl.as_deref())?;
    let pythons = selected(&recipes, &opts.pythons)?;
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
    let Target {
        compilers,
        openssl: ossl,
        deps,
    } = prepare_target(&recipes, &cache, tc, opts, &t)?;
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
        for a in build(&native)? {
            let short: String = a.version.split('.').take(2).collect::<Vec<_>>().join(".");
            build_pythons.insert(a.version.clone(), a.root.join(format!("bin/python{short}")));
        }
    }
    // Two CPythons side by side: one's configure, PGO training and install
    // run on one CPU while the other's make uses the rest.
    let artifacts = crate::util::par_map(&pythons, |recipe| {
        let build_python = build_pythons
            .get(&recipe.version)
            .map(|p: &PathBuf| p.as_path());
        build_one(
            &cache,
            &recipes,
            recipe,
            tc,
            &compilers,
            &ossl,
            &deps,
            build_python,
            opts,
            &t,
        )
    })?;
    // Re-hashing every archive in dist/ is only needed when one changed.
    let dist = dist_dir()?;
    if !t.all_cached() || !dist.join("SHA256SUMS").exists() {
        write_indexes(&dist)?;
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
    if tc.status == "unsupported" || tc.status == "plan" {
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
        let deps = deps::build_all(
            cache,
            &recipes.deps,
            tc,
            &compilers,
            &recipes.mirrors,
            opts.jobs,
            t,
            |hit| guard_cached(opts, Ok(((), hit))).map(|_| ()),
        );
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

#[allow(clippy::too_many_arguments)]
fn build_one(
    cache: &Cache,
    recipes: &Recipes,
    recipe: &CpythonRecipe,
    tc: &Toolchain,
    compilers: &crate::compilers::Compilers,
    ossl: &openssl::Openssl,
    deps: &deps::Deps,
    build_python: Option<&std::path::Path>,
    opts: &Options,
    t: &Timings,
) -> Result<Artifact> {
    let v = &recipe.version;
    let series = patch::read_series(&recipe.patch_dir())?;
    let tree = t.stage(
        format!(
            "cpython {v}: fetch, extract, patch ({} patches)",
            series.len()
        ),
        || {
            let tree = source::prepare(
                cache,
                &recipe.source,
                &series,
                &recipe.bundled_wheel,
                &recipes.mirrors,
                &format!("cpython-{v}"),
            )?;
            let hit = tree.cache_hit && tree.fetched_from == crate::fetch::Origin::Cache;
            Ok((tree, hit))
        },
    )?;
    if opts.require_cached && !tree.cache_hit {
        bail!("CPython {v} is not built yet; run `cargo xtask build --python {v}` first");
    }
    let built = t.stage(format!("cpython {v}: build"), || {
        guard_cached(
            opts,
            cpython::build(
                &cpython::Inputs {
                    cache,
                    recipe,
                    openssl: ossl,
                    deps,
                    tc,
                    compilers,
                    build_python,
                },
                &tree,
                &recipes.modules,
                recipes.profile(opts.profile.as_deref())?,
                opts.jobs,
            )
            .map(|b| {
                let hit = b.cache_hit;
                (b, hit)
            }),
        )
    })?;
    for (step, took) in &built.steps {
        crate::util::progress::println(format!(
            "      {v} {step:<37} {:>8.1}s",
            took.as_secs_f64()
        ));
    }
    let dist = dist_dir()?;
    let flavours = &recipes.packaging.flavour;
    let archives: Vec<(String, PathBuf)> = flavours
        .iter()
        .map(|f| {
            let name = package::archive_name(
                v,
                &ossl.recipe.choice,
                &recipes.openssl_default,
                &tc.triple,
                &f.name,
            );
            (f.name.clone(), dist.join(name))
        })
        .collect();
    let archive = archives[0].1.clone();
    let label = package::local_label(&ossl.recipe.choice, &recipes.openssl_default);
    let artifact = Artifact {
        version: v.clone(),
        python2: recipe.is_python2(),
        archive: archive.clone(),
        archives: archives.clone(),
        root: built.root.clone(),
        deb: crate::deb::available(tc)
            .then(|| crate::deb::path_for(&dist, v, &label, tc))
            .flatten(),
        rpm: crate::rpm::available(tc)
            .then(|| crate::rpm::path_for(&dist, v, &label, tc))
            .flatten(),
        prefix: built.prefix.clone(),
    };
    // Two xtask runs packaging the same artifact take turns.
    let _lock = crate::util::lock_build(
        &cache
            .dir("locks")?
            .join(archive.file_name().unwrap_or_default()),
    )?;
    // Packaging is skipped when dist/ already holds this exact build.
    if archives
        .iter()
        .all(|(_, a)| a.exists() && already_packaged(&package::manifest_path(a), &built.key))
        && [&artifact.deb, &artifact.rpm]
            .iter()
            .all(|p| p.as_ref().is_none_or(|p| p.exists()))
    {
        t.record(
            format!("cpython {v}: validate + package"),
            std::time::Duration::ZERO,
            "cache hit",
        );
        return Ok(artifact);
    }
    let ours_from = Instant::now();
    let report = t.stage(format!("cpython {v}: validate"), || {
        let report = validate::check_tree(&built.root, tc)?;
        if report
            .violations
            .iter()
            .any(|v| v.contains("not in the allowlist"))
        {
            bail!(
                "internal: system-linked modules survived pruning: {:?}",
                report.violations
            );
        }
        if !report.violations.is_empty() {
            bail!(
                "CPython {v} failed validation:\n  - {}",
                report.violations.join("\n  - ")
            );
        }
        Ok((report, false))
    })?;
    let smoke = if tc.can_run() {
        Some(
            t.stage(format!("cpython {v}: smoke test (relocated copy)"), || {
                Ok((
                    validate::smoke_test(
                        &built.root,
                        recipe.is_python2(),
                        &tc.run_under,
                        &recipes.modules.required_for(recipe.is_python2(), tc),
                    )?,
                    false,
                ))
            })?,
        )
    } else {
        None
    };
    let mut manifest = package::manifest_base(v, tc, recipe.is_python2());
    let m = manifest.as_object_mut().unwrap();
    m.insert("build_key".into(), json!(built.key));
    m.insert("configured_prefix".into(), json!(built.prefix));
    m.insert(
        "optimisation".into(),
        serde_json::to_value(&built.optimisation)?,
    );
    m.insert(
        "openssl".into(),
        json!({"version": ossl.recipe.version, "choice": ossl.recipe.choice, "crate": ossl.recipe.crate_name,
               "configure_options": ossl.recipe.options, "openssldir": tc.openssldir, "license": ossl.recipe.license}),
    );
    let mut inputs = vec![
        json!({"name": "cpython", "version": v, "file": recipe.source.file, "sha256": recipe.source.sha256, "license": "PSF-2.0"}),
        json!({"name": "openssl", "version": ossl.recipe.version, "source": ossl.recipe.crate_name, "license": ossl.recipe.license,
         "sha256": crate::sbom::crate_checksum("openssl-src", ossl.recipe.crate_name.trim_start_matches("openssl-src "))?,
         "sha256_of": "the openssl-src crate (Cargo.lock)"}),
    ];
    for d in &deps.list {
        let r = &d.recipe;
        inputs.push(
            json!({"name": r.name, "version": r.version, "file": r.source.file,
                           "sha256": r.source.sha256, "license": r.license, "modules": r.modules}),
        );
    }
    let mut licenses: Vec<&str> = inputs
        .iter()
        .filter_map(|i| i["license"].as_str())
        .collect();
    licenses.sort();
    licenses.dedup();
    m.insert("licenses".into(), json!(licenses));
    m.insert("inputs".into(), json!(inputs));
    m.insert(
        "patches".into(),
        json!(tree
            .patches
            .iter()
            .map(|(n, s)| json!({"name": n, "sha256": s}))
            .collect::<Vec<_>>()),
    );
    m.insert("bundled_wheels".into(), serde_json::to_value(&tree.wheels)?);
    m.insert("toolchain".into(), serde_json::to_value(tc)?);
    m.insert("validation".into(), serde_json::to_value(&report)?);
    let source_modules = module_names_in(&tree.path);
    m.insert(
        "omitted_modules".into(),
        json!(built
            .omitted
            .iter()
            .chain(tc.not_importable.iter())
            // (a dependency left out names its modules for every version;
            // 2.7 has no _uuid, for instance)
            .filter(|(m, _)| source_modules.contains(m.as_str()))
            .map(|(m, why)| json!({"module": m, "reason": why}))
            .collect::<Vec<_>>()),
    );
    m.insert("smoke_test".into(), smoke.unwrap_or(json!(null)));
    let licenses: Vec<String> = manifest["licenses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str().map(str::to_string))
        .collect();
    let package_meta = crate::rpm::Meta {
        version: v,
        label: &label,
        prefix: &built.prefix,
        licenses: &licenses,
        openssl: &ossl.recipe.version,
        max_glibc: report.max_glibc.as_deref(),
        gzip_level: recipes.packaging.package_gzip_level,
    };
    t.stage(format!("cpython {v}: package"), || {
        // (the .deb's compression beside the archives')
        std::thread::scope(|scope| -> Result<((), bool)> {
            let deb = crate::deb::available(tc)
                .then(|| scope.spawn(|| crate::deb::build(&built.root, &package_meta, tc, &dist)));
            let rpm = crate::rpm::available(tc)
                .then(|| scope.spawn(|| crate::rpm::build(&built.root, &package_meta, tc, &dist)));
            package::write_flavours(
                &built.root,
                &recipes.packaging,
                &archives,
                &manifest,
                cache,
                tc,
            )?;
            if let Some(deb) = deb {
                deb.join()
                    .map_err(|_| anyhow::anyhow!("the .deb writer panicked"))??;
            }
            if let Some(rpm) = rpm {
                rpm.join()
                    .map_err(|_| anyhow::anyhow!("the .rpm writer panicked"))??;
            }
            Ok(((), false))
        })
    })?;
    if !built.cache_hit {
        report_overhead(v, &built.steps, ours_from.elapsed());
    }
    Ok(artifact)
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

fn already_packaged(manifest: &std::path::Path, key: &str) -> bool {
    std::fs::read_to_string(manifest)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|m| {
            m["build_key"] == key && m["tlsforge_package_revision"] == package::PACKAGE_REVISION
        })
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
    if failures > 0 {
        bail!("{failures} series failed");
    }
    Ok(())
}

pub fn jobs_default() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}
