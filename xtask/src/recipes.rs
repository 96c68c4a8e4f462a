//! The data in `recipes/` and `toolchains/`: which sources exist, their pins,
//! and how each target is compiled. Code reads these; it never hard-codes them.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

use crate::util::workspace_root;

/// One pinned download: the same bytes may come from several providers.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Source {
    pub file: String,
    pub size: u64,
    pub sha256: String,
    #[serde(default)]
    pub urls: Vec<String>,
    pub debian: Option<DebianSource>,
}

/// Where Debian's archive carries the same file (an "orig" tarball).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DebianSource {
    pub package: String,
    pub version: String,
    pub suite: String,
    pub file: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CpythonRecipe {
    pub version: String,
    pub series: String,
    /// Part of the set built when `--python` is not given.
    #[serde(default)]
    pub default: bool,
    /// Extra `./configure` arguments this version needs.
    #[serde(default)]
    pub configure: Vec<String>,
    pub source: Source,
    /// Wheels the source ships that the pipeline rebuilds (xtask/src/wheels.rs).
    #[serde(default)]
    pub bundled_wheel: Vec<BundledWheel>,
}

/// A wheel inside the CPython source (ensurepip's pip) rebuilt with our
/// patches: `[[bundled_wheel]]` in `recipes/cpython/<version>.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct BundledWheel {
    /// Path in the source tree, e.g. `Lib/ensurepip/_bundled/pip-…whl`.
    pub path: String,
    /// The shipped wheel's sha256 (checked before unpacking).
    pub sha256: String,
    /// The series under `patches/wheels/`.
    pub patches: String,
    /// Members deleted after patching (e.g. a frozen CA bundle).
    #[serde(default)]
    pub remove: Vec<String>,
}

impl BundledWheel {
    pub fn patch_dir(&self) -> PathBuf {
        workspace_root().join("patches/wheels").join(&self.patches)
    }
}

impl CpythonRecipe {
    pub fn is_python2(&self) -> bool {
        self.version.starts_with("2.")
    }
    pub fn patch_dir(&self) -> PathBuf {
        workspace_root().join("patches").join(&self.version)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OpensslRecipe {
    pub choice: String,
    pub version: String,
    #[serde(rename = "crate")]
    pub crate_name: String,
    /// What openssl-src passes to Configure; each `no-X` is checked
    /// against the built configuration.h (openssl.rs).
    pub options: Vec<String>,
    /// Options Configure acts on without recording OPENSSL_NO_X there.
    #[serde(default)]
    pub options_unrecorded: Vec<String>,
    pub license: String,
}

/// A C library linked statically into the interpreter or its extension
/// modules (`recipes/deps/*.toml`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DepRecipe {
    pub name: String,
    pub version: String,
    /// SPDX identifier, copied into the manifest and SBOM.
    pub license: String,
    /// Other deps whose headers/libraries this one builds against.
    #[serde(default)]
    pub requires: Vec<String>,
    /// Static archives it installs under lib/ (kept out of the dynamic
    /// symbol table with `--exclude-libs`).
    pub libs: Vec<String>,
    /// Extension modules it makes possible.
    #[serde(default)]
    pub modules: Vec<String>,
    /// `autoconf` (configure; make; make install) or `make` (make, then copy
    /// `install_files`).
    #[serde(default)]
    pub build: DepBuild,
    /// Where the build runs, relative to the unpacked source (default: its root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdir: Option<String>,
    /// A command that generates `configure` when the source is a git export.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bootstrap: Vec<String>,
    /// Arguments; `{prefix}`, `{cc}`, `{ar}`, `{ranlib}`, `{cflags}` are expanded.
    /// Symbols the interpreter must not export (a validation rule, not a
    /// build input: never part of the dep's key).
    #[serde(default, skip_serializing)]
    pub exported_symbol_prefixes: Vec<String>,
    #[serde(default)]
    pub configure: Vec<String>,
    /// False for a hand-written configure that rejects `--host` (zlib's
    /// reads CHOST from the environment instead).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub configure_takes_host: bool,
    #[serde(default)]
    pub make_args: Vec<String>,
    #[serde(default)]
    pub install_targets: Vec<String>,
    /// (installed archive, extra name) pairs: copies under another name that
    /// some build system looks for first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lib_aliases: Vec<(String, String)>,
    /// `.pc` files we write ourselves (name → contents) where the library's
    /// own is missing or wrong; `prefix` is redefined at use (--define-prefix).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub pc_files: std::collections::BTreeMap<String, String>,
    /// (file in the build tree, directory under the prefix).
    #[serde(default)]
    pub install_files: Vec<(String, String)>,
    pub source: Source,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// How a dependency builds (recipes/deps/*.toml `build`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DepBuild {
    /// configure; make; make install.
    #[default]
    Autoconf,
    /// make, then copy `install_files`.
    Make,
}

/// How far a target is supported (toolchains/*.toml `status`; README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Built, and its binaries run and pass the suites here.
    Tested,
    /// Built and validated here; its binaries run elsewhere.
    Validated,
    /// Refused with the toolchain's `reason`.
    Unsupported,
    /// Described, not buildable yet.
    Plan,
    /// What `build_key_text` writes instead of the status, so describing a
    /// target never changes its key; no toolchain file may say it.
    #[serde(rename = "")]
    Unstated,
}

impl Status {
    pub fn is_buildable(self) -> bool {
        matches!(self, Status::Tested | Status::Validated)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Linux,
    Macos,
    Windows,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BinaryFormat {
    Elf,
    Macho,
    Pe,
}

/// The name the data files use (`tested`, `linux`, `elf`, …).
macro_rules! display_as_serialized {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let v = serde_json::to_value(self).map_err(|_| std::fmt::Error)?;
                f.write_str(v.as_str().unwrap_or_default())
            }
        }
    )*};
}
display_as_serialized!(DepBuild, Status, Os, BinaryFormat);

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Toolchain {
    pub triple: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Group names that select this target with others (`macos`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    pub status: Status,
    pub os: Os,
    pub arch: String,
    pub binary_format: BinaryFormat,
    pub cc: String,
    pub openssldir: String,
    #[serde(default)]
    pub cflags: Vec<String>,
    #[serde(default)]
    pub ldflags: Vec<String>,
    #[serde(default)]
    pub needed_allowlist: Vec<String>,
    pub max_glibc: Option<String>,
    pub reason: Option<String>,
    /// Cross builds: the GNU host triple for `configure --host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configure_host: Option<String>,
    /// Answers for configure's run-time checks it cannot execute when cross-compiling.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_site: Vec<String>,
    /// Prefix that runs this target's binaries here (e.g. qemu-user).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_under: Vec<String>,
    /// Fully static executable (no PT_INTERP, no NEEDED): every extension
    /// module is compiled into the interpreter.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fully_static: bool,
    /// Whether the C library implements FORTIFY_SOURCE (`__*_chk`); musl
    /// does not, so the validator cannot ask for it there.
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub fortify: bool,
    /// The oldest CPython this target can build (e.g. a fully static build
    /// needs 3.13's MODULE_BUILDTYPE); older selections are skipped with a note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_python: Option<String>,
    /// (module, reason) pairs that cannot work on this target; they are
    /// dropped from the required imports and listed as omitted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_importable: Vec<(String, String)>,
    /// Whether executables can be position-independent on this target.
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub pie: bool,
    /// Other host triples whose machines run this target's binaries as they
    /// are (a static musl binary runs on any x86_64 Linux).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs_on: Vec<String>,
    /// Kernel header directories (name, system path) a C library without
    /// its own (musl-gcc) is given through a private `-isystem` directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_headers: Vec<(String, String)>,
    /// Extra `./configure` arguments for CPython on this target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpython_configure: Vec<String>,
    /// What `$CC --print-multiarch` must answer: musl-gcc is Debian's gcc
    /// and answers the glibc triplet, which CPython's configure rejects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiarch: Option<String>,
    /// The GitHub Actions runner that builds this target in release.yml
    /// (CI metadata, not a build input: never part of a cache key).
    #[serde(default, skip_serializing)]
    pub ci_runner: Option<String>,
    /// Compile with zig's C compiler (PyPI ziglang) for this `-target`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zig: Option<ZigTarget>,
    /// A static runtime library (gcc's libgcc.a, a glob with one `*`
    /// directory for the gcc version) linked into every CPython binary, so
    /// compiler helper calls (128-bit division, aarch64's soft-float long
    /// double) resolve there and zig's compiler_rt is not linked: it also
    /// defines memcpy, strlen, cos, __stack_chk_fail and (with a constant
    /// value) __stack_chk_guard, which would then take precedence over
    /// glibc's in that binary.
    pub runtime_library: Option<String>,
    /// The C library's stack canary, where it is a global rather than a
    /// thread-local slot (aarch64 glibc: `__stack_chk_guard`): every
    /// stack-protected binary must import it (validate.rs).
    pub stack_guard: Option<String>,
    /// The linker has no `--exclude-libs` (ld64, zig's ELF linker): OpenSSL's
    /// and the deps' archives get their symbols hidden before any link.
    #[serde(default)]
    pub hide_archive_symbols: bool,
    /// Headers and framework stubs (a directory under toolchains/) for a
    /// target whose SDK is not here; copied into the cache, then
    /// `-isystem <dir>/include` and `-F <dir>/Frameworks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk_stubs: Option<String>,
    /// Extra C flags for OpenSSL and the deps only (not CPython): on
    /// Mach-O, `-fvisibility=hidden` keeps their symbols out of the
    /// interpreter's exports (ld64 has no --exclude-libs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub library_cflags: Vec<String>,
    /// OpenSSL's perlasm picks the code it emits by probing the assembler
    /// (`$CC -Wa,-v`): AVX-512 ChaCha20 and Poly1305 only for a GNU as it
    /// recognises, never more than AVX2 for clang. When set, OpenSSL's
    /// assembly (the probe included) goes through the machine's GNU
    /// assembler (the zig wrapper adds -fno-integrated-as), so the probe
    /// answers for the assembler that really assembles.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub openssl_gnu_as: bool,
    /// Functions of OpenSSL's assembly that the built libcrypto.a must
    /// define (checked after every OpenSSL build): a toolchain change that
    /// drops an accelerated path fails the build instead of slowing TLS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub openssl_asm_functions: Vec<String>,
    /// Extra C flags for CPython only (after its own OPT flags).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpython_cflags: Vec<String>,
    /// Extra C flags for CPython 2.7 (old C that newer compilers reject).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cflags_python2: Vec<String>,
    /// Environment for CPython's configure; `{cc}` and `{cxx}` expand to
    /// the toolchain's compilers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configure_env: Vec<(String, String)>,
    /// (symbol, reason): exports the validator tolerates although their
    /// library is linked statically (a linker that cannot hide them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerated_exports: Vec<(String, String)>,
    /// (dependency, reason) pairs not built for this target; the modules
    /// that need them are listed as omitted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without_deps: Vec<(String, String)>,
    /// Oldest OS release the binaries run on (macOS deployment target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_os: Option<String>,
    /// The CPython series this target has patches for (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pythons: Vec<String>,
    /// Debian packages the toolchain needs: (command or path, package).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<(String, String)>,
    /// What profile-guided optimisation needs beside the compiler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgo: Option<PgoTools>,
    /// CPython series compiled by the machine's gcc for the same C
    /// library floor (zig's headers and link stubs): `[cpython_gcc]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpython_gcc: Option<CpythonGcc>,
    /// How Debian, RPM and uv name this target (package metadata, not
    /// build inputs: `build_key_text` leaves them out). A target without a
    /// Debian/RPM name gets no .deb/.rpm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debian_arch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm_arch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uv_platform: Option<UvPlatform>,
}

/// `[pgo]` in a toolchain: clang's profile runtime and llvm-profdata of the
/// compiler's LLVM release, where the compiler (zig) ships neither.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PgoTools {
    /// The LLVM major version the compiler reports (`clang version N.…`).
    pub llvm_major: String,
    /// Linked into instrumented programs (toolchains/zig/wrapper.sh).
    pub profile_runtime: String,
    /// Merges the training run's raw profiles.
    pub profdata: String,
    /// (path, Debian package) installed when a build uses PGO.
    #[serde(default)]
    pub packages: Vec<(String, String)>,
}

/// `[cpython_gcc]` in a toolchain: the CPython series whose interpreter the
/// machine's gcc compiles instead of zig's clang, still for zig's glibc
/// floor (gcc_floor.rs gives gcc the headers, start file and link stubs
/// zig uses). PGO and LTO are then gcc's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpythonGcc {
    /// Series (`2.7`) built this way; the others stay with zig.
    pub pythons: Vec<String>,
    /// Added to CPython's compile and link lines for this route only, and
    /// kept out of the flags recorded for users' extension builds.
    #[serde(default)]
    pub build_flags: Vec<String>,
    /// Libraries every link names, as zig's driver does on its own: the
    /// extension modules then need libm/libdl themselves instead of
    /// finding sqrt or dlopen only through the interpreter. (LDFLAGS of our
    /// build only, like `build_flags`.)
    #[serde(default)]
    pub link_libraries: Vec<String>,
}

impl CpythonGcc {
    /// Every flag of the route that only our build may see.
    pub fn build_only_flags(&self) -> impl Iterator<Item = &String> {
        self.build_flags.iter().chain(&self.link_libraries)
    }
}

/// `recipes/profiles.toml`: how hard the compiler works on CPython.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    #[serde(skip_deserializing)]
    pub name: String,
    pub description: String,
    pub pgo: bool,
    pub lto: bool,
    /// Added to every link when LTO is on (LDFLAGS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lto_link_flags: Vec<String>,
    /// The training run's arguments to the instrumented interpreter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_task_python2: Option<String>,
}

impl Profile {
    pub fn profile_task(&self, python2: bool) -> Option<&str> {
        if python2 {
            self.profile_task_python2.as_deref()
        } else {
            self.profile_task.as_deref()
        }
    }
}

#[derive(Deserialize)]
struct ProfilesFile {
    default: String,
    profile: std::collections::BTreeMap<String, Profile>,
}

/// uv's download-metadata names: `arch.family`, `os`, `libc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UvPlatform {
    pub arch: String,
    pub os: String,
    pub libc: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZigTarget {
    /// zig's `-target`, e.g. `aarch64-macos.11.0` (the OS version is the
    /// deployment target recorded in every binary) or
    /// `x86_64-linux-gnu.2.17` (the glibc whose symbol versions, headers and
    /// link stubs the build sees).
    pub target: String,
    /// zig builds this target even on a machine that runs it natively: the
    /// point is the C library floor (glibc 2.17), which the machine's own
    /// gcc cannot give. False for macOS, where a Mac's own clang and SDK
    /// are used when the build runs on a Mac.
    #[serde(default)]
    pub on_native: bool,
}

impl Toolchain {
    /// The toolchain as a build input: everything that changes what is
    /// compiled, nothing that only describes the target (status, reason,
    /// aliases, groups, not_importable), so editing a description never
    /// invalidates a build.
    pub fn build_key_text(&self) -> Result<String> {
        let mut t = self.clone();
        t.status = Status::Unstated;
        t.reason = None;
        t.aliases.clear();
        t.groups.clear();
        // (what is importable is checked after the build, not compiled)
        t.not_importable.clear();
        t.tolerated_exports.clear();
        (t.debian_arch, t.rpm_arch, t.uv_platform) = (None, None, None);
        let mut text = toml::to_string(&t)?;
        if self.sdk_stubs.is_some() {
            text.push_str(&format!("# sdk stubs {}\n", self.sdk_stubs_key()?));
        }
        Ok(text)
    }
    /// The C flags for deps and CPython: the toolchain's, plus an
    /// `-isystem` directory of kernel headers when the toolchain asks for one
    /// (made in the cache: symlinks to the system's headers).
    pub fn cflags_with_headers(&self, cache: &crate::util::Cache) -> Result<String> {
        let mut flags = self.cflags.join(" ");
        if !self.kernel_headers.is_empty() {
            let dir = cache.dir(&format!("toolchains/{}/kernel-headers", self.triple))?;
            for (name, target) in &self.kernel_headers {
                let link = dir.join(name);
                if !Path::new(target).is_dir() {
                    bail!(
                        "toolchains/{}.toml wants kernel headers from {target}; install linux-libc-dev",
                        self.triple
                    );
                }
                if fs::symlink_metadata(&link).is_err() {
                    std::os::unix::fs::symlink(target, &link)?;
                }
            }
            flags.push_str(&format!(" -isystem {}", dir.display()));
        }
        if let Some(stubs) = self.sdk_stubs_dir(cache)? {
            flags.push_str(&format!(" -isystem {}/include", stubs.display()));
        }
        Ok(flags)
    }

    /// The toolchain's SDK stubs, copied into the cache (build paths under
    /// the cache are mapped away in what we ship; the checkout's are not).
    pub fn sdk_stubs_dir(&self, cache: &crate::util::Cache) -> Result<Option<PathBuf>> {
        // (on the target itself, its SDK is there)
        let Some(stubs) = self.sdk_stubs.as_ref().filter(|_| !self.runs_here()) else {
            return Ok(None);
        };
        let from = crate::util::workspace_root().join("toolchains").join(stubs);
        if !from.is_dir() {
            bail!(
                "toolchains/{}.toml: sdk_stubs = {stubs:?}, but toolchains/{stubs} is not a directory",
                self.triple
            );
        }
        let to = cache.dir(&format!("toolchains/{}/sdk-stubs", self.triple))?;
        // Copied again only when the stubs changed (a stamp beside the copy
        // holds their digest); `cp -a from/. to` refreshes it in place.
        let stamp = to.with_extension("digest");
        let digest = self.sdk_stubs_key()?;
        if fs::read_to_string(&stamp).ok().as_deref() != Some(digest.as_str()) {
            let status = std::process::Command::new("cp")
                .arg("-a")
                .arg(from.join("."))
                .arg(&to)
                .status()?;
            if !status.success() {
                bail!("copying {} to {} failed", from.display(), to.display());
            }
            fs::write(&stamp, &digest)?;
        }
        Ok(Some(to))
    }

    /// A digest of the SDK stub files, for the deps' and CPython's cache
    /// keys (OpenSSL includes none of these headers).
    pub fn sdk_stubs_key(&self) -> Result<String> {
        let mut key = crate::util::KeyBuilder::new("sdk-stubs");
        if let Some(stubs) = &self.sdk_stubs {
            let root = crate::util::workspace_root().join("toolchains").join(stubs);
            for f in crate::util::files_under(&root, false)? {
                key.add(&f.strip_prefix(&root)?.display().to_string(), fs::read(&f)?);
            }
        }
        Ok(key.finish())
    }

    /// Linker flags that go with the SDK stubs (framework search path).
    pub fn sdk_ldflags(&self, cache: &crate::util::Cache) -> Result<String> {
        Ok(match self.sdk_stubs_dir(cache)? {
            Some(stubs) => format!("-F{}/Frameworks", stubs.display()),
            None => String::new(),
        })
    }

    /// Why this target cannot build `recipe`, or None when it can: a
    /// `pythons` list without its series, or a `min_python` above it.
    pub fn why_not_python(&self, recipe: &CpythonRecipe) -> Option<String> {
        if !self.pythons.is_empty() && !self.pythons.contains(&recipe.series) {
            return Some(format!(
                "this target has patches for CPython {} only",
                self.pythons.join(", ")
            ));
        }
        match &self.min_python {
            Some(min) if version_key(&recipe.version) < version_key(min) => {
                Some(format!("this target needs CPython {min} or newer"))
            }
            _ => None,
        }
    }

    /// The linker has no `--exclude-libs` (ld64, zig's): the static
    /// archives' symbols are hidden in the archives instead (hide.rs).
    pub fn hides_archive_symbols(&self) -> bool {
        self.hide_archive_symbols
    }

    /// C flags for OpenSSL and the deps: the toolchain's plus those for
    /// static libraries only.
    pub fn library_cflags_all(&self) -> String {
        self.cflags
            .iter()
            .chain(&self.library_cflags)
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `runtime_library` with its `*` resolved to the newest version
    /// installed (None when the toolchain names none).
    pub fn runtime_library_path(&self) -> Result<Option<PathBuf>> {
        let Some(pattern) = &self.runtime_library else {
            return Ok(None);
        };
        let (dir, rest) = pattern.split_once("/*/").with_context(|| {
            format!(
                "toolchains/{}.toml: runtime_library {pattern:?} needs one /*/ component",
                self.triple
            )
        })?;
        let newest = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join(rest))
            .filter(|p| p.is_file())
            .max_by_key(|p| {
                version_key(
                    &p.strip_prefix(dir)
                        .unwrap()
                        .iter()
                        .next()
                        .unwrap()
                        .to_string_lossy(),
                )
            });
        match newest {
            Some(p) => Ok(Some(p)),
            None => bail!(
                "toolchains/{}.toml: no file matches runtime_library {pattern:?}; install the package the toolchain's `packages` names for it",
                self.triple
            ),
        }
    }

    /// True when binaries for this target run on the machine doing the build.
    pub fn runs_here(&self) -> bool {
        let host = host_triple();
        self.triple == host || self.runs_on.contains(&host)
    }
    pub fn is_cross(&self) -> bool {
        self.configure_host.is_some() && !self.runs_here()
    }
    /// True when its binaries run here, natively or under `run_under`.
    pub fn can_run(&self) -> bool {
        self.runs_here() || !self.run_under.is_empty()
    }
}

fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn toml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

pub struct Recipes {
    pub cpython: Vec<CpythonRecipe>,
    pub openssl: Vec<OpensslRecipe>,
    pub openssl_default: String,
    openssl_symbol_prefixes: Vec<String>,
    pub deps: Vec<DepRecipe>,
    pub mirrors: Vec<String>,
    pub toolchains: Vec<Toolchain>,
    pub modules: Modules,
    pub profiles: Vec<Profile>,
    pub profile_default: String,
    pub packaging: Packaging,
}

/// Reads packaging.toml; a gzip level outside 1–9 is an error naming it.
fn read_packaging(path: &Path) -> Result<Packaging> {
    let p: Packaging = read_toml(path)?;
    let levels = p
        .flavour
        .iter()
        .map(|f| (format!("flavour {}: gzip_level", f.name), f.gzip_level))
        .chain([("package_gzip_level".to_string(), p.package_gzip_level)]);
    for (what, level) in levels {
        if !(1..=9).contains(&level) {
            bail!(
                "{}: {what} = {level}; gzip levels are 1 (fastest) to 9 (smallest)",
                path.display()
            );
        }
    }
    Ok(p)
}

/// `recipes/packaging.toml`: which archives each build gets.
#[derive(Debug, Clone, Deserialize)]
pub struct Packaging {
    pub flavour: Vec<Flavour>,
    pub test_dirs: Vec<String>,
    /// gzip level of the .deb and .rpm payloads.
    #[serde(default = "default_gzip_level")]
    pub package_gzip_level: u32,
    /// zstd level of the `.tar.zst` written beside each `.tar.gz` (none:
    /// no .tar.zst).
    #[serde(default)]
    pub zstd_level: Option<i32>,
    /// The .deb's Maintainer field.
    pub maintainer: String,
    /// Where an interpreter is configured to live (`{version}` replaced):
    /// the .deb and .rpm install it there; archives relocate anywhere.
    pub install_prefix: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Flavour {
    pub name: String,
    pub description: String,
    pub without_tests: bool,
    pub strip: bool,
    /// More paths left out (globs as in `test_dirs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// gzip level, 1 (fast) to 9 (small).
    #[serde(default = "default_gzip_level")]
    pub gzip_level: u32,
}

fn default_gzip_level() -> u32 {
    6
}

impl Packaging {
    pub fn install_prefix(&self, version: &str) -> String {
        self.install_prefix.replace("{version}", version)
    }

    /// True for a path (relative to the install root) under a test dir.
    pub fn is_test_path(&self, rel: &Path) -> bool {
        matches_any(&self.test_dirs, rel)
    }
}

/// True for a path (relative) at or under one of the `globs`; a leading
/// `**/` lets the rest of a glob start at any depth.
pub fn matches_any(globs: &[String], rel: &Path) -> bool {
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    let at = |pat: &[&str], parts: &[String]| {
        parts.len() >= pat.len()
            && pat
                .iter()
                .zip(parts)
                .all(|(p, part)| glob_component(p, part))
    };
    globs
        .iter()
        .any(|pattern| match pattern.strip_prefix("**/") {
            Some(rest) => {
                let pat: Vec<&str> = rest.split('/').collect();
                (0..parts.len()).any(|start| at(&pat, &parts[start..]))
            }
            None => at(&pattern.split('/').collect::<Vec<_>>(), &parts),
        })
}

/// `*` matches any run of characters within one path component.
fn glob_component(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.len() >= head.len() + tail.len() && text.starts_with(head) && text.ends_with(tail)
        }
    }
}

/// `recipes/modules.toml`: what a complete interpreter must import, and the
/// reasons for what is left out on purpose.
#[derive(Debug, Clone, Deserialize)]
pub struct Modules {
    pub required: PerMajor<Vec<String>>,
    pub omitted: PerMajor<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PerMajor<T> {
    pub python2: T,
    pub python3: T,
}

impl Modules {
    /// The modules an interpreter for `tc` must import.
    pub fn required_for(&self, python2: bool, tc: &Toolchain) -> Vec<String> {
        self.required
            .get(python2)
            .iter()
            .filter(|m| !tc.not_importable.iter().any(|(n, _)| n == *m))
            .cloned()
            .collect()
    }
}

impl<T> PerMajor<T> {
    pub fn get(&self, python2: bool) -> &T {
        if python2 {
            &self.python2
        } else {
            &self.python3
        }
    }
}

#[derive(Deserialize)]
struct OpensslFile {
    default: String,
    exported_symbol_prefixes: Vec<String>,
    openssl: Vec<OpensslRecipe>,
}

#[derive(Deserialize)]
struct MirrorsFile {
    mirrors: Vec<String>,
}

impl Recipes {
    pub fn load() -> Result<Recipes> {
        let root = workspace_root();
        let mut cpython: Vec<CpythonRecipe> = toml_files(&root.join("recipes/cpython"))?
            .iter()
            .map(|p| read_toml(p))
            .collect::<Result<_>>()?;
        cpython.sort_by_key(|r| version_key(&r.version));
        let openssl: OpensslFile = read_toml(&root.join("recipes/openssl.toml"))?;
        let deps = toml_files(&root.join("recipes/deps"))?
            .iter()
            .map(|p| read_toml(p))
            .collect::<Result<_>>()?;
        let mut mirrors = read_toml::<MirrorsFile>(&root.join("recipes/mirrors.toml"))?.mirrors;
        if let Ok(extra) = std::env::var("TLSFORGE_MIRRORS") {
            mirrors.extend(
                extra
                    .split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        }
        let toolchains: Vec<Toolchain> = toml_files(&root.join("toolchains"))?
            .iter()
            .map(|p| read_toml(p))
            .collect::<Result<_>>()?;
        if let Some(t) = toolchains.iter().find(|t| t.status == Status::Unstated) {
            bail!(
                "toolchains/{}.toml: status = \"\" is not a status; use tested, validated, unsupported or plan",
                t.triple
            );
        }
        let profiles: ProfilesFile = read_toml(&root.join("recipes/profiles.toml"))?;
        Ok(Recipes {
            profiles: profiles
                .profile
                .into_iter()
                .map(|(name, p)| Profile { name, ..p })
                .collect(),
            profile_default: profiles.default,
            cpython,
            openssl: openssl.openssl,
            openssl_default: openssl.default,
            openssl_symbol_prefixes: openssl.exported_symbol_prefixes,
            deps,
            mirrors,
            toolchains,
            modules: read_toml(&root.join("recipes/modules.toml"))?,
            packaging: read_packaging(&root.join("recipes/packaging.toml"))?,
        })
    }

    /// Symbol prefixes of everything we link statically (recipes/openssl.toml
    /// and each recipes/deps file): the interpreter exports none of them.
    pub fn hidden_symbol_prefixes(&self) -> Vec<String> {
        let deps = self.deps.iter().flat_map(|d| &d.exported_symbol_prefixes);
        self.openssl_symbol_prefixes
            .iter()
            .chain(deps)
            .cloned()
            .collect()
    }

    /// `3.13`, `3.13.5` or `2.7` → the recipe; the error lists what exists.
    pub fn python(&self, wanted: &str) -> Result<&CpythonRecipe> {
        self.cpython
            .iter()
            .rfind(|r| r.version == wanted || r.series == wanted)
            .with_context(|| {
                format!(
                    "no CPython recipe matches --python {wanted}; known: {}",
                    self.cpython
                        .iter()
                        .map(|r| r.version.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    pub fn openssl(&self, wanted: Option<&str>) -> Result<&OpensslRecipe> {
        let wanted = wanted.unwrap_or(&self.openssl_default);
        self.openssl
            .iter()
            .find(|o| o.choice == wanted || o.version == wanted)
            .with_context(|| {
                format!(
                    "unknown --openssl {wanted}; choose one of: {}",
                    self.openssl
                        .iter()
                        .map(|o| o.choice.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    /// `--profile release|quick`; none means recipes/profiles.toml's default.
    pub fn profile(&self, wanted: Option<&str>) -> Result<&Profile> {
        let wanted = wanted.unwrap_or(&self.profile_default);
        self.profiles
            .iter()
            .find(|p| p.name == wanted)
            .with_context(|| {
                format!(
                    "unknown --profile {wanted}; recipes/profiles.toml has: {}",
                    self.profiles
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    /// `--target` accepts a triple or an alias; none means the host.
    /// The toolchains a group name stands for (`--target macos`: both Macs).
    pub fn group(&self, name: &str) -> Vec<&Toolchain> {
        self.toolchains
            .iter()
            .filter(|t| t.groups.iter().any(|g| g == name))
            .collect()
    }

    pub fn toolchain(&self, wanted: Option<&str>) -> Result<&Toolchain> {
        let host = host_triple();
        let wanted = wanted.unwrap_or(&host);
        let found = self
            .toolchains
            .iter()
            .find(|t| t.triple == wanted || t.aliases.iter().any(|a| a == wanted));
        if found.is_none() && !self.group(wanted).is_empty() {
            bail!(
                "--target {wanted} names several targets ({}); name one of them here",
                self.group(wanted)
                    .iter()
                    .map(|t| t.triple.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        match found {
            Some(t) => Ok(t),
            None => bail!(
                "unknown --target {wanted}; known targets: {}",
                self.toolchains
                    .iter()
                    .map(|t| t.triple.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The Rust-style triple of the machine we run on.
pub fn host_triple() -> String {
    let arch = std::env::consts::ARCH;
    match std::env::consts::OS {
        "linux" => format!("{arch}-unknown-linux-gnu"),
        "macos" => format!("{arch}-apple-darwin"),
        other => format!("{arch}-unknown-{other}"),
    }
}

/// "3.13.5" sorts after "3.9.2".
pub fn version_key(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leading_double_star_matches_at_any_depth() {
        let globs = vec!["**/*.pyo".to_string(), "lib/python*/test".to_string()];
        let m = |p: &str| matches_any(&globs, Path::new(p));
        assert!(m("lib/python2.7/os.pyo"));
        assert!(m("lib/python2.7/json/tests/x.pyo"));
        assert!(m("x.pyo"));
        assert!(!m("lib/python2.7/os.pyc"));
        assert!(!m("lib/python2.7/pyo"));
        assert!(m("lib/python3.13/test/a/b.py"));
        assert!(!m("lib/test/a.py"));
    }

    #[test]
    fn every_recipe_parses_and_is_pinned() {
        let r = Recipes::load().unwrap();
        assert!(r.cpython.len() >= 6);
        for c in &r.cpython {
            assert_eq!(c.source.sha256.len(), 64, "{}", c.version);
            assert!(c.source.sha256.chars().all(|ch| ch.is_ascii_hexdigit()));
            assert!(c.source.size > 1_000_000);
        }
        assert_eq!(r.python("3.9").unwrap().version, "3.9.2");
        assert_eq!(r.python("2.7").unwrap().version, "2.7.18");
        assert!(r.python("3.1").is_err());
        assert_eq!(r.openssl(None).unwrap().version, "4.0.3");
        assert_eq!(r.openssl(Some("3.5")).unwrap().version, "3.5.5");
        assert!(r
            .openssl(Some("1.1"))
            .unwrap_err()
            .to_string()
            .contains("4.0, 3.5"));
        assert_eq!(r.packaging.flavour[0].name, "install_only");
        let p = &r.packaging;
        assert!(p.is_test_path(Path::new("lib/python3.13/test/test_ssl.py")));
        assert!(p.is_test_path(Path::new("lib/python2.7/lib-tk/test")));
        assert!(p.is_test_path(Path::new("lib/python2.7/json/tests/test_dump.py")));
        assert!(!p.is_test_path(Path::new("lib/python3.13/ssl.py")));
        assert!(!p.is_test_path(Path::new("lib/python3.13/unittest/main.py")));
        assert!(!p.is_test_path(Path::new("lib/python3.13/testing/x.py")));
        let release = r.profile(None).unwrap();
        assert!(release.pgo && release.lto, "the default profile is release");
        assert!(release.profile_task(true).is_some() && release.profile_task(false).is_some());
        assert!(!r.profile(Some("quick")).unwrap().pgo);
        let err = r.profile(Some("fast")).unwrap_err().to_string();
        assert!(
            err.contains("--profile fast") && err.contains("quick"),
            "{err}"
        );
    }

    #[test]
    fn versions_sort_numerically() {
        assert!(version_key("3.13.5") > version_key("3.9.2"));
        assert!(version_key("2.7.18") < version_key("3.9.2"));
    }

    #[test]
    fn policy_words_are_checked_when_the_data_is_read() {
        let d = tempfile::tempdir().unwrap();
        let host = workspace_root().join("toolchains/x86_64-unknown-linux-gnu.toml");
        let text = fs::read_to_string(host).unwrap();
        for (from, to, named) in [
            ("os = \"linux\"", "os = \"linux2\"", "linux2"),
            ("status = \"tested\"", "status = \"tested!\"", "tested!"),
            (
                "binary_format = \"elf\"",
                "binary_format = \"coff\"",
                "coff",
            ),
        ] {
            assert!(text.contains(from), "{from}");
            let path = d.path().join("t.toml");
            fs::write(&path, text.replace(from, to)).unwrap();
            let err = format!("{:#}", read_toml::<Toolchain>(&path).unwrap_err());
            assert!(err.contains("t.toml") && err.contains(named), "{err}");
            assert!(err.contains("expected one of"), "{err}");
        }
        let path = d.path().join("dep.toml");
        fs::write(
            &path,
            "name = \"x\"\nversion = \"1\"\nlicense = \"MIT\"\nlibs = []\nbuild = \"cmake\"\n\
             [source]\nfile = \"x\"\nsize = 1\nsha256 = \"00\"\n",
        )
        .unwrap();
        let err = format!("{:#}", read_toml::<DepRecipe>(&path).unwrap_err());
        assert!(err.contains("dep.toml") && err.contains("cmake"), "{err}");
        // The stand-in of build keys is no status a file may use.
        assert_eq!(Status::Unstated.to_string(), "");
        assert_eq!(Os::Macos.to_string(), "macos");
    }

    #[test]
    fn describing_a_toolchain_does_not_change_its_build_key() {
        let r = Recipes::load().unwrap();
        let tc = r.toolchain(Some("x86_64-unknown-linux-gnu")).unwrap();
        let mut described = tc.clone();
        described.status = Status::Validated;
        described.reason = Some("a note".into());
        described.aliases.push("another-name".into());
        assert_eq!(
            tc.build_key_text().unwrap(),
            described.build_key_text().unwrap()
        );
        let mut rebuilt = tc.clone();
        rebuilt.cflags.push("-O3".into());
        assert_ne!(
            tc.build_key_text().unwrap(),
            rebuilt.build_key_text().unwrap()
        );
    }
}
