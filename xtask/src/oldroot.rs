//! `oldroot-test`: our archives inside an old distribution, not just on the
//! build machine. A Debian bullseye minbase root (glibc 2.31, made once with
//! debootstrap into the cache) stands in for an old user machine: each
//! selected archive is unpacked into a per-run scratch directory, and the
//! conformance crate's `oldroot` harness runs it there (start, imports, a
//! verified TLS 1.3 handshake with trust from the platform bundle path, pip
//! from a local HTTPS index). The root itself is only ever a read-only lower
//! layer, so runs leave nothing behind in the cache.
//!
//! A second, separate check on the host: a real manylinux2014 C-extension
//! wheel (pinned in recipes/tests/manylinux-wheel.txt) installs into a venv
//! of our 3.13 and imports, so binary wheels from the ecosystem fit it.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::pipeline::{Artifact, Options};
use crate::recipes::{Recipes, Toolchain};
use crate::testing::Tally;
use crate::util::{
    commit_dir, is_complete, lock_build, mark_complete, run_logged, workspace_root, Cache,
    KeyBuilder,
};

/// recipes/tests/oldroot.toml: which root, which wheel.
#[derive(Deserialize)]
pub struct Plan {
    root: RootPlan,
    wheel: wheel::WheelPlan,
}

#[derive(Deserialize)]
struct RootPlan {
    suite: String,
    variant: String,
}

const PLAN: &str = "recipes/tests/oldroot.toml";

impl Plan {
    pub fn load() -> Result<Plan> {
        let path = workspace_root().join(PLAN);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {PLAN}"))?;
        toml::from_str(&text).with_context(|| format!("parsing {PLAN}"))
    }
}
/// Bump when the way the root is made changes (a new key, a new root).
const ROOT_REVISION: &str = "1";

/// The cached root and what its platform is.
pub struct OldRoot {
    pub dir: PathBuf,
    /// "Debian bullseye minbase"
    pub name: String,
    /// The root's libc6 package version, e.g. `2.31-13+deb11u11`.
    pub libc6: String,
    /// None on a cache hit; how long debootstrap took otherwise.
    pub built_in: Option<Duration>,
}

impl OldRoot {
    /// glibc's upstream version: the Debian version up to the revision.
    pub fn glibc(&self) -> &str {
        glibc_of(&self.libc6)
    }

    /// "glibc 2.31 (libc6 …), debootstrap took 57s: <dir>" (or "cache hit").
    pub fn describe(&self) -> String {
        format!(
            "glibc {} (libc6 {}), {}: {}",
            self.glibc(),
            self.libc6,
            match self.built_in {
                Some(t) => format!("debootstrap took {:.0}s", t.as_secs_f64()),
                None => "cache hit".to_string(),
            },
            self.dir.display()
        )
    }
}

fn glibc_of(libc6: &str) -> &str {
    libc6.split('-').next().unwrap_or(libc6)
}

/// The `Version:` of package `pkg` in a dpkg status file: read rather than
/// running anything in the root, so the answer needs no working chroot.
pub fn dpkg_version(status: &str, pkg: &str) -> Option<String> {
    status.split("\n\n").find_map(|stanza| {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
        };
        (field("Package") == Some(pkg)).then(|| field("Version").map(str::to_string))?
    })
}

/// The machine's own Debian mirror (from its apt sources): we never name an
/// archive host ourselves.
fn mirror() -> Result<crate::apt::Archive> {
    crate::apt::system_archives()?
        .into_iter()
        .next()
        .context("no Debian archive in the apt sources; debootstrap needs a mirror")
}

/// Makes the bullseye root once (under its build lock, in a temporary
/// directory renamed into place when complete); later runs reuse it.
pub fn ensure_root(cache: &Cache, plan: &Plan) -> Result<OldRoot> {
    let RootPlan { suite, variant } = &plan.root;
    let key = KeyBuilder::new("oldroot")
        .add("revision", ROOT_REVISION)
        .add("suite", suite)
        .add("variant", variant)
        .add("arch", std::env::consts::ARCH)
        .finish();
    let roots = cache.dir("roots")?;
    let dir = roots.join(format!("debian-{suite}-{}", &key[..8]));
    let _lock = lock_build(&dir)?;
    let built_in = if is_complete(&dir) {
        None
    } else {
        let work = crate::cache::tempdir_in(&roots)?;
        let staged = work.path().join("root");
        let log = cache.log_path(&format!("debootstrap-{suite}"))?;
        let took = debootstrap(&plan.root, &staged, &log)?;
        mark_complete(&staged)?;
        commit_dir(&staged, &dir)?;
        Some(took)
    };
    let status = std::fs::read_to_string(dir.join("var/lib/dpkg/status"))
        .with_context(|| format!("{} has no dpkg status", dir.display()))?;
    let libc6 = dpkg_version(&status, "libc6")
        .with_context(|| format!("no libc6 in {}'s dpkg status", dir.display()))?;
    Ok(OldRoot {
        dir,
        name: format!("Debian {suite} {variant}"),
        libc6,
        built_in,
    })
}

/// Starts making the root on a thread of its own: debootstrap waits on the
/// network and the disk while the builds use the CPUs. `test_step` then
/// takes the root under the same lock (and reports any error itself).
pub fn prepare_in_background() {
    std::thread::spawn(|| -> Result<()> {
        crate::prereqs::ensure(TOOLS)?;
        ensure_root(&Cache::from_env()?, &Plan::load()?)?;
        Ok(())
    });
}

/// `debootstrap --variant=minbase bullseye DIR URI`, inside a private mount
/// namespace so the /proc and /dev mounts it makes in the target vanish with
/// it, even when it is interrupted.
fn debootstrap(root: &RootPlan, target: &Path, log: &Path) -> Result<Duration> {
    let archive = mirror()?;
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "debootstrap"])
        .arg(format!("--variant={}", root.variant));
    // The host's archive keyring also holds the older releases' keys.
    if let Some(k) = archive.signed_by.as_deref().filter(|k| k.starts_with('/')) {
        cmd.arg(format!("--keyring={k}"));
    }
    cmd.arg(&root.suite).arg(target).arg(&archive.uri);
    run_logged(
        cmd,
        &format!(
            "debootstrap {} {} from the apt mirror",
            root.variant, root.suite
        ),
        log,
    )
}

/// Debian packages the test drives besides the conformance crate's own.
const TOOLS: &[(&str, &str)] = &[
    ("debootstrap", "debootstrap"),
    ("chroot", "coreutils"),
    ("mount", "mount"),
];

pub fn run(opts: &Options, root_only: bool) -> Result<()> {
    if std::env::consts::OS != "linux" || !crate::prereqs::is_root() {
        bail!("oldroot-test needs Linux and root (debootstrap, mount namespaces, chroot)");
    }
    crate::prereqs::ensure(crate::prereqs::TEST_TOOLS)?;
    let tc = Recipes::load()?.toolchain(opts.target.as_deref())?.clone();
    if !tc.runs_here() {
        bail!("{} binaries do not run on this machine", tc.triple);
    }
    let mut tally = Tally::default();
    if root_only {
        let plan = Plan::load()?;
        crate::prereqs::ensure(TOOLS)?;
        let root = ensure_root(&Cache::from_env()?, &plan)?;
        println!("old root: {}, {}", root.name, root.describe());
        return Ok(());
    }
    let scratch = tempfile::Builder::new()
        .prefix("tlsforge-oldroot-")
        .tempdir()?;
    let interpreters = crate::testing::unpacked(opts, &tc, scratch.path())?;
    test_step(&tc, scratch.path(), &interpreters, &mut tally)?;
    tally.finish()
}

/// The root (built once, cached), every archive inside it, then the
/// manylinux wheel on the host; lines go to `tally`. `interpreters` were
/// unpacked into `scratch`, which the root sees as its /tmp.
pub fn test_step(
    tc: &Toolchain,
    scratch: &Path,
    interpreters: &[(Artifact, PathBuf)],
    tally: &mut Tally,
) -> Result<()> {
    crate::prereqs::ensure(TOOLS)?;
    let plan = Plan::load()?;
    let cache = Cache::from_env()?;
    let root = ensure_root(&cache, &plan)?;
    tally.add(format!("old root: {}", root.name), true, root.describe());
    let modules = Recipes::load()?.modules;
    let unpacked: Vec<Unpacked> = interpreters
        .iter()
        .map(|(a, exe)| {
            Ok(Unpacked {
                root_exe: format!("/tmp/{}", exe.strip_prefix(scratch)?.display()),
                host_exe: exe,
                modules: modules.required_for(a.python2, tc),
                artifact: a,
            })
        })
        .collect::<Result<_>>()?;
    let t = Instant::now();
    let (ok, summary) = run_harness(&root, scratch, &unpacked)?;
    tally.add(
        format!(
            "inside {} (glibc {}) ({:.0}s)",
            root.name,
            root.glibc(),
            t.elapsed().as_secs_f64()
        ),
        ok,
        summary,
    );
    wheel::check(&cache, &plan.wheel, &unpacked, scratch, tally)
}

/// One unpacked archive: on the host and as the root sees it.
struct Unpacked<'a> {
    artifact: &'a Artifact,
    host_exe: &'a Path,
    root_exe: String,
    /// recipes/modules.toml's list for this interpreter and target.
    modules: Vec<String>,
}

/// Runs the conformance crate's `oldroot` harness (it has the PKI, the TLS
/// server and the pip index) on every unpacked archive; its verdict and its
/// summary line (its table is passed through).
fn run_harness(root: &OldRoot, scratch: &Path, unpacked: &[Unpacked]) -> Result<(bool, String)> {
    let mut cmd = crate::testing::conformance_bin("oldroot");
    cmd.arg("--root")
        .arg(&root.dir)
        .arg("--scratch")
        .arg(scratch);
    for u in unpacked {
        let a = &u.artifact;
        let label = format!("tlsforge-{}", a.version);
        let major = if a.python2 { 2 } else { 3 };
        cmd.arg("--python")
            .arg(format!("{label}={}:{major}", u.root_exe))
            .arg("--modules")
            .arg(format!("{label}={}", u.modules.join(",")));
    }
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running the oldroot harness")?;
    let table = String::from_utf8_lossy(&out.stdout);
    print!("{table}");
    let summary = table
        .lines()
        .last()
        .filter(|l| l.ends_with(" failed"))
        .unwrap_or("the harness printed no summary; see above");
    Ok((out.status.success(), summary.to_string()))
}

/// The manylinux2014 wheel check: a real C-extension wheel from the
/// ecosystem, fetched once (pinned digest), installed offline into a venv of
/// our 3.13 on the host, imported, its C speedups proven loaded.
mod wheel {
    use super::*;

    /// recipes/tests/oldroot.toml's [wheel].
    #[derive(Deserialize)]
    pub struct WheelPlan {
        /// A pip requirements file with `--hash`, in recipes/tests/.
        requirements: String,
        /// The CPython series the wheel is built for (only that one takes it).
        python: String,
        /// The wheel's platform tag, e.g. manylinux2014_x86_64.
        platform: String,
    }

    impl WheelPlan {
        fn requirements_path(&self) -> PathBuf {
            workspace_root()
                .join("recipes/tests")
                .join(&self.requirements)
        }
        /// The tag pip must list, e.g. cp313-cp313-manylinux2014_x86_64.
        fn tag(&self) -> String {
            let cp = format!("cp{}", self.python.replace('.', ""));
            format!("{cp}-{cp}-{}", self.platform)
        }
    }

    /// `name==version` and its sha256 digests, from a requirements file.
    #[derive(Debug, PartialEq)]
    pub struct Pin {
        pub name: String,
        pub version: String,
        pub sha256: Vec<String>,
    }

    /// Joins `\`-continued lines, drops comments; exactly one requirement.
    pub fn parse_pin(text: &str) -> Result<Pin> {
        let joined = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .collect::<Vec<_>>()
            .join(" ")
            .replace('\\', " ");
        let mut words = joined.split_whitespace();
        let req = words.next().context("no requirement line")?;
        let (name, version) = req
            .split_once("==")
            .with_context(|| format!("{req:?} is not pinned with =="))?;
        let sha256: Vec<String> = words
            .map(|w| w.strip_prefix("--hash=sha256:").map(str::to_string))
            .collect::<Option<_>>()
            .context("only --hash=sha256:... may follow the requirement")?;
        if sha256.is_empty() || sha256.iter().any(|h| h.len() != 64) {
            bail!("{req}: needs --hash=sha256:<64 hex digits>");
        }
        Ok(Pin {
            name: name.to_string(),
            version: version.to_string(),
            sha256,
        })
    }

    pub fn check(
        cache: &Cache,
        plan: &WheelPlan,
        unpacked: &[Unpacked],
        scratch: &Path,
        tally: &mut Tally,
    ) -> Result<()> {
        let what = "manylinux2014 wheel on the host";
        let Some(u) = unpacked
            .iter()
            .find(|u| u.artifact.version.starts_with(&format!("{}.", plan.python)))
        else {
            tally.add(
                what.into(),
                true,
                format!("skipped: no {} selected", plan.python),
            );
            return Ok(());
        };
        if std::env::consts::ARCH != "x86_64" {
            tally.add(what.into(), true, "skipped: not an x86_64 host".into());
            return Ok(());
        }
        let req = plan.requirements_path();
        let pin = parse_pin(&std::fs::read_to_string(&req)?)?;
        let t = Instant::now();
        let wheel = fetch(cache, plan, &pin)?;
        let fetched = t.elapsed();
        let venv = scratch.join("wheel-venv");
        let (ok, detail) = install_and_import(u.host_exe, &venv, &req, &wheel)?;
        tally.add(
            format!(
                "{} {} into a venv of tlsforge-{} ({:.0}s fetch, {:.0}s install)",
                pin.name,
                pin.version,
                u.artifact.version,
                fetched.as_secs_f64(),
                (t.elapsed() - fetched).as_secs_f64()
            ),
            ok,
            detail,
        );
        let tag = plan.tag();
        let (ok, detail) = compatible_tags(&venv.join("bin/python"), &tag)?;
        tally.add(format!("pip debug lists {tag}"), ok, detail);
        Ok(())
    }

    /// Downloads the pinned wheel once into `<cache>/wheels/` with the
    /// machine's python3 and its pip configuration (pip checks the digest
    /// with --require-hashes, and so do we, again, on every use).
    fn fetch(cache: &Cache, plan: &WheelPlan, pin: &Pin) -> Result<PathBuf> {
        let req = &plan.requirements_path();
        let wheels = cache.dir("wheels")?;
        let key = KeyBuilder::new("wheel")
            .add("requirements", std::fs::read(req)?)
            .finish();
        let dir = wheels.join(format!("{}-{}-{}", pin.name, pin.version, &key[..8]));
        let _lock = lock_build(&dir)?;
        if !is_complete(&dir) {
            crate::prereqs::ensure(&[("import pip", "python3-pip")])?;
            let work = crate::cache::tempdir_in(&wheels)?;
            let out = work.path().join("out");
            let mut pip = Command::new("python3");
            pip.args(["-m", "pip", "download", "--require-hashes", "--no-deps"])
                .args(["--only-binary=:all:", "--platform", &plan.platform])
                .args(["--python-version", &plan.python, "--implementation", "cp"])
                .args(["--disable-pip-version-check", "-d"])
                .arg(&out)
                .arg("-r")
                .arg(req);
            let log = cache.log_path(&format!("wheel-{}", pin.name))?;
            run_logged(
                pip,
                &format!("downloading {} (pinned digest)", pin.name),
                &log,
            )?;
            verified_wheel(&out, pin)?;
            mark_complete(&out)?;
            commit_dir(&out, &dir)?;
        }
        verified_wheel(&dir, pin)
    }

    /// The one .whl in `dir`, if its sha256 is one the pin names.
    fn verified_wheel(dir: &Path, pin: &Pin) -> Result<PathBuf> {
        let wheels: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "whl"))
            .collect();
        let [wheel] = wheels.as_slice() else {
            bail!(
                "expected one wheel in {}, found {}",
                dir.display(),
                wheels.len()
            );
        };
        let digest = crate::util::sha256_file(wheel)?;
        if !pin.sha256.contains(&digest) {
            bail!("{} has sha256 {digest}, not a pinned one", wheel.display());
        }
        Ok(wheel.clone())
    }

    /// A neutral environment: no PIP_*/PYTHON* from the caller, and no
    /// machine pip configuration (its find-links or index must not decide).
    fn neutral(exe: &Path, home: &Path) -> Command {
        let mut c = Command::new(exe);
        c.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", home)
            .env("PIP_CONFIG_FILE", "/dev/null");
        c
    }

    fn run_text(mut c: Command, what: &str) -> Result<(bool, String)> {
        let o = c.output().with_context(|| format!("running {what}"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        Ok((o.status.success(), text))
    }

    fn last_lines(text: &str, n: usize) -> String {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(n)..].join(" | ")
    }

    /// venv, offline install from the verified file (hashes still required),
    /// then import: `escape('<')` and the C module `_speedups` in use.
    fn install_and_import(
        python: &Path,
        venv: &Path,
        req: &Path,
        wheel: &Path,
    ) -> Result<(bool, String)> {
        let home = venv.with_extension("home");
        std::fs::create_dir_all(&home)?;
        let mut c = neutral(python, &home);
        c.args(["-m", "venv"]).arg(venv);
        let (ok, out) = run_text(c, "python -m venv")?;
        if !ok {
            return Ok((false, format!("venv failed: {}", last_lines(&out, 3))));
        }
        let vpy = venv.join("bin/python");
        let mut c = neutral(&vpy, &home);
        c.args([
            "-m",
            "pip",
            "install",
            "--no-index",
            "--no-deps",
            "--no-cache-dir",
        ])
        .args(["--only-binary=:all:", "--disable-pip-version-check"])
        .arg("--find-links")
        .arg(wheel.parent().unwrap())
        .arg("-r")
        .arg(req);
        let (ok, out) = run_text(c, "pip install")?;
        if !ok {
            return Ok((
                false,
                format!("pip install failed: {}", last_lines(&out, 3)),
            ));
        }
        let mut c = neutral(&vpy, &home);
        c.args(["-c", IMPORT_CHECK]);
        let (ok, out) = run_text(c, "the import check")?;
        let name = wheel.file_name().unwrap().to_string_lossy();
        Ok((
            ok && out.contains("escape=&lt; speedups_used=True"),
            format!("{name}: {}", last_lines(&out, 2)),
        ))
    }

    /// markupsafe picks `_speedups` (C) when it imports, `_native` otherwise:
    /// the C function being the one in use proves the extension loaded.
    const IMPORT_CHECK: &str = "import markupsafe, markupsafe._speedups as s\n\
        print('escape=%s speedups_used=%s %s' % (markupsafe.escape('<'), \
        markupsafe._escape_inner is s._escape_inner, s.__file__.rsplit('/', 1)[-1]))";

    /// `pip debug --verbose`: the tags our interpreter accepts must include
    /// manylinux2014 for it (what makes pip choose such wheels at all).
    fn compatible_tags(vpy: &Path, tag: &str) -> Result<(bool, String)> {
        let prefix = tag.splitn(3, '-').take(2).collect::<Vec<_>>().join("-") + "-";
        let home = vpy.parent().unwrap().join("home");
        std::fs::create_dir_all(&home)?;
        let mut c = neutral(vpy, &home);
        c.args([
            "-m",
            "pip",
            "debug",
            "--verbose",
            "--disable-pip-version-check",
        ]);
        let (ok, out) = run_text(c, "pip debug")?;
        let tags: Vec<&str> = out
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with(&prefix))
            .collect();
        let manylinux: Vec<&str> = tags
            .iter()
            .filter_map(|t| t.strip_prefix(&prefix))
            .filter(|p| p.starts_with("manylinux"))
            .collect();
        let detail = format!(
            "{} {prefix}* tags; manylinux ones: {} .. {}",
            tags.len(),
            manylinux.first().unwrap_or(&"none"),
            manylinux.last().unwrap_or(&"none")
        );
        Ok((ok && tags.contains(&tag), detail))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_a_pinned_requirement() {
            let text = "# what and why\nMarkupSafe==3.0.2 \\\n    --hash=sha256:".to_string()
                + &"a".repeat(64)
                + "\n";
            let pin = parse_pin(&text).unwrap();
            assert_eq!(pin.name, "MarkupSafe");
            assert_eq!(pin.version, "3.0.2");
            assert_eq!(pin.sha256, vec!["a".repeat(64)]);
        }

        #[test]
        fn refuses_unpinned_or_unhashed() {
            assert!(parse_pin("markupsafe>=3\n").is_err());
            assert!(parse_pin("markupsafe==3.0.2\n").is_err());
            assert!(parse_pin("markupsafe==3.0.2 --hash=sha256:abc\n").is_err());
            assert!(parse_pin("markupsafe==3.0.2 --no-binary :all:\n").is_err());
        }

        #[test]
        fn the_pinned_file_parses() {
            let plan = super::super::Plan::load().unwrap();
            assert_eq!(
                plan.wheel.tag(),
                format!("cp313-cp313-{}", plan.wheel.platform)
            );
            let text = std::fs::read_to_string(plan.wheel.requirements_path()).unwrap();
            let pin = parse_pin(&text).unwrap();
            assert_eq!(pin.name.to_lowercase(), "markupsafe");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: libc-bin\nStatus: install ok installed\nVersion: 2.31-13+deb11u11\n\n\
Package: libc6\nStatus: install ok installed\nPriority: optional\nVersion: 2.31-13+deb11u11\nDepends: libgcc-s1, libcrypt1\n\n\
Package: zlib1g\nVersion: 1:1.2.11.dfsg-2+deb11u2\n";

    #[test]
    fn reads_libc6_from_dpkg_status() {
        let v = dpkg_version(STATUS, "libc6").unwrap();
        assert_eq!(v, "2.31-13+deb11u11");
        assert_eq!(glibc_of(&v), "2.31");
        assert_eq!(dpkg_version(STATUS, "libc").as_deref(), None);
        assert_eq!(
            dpkg_version(STATUS, "zlib1g").as_deref(),
            Some("1:1.2.11.dfsg-2+deb11u2")
        );
    }
}
