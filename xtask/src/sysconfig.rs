//! After `make install`: the build configuration CPython records for its
//! users (`_sysconfigdata*.py`, `config*/Makefile`, `pythonX.Y-config`,
//! `*.pc`) is made usable on their machines. It named our compiler wrapper
//! (`<triple>-cc`, only on PATH during our build), the static archives'
//! search paths in our cache and gcc's libgcc.a (the build machine's), so
//! every C extension build (pip install of an sdist, distutils, setuptools)
//! failed on a user's machine. The wrapper names become the platform's `cc`,
//! `c++`, `ar`, `ranlib`; flags that point into the build cache go, and so
//! do the clang-only flags of our PGO/LTO build.
//! (python-build-standalone rewrites its sysconfig data the same way.)

use anyhow::Result;
use std::fs;
use std::path::{Path, PathBuf};

use crate::recipes::Toolchain;

/// What to change, from the toolchain and the build's directories.
pub struct Rules {
    renames: Vec<(String, String)>,
    /// A token starting with one of these is dropped.
    drop_prefixes: Vec<String>,
    /// A token equal to one of these is dropped.
    drop_tokens: Vec<String>,
}

impl Rules {
    /// `build_dirs`: the cache root, the build tree and their aliases.
    pub fn new(tc: &Toolchain, build_dirs: &[String]) -> Result<Rules> {
        // (`<triple>-gcc`: gcc_floor.rs's wrapper, the users' `cc` too)
        let renames = [
            ("cc", "cc"),
            ("c++", "c++"),
            ("ar", "ar"),
            ("ranlib", "ranlib"),
            ("gcc", "cc"),
        ]
        .iter()
        .map(|(tool, to)| (format!("{}-{tool}", tc.triple), to.to_string()))
        .collect();
        let mut drop_prefixes: Vec<String> = [
            "-ffile-prefix-map=",
            "-fdebug-prefix-map=",
            "-fmacro-prefix-map=",
        ]
        .iter()
        .chain(crate::optimise::BUILD_ONLY_FLAG_PREFIXES)
        .map(|s| s.to_string())
        .collect();
        for d in build_dirs {
            for flag in ["-L", "-I", "-Wl,-rpath,"] {
                drop_prefixes.push(format!("{flag}{d}"));
            }
        }
        let drop_tokens = tc
            .runtime_library_path()?
            .map(|p| p.display().to_string())
            .into_iter()
            .chain(
                crate::optimise::BUILD_ONLY_FLAGS
                    .iter()
                    .map(|s| s.to_string()),
            )
            // (for the interpreter's link; a user's older gcc rejects them)
            .chain(
                tc.cpython_gcc
                    .iter()
                    .flat_map(|g| g.build_only_flags().cloned()),
            )
            .collect();
        Ok(Rules {
            renames,
            drop_prefixes,
            drop_tokens,
        })
    }

    /// The text with renames applied and build-only tokens (with the space
    /// before them) removed. Tokens end at whitespace and quotes, so values
    /// inside Python strings and shell assignments are handled alike.
    pub fn apply(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while !rest.is_empty() {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '\'' || c == '"')
                .unwrap_or(rest.len());
            if end == 0 {
                let c = rest.chars().next().unwrap();
                out.push(c);
                rest = &rest[c.len_utf8()..];
                continue;
            }
            let token = &rest[..end];
            rest = &rest[end..];
            // `LDFLAGS=-L/cache/...` and `CC=<triple>-cc` (configure's
            // arguments): the value after the name is judged alone.
            let (name, value) = match token.split_once('=') {
                Some((n, v)) if !token.starts_with('-') => (&token[..=n.len()], v),
                _ => ("", token),
            };
            if self.drops(value) {
                if name.is_empty() && out.ends_with(' ') {
                    out.pop();
                }
                out.push_str(name);
                continue;
            }
            out.push_str(name);
            // (the wrapper by name, or by its path: configure records
            // LLVM_AR as a path)
            let renamed = self.renames.iter().find(|(from, _)| {
                value == from
                    || value
                        .strip_suffix(from.as_str())
                        .is_some_and(|d| d.ends_with('/'))
            });
            match renamed {
                Some((_, to)) => out.push_str(to),
                None => out.push_str(value),
            }
        }
        out
    }

    fn drops(&self, token: &str) -> bool {
        self.drop_tokens.iter().any(|t| t == token)
            || self
                .drop_prefixes
                .iter()
                .any(|p| token.starts_with(p.as_str()))
    }
}

/// The files that carry the build configuration for users.
fn is_config_file(root: &Path, path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let parent = path
        .parent()
        .and_then(|p| p.file_name())
        .unwrap_or_default()
        .to_string_lossy();
    (name.starts_with("_sysconfigdata") && name.ends_with(".py"))
        || (name == "Makefile" && parent.starts_with("config"))
        || (path.parent() == Some(&root.join("bin")) && name.ends_with("-config"))
        || name.ends_with(".pc")
}

/// Rewrites the config files under the installed `root`; returns the
/// files changed (their bytecode must be recompiled).
pub fn for_users(root: &Path, rules: &Rules) -> Result<Vec<PathBuf>> {
    let mut changed = Vec::new();
    for path in crate::util::files_under(root, false)? {
        if !is_config_file(root, &path) {
            continue;
        }
        let text = fs::read_to_string(&path)?;
        let new = rules.apply(&text);
        if new != text {
            let mode = fs::metadata(&path)?.permissions();
            fs::write(&path, new)?;
            fs::set_permissions(&path, mode)?;
            changed.push(path);
        }
    }
    Ok(changed)
}

/// What a user's extension build would choke on, for the validator: a
/// toolchain wrapper name or a token pointing into the build machine.
pub fn leftovers(root: &Path, rules: &Rules) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for path in crate::util::files_under(root, false)? {
        if !is_config_file(root, &path) {
            continue;
        }
        let text = fs::read_to_string(&path)?;
        if rules.apply(&text) != text {
            out.push(format!(
                "{} names the build's compiler wrapper or build-only paths (CC/LDSHARED for users' extension builds)",
                path.strip_prefix(root).unwrap_or(&path).display()
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            renames: vec![("x86_64-unknown-linux-gnu-cc".into(), "cc".into())],
            drop_prefixes: vec!["-ffile-prefix-map=".into(), "-L/tlsforge/".into()],
            drop_tokens: vec!["/usr/lib/gcc/x86_64-linux-gnu/12/libgcc.a".into()],
        }
    }

    #[test]
    fn compiler_wrapper_becomes_cc_and_build_paths_go() {
        let sysconfigdata = "build_time_vars = {'CC': 'x86_64-unknown-linux-gnu-cc -pthread',\n \
            'LDSHARED': 'x86_64-unknown-linux-gnu-cc -shared -Wl,-z,now -L/tlsforge/cache/deps/x/lib /usr/lib/gcc/x86_64-linux-gnu/12/libgcc.a',\n \
            'CFLAGS': '-O2 -ffile-prefix-map=/root/.cache=/tlsforge/cache -DNDEBUG'}\n";
        assert_eq!(
            rules().apply(sysconfigdata),
            "build_time_vars = {'CC': 'cc -pthread',\n \
            'LDSHARED': 'cc -shared -Wl,-z,now',\n \
            'CFLAGS': '-O2 -DNDEBUG'}\n"
        );
        assert_eq!(
            rules().apply("CC='/c/bin/x86_64-unknown-linux-gnu-cc' x86_64-unknown-linux-gnu-ccx"),
            "CC='cc' x86_64-unknown-linux-gnu-ccx"
        );
        let makefile = "CC=\t\tx86_64-unknown-linux-gnu-cc\nLDFLAGS=\t-L/tlsforge/cache/a -Wl,-S\n";
        assert_eq!(rules().apply(makefile), "CC=\t\tcc\nLDFLAGS=\t -Wl,-S\n");
        let args =
            "'CONFIG_ARGS': \"'CC=x86_64-unknown-linux-gnu-cc' 'LDFLAGS=-L/tlsforge/cache/a'\"";
        assert_eq!(rules().apply(args), "'CONFIG_ARGS': \"'CC=cc' 'LDFLAGS='\"");
    }

    #[test]
    fn clang_only_flags_of_the_optimised_build_go() {
        // (2.7 records make's EXTRA_CFLAGS=-flto=thin in CFLAGS; a user's
        // gcc fails on it: test_distutils caught it)
        let recipes = crate::recipes::Recipes::load().unwrap();
        let tc = recipes.toolchain(Some("x86_64-unknown-linux-gnu")).unwrap();
        let rules = Rules::new(tc, &["/tlsforge/cache".to_string()]).unwrap();
        assert_eq!(
            rules.apply("'CFLAGS': '-DNDEBUG -g -fwrapv -O3 -Wall -flto=thin',"),
            "'CFLAGS': '-DNDEBUG -g -fwrapv -O3 -Wall',"
        );
        assert_eq!(
            rules.apply("X = -O3 -fprofile-instr-use=/tlsforge/cache/p.profdata -flto=thinner"),
            "X = -O3 -flto=thinner"
        );
    }

    #[test]
    fn other_text_is_left_alone() {
        let text =
            "CC = 'gcc' # x86_64-unknown-linux-gnu-ccache stays\n-L/usr/lib -I/usr/include\n";
        assert_eq!(rules().apply(text), text);
    }
}
