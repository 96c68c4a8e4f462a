//! How hard the compiler works on CPython (recipes/profiles.toml): which of
//! PGO and LTO a build can have on this toolchain and machine, and the make
//! steps of a PGO build. The training run is ours rather than the
//! Makefile's: 2.7's ignores the task's exit status and 3.x's fails the
//! build on any failing test, and we want neither (a failed training test
//! still leaves a valid profile, a missing profile must stop the build).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::compilers::CpythonCc;
use crate::recipes::{PgoTools, Profile, Toolchain};

/// What a build asked for and what it got; recorded in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Optimisation {
    pub profile: String,
    pub pgo: bool,
    pub lto: bool,
    /// Why a part of the profile was not applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What was added to the compile and link lines for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_task: Option<String>,
}

/// The plan for one build: the recorded summary plus the tools PGO needs.
pub struct Plan<'a> {
    pub summary: Optimisation,
    /// clang's PGO: the LLVM tools of the compiler's release.
    pub pgo_tools: Option<&'a PgoTools>,
    /// gcc's own PGO and LTO (gcc_floor.rs) instead of clang's.
    gcc: bool,
    /// The profile's LTO link flags, or none without LTO.
    lto_link_flags: Vec<String>,
    python2: bool,
}

/// The ThinLTO flag both compile and link take (clang).
const LTO_FLAG: &str = "-flto=thin";
const PGO_GEN_FLAG: &str = "-fprofile-instr-generate";
/// gcc's: counters into `<object>.gcda` beside each object file, then the
/// build from them (-fprofile-correction: the training's threads update
/// counters without locks).
const GCC_PGO_GEN_FLAG: &str = "-fprofile-generate";
const GCC_PGO_USE_FLAGS: &str = "-fprofile-use -fprofile-correction";

/// Flags of our optimised build that must not reach users' extension
/// builds: 2.7 records make's EXTRA_CFLAGS in sysconfig's CFLAGS, and a
/// user's `cc` (often gcc) rejects `-flto=thin` ("unrecognized argument").
pub const BUILD_ONLY_FLAGS: &[&str] = &[LTO_FLAG, PGO_GEN_FLAG];
/// ... and those starting with these (they name a file in the cache).
pub const BUILD_ONLY_FLAG_PREFIXES: &[&str] = &["-fprofile-instr-use="];

pub fn plan<'a>(
    profile: &Profile,
    tc: &'a Toolchain,
    cc: &CpythonCc,
    python2: bool,
) -> Result<Plan<'a>> {
    let mut notes = Vec::new();
    // clang's PGO and LTO need the tools of the compiler's LLVM release,
    // which a toolchain names in [pgo] (the musl-gcc toolchain has none);
    // gcc's need nothing beside gcc (libgcov is its own, its LTO runs in
    // gcc's driver with the linker plugin).
    let gcc = cc.gcc_floor;
    let tools = tc.pgo.as_ref();
    let can_optimise = gcc || tools.is_some();
    if (profile.pgo || profile.lto) && !can_optimise {
        notes.push(format!(
            "toolchains/{}.toml has no [pgo] tools: built without PGO and LTO",
            tc.triple
        ));
    }
    let mut pgo = false;
    let mut pgo_tools = None;
    if profile.pgo && can_optimise {
        if !tc.runs_here() {
            notes.push(format!(
                "no PGO: the training run needs a {} machine (this is {})",
                tc.triple,
                crate::recipes::host_triple()
            ));
        } else if profile.profile_task(python2).is_none() {
            notes.push(format!(
                "no PGO: profile {} names no training task for this version",
                profile.name
            ));
        } else {
            if let (false, Some(t)) = (gcc, tools) {
                let packages: Vec<(&str, &str)> = t
                    .packages
                    .iter()
                    .map(|(c, p)| (c.as_str(), p.as_str()))
                    .collect();
                crate::prereqs::ensure(&packages)?;
                check_llvm_release(&cc.name, t, &tc.triple)?;
                pgo_tools = Some(t);
            }
            pgo = true;
        }
    }
    let mut lto = profile.lto && can_optimise;
    if lto && gcc && python2 && !pgo {
        lto = false;
        notes.push("no LTO: 2.7's Makefile applies gcc's LTO flags in its PGO build only".into());
    }
    let mut flags = Vec::new();
    if pgo {
        let (generate, use_profile) = if gcc {
            (GCC_PGO_GEN_FLAG, GCC_PGO_USE_FLAGS)
        } else {
            (PGO_GEN_FLAG, "-fprofile-instr-use")
        };
        flags.extend([generate.to_string(), use_profile.to_string()]);
    }
    if lto {
        flags.push(if gcc {
            "--with-lto (gcc: -flto -fuse-linker-plugin -ffat-lto-objects)".to_string()
        } else {
            LTO_FLAG.to_string()
        });
        flags.extend(profile.lto_link_flags.iter().map(|f| format!("{f} (link)")));
    }
    Ok(Plan {
        summary: Optimisation {
            profile: profile.name.clone(),
            pgo,
            lto,
            notes,
            flags,
            training_task: profile
                .profile_task(python2)
                .filter(|_| pgo)
                .map(str::to_string),
        },
        pgo_tools,
        gcc,
        lto_link_flags: if lto {
            profile.lto_link_flags.clone()
        } else {
            vec![]
        },
        python2,
    })
}

/// The raw profile format changes between LLVM releases: the profile
/// runtime and llvm-profdata must be of the compiler's release.
fn check_llvm_release(cc: &str, tools: &PgoTools, triple: &str) -> Result<()> {
    let out = Command::new(cc)
        .arg("--version")
        .output()
        .with_context(|| format!("running {cc} --version"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let major = text
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .and_then(|v| v.split('.').next())
        .with_context(|| format!("{cc} --version names no clang version: {text}"))?;
    if major != tools.llvm_major {
        bail!(
            "{cc} is clang {major}, but toolchains/{triple}.toml [pgo] has LLVM {} tools \
             (llvm_major, profile_runtime, profdata must match the compiler)",
            tools.llvm_major
        );
    }
    for path in [&tools.profdata, &tools.profile_runtime] {
        if !Path::new(path).exists() {
            bail!("toolchains/{triple}.toml [pgo] names {path}, which does not exist");
        }
    }
    Ok(())
}

impl Plan<'_> {
    /// configure arguments and environment for this plan.
    pub fn configure(&self, configure: &mut Command, ar: &str) {
        if self.gcc {
            if self.summary.pgo && !self.python2 {
                configure.arg("--enable-optimizations");
            }
            if self.summary.lto {
                configure.arg("--with-lto");
            }
            return;
        }
        if self.python2 {
            // (2.7's configure knows PGO and LTO only for a CC named
            // *clang*/*gcc*; the make variables below carry them)
            return;
        }
        if let Some(t) = self.pgo_tools {
            configure
                .arg("--enable-optimizations")
                .env("LLVM_PROFDATA", &t.profdata);
        }
        if self.summary.lto {
            // (configure wants llvm-ar as an executable path; sysconfig's
            // rules turn the wrapper's path into `ar` for users)
            configure.arg("--with-lto=thin").env("LLVM_AR", on_path(ar));
        }
    }

    /// Flags for every link (LDFLAGS): the profile's `lto_link_flags`
    /// when LTO is on (ThinLTO optimises at the link's -O level).
    pub fn link_flags(&self) -> &[String] {
        &self.lto_link_flags
    }

    /// Variables for every make command line (sub-makes inherit them).
    pub fn make_vars(&self, pgo_dir: &Path) -> Vec<String> {
        let mut vars = Vec::new();
        if self.gcc && self.summary.pgo {
            vars.push(format!("PGO_PROF_GEN_FLAG={GCC_PGO_GEN_FLAG}"));
            vars.push(format!("PGO_PROF_USE_FLAG={GCC_PGO_USE_FLAGS}"));
        }
        if let Some(t) = self.pgo_tools {
            vars.push(format!("PGO_PROF_GEN_FLAG={PGO_GEN_FLAG}"));
            vars.push(format!(
                "PGO_PROF_USE_FLAG=-fprofile-instr-use={}",
                merged_profile(pgo_dir).display()
            ));
            // (ours run the training; these keep the Makefile's from
            // reaching llvm-profdata through PATH)
            vars.push(format!(
                "LLVM_PROF_MERGER={} merge -output={} {}/*.profraw",
                t.profdata,
                merged_profile(pgo_dir).display(),
                pgo_dir.display()
            ));
            vars.push("LLVM_PROF_ERR=no".to_string());
        }
        if self.summary.lto && self.python2 && !self.gcc {
            vars.push(format!("EXTRA_CFLAGS={LTO_FLAG}"));
        }
        vars
    }

    /// The make targets before `make install`, each a timed step: one
    /// `make` without PGO; with it, the instrumented build, the training
    /// run (not a make target) and the build from the profile.
    pub fn steps(&self) -> Vec<Step> {
        match (self.summary.pgo, self.python2) {
            (false, _) => vec![Step::Make("make", vec![])],
            (true, true) => vec![
                Step::Make("make (instrumented)", vec!["build_all_generate_profile"]),
                Step::Train,
                Step::Make("make clean", vec!["clean"]),
                Step::Make("make (from the profile)", vec!["build_all_use_profile"]),
            ],
            (true, false) => vec![
                Step::Make("make (instrumented)", vec!["profile-gen-stamp"]),
                Step::Train,
                Step::Make("make clean-retain-profile", vec!["clean-retain-profile"]),
                // (profile-opt would otherwise run the Makefile's training)
                Step::Touch("profile-run-stamp"),
                Step::Make("make (from the profile)", vec!["profile-opt"]),
            ],
        }
    }

    /// Runs the instrumented interpreter on the training task, then merges
    /// its raw profiles; fails unless a non-empty profile results.
    pub fn train(&self, src: &Path, pgo_dir: &Path, log: &Path) -> Result<std::time::Duration> {
        let task = self.summary.training_task.as_deref().unwrap_or_default();
        fs::create_dir_all(pgo_dir)?;
        let mut run = Command::new(src.join("python"));
        run.current_dir(src)
            .args(task.split_whitespace())
            .env("LLVM_PROFILE_FILE", pgo_dir.join("code-%m.profraw"));
        let started = std::time::Instant::now();
        if let Err(e) = crate::util::run_logged(run, "PGO training run", log) {
            // (a failing test still leaves counters for everything it ran)
            eprintln!(
                "tlsforge: the training run did not pass ({}); using its profile",
                e.to_string().lines().next().unwrap_or("")
            );
        }
        if self.gcc {
            // (gcc's counters land beside the objects, merged at each exit)
            let counted = crate::util::files_under(src, false)?
                .iter()
                .filter(|p| p.extension().is_some_and(|x| x == "gcda"))
                .count();
            if counted == 0 {
                bail!(
                    "the PGO training run wrote no .gcda counters under {}; see {}",
                    src.display(),
                    log.display()
                );
            }
            return Ok(started.elapsed());
        }
        let tools = self.pgo_tools.context("internal: training without PGO")?;
        let raw: Vec<PathBuf> = fs::read_dir(pgo_dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "profraw"))
            .collect();
        if raw.is_empty() {
            bail!(
                "the PGO training run wrote no profile into {} (is the profile runtime linked? see {})",
                pgo_dir.display(),
                log.display()
            );
        }
        let mut merge = Command::new(&tools.profdata);
        merge
            .arg("merge")
            .arg(format!("-output={}", merged_profile(pgo_dir).display()))
            .args(&raw);
        crate::util::run_logged(merge, "merging the PGO profile", log)?;
        let merged = fs::metadata(merged_profile(pgo_dir))
            .map(|m| m.len())
            .unwrap_or(0);
        if merged == 0 {
            bail!(
                "llvm-profdata wrote an empty profile; see {}",
                log.display()
            );
        }
        for r in raw {
            fs::remove_file(r)?;
        }
        Ok(started.elapsed())
    }
}

pub enum Step {
    /// (step name, make targets; none: the default target)
    Make(&'static str, Vec<&'static str>),
    Train,
    Touch(&'static str),
}

/// `name` as found on PATH (the toolchain's wrappers are first on it).
fn on_path(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn merged_profile(pgo_dir: &Path) -> PathBuf {
    pgo_dir.join("code.profdata")
}

/// The toolchain's cflags for CPython: without their -O level, so that
/// CPython's own OPT (-O3) decides (3.x puts CFLAGS after OPT).
pub fn without_optimisation_level(flags: &[String]) -> Vec<String> {
    flags
        .iter()
        .filter(|f| !(f.starts_with("-O") && f.len() <= 3))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The release profile (without PGO, which would look for LLVM's
    /// tools) and quick, on the Linux toolchain, which has LTO's tools.
    #[test]
    fn an_lto_link_optimises_at_cpythons_level() {
        let recipes = crate::recipes::Recipes::load().unwrap();
        let tc = recipes.toolchain(Some("x86_64-unknown-linux-gnu")).unwrap();
        let cc = CpythonCc {
            name: "cc".into(),
            gcc_floor: false,
            key: "test".into(),
        };
        let mut release = recipes.profile(Some("release")).unwrap().clone();
        release.pgo = false;
        let lto = plan(&release, tc, &cc, false).unwrap();
        assert_eq!(lto.link_flags(), ["-O3"]);
        let quick = recipes.profile(Some("quick")).unwrap();
        assert!(plan(quick, tc, &cc, false).unwrap().link_flags().is_empty());
    }

    #[test]
    fn cpython_keeps_its_own_optimisation_level() {
        let flags: Vec<String> = [
            "-O2",
            "-fstack-protector-strong",
            "-Os",
            "-D_FORTIFY_SOURCE=2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            without_optimisation_level(&flags),
            vec!["-fstack-protector-strong", "-D_FORTIFY_SOURCE=2"]
        );
    }
}
