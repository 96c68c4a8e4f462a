//! Stage 4, OpenSSL: built once per (OpenSSL version, target, toolchain
//! data) through openssl-src's `Build` API and reused by every CPython build.
//!
//! openssl-src is made for build scripts: it prints to stdout and runs make
//! with inherited output. So the build runs in a child process of ours
//! (`xtask __openssl-build`) whose output goes to a log file, and the parent
//! shows a spinner. The result lands in `openssl/<choice>-<target>-<key>/`,
//! marked complete only after `make install_dev` finished.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::compilers::Compilers;
use crate::recipes::{host_triple, OpensslRecipe, Toolchain};
use crate::util::{is_complete, mark_complete, run_logged, Cache, KeyBuilder};

/// Bump when the way OpenSSL is built changes, to invalidate cached builds.
const OPENSSL_BUILD_REVISION: &str = "3";

/// Where a static libcrypto would look for provider modules if asked to load
/// one by name. We ship none; the default would be a directory inside this
/// build's cache. A root-owned path that no package installs keeps a user's
/// machine from supplying modules and keeps the build reproducible.
const MODULES_DIR: &str = "/opt/tlsforge/ossl-modules";

pub struct Openssl {
    /// Holds include/ and lib/{libssl,libcrypto}.a.
    pub prefix: PathBuf,
    pub key: String,
    pub recipe: OpensslRecipe,
    pub cache_hit: bool,
}

/// The OpenSSL source version each crate carries, checked against the recipe
/// so that a crate bump without a recipe bump is caught.
fn crate_openssl_version(choice: &str) -> Result<&'static str> {
    Ok(match choice {
        "4.0" => openssl_src_400::version(),
        "3.5" => openssl_src_300::version(),
        other => bail!("no openssl-src crate is wired for --openssl {other}"),
    })
}

pub fn build(
    cache: &Cache,
    recipe: &OpensslRecipe,
    tc: &Toolchain,
    compilers: &Compilers,
    jobs: usize,
) -> Result<Openssl> {
    let crate_version = crate_openssl_version(&recipe.choice)?;
    // openssl-src reports "<crate version>+<OpenSSL version>".
    if !crate_version.ends_with(&format!("+{}", recipe.version)) {
        bail!(
            "recipes/openssl.toml says OpenSSL {} for choice {}, but the linked crate carries {crate_version}",
            recipe.version,
            recipe.choice
        );
    }
    let mut key = KeyBuilder::new("openssl");
    key.add("revision", OPENSSL_BUILD_REVISION)
        .add("version", &recipe.version)
        .add("crate", &recipe.crate_name)
        .add("target", &tc.triple)
        .add("openssldir", &tc.openssldir)
        .add("cc", &compilers.key)
        .add("cflags", tc.library_cflags_all());
    if tc.hides_archive_symbols() {
        // 2: common symbols (`.comm`) are hidden too.
        key.add("hide-symbols", "2");
    }
    if tc.openssl_gnu_as {
        key.add("gnu-as", gnu_assembler(tc)?);
    }
    let key = key.finish();
    let dir = cache
        .dir("openssl")?
        .join(format!("{}-{}-{key}", recipe.version, tc.triple));
    let prefix = dir.join("install");
    let _lock = crate::util::lock_build(&dir)?;
    if is_complete(&dir) {
        check_options(recipe, &prefix)?;
        check_asm_functions(tc, &prefix)?;
        return Ok(Openssl {
            prefix,
            key,
            recipe: recipe.clone(),
            cache_hit: true,
        });
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let log = cache.log_path(&format!("openssl-{}-{}", recipe.version, tc.triple))?;
    let _ = std::fs::remove_file(&log);
    let mut cmd = Command::new(crate::util::xtask_exe()?);
    cmd.args([
        "__openssl-build",
        &recipe.choice,
        &tc.triple,
        &tc.openssldir,
    ])
    .arg(&dir)
    // openssl-src hands CARGO_MAKEFLAGS to make as MAKEFLAGS, which also
    // carries variable overrides: the module/engine directories compiled
    // into libcrypto would otherwise name this cache (see MODULES_DIR).
    .env(
        "CARGO_MAKEFLAGS",
        format!("-j{jobs} MODULESDIR={MODULES_DIR} ENGINESDIR={MODULES_DIR}"),
    )
    // No -ffile-prefix-map here: OpenSSL compiles without debug info and
    // with relative __FILE__ names, and it records its CFLAGS verbatim in
    // OpenSSL_version(OPENSSL_CFLAGS), where a mapped path would leak.
    .env("CFLAGS", tc.library_cflags_all())
    .env("CC", &compilers.cc);
    if tc.openssl_gnu_as {
        // (read by toolchains/zig/wrapper.sh)
        cmd.env("TLSFORGE_GNU_AS", "1");
    }
    if tc.zig.is_some() {
        // The cc crate (inside openssl-src) would otherwise pick the host's ar.
        cmd.env("AR", &compilers.ar)
            .env("RANLIB", &compilers.ranlib);
    }
    run_logged(
        cmd,
        &format!("building OpenSSL {} for {}", recipe.version, tc.triple),
        &log,
    )?;
    for lib in ["libssl.a", "libcrypto.a"] {
        if !prefix.join("lib").join(lib).is_file() {
            bail!(
                "OpenSSL build finished but {} is missing; see {}",
                lib,
                log.display()
            );
        }
    }
    if tc.hides_archive_symbols() {
        for lib in ["libssl.a", "libcrypto.a"] {
            crate::hide::hide_symbols_in_archive_file(&prefix.join("lib").join(lib))?;
        }
    }
    check_options(recipe, &prefix)?;
    check_asm_functions(tc, &prefix)?;
    mark_complete(&dir)?;
    Ok(Openssl {
        prefix,
        key,
        recipe: recipe.clone(),
        cache_hit: false,
    })
}

/// The recipe's `options` (recorded in every manifest) are a claim about
/// what openssl-src configured: each `no-X` must be an OPENSSL_NO_X in the
/// built configuration.h, unless the recipe lists it as unrecorded.
fn check_options(recipe: &OpensslRecipe, prefix: &Path) -> Result<()> {
    let header = prefix.join("include/openssl/configuration.h");
    let text = std::fs::read_to_string(&header)
        .with_context(|| format!("reading {}", header.display()))?;
    let missing = options_not_in(recipe, &text);
    if !missing.is_empty() {
        bail!(
            "recipes/openssl.toml ({}): {} not recorded in {} as OPENSSL_NO_*; \
             the crate configures OpenSSL differently: correct `options` (or list a \
             build-only option in `options_unrecorded`)",
            recipe.choice,
            missing.join(", "),
            header.display()
        );
    }
    Ok(())
}

/// The version line of the machine's GNU assembler, which assembles
/// OpenSSL's perlasm output where the toolchain says `openssl_gnu_as`.
fn gnu_assembler(tc: &Toolchain) -> Result<String> {
    crate::prereqs::ensure(&[("as", "binutils")])?;
    let version = crate::util::stdout_of(
        Command::new("as").arg("--version"),
        &format!(
            "the GNU assembler (toolchains/{}.toml: openssl_gnu_as)",
            tc.triple
        ),
    )?;
    let first = version.lines().next().unwrap_or("").to_string();
    if !first.starts_with("GNU assembler") {
        bail!(
            "toolchains/{}.toml sets openssl_gnu_as, but `as --version` says {first:?}, not GNU as: install binutils",
            tc.triple
        );
    }
    Ok(first)
}

/// The toolchain's `openssl_asm_functions` must all be defined in the
/// built libcrypto.a (local symbols count: perlasm's inner functions are).
fn check_asm_functions(tc: &Toolchain, prefix: &Path) -> Result<()> {
    if tc.openssl_asm_functions.is_empty() {
        return Ok(());
    }
    let lib = prefix.join("lib/libcrypto.a");
    let bytes = std::fs::read(&lib).with_context(|| format!("reading {}", lib.display()))?;
    let defined = defined_functions(&bytes).with_context(|| format!("in {}", lib.display()))?;
    let missing: Vec<&str> = tc
        .openssl_asm_functions
        .iter()
        .map(String::as_str)
        .filter(|f| !defined.contains(*f))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} lacks OpenSSL's accelerated code {} (toolchains/{}.toml: openssl_asm_functions): \
             its perlasm emitted a slower path for this compiler or assembler",
            lib.display(),
            missing.join(", "),
            tc.triple
        );
    }
    Ok(())
}

/// Names of the functions defined in the ELF members of a static archive.
fn defined_functions(archive: &[u8]) -> Result<std::collections::HashSet<String>> {
    let ar = goblin::archive::Archive::parse(archive)?;
    let mut names = std::collections::HashSet::new();
    for member in ar.members() {
        let Ok(goblin::Object::Elf(elf)) = goblin::Object::parse(ar.extract(member, archive)?)
        else {
            continue;
        };
        for sym in elf.syms.iter() {
            if sym.is_function() && sym.st_shndx != 0 {
                if let Some(name) = elf.strtab.get_at(sym.st_name) {
                    names.insert(name.to_string());
                }
            }
        }
    }
    Ok(names)
}

fn options_not_in(recipe: &OpensslRecipe, configuration_h: &str) -> Vec<String> {
    let defined: std::collections::HashSet<&str> = configuration_h
        .lines()
        .filter_map(|l| l.trim_start_matches('#').trim().strip_prefix("define "))
        .filter_map(|d| d.split_whitespace().next())
        .collect();
    recipe
        .options
        .iter()
        .filter(|o| !recipe.options_unrecorded.contains(o))
        .filter(|o| {
            let Some(feature) = o.strip_prefix("no-") else {
                return true; // (only no-X options can be checked: say so)
            };
            let name = format!("OPENSSL_NO_{}", feature.to_uppercase().replace('-', "_"));
            !defined.contains(name.as_str())
        })
        .cloned()
        .collect()
}

/// The child side: runs openssl-src and exits non-zero on failure.
pub fn child_build(choice: &str, target: &str, openssldir: &str, out: &Path) -> Result<()> {
    let host = host_triple();
    // The two crates are different types with the same API.
    macro_rules! build_with {
        ($krate:ident) => {
            $krate::Build::new()
                .target(target)
                .host(&host)
                .out_dir(out)
                .openssl_dir(openssldir)
                .try_build()
                .map(|a| a.lib_dir().to_path_buf())
        };
    }
    let result = match choice {
        "4.0" => build_with!(openssl_src_400),
        "3.5" => build_with!(openssl_src_300),
        other => bail!("unknown OpenSSL choice {other}"),
    };
    let lib_dir = result
        .map_err(|e| anyhow::anyhow!(e))
        .context("openssl-src build")?;
    println!("OpenSSL libraries in {}", lib_dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_against_configuration_h() {
        let recipes = crate::recipes::Recipes::load().unwrap();
        let mut r = recipes.openssl(Some("4.0")).unwrap().clone();
        let header = "# ifndef OPENSSL_NO_COMP\n#  define OPENSSL_NO_COMP\n# endif\n\
                      #  define OPENSSL_NO_IDEA\n";
        r.options = vec!["no-comp".into(), "no-idea".into(), "no-shared".into()];
        r.options_unrecorded = vec!["no-shared".into()];
        assert!(options_not_in(&r, header).is_empty());
        r.options.push("no-seed".into());
        r.options.push("enable-foo".into());
        assert_eq!(options_not_in(&r, header), ["no-seed", "enable-foo"]);
    }

    /// An archive shaped like perlasm's output (a global entry point that
    /// jumps to a local `.type @function` path): both count as defined, the
    /// undefined call does not, and a listed function that is absent fails
    /// the check with its name.
    #[test]
    fn asm_functions_are_read_from_the_archive() {
        let d = tempfile::tempdir().unwrap();
        let lib = d.path().join("lib");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(
            d.path().join("c.s"),
            ".text\n.globl outer\n.type outer,@function\nouter:\n\tjmp inner_avx512\n\
             .type inner_avx512,@function\ninner_avx512:\n\tcall puts\n\tret\n",
        )
        .unwrap();
        for args in [
            &["gcc", "-c", "c.s", "-o", "c.o"][..],
            &["ar", "rcs", "lib/libcrypto.a", "c.o"],
        ] {
            let st = Command::new(args[0])
                .args(&args[1..])
                .current_dir(d.path())
                .status();
            assert!(st.unwrap().success(), "{args:?}");
        }
        let names = defined_functions(&std::fs::read(lib.join("libcrypto.a")).unwrap()).unwrap();
        assert!(
            names.contains("outer") && names.contains("inner_avx512"),
            "{names:?}"
        );
        assert!(!names.contains("puts"));
        let recipes = crate::recipes::Recipes::load().unwrap();
        let mut tc = recipes
            .toolchain(Some("x86_64-unknown-linux-gnu"))
            .unwrap()
            .clone();
        tc.openssl_asm_functions = vec!["inner_avx512".into(), "outer".into()];
        check_asm_functions(&tc, d.path()).unwrap();
        tc.openssl_asm_functions.push("ChaCha20_avx512".into());
        let err = check_asm_functions(&tc, d.path()).unwrap_err().to_string();
        assert!(
            err.contains("ChaCha20_avx512") && !err.contains("outer"),
            "{err}"
        );
    }
}
