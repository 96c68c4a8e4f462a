//! The machine's gcc for zig's C library floor (`[cpython_gcc]` in a
//! toolchain): gcc compiles and links against what zig's own links use for
//! the target (glibc 2.17 for x86_64 Linux): zig's glibc headers with the
//! floor's `__GLIBC_MINOR__`, its start file (crt1.o for glibc < 2.34,
//! whose __libc_start_main still runs the constructors), its
//! libc_nonshared.a and its versioned link stubs (libc.so.6, libm.so.6, …).
//! They are copied into a directory in the cache, and a `<triple>-gcc`
//! wrapper points gcc there: `-nostdinc` keeps the machine's glibc 2.36
//! headers out (they redirect fcntl to fcntl64@GLIBC_2.28), and the stubs
//! come before the machine's libraries on the search path, so a symbol the
//! floor lacks fails the link instead of shipping.

use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::recipes::Toolchain;
use crate::util::{commit_dir, is_complete, lock_build, mark_complete, Cache, KeyBuilder};

/// What zig hands its clang and its linker for the target.
struct ZigLibc {
    /// `-isystem` directories of zig's C library headers, in zig's order.
    header_dirs: Vec<String>,
    /// `-D__GLIBC_MINOR__=N`: zig's features.h takes the floor from it.
    defines: Vec<String>,
    crt1: PathBuf,
    nonshared: PathBuf,
    /// The link stubs, `lib<name>.so.<N>`.
    stubs: Vec<PathBuf>,
}

/// Compiles and links a one-line program with zig's `cc` wrapper, asking
/// zig to print its clang and linker command lines (ZIG_VERBOSE_CC,
/// ZIG_VERBOSE_LINK), and picks out what gcc needs from them.
fn ask_zig(zig_cc: &str) -> Result<ZigLibc> {
    let dir = tempfile::tempdir()?;
    // (zig caches compilations by content: a fresh nonce makes it compile,
    // and so print, every time)
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    fs::write(
        dir.path().join("probe.c"),
        format!("/* tlsforge probe {nonce} */\nint main(void) {{ return 0; }}\n"),
    )?;
    let out = Command::new(zig_cc)
        .current_dir(dir.path())
        .args(["probe.c", "-o", "probe"])
        .env("ZIG_VERBOSE_CC", "1")
        .env("ZIG_VERBOSE_LINK", "1")
        .output()
        .with_context(|| format!("running {zig_cc}"))?;
    let text = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{zig_cc} could not link a one-line program: {text}");
    }
    parse_command_lines(&text)
}

/// The header directories, the floor's define, the start file and the
/// stubs, out of zig's printed clang and ld.lld command lines.
fn parse_command_lines(text: &str) -> Result<ZigLibc> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let header_dirs: Vec<String> = tokens
        .windows(2)
        .filter(|w| w[0] == "-isystem" && w[1].contains("/libc/include/"))
        .map(|w| w[1].to_string())
        .collect();
    let defines: Vec<String> = tokens
        .iter()
        .filter(|t| t.starts_with("-D__GLIBC_MINOR__="))
        .map(|t| t.to_string())
        .collect();
    let ends = |suffix: &str| {
        tokens
            .iter()
            .find(|t| t.ends_with(suffix))
            .map(PathBuf::from)
    };
    let stubs: Vec<PathBuf> = tokens
        .iter()
        .map(Path::new)
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            p.is_absolute()
                && name.starts_with("lib")
                && name
                    .rsplit_once(".so.")
                    .is_some_and(|(_, v)| v.chars().all(|c| c.is_ascii_digit()))
        })
        .map(Path::to_path_buf)
        .collect();
    let missing = |what: &str| format!("zig's command lines name no {what}:\n{text}");
    // (the first time, zig also prints the compiles that build its start
    // file and stubs, so a path or flag may come more than once)
    let zig = ZigLibc {
        crt1: ends("/crt1.o").with_context(|| missing("crt1.o"))?,
        nonshared: ends("/libc_nonshared.a").with_context(|| missing("libc_nonshared.a"))?,
        header_dirs: first_of_each(header_dirs),
        defines: first_of_each(defines),
        stubs: first_of_each(stubs),
    };
    if zig.header_dirs.is_empty() || zig.defines.is_empty() {
        bail!("{}", missing("glibc header directories or __GLIBC_MINOR__"));
    }
    if !zig.stubs.iter().any(|s| s.ends_with("libc.so.6")) {
        bail!("{}", missing("libc.so.6 stub"));
    }
    Ok(zig)
}

/// `items` without repeats, in the order of their first appearance.
fn first_of_each<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut seen = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

/// The file of a floor directory that holds gcc's arguments, one a line.
const GCC_ARGS: &str = "gcc-args";

/// Fills `dir` with what gcc links from: zig's start file and stubs, the
/// machine's crti.o/crtn.o (the _init/_fini frame, the same in every
/// glibc), a libc.so script naming the stubs as the machine's names glibc,
/// and the arguments that point gcc at them and at zig's headers.
fn make_floor_dir(zig_cc: &str, dir: &Path) -> Result<()> {
    let zig = ask_zig(zig_cc)?;
    let crti = gcc_file("crti.o")?;
    let crtn = gcc_file("crtn.o")?;
    let mut inputs: Vec<&Path> = vec![&zig.crt1, &zig.nonshared, &crti, &crtn];
    inputs.extend(zig.stubs.iter().map(PathBuf::as_path));
    let tmp = crate::cache::tempdir_in(dir.parent().context("a floor dir has a parent")?)?;
    let t = &tmp.path().join("out");
    fs::create_dir(t)?;
    for p in &inputs {
        fs::copy(p, t.join(p.file_name().unwrap()))
            .with_context(|| format!("copying {}", p.display()))?;
    }
    // (gcc links PIEs with Scrt1.o; zig's crt1.o is position-independent)
    fs::copy(&zig.crt1, t.join("Scrt1.o"))?;
    for stub in &zig.stubs {
        let name = stub.file_name().unwrap().to_string_lossy().to_string();
        let dev = name.rsplit_once(".so.").unwrap().0.to_string() + ".so";
        if dev != "libc.so" {
            std::os::unix::fs::symlink(&name, t.join(&dev))
                .with_context(|| format!("linking {dev} to {name} in {}", t.display()))?;
        }
    }
    // The dynamic loader's stub is libld.so.2 (its soname is the loader's).
    let loader = zig
        .stubs
        .iter()
        .find(|s| {
            s.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libld."))
        })
        .map(|s| {
            format!(
                " AS_NEEDED ( {} )",
                dir.join(s.file_name().unwrap()).display()
            )
        })
        .unwrap_or_default();
    fs::write(
        t.join("libc.so"),
        format!(
            "/* Written by tlsforge: zig's glibc stubs (gcc_floor.rs). */\nGROUP ( {} {}{loader} )\n",
            dir.join("libc.so.6").display(),
            dir.join("libc_nonshared.a").display()
        ),
    )?;
    let mut args = vec![
        "-nostdinc".to_string(),
        "-isystem".into(),
        gcc_file("include")?.display().to_string(),
    ];
    for d in &zig.header_dirs {
        args.extend(["-isystem".to_string(), d.clone()]);
    }
    args.extend(zig.defines.iter().cloned());
    args.extend([
        format!("-B{}", dir.display()),
        format!("-L{}", dir.display()),
        // (libgcc_s.so.1 is not on the allowlist of libraries)
        "-static-libgcc".to_string(),
    ]);
    fs::write(t.join(GCC_ARGS), args.join("\n") + "\n")?;
    mark_complete(t)?;
    commit_dir(t, dir)
}

/// A file of the machine's gcc installation (`gcc -print-file-name`).
fn gcc_file(name: &str) -> Result<PathBuf> {
    let path = crate::util::stdout_of(
        Command::new("gcc").arg(format!("-print-file-name={name}")),
        "asking gcc where its files are",
    )?;
    let path = PathBuf::from(path);
    if !path.is_absolute() || !path.exists() {
        bail!("gcc does not know {name} (gcc -print-file-name={name}); is gcc installed?");
    }
    Ok(path)
}

/// Writes `<bin>/<triple>-gcc` and returns its name and a key naming what
/// it compiles with. The floor directory is made once per zig (`zig_key`:
/// its wheel and target) and gcc release; later runs only read it.
pub fn wrapper(
    tc: &Toolchain,
    zig_cc: &str,
    zig_key: &str,
    bin: &Path,
    cache: &Cache,
) -> Result<(String, String)> {
    let version = crate::util::stdout_of(Command::new("gcc").arg("--version"), "gcc --version")?;
    let dir = cache
        .dir(&format!("toolchains/{}", tc.triple))?
        .join(format!(
            "glibc-floor-{}",
            KeyBuilder::new("gcc-floor")
                .add("zig", zig_key)
                .add("gcc", &version)
                .finish()
        ));
    let _lock = lock_build(&dir)?;
    if !is_complete(&dir) {
        make_floor_dir(zig_cc, &dir)?;
    }
    let args = fs::read_to_string(dir.join(GCC_ARGS))
        .with_context(|| format!("reading {}", dir.join(GCC_ARGS).display()))?;
    let script = format!(
        "#!/bin/sh\n# Written by tlsforge (toolchains/{}.toml [cpython_gcc], xtask/src/gcc_floor.rs):\n\
         # the machine's gcc with zig's glibc headers, start file and link stubs.\n\
         exec gcc {} \"$@\"\n",
        tc.triple,
        args.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    let name = format!("{}-gcc", tc.triple);
    crate::compilers::write_executable(&bin.join(&name), &script)?;
    let key = KeyBuilder::new("gcc")
        .add("version", version)
        .add("wrapper", &script)
        .finish();
    Ok((name, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Abridged from ZIG_VERBOSE_CC/ZIG_VERBOSE_LINK of ziglang 0.17.1
    /// for x86_64-linux-gnu.2.17.
    const PRINTED: &str = "/z/zig clang /t/probe.c --no-default-config -target x86_64-unknown-linux5.10.0-gnu2.17.0 \
        -nostdinc -D__GLIBC_MINOR__=17 -isystem /z/lib/include -isystem /z/lib/libc/include/x86-linux-gnu \
        -isystem /z/lib/libc/include/generic-glibc -isystem /z/lib/libc/include/any-linux-any -O0
ld.lld --error-limit=0 -z stack-size=16777216 -pie -o probe /c/o/28/crt1.o -dynamic-linker /lib64/ld-linux-x86-64.so.2 \
        /c/o/3b/probe.o /c/o/b3/libm.so.6 /c/o/b3/libc.so.6 /c/o/b3/libld.so.2 /c/o/b3/libpthread.so.0 \
        /c/o/59/libc_nonshared.a /c/o/ce/libcompiler_rt.a";

    #[test]
    fn zigs_command_lines_give_headers_floor_start_file_and_stubs() {
        let zig = parse_command_lines(PRINTED).unwrap();
        // (clang's own builtin headers are not glibc's: gcc has its own)
        assert_eq!(
            zig.header_dirs,
            [
                "/z/lib/libc/include/x86-linux-gnu",
                "/z/lib/libc/include/generic-glibc",
                "/z/lib/libc/include/any-linux-any"
            ]
        );
        assert_eq!(zig.defines, ["-D__GLIBC_MINOR__=17"]);
        assert_eq!(zig.crt1, Path::new("/c/o/28/crt1.o"));
        assert_eq!(zig.nonshared, Path::new("/c/o/59/libc_nonshared.a"));
        // (the loader named by -dynamic-linker is the target's path, not a stub)
        let stubs: Vec<&str> = zig.stubs.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(
            stubs,
            [
                "/c/o/b3/libm.so.6",
                "/c/o/b3/libc.so.6",
                "/c/o/b3/libld.so.2",
                "/c/o/b3/libpthread.so.0"
            ]
        );
    }

    /// With an empty zig cache, zig prints the stubs it builds before its
    /// link line names them again, and each compile's header directories.
    #[test]
    fn stubs_named_twice_are_taken_once() {
        let twice = format!("{PRINTED}\n{PRINTED}");
        let zig = parse_command_lines(&twice).unwrap();
        assert_eq!(zig.stubs.len(), 4, "{:?}", zig.stubs);
        assert_eq!(zig.header_dirs.len(), 3, "{:?}", zig.header_dirs);
        assert_eq!(zig.defines, ["-D__GLIBC_MINOR__=17"]);
    }

    #[test]
    fn a_link_line_without_a_start_file_is_an_error_naming_it() {
        let err = parse_command_lines(&PRINTED.replace("/c/o/28/crt1.o", ""))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("name no crt1.o"), "{err}");
    }
}
