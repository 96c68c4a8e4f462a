//! The compilers a toolchain builds with, resolved once per build: the
//! machine's `cc` (or a Debian cross gcc), that compiler behind a
//! `--print-multiarch` wrapper, or zig's C compiler from PyPI's `ziglang`
//! wheel for targets this machine has no compiler for (macOS). Every stage
//! (OpenSSL, deps, CPython) takes its CC/AR/RANLIB from here.

use anyhow::{Context, Result};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::recipes::Toolchain;
use crate::util::{workspace_root, Cache, KeyBuilder};

pub struct Compilers {
    /// The C compiler for OpenSSL and the deps. A bare name where possible:
    /// OpenSSL records the compiler command in the library
    /// (`OpenSSL_version(OPENSSL_CFLAGS)`), so a path would ship.
    pub cc: String,
    /// The C compiler for CPython's configure (may be a wrapper).
    pub cpython_cc: String,
    /// Only set when the toolchain has its own (configure finds g++ itself).
    pub cxx: Option<String>,
    pub ar: String,
    pub ranlib: String,
    /// Identifies the compiler in cache keys. For a system compiler it is
    /// the toolchain's `cc`; for zig, the pinned wheels and the wrapper text.
    pub key: String,
    /// `[cpython_gcc]`: the series it names, and the gcc wrapper for them.
    pub gcc_route: Option<(Vec<String>, CpythonCc)>,
}

/// The C compiler of one CPython build.
#[derive(Clone)]
pub struct CpythonCc {
    pub name: String,
    /// The machine's gcc at zig's C library floor (gcc_floor.rs): PGO and
    /// LTO are gcc's own rather than clang's.
    pub gcc_floor: bool,
    /// Identifies the compiler in the build's cache key.
    pub key: String,
}

impl Compilers {
    /// The compiler for CPython `series` (`2.7`).
    pub fn for_cpython(&self, series: &str) -> CpythonCc {
        match &self.gcc_route {
            Some((pythons, gcc)) if pythons.iter().any(|p| p == series) => gcc.clone(),
            _ => CpythonCc {
                name: self.cpython_cc.clone(),
                gcc_floor: false,
                key: self.key.clone(),
            },
        }
    }

    pub fn for_toolchain(tc: &Toolchain, cache: &Cache) -> Result<Compilers> {
        // zig stands in for a compiler this machine lacks (macOS from
        // Linux), or is the compiler everywhere when the target's C library
        // floor needs it (glibc 2.17 for linux-gnu); on a Mac runner the
        // system's cc builds natively.
        if let Some(zig) = tc.zig.as_ref().filter(|z| z.on_native || !tc.runs_here()) {
            return zig_compilers(tc, &zig.target, cache);
        }
        let (ar, ranlib) = match (&tc.configure_host, tc.is_cross()) {
            (Some(host), true) => (format!("{host}-ar"), format!("{host}-ranlib")),
            _ => ("ar".to_string(), "ranlib".to_string()),
        };
        let cc = match &tc.zig {
            Some(_) => "cc".to_string(),
            None => tc.cc.clone(),
        };
        let cpython_cc = match &tc.multiarch {
            Some(multiarch) => multiarch_wrapper(tc, multiarch, cache)?,
            None => cc.clone(),
        };
        Ok(Compilers {
            cc,
            cpython_cc,
            cxx: None,
            ar,
            ranlib,
            key: tc.cc.clone(),
            gcc_route: None,
        })
    }
}

/// Writes `path` only when its text changed (keeps mtimes of unchanged
/// wrappers, so makefiles that depend on $CC do not rebuild).
pub fn write_executable(path: &Path, text: &str) -> Result<()> {
    if fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
    fs::rename(&tmp, path)?;
    Ok(())
}

/// musl-gcc is Debian's gcc and answers `--print-multiarch` with the glibc
/// triplet, which CPython's configure rejects; the wrapper answers for it.
fn multiarch_wrapper(tc: &Toolchain, multiarch: &str, cache: &Cache) -> Result<String> {
    let wrapper = cache
        .dir(&format!("toolchains/{}/bin", tc.triple))?
        .join("cc");
    let script = format!(
        "#!/bin/sh
# Written by tlsforge (toolchains/{}.toml: multiarch).
             if [ \"$1\" = --print-multiarch ]; then echo {multiarch}; exit 0; fi
             exec {} \"$@\"
",
        tc.triple, tc.cc
    );
    write_executable(&wrapper, &script)?;
    Ok(wrapper.display().to_string())
}

/// `<triple>-cc`, `-c++`, `-ar` and `-ranlib` for one zig target, in the
/// cache's toolchain dir, which goes first on PATH (so build systems record
/// the names, not a path into this machine's cache): copies of
/// `toolchains/zig/wrapper.sh` with the zig binary and target filled in.
fn zig_compilers(tc: &Toolchain, target: &str, cache: &Cache) -> Result<Compilers> {
    let requirements = workspace_root().join("toolchains/zig/requirements.txt");
    let template_path = workspace_root().join("toolchains/zig/wrapper.sh");
    let template = fs::read_to_string(&template_path)
        .with_context(|| format!("reading {}", template_path.display()))?;
    let zig = install_zig(cache, &requirements)?;
    let zig_cache = cache.dir("toolchains/zig-cache")?;
    let bin = cache.dir(&format!("toolchains/{}/bin", tc.triple))?;
    let profile_runtime = tc
        .pgo
        .as_ref()
        .map(|p| p.profile_runtime.as_str())
        .unwrap_or("");
    let mut names = Vec::new();
    for tool in ["cc", "c++", "ar", "ranlib"] {
        let text = template
            .replace("@ZIG@", &zig.display().to_string())
            .replace("@PROFILE_RUNTIME@", profile_runtime)
            .replace("@TOOL@", tool)
            .replace("@TARGET@", target)
            .replace("@ZIG_CACHE@", &zig_cache.display().to_string());
        let name = format!("{}-{tool}", tc.triple);
        write_executable(&bin.join(&name), &text)?;
        names.push(name);
    }
    prepend_to_path(&bin)?;
    let key = KeyBuilder::new("zig")
        .add("requirements", fs::read(&requirements)?)
        .add("wrapper", &template)
        .add("target", target)
        .add("profile-runtime", profile_runtime)
        .finish();
    // (gcc compiles for the host: only a target that runs here)
    let gcc_route = match &tc.cpython_gcc {
        Some(route) if tc.runs_here() => {
            let (name, key) = crate::gcc_floor::wrapper(tc, &names[0], &key, &bin, cache)?;
            Some((
                route.pythons.clone(),
                CpythonCc {
                    name,
                    gcc_floor: true,
                    key,
                },
            ))
        }
        _ => None,
    };
    Ok(Compilers {
        cc: names[0].clone(),
        cpython_cc: names[0].clone(),
        cxx: Some(names[1].clone()),
        ar: names[2].clone(),
        ranlib: names[3].clone(),
        key: format!("zig {target} {key} {}", names[0]),
        gcc_route,
    })
}

/// Every tool this process runs from now on finds the toolchain's wrappers.
fn prepend_to_path(dir: &Path) -> Result<()> {
    std::env::set_var("PATH", crate::util::path_with_first(dir)?);
    Ok(())
}

/// Installs the pinned ziglang wheel into the cache, once.
fn install_zig(cache: &Cache, requirements: &Path) -> Result<PathBuf> {
    Ok(
        crate::prereqs::pinned_wheel(cache, "ziglang", requirements, "ziglang/zig")?
            .join("ziglang/zig"),
    )
}
