//! `cargo xtask`: tlsforge's orchestrator. One module per pipeline stage:
//!
//! fetch (fetch.rs, apt.rs) → extract (extract.rs) → patch (patch.rs,
//! source.rs) → OpenSSL (openssl.rs) → deps (deps.rs) → CPython (cpython.rs)
//! → validate (validate.rs) → package (package.rs); pipeline.rs wires them.

mod apt;
mod bench;
mod browser;
mod cache;
mod compilers;
mod cpython;
mod deb;
mod deps;
mod dev;
mod extract;
mod fetch;
mod gcc_floor;
mod hide;
mod macho;
mod manifest;
mod oldroot;
mod openssl;
mod optimise;
mod package;
mod patch;
mod pipeline;
mod prereqs;
mod recipes;
mod regrtest;
mod repro;
mod reproducible;
mod rpm;
mod sbom;
mod source;
mod ssldata;
mod sysconfig;
mod testing;
mod universal;
mod util;
mod uv;
mod validate;
mod wheels;
mod workflow;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Build CPython with OpenSSL linked in statically and modern TLS, then prove it"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Args, Clone)]
struct Select {
    /// CPython versions: `2.7`, `3.13`, `3.13.5`, or `all` (every version with a patch series; repeatable). Default: 2.7 and 3.13.
    #[arg(long = "python", value_name = "VERSION")]
    pythons: Vec<String>,
    /// Target triple or alias (see `list`). Default: this machine.
    #[arg(long)]
    target: Option<String>,
    /// OpenSSL to link: `4.0` (default) or `3.5` (LTS).
    #[arg(long)]
    openssl: Option<String>,
    /// Optimisation profile from recipes/profiles.toml: `release` (PGO + LTO, the default) or `quick`.
    #[arg(long)]
    profile: Option<String>,
    /// Parallel make jobs. Default: number of CPUs.
    #[arg(long, short)]
    jobs: Option<usize>,
}

impl Select {
    fn options(&self, require_cached: bool) -> pipeline::Options {
        pipeline::Options {
            pythons: self.pythons.clone(),
            target: self.target.clone(),
            openssl: self.openssl.clone(),
            profile: self.profile.clone(),
            jobs: self.jobs.unwrap_or_else(pipeline::jobs_default),
            require_cached,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Download and verify the pinned sources into the cache.
    Fetch(Select),
    /// Fetch, patch, build OpenSSL and CPython, validate, package into dist/.
    Build(Select),
    /// The patch author's loop: re-apply the series, carry over only changed files into a configured tree, make incrementally, check the interpreter (cache/dev/, never the release cache).
    Dev {
        #[command(flatten)]
        select: Select,
        /// Stdlib test modules to run right after (e.g. test_ssl); repeatable.
        #[arg(long = "test", value_name = "MODULE")]
        tests: Vec<String>,
        /// Python code to run with the rebuilt interpreter.
        #[arg(long, value_name = "CODE")]
        run: Option<String>,
    },
    /// Re-package already built interpreters into dist/ (never compiles).
    Package(Select),
    /// Check built interpreters (a dist/ archive's tree, or paths given).
    Validate {
        #[command(flatten)]
        select: Select,
        /// Installed trees to check instead of the cached builds.
        paths: Vec<PathBuf>,
    },
    /// Unit tests, then build the default set and run the TLS suites and CPython's whole test suite on it.
    Test(Select),
    /// Run the TLS conformance suite (real handshakes) on built interpreters.
    Conform {
        #[command(flatten)]
        select: Select,
        /// Install each .deb with dpkg (root) and test the installed interpreter.
        #[arg(long)]
        from_deb: bool,
    },
    /// Run the archives inside a Debian bullseye root (glibc 2.31): start,
    /// imports, a verified TLS 1.3 handshake, pip; then a manylinux2014
    /// wheel in a venv of our 3.13 on the host.
    OldrootTest {
        #[command(flatten)]
        select: Select,
        /// Only make (or find) the root and print its glibc.
        #[arg(long)]
        root_only: bool,
    },
    /// Run CPython's own TLS tests (test_ssl, test_hashlib, test_httplib, test_urllib2_localnet) on built interpreters; --full: the whole suite.
    StdlibTests {
        #[command(flatten)]
        select: Select,
        /// CPython's whole suite (every module, -j = --jobs), with the
        /// version's EXPECTED-FAILURES checked here and on a stock build.
        #[arg(long)]
        full: bool,
    },
    /// Build twice (usual cache, then an empty cache at another path) and
    /// compare every artifact's sha256.
    Repro {
        #[command(flatten)]
        select: Select,
        /// Keep the second build's cache and both dist/ copies.
        #[arg(long)]
        keep: bool,
    },
    /// Benchmarks (builds nothing): the pyperformance subset of recipes/bench.toml and the TLS client benchmark, ours beside the stock interpreters of the same minor version; prints figures and ratios.
    Bench {
        #[command(flatten)]
        select: Select,
        /// Run one part only: `pyperformance` or `tls`.
        #[arg(long, value_parser = ["pyperformance", "tls"])]
        only: Option<String>,
        /// Compare with this interpreter instead of the stock one of its
        /// minor version (an A/B of two builds: e.g. an earlier build's
        /// bin/python3 from the cache or an unpacked archive). Repeatable.
        #[arg(long, value_name = "PYTHON")]
        against: Vec<std::path::PathBuf>,
    },
    /// Look after the cache: sizes, and removing what the current tree does not use.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Write dist/download-metadata.json (uv's `--python-downloads-json-url` format) for the 3.x archives in dist/.
    DownloadMetadata {
        /// Where the archives will be published (default: their file:// paths here).
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
    },
    /// Write .github/workflows/release.yml from toolchains/.
    CiWorkflow,
    /// Show CPython versions, targets and OpenSSL choices and where they come from.
    List,
    /// Patch-series maintenance.
    Patches {
        #[command(subcommand)]
        action: PatchAction,
    },
    /// Internal: runs openssl-src in a child process with its output logged.
    #[command(name = "__openssl-build", hide = true)]
    OpensslBuild {
        choice: String,
        target: String,
        openssldir: String,
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum CacheAction {
    /// Sizes per stage and per entry, which entries the current tree's runs use, and when each was last used.
    Du,
    /// Remove entries no recorded run of the current recipes and code used (never a download a recipe pins).
    Gc {
        /// List what would be removed and how much it would free; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only remove entries unused for at least this many days.
        #[arg(long, value_name = "DAYS")]
        older_than: Option<u64>,
    },
}

#[derive(Subcommand)]
enum PatchAction {
    /// Every series applies with zero fuzz to its pristine source, and
    /// generated patches equal a fresh generation.
    Check,
    /// Regenerate patches/2.7.18/0006a-generated-ssl-error-data.patch (Modules/_ssl_data.h) from the openssl-src crates' OpenSSL headers.
    RegenSslData,
}

fn main() {
    let cli = Cli::parse();
    // Before any thread or child exists: every tool we run sees the same date.
    reproducible::export_source_date_epoch();
    let records_uses = matches!(
        cli.command,
        Cmd::Build(_) | Cmd::Package(_) | Cmd::Test(_) | Cmd::Bench { .. } | Cmd::Dev { .. }
    );
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    // What a successful run used is what `cache gc` keeps.
    if records_uses {
        let command: Vec<String> = std::env::args().skip(1).collect();
        if let Err(e) =
            util::Cache::from_env().and_then(|c| cache::record_uses(&c, &command.join(" ")))
        {
            eprintln!("warning: could not record the cache entries this run used: {e:#}");
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Fetch(sel) => fetch_sources(&sel),
        Cmd::Build(sel) => pipeline::build(&sel.options(false)).map(|_| ()),
        Cmd::Dev { select, tests, run } => dev::run(
            &select.options(false),
            &dev::Request {
                tests: &tests,
                code: run.as_deref(),
            },
        ),
        Cmd::Package(sel) => pipeline::build(&sel.options(true)).map(|_| ()),
        Cmd::Validate { select, paths } => testing::validate(&select.options(false), &paths),
        Cmd::Test(sel) => testing::test(&sel.options(false)),
        Cmd::Conform { select, from_deb } => testing::conform(&select.options(false), from_deb),
        Cmd::OldrootTest { select, root_only } => oldroot::run(&select.options(false), root_only),
        Cmd::StdlibTests { select, full } => testing::stdlib(
            &select.options(false),
            if full {
                regrtest::Scope::Full
            } else {
                regrtest::Scope::Tls
            },
        ),
        Cmd::Bench {
            select,
            only,
            against,
        } => bench::run(&select.options(true), only.as_deref(), &against),
        Cmd::Cache { action } => {
            let c = util::Cache::from_env()?;
            match action {
                CacheAction::Du => cache::du(&c),
                CacheAction::Gc {
                    dry_run,
                    older_than,
                } => cache::gc(
                    &c,
                    dry_run,
                    older_than.map(|d| std::time::Duration::from_secs(d * 86400)),
                ),
            }
        }
        Cmd::DownloadMetadata { base_url } => {
            let (path, n) = uv::write_metadata(&pipeline::dist_dir()?, base_url.as_deref())?;
            println!("wrote {} ({n} archives)", path.display());
            Ok(())
        }
        Cmd::CiWorkflow => {
            println!("wrote {}", workflow::write()?.display());
            Ok(())
        }
        Cmd::Repro { select, keep } => repro::run(&select.options(false), keep),
        Cmd::List => list(),
        Cmd::Patches {
            action: PatchAction::Check,
        } => pipeline::check_patches(),
        Cmd::Patches {
            action: PatchAction::RegenSslData,
        } => ssldata::regen(),
        Cmd::OpensslBuild {
            choice,
            target,
            openssldir,
            out,
        } => openssl::child_build(&choice, &target, &openssldir, &out),
    }
}

fn fetch_sources(sel: &Select) -> Result<()> {
    let recipes = recipes::Recipes::load()?;
    let cache = util::Cache::from_env()?;
    let mut sources: Vec<(String, &recipes::Source)> = pipeline::selected(&recipes, &sel.pythons)?
        .into_iter()
        .map(|r| (format!("cpython {}", r.version), &r.source))
        .collect();
    sources.extend(
        recipes
            .deps
            .iter()
            .map(|d| (format!("{} {}", d.name, d.version), &d.source)),
    );
    let mut failed = 0;
    for (name, src) in sources {
        let start = std::time::Instant::now();
        match fetch::fetch(&cache, src, &recipes.mirrors) {
            Ok(f) => println!(
                "{name:<18} {:>6.1}s  {}  ({})",
                start.elapsed().as_secs_f64(),
                f.path.display(),
                match f.origin {
                    fetch::Origin::Cache => "cache".to_string(),
                    fetch::Origin::Provider(p) => p,
                }
            ),
            Err(e) => {
                failed += 1;
                println!("{name:<18} FAILED: {e:#}");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} source(s) could not be fetched");
    }
    Ok(())
}

fn list() -> Result<()> {
    let r = recipes::Recipes::load()?;
    println!("CPython versions (recipes/cpython/):");
    for c in &r.cpython {
        let patches = patch::read_series(&c.patch_dir())?.len();
        let deb = c
            .source
            .debian
            .as_ref()
            .map(|d| format!("Debian {} {} ({})", d.package, d.version, d.suite))
            .unwrap_or_default();
        let default = if c.default { " [default]" } else { "" };
        println!(
            "  {:<8} {:>2} patches  {}  sources: {} | {}{default}",
            c.version,
            patches,
            &c.source.sha256[..12],
            c.source.urls.join(" "),
            deb
        );
    }
    println!("OpenSSL (recipes/openssl.toml):");
    for o in &r.openssl {
        let d = if o.choice == r.openssl_default {
            " [default]"
        } else {
            ""
        };
        println!(
            "  --openssl {:<4} OpenSSL {:<6} from crate {}{d}",
            o.choice, o.version, o.crate_name
        );
    }
    println!("Targets (toolchains/):");
    for t in &r.toolchains {
        let host = if t.runs_here() { " [host]" } else { "" };
        println!(
            "  {:<28} {:<12} aliases: {}{host}{}",
            t.triple,
            t.status,
            t.aliases.join(", "),
            t.reason
                .as_ref()
                .map(|r| format!("  ({r})"))
                .unwrap_or_default()
        );
    }
    println!(
        "Mirrors: {}",
        if r.mirrors.is_empty() {
            "none (add to recipes/mirrors.toml or TLSFORGE_MIRRORS)".to_string()
        } else {
            r.mirrors.join(" ")
        }
    );
    println!("Cache: {}", util::Cache::from_env()?.root.display());
    Ok(())
}
