//! The generated patch `patches/2.7.18/0006a-generated-ssl-error-data.patch`:
//! 2.7.18's `Modules/_ssl_data.h` (the SSLError `library` and `reason`
//! mnemonics) regenerated from the OpenSSL headers of both openssl-src
//! crates the build links (3.5 LTS and 4.0), merged.
//!
//! The rules are those of the `Tools/ssl/make_ssl_data.py` that 0006
//! rewrites, so the patched tree can regenerate its own data the same way:
//! library codes are the `ERR_LIB_<NAME>` macros, the reasons of `<NAME>`
//! its `<NAME>_R_<REASON>` macros, read from every `include/openssl/*.h`
//! (here also the `*.h.in` templates the OpenSSL build turns into headers,
//! `err.h.in` among them); a later source overrides an earlier one; a reason
//! found in a `*_legacy.h` header is an old name of a renamed reason.
//!
//! `cargo xtask patches regen-ssl-data` writes the patch; `cargo xtask
//! patches check` regenerates it in memory and fails when the file differs.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use crate::recipes::Recipes;
use crate::util::{workspace_root, Cache};

/// The CPython whose series holds the generated patch.
pub const PYTHON: &str = "2.7.18";
/// The generated patch, in `patches/<PYTHON>/`.
pub const PATCH: &str = "0006a-generated-ssl-error-data.patch";
/// The file it replaces, relative to the source tree.
const DATA_FILE: &str = "Modules/_ssl_data.h";

/// One OpenSSL source tree the tables are read from.
struct OpensslSource {
    /// The openssl-src crate version, e.g. `400.0.2+4.0.3`.
    krate: &'static str,
    /// The directory holding `include/openssl/`.
    dir: PathBuf,
}

impl OpensslSource {
    /// The OpenSSL version: what follows the `+` of the crate version.
    fn openssl(&self) -> &str {
        self.krate.split_once('+').map_or(self.krate, |(_, v)| v)
    }
}

/// The sources in merge order: 3.5, then 4.0 (whose numbers win).
/// `source_dir()` is the crate's own directory, fixed when xtask was built,
/// so no registry path is guessed here.
fn sources() -> Result<Vec<OpensslSource>> {
    let all = vec![
        OpensslSource {
            krate: openssl_src_300::version(),
            dir: openssl_src_300::source_dir(),
        },
        OpensslSource {
            krate: openssl_src_400::version(),
            dir: openssl_src_400::source_dir(),
        },
    ];
    for s in &all {
        let inc = s.dir.join("include/openssl");
        if !inc.is_dir() {
            bail!(
                "openssl-src {}: {} does not exist (was Cargo's registry cleaned since xtask was built? `cargo fetch` restores it)",
                s.krate,
                inc.display()
            );
        }
    }
    Ok(all)
}

/// What the headers define.
#[derive(Debug, Default, PartialEq)]
pub struct Tables {
    /// `ERR_LIB_<NAME>` → number.
    pub libs: BTreeMap<String, u64>,
    /// (`LIB`, `REASON`) of `<LIB>_R_<REASON>` → number.
    pub reasons: BTreeMap<(String, String), u64>,
    /// Reasons defined in a `*_legacy.h` header (old names).
    pub legacy: BTreeSet<(String, String)>,
}

fn is_space(b: u8) -> bool {
    // Python's \s on ASCII: space, \t, \n, \v, \f, \r and \x1c-\x1f.
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x1c..=0x1f)
}

fn skip_space(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| is_space(b)).count();
    &s[n..]
}

/// `^\s*#\s*define\s+`: the rest of the line after it.
fn after_define(line: &[u8]) -> Option<&[u8]> {
    let s = skip_space(line).strip_prefix(b"#")?;
    let s = skip_space(s).strip_prefix(b"define")?;
    let rest = skip_space(s);
    (rest.len() < s.len()).then_some(rest)
}

/// Splits off a run of bytes satisfying `f`.
fn take_while(s: &[u8], f: impl Fn(u8) -> bool) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|&&b| f(b)).count();
    s.split_at(n)
}

fn number(digits: &[u8]) -> Option<u64> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// `#define ERR_LIB_<NAME> <number>` followed by a word boundary.
fn lib_define(line: &[u8]) -> Option<(String, u64)> {
    let s = after_define(line)?.strip_prefix(b"ERR_LIB_")?;
    let (name, s) = take_while(s, |b| {
        b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'
    });
    let (ws, s) = take_while(s, is_space);
    let (digits, s) = take_while(s, |b| b.is_ascii_digit());
    if name.is_empty() || ws.is_empty() || digits.is_empty() {
        return None;
    }
    if s.first()
        .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return None;
    }
    Some((String::from_utf8_lossy(name).into_owned(), number(digits)?))
}

/// `#define <LIB>_R_<REASON> <number>`, then at most a `/* … */` comment:
/// make_ssl_data.py's `([A-Z0-9_]+?)_R_([A-Za-z0-9_]+)\s+(\d+)\s*(?:/\*.*\*/)?\s*$`.
fn reason_define(line: &[u8]) -> Option<(String, String, u64)> {
    let s = after_define(line)?;
    let (token, s) = take_while(s, |b| b.is_ascii_alphanumeric() || b == b'_');
    let (ws, s) = take_while(s, is_space);
    let (digits, s) = take_while(s, |b| b.is_ascii_digit());
    if ws.is_empty() || digits.is_empty() {
        return None;
    }
    let rest = skip_space(s);
    if !rest.is_empty() {
        let end = rest.len() - rest.iter().rev().take_while(|&&b| is_space(b)).count();
        let comment = &rest[..end];
        let closed = comment.len() >= 4 && comment.starts_with(b"/*") && comment.ends_with(b"*/");
        if !closed || comment.contains(&b'\n') {
            return None;
        }
    }
    // The lazy prefix: the first `_R_` after at least one [A-Z0-9_] byte
    // with a non-empty [A-Za-z0-9_] rest (the token is already that).
    let upper = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_';
    for i in 1..token.len().saturating_sub(3) {
        if !upper(&token[i - 1]) {
            return None;
        }
        if &token[i..i + 3] == b"_R_" {
            let lib = String::from_utf8_lossy(&token[..i]).into_owned();
            let reason = String::from_utf8_lossy(&token[i + 3..]).into_owned();
            return Some((lib, reason, number(digits)?));
        }
    }
    None
}

impl Tables {
    /// Adds one header's definitions.
    pub fn add_header(&mut self, text: &[u8], legacy: bool) {
        for line in text.split(|&b| b == b'\n') {
            if let Some((name, n)) = lib_define(line) {
                self.libs.insert(name, n);
            } else if let Some((lib, reason, n)) = reason_define(line) {
                if n != 0 {
                    let key = (lib, reason);
                    if legacy {
                        self.legacy.insert(key.clone());
                    }
                    self.reasons.insert(key, n);
                }
            }
        }
    }

    /// Reads `<dir>/include/openssl/*.h` and `*.h.in` of each source dir, in
    /// order, each dir's headers sorted by their name as installed.
    pub fn read(dirs: &[PathBuf]) -> Result<Tables> {
        let mut t = Tables::default();
        for dir in dirs {
            let inc = dir.join("include/openssl");
            let mut headers = Vec::new();
            for e in fs::read_dir(&inc).with_context(|| format!("reading {}", inc.display()))? {
                let e = e?;
                let file = e.file_name().to_string_lossy().into_owned();
                let name = file.strip_suffix(".in").unwrap_or(&file).to_string();
                if name.ends_with(".h") && !name.starts_with('.') && e.path().is_file() {
                    headers.push((name, e.path()));
                }
            }
            if headers.is_empty() {
                bail!("no OpenSSL headers in {}", inc.display());
            }
            headers.sort();
            for (name, path) in headers {
                let text =
                    fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                t.add_header(&text, name.ends_with("_legacy.h"));
            }
        }
        // Keep the reasons of known libraries only (ERR_R_* are shared).
        let libs = &t.libs;
        t.reasons.retain(|(lib, _), _| libs.contains_key(lib));
        Ok(t)
    }

    /// The text of `Modules/_ssl_data.h`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut w = |l: &str| {
            out.push_str(l);
            out.push('\n');
        };
        w("/* File generated by Tools/ssl/make_ssl_data.py */");
        w("/* from the headers of OpenSSL 3.0+; do not edit */");
        w("");
        w("static struct py_ssl_library_code library_codes[] = {");
        for name in self.libs.keys() {
            if name == "NONE" || name == "USER" {
                continue;
            }
            w(&format!("#ifdef ERR_LIB_{name}"));
            w(&format!("    {{\"{name}\", ERR_LIB_{name}}},"));
            w("#endif");
        }
        w("    { NULL }");
        w("};");
        w("");
        w("/* For aliases, the current name comes last: it is the one");
        w("   err_codes_to_names keeps. */");
        w("static struct py_ssl_error_code error_codes[] = {");
        // Aliases: (lib, number) -> names.
        let mut groups: BTreeMap<(&str, u64), Vec<&str>> = BTreeMap::new();
        for ((lib, reason), &n) in &self.reasons {
            groups.entry((lib, n)).or_default().push(reason);
        }
        let mut entries = Vec::new();
        for ((lib, _), names) in groups {
            let is_old = |n: &&str| self.legacy.contains(&(lib.to_string(), n.to_string()));
            let mut current: Vec<&str> = names.iter().copied().filter(|n| !is_old(n)).collect();
            let mut old: Vec<&str> = names.iter().copied().filter(is_old).collect();
            current.sort();
            old.sort();
            if current.is_empty() {
                current = old.split_off(old.len() - 1);
            }
            // Old names, then the other current ones, the first current last.
            let mut ordered = old;
            ordered.extend_from_slice(&current[1..]);
            ordered.push(current[0]);
            entries.push((lib, current[0], ordered));
        }
        entries.sort();
        for (lib, _, names) in entries {
            for (i, reason) in names.iter().rev().enumerate() {
                let macro_ = format!("{lib}_R_{reason}");
                let kw = if i == 0 { "if" } else { "elif" };
                w(&format!(
                    "#{kw} defined(ERR_LIB_{lib}) && defined({macro_})"
                ));
                for n in &names {
                    w(&format!("    {{\"{n}\", ERR_LIB_{lib}, {macro_}}},"));
                }
            }
            w("#endif");
        }
        w("    { NULL }");
        w("};");
        out
    }
}

/// The generated `_ssl_data.h` from the openssl-src crates.
fn generated_data(sources: &[OpensslSource]) -> Result<String> {
    let dirs: Vec<PathBuf> = sources.iter().map(|s| s.dir.clone()).collect();
    Ok(Tables::read(&dirs)?.render())
}

/// `Modules/_ssl_data.h` of the pristine tarball the recipe pins (fetched
/// into the cache like any build's source when it is not there yet).
fn pristine_data() -> Result<Vec<u8>> {
    let recipes = Recipes::load()?;
    let recipe = recipes
        .cpython
        .iter()
        .find(|r| r.version == PYTHON)
        .with_context(|| format!("no recipe for CPython {PYTHON}"))?;
    let cache = Cache::from_env()?;
    let fetched = crate::fetch::fetch(&cache, &recipe.source, &recipes.mirrors)?;
    let mut archive = crate::extract::open_archive(&fetched.path)?;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let inner: PathBuf = path
            .components()
            .filter(|c| *c != Component::CurDir)
            .skip(1)
            .collect();
        if inner == Path::new(DATA_FILE) {
            let mut data = Vec::new();
            entry.read_to_end(&mut data)?;
            return Ok(data);
        }
    }
    bail!("{} has no {DATA_FILE}", fetched.path.display())
}

/// `git diff` of the pristine file against the generated one, with the
/// headers of the other patches (`diff --git a/Modules/… b/Modules/…`, full
/// `index` ids); options and configuration pinned so that the text depends
/// on the two files only.
fn diff(pristine: &[u8], generated: &str) -> Result<String> {
    let tmp = tempfile::tempdir()?;
    for (side, data) in [("a", pristine), ("b", generated.as_bytes())] {
        let p = tmp.path().join(side).join(DATA_FILE);
        fs::create_dir_all(p.parent().unwrap())?;
        fs::write(&p, data)?;
    }
    let out = Command::new("git")
        .args([
            "diff",
            "--no-index",
            "--no-prefix", // the paths already start with a/ and b/
            "--full-index",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--no-renames",
            "--diff-algorithm=myers",
            "--indent-heuristic",
            "--unified=3",
        ])
        .arg(format!("a/{DATA_FILE}"))
        .arg(format!("b/{DATA_FILE}"))
        .current_dir(tmp.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_CONFIG_PARAMETERS")
        .output()
        .context("running git diff (is git installed?)")?;
    match out.status.code() {
        Some(1) => Ok(String::from_utf8(out.stdout).context("git diff output")?),
        Some(0) => bail!("the generated {DATA_FILE} equals the pristine one"),
        _ => bail!(
            "git diff --no-index failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// The patch's header: what it is, that it is generated and from what.
fn header(sources: &[OpensslSource]) -> String {
    let versions: Vec<&str> = sources.iter().map(|s| s.openssl()).collect();
    let crates: String = sources
        .iter()
        .map(|s| format!("    {} (OpenSSL {})\n", s.krate, s.openssl()))
        .collect();
    format!(
        "\
What: Modules/_ssl_data.h, the SSLError `library` and `reason` mnemonics,
  generated from the headers of OpenSSL {versions} (merged, the later
  one's numbers winning) with the rules of the Tools/ssl/make_ssl_data.py
  that 0006 rewrites: every library, every entry guarded by #if defined()
  without a numeric fallback, renamed reasons under their current name.
Generated: DO NOT EDIT. Written by `cargo xtask patches regen-ssl-data`
  (xtask/src/ssldata.rs) from include/openssl/*.h and *.h.in of the
  openssl-src crates
{crates}  as a diff against the pristine CPython {PYTHON} {DATA_FILE}.
  `cargo xtask patches check` fails when this file differs from a fresh
  generation; after an openssl-src bump in Cargo.lock, run the command
  again.
Why: 2.7.18's table (2015) knows only the PEM, SSL and X509 reasons, with
  numeric fallbacks that OpenSSL 3.x reuses for other reasons. Merged
  from both OpenSSL versions the build links (3.5 LTS and 4.0) so that one
  file serves both: the #if defined() guards keep what the OpenSSL being
  compiled against defines. Kept apart from 0006 so that its behaviour
  stays readable and the data follows OpenSSL releases without hand edits.
Upstream: CPython gh-148292 (OpenSSL 4 error data), bpo-40479 (_ssl_data
  per OpenSSL version).

",
        versions = versions.join(" and "),
    )
}

/// The generated patch's text.
pub fn generate() -> Result<String> {
    let sources = sources()?;
    let data = generated_data(&sources)?;
    let pristine = pristine_data()?;
    Ok(header(&sources) + &diff(&pristine, &data)?)
}

/// `patches/2.7.18/0006a-generated-ssl-error-data.patch`.
pub fn patch_path() -> PathBuf {
    workspace_root().join("patches").join(PYTHON).join(PATCH)
}

/// `cargo xtask patches regen-ssl-data`.
pub fn regen() -> Result<()> {
    let text = generate()?;
    let path = patch_path();
    let old = fs::read_to_string(&path).unwrap_or_default();
    if old == text {
        println!("{} is up to date", path.display());
        return Ok(());
    }
    let tmp = crate::cache::tempfile_in(path.parent().unwrap())?;
    fs::write(tmp.path(), &text)?;
    tmp.persist(&path)?;
    println!("wrote {} ({} lines)", path.display(), text.lines().count());
    Ok(())
}

/// For `patches check`: the committed patch equals a fresh generation and
/// the series applies it.
pub fn check() -> Result<()> {
    let path = patch_path();
    let rel = format!("patches/{PYTHON}/{PATCH}");
    let listed = crate::patch::read_series(path.parent().unwrap())?;
    if !listed.iter().any(|p| p == &path) {
        bail!("{rel} is not in patches/{PYTHON}/series");
    }
    let fresh = generate()?;
    let committed =
        fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    if committed != fresh {
        let line = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(fresh.lines().count()));
        bail!(
            "{rel} is stale: it differs from a fresh generation from the openssl-src sources (first at line {}); run `cargo xtask patches regen-ssl-data`",
            line + 1
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let inc = dir.join("include/openssl");
        fs::create_dir_all(&inc).unwrap();
        fs::write(inc.join(name), text).unwrap();
    }

    #[test]
    fn parses_synthetic_headers() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write(
            a.path(),
            "err.h.in",
            "# define ERR_LIB_NONE            1\n#define ERR_LIB_SSL 20\n# define ERR_LIB_X509V3 34 /* v3 */\n#define ERR_LIB_BAD 7L\n#define ERR_R_FATAL 64\n",
        );
        write(
            a.path(),
            "sslerr.h",
            "#  define SSL_R_BAD_DATA                                   390\n\
             # define SSL_R_OLD 7 /* moved */\n\
             # define SSL_R_ZERO 0\n\
             # define SSL_R_HEX 0x10\n\
             # define SSL_R_CALL 5 + 1\n\
             # define SSL_R_Mixed_case 8\n\
             #define X509V3_R_BAD_IP_ADDRESS 118\n\
             # define NOLIB_R_X 3\n\
             #define ERR_R_MALLOC_FAILURE 65\n",
        );
        write(a.path(), "sslerr_legacy.h", "# define SSL_R_OLD_NAME 7\n");
        write(a.path(), ".hidden.h", "# define SSL_R_HIDDEN 9\n");
        write(a.path(), "notes.txt", "# define SSL_R_TXT 9\n");
        // The later source wins.
        write(b.path(), "sslerr.h", "# define SSL_R_BAD_DATA 391\n");
        let t = Tables::read(&[a.path().to_path_buf(), b.path().to_path_buf()]).unwrap();
        let libs: Vec<(&str, u64)> = t.libs.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(libs, [("NONE", 1), ("SSL", 20), ("X509V3", 34)]);
        let reasons: Vec<(&str, &str, u64)> = t
            .reasons
            .iter()
            .map(|((l, r), n)| (l.as_str(), r.as_str(), *n))
            .collect();
        assert_eq!(
            reasons,
            [
                ("SSL", "BAD_DATA", 391),
                ("SSL", "Mixed_case", 8),
                ("SSL", "OLD", 7),
                ("SSL", "OLD_NAME", 7),
                ("X509V3", "BAD_IP_ADDRESS", 118),
            ]
        );
        let legacy: Vec<_> = t.legacy.iter().cloned().collect();
        assert_eq!(legacy, [("SSL".to_string(), "OLD_NAME".to_string())]);
    }

    #[test]
    fn renders_aliases_with_the_current_name_last() {
        let mut t = Tables::default();
        t.add_header(b"#define ERR_LIB_SSL 20\n#define ERR_LIB_USER 128\n", false);
        t.add_header(
            b"#define SSL_R_TLS_ALERT_X 1042\n#define SSL_R_A 1\n",
            false,
        );
        t.add_header(b"#define SSL_R_SSLV3_ALERT_X 1042\n", true);
        let text = t.render();
        let expected = "\
static struct py_ssl_error_code error_codes[] = {
#if defined(ERR_LIB_SSL) && defined(SSL_R_A)
    {\"A\", ERR_LIB_SSL, SSL_R_A},
#endif
#if defined(ERR_LIB_SSL) && defined(SSL_R_TLS_ALERT_X)
    {\"SSLV3_ALERT_X\", ERR_LIB_SSL, SSL_R_TLS_ALERT_X},
    {\"TLS_ALERT_X\", ERR_LIB_SSL, SSL_R_TLS_ALERT_X},
#elif defined(ERR_LIB_SSL) && defined(SSL_R_SSLV3_ALERT_X)
    {\"SSLV3_ALERT_X\", ERR_LIB_SSL, SSL_R_SSLV3_ALERT_X},
    {\"TLS_ALERT_X\", ERR_LIB_SSL, SSL_R_SSLV3_ALERT_X},
#endif
    { NULL }
};
";
        assert!(text.ends_with(expected), "{text}");
        assert!(text.contains("    {\"SSL\", ERR_LIB_SSL},\n") && !text.contains("USER"));
    }

    /// The new side of the committed patch's single hunk (it starts at line
    /// 1 and runs to the end of the file).
    fn new_side(patch: &str) -> String {
        let body = patch.split_once("\n@@ ").expect("a hunk").1;
        let (range, lines) = body.split_once('\n').unwrap();
        assert!(!lines.contains("\n@@ "), "expected one hunk");
        let plus = range.split_whitespace().nth(1).unwrap();
        let (start, count) = plus.trim_start_matches('+').split_once(',').unwrap();
        assert_eq!(start, "1");
        let mut out = String::new();
        for l in lines.lines() {
            if let Some(l) = l.strip_prefix(' ').or_else(|| l.strip_prefix('+')) {
                out.push_str(l);
                out.push('\n');
            }
        }
        assert_eq!(out.lines().count(), count.parse::<usize>().unwrap());
        out
    }

    /// Needs only the openssl-src crates: the data in the committed patch is
    /// what the current crates generate.
    #[test]
    fn committed_patch_carries_fresh_data() {
        let committed = fs::read_to_string(patch_path()).unwrap();
        let fresh = generated_data(&sources().unwrap()).unwrap();
        assert!(
            new_side(&committed) == fresh,
            "{PATCH} is stale: run `cargo xtask patches regen-ssl-data`"
        );
        assert!(committed.starts_with(&header(&sources().unwrap())));
    }

    /// The whole patch, diff included, when the pristine tarball is cached
    /// (`patches check` does the same and fetches it when it is not).
    #[test]
    fn committed_patch_equals_fresh_generation() {
        let recipes = Recipes::load().unwrap();
        let r = recipes
            .cpython
            .iter()
            .find(|r| r.version == PYTHON)
            .unwrap();
        let cached = crate::fetch::cache_path(&Cache::from_env().unwrap(), &r.source).unwrap();
        if !cached.exists() {
            eprintln!("skipped: {} is not in the cache", r.source.file);
            return;
        }
        let committed = fs::read_to_string(patch_path()).unwrap();
        assert!(
            committed == generate().unwrap(),
            "{PATCH} is stale: run `cargo xtask patches regen-ssl-data`"
        );
    }

    /// The Rust rules and the make_ssl_data.py that 0006 puts in the tree
    /// (run on the same headers, the templates installed under their
    /// header names) give the same file: an edit of one needs the other.
    #[test]
    fn same_output_as_the_patched_make_ssl_data_py() {
        if Command::new("python3").arg("-c").arg("").status().is_err() {
            eprintln!("skipped: no python3");
            return;
        }
        let dir = patch_path().parent().unwrap().to_path_buf();
        let p0006 = crate::patch::read_series(&dir)
            .unwrap()
            .into_iter()
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("0006-")
            })
            .unwrap();
        let text = fs::read_to_string(p0006).unwrap();
        let start = text
            .find("diff --git a/Tools/ssl/make_ssl_data.py")
            .expect("0006 rewrites make_ssl_data.py");
        let section = &text[start..];
        let section = &section[..section[1..]
            .find("\ndiff --git")
            .map_or(section.len(), |i| i + 1)];
        let tmp = tempfile::tempdir().unwrap();
        let script = tmp.path().join("make_ssl_data.py");
        fs::write(&script, new_side(section)).unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg(&script).arg(tmp.path().join("out.h"));
        for (i, s) in sources().unwrap().iter().enumerate() {
            let inc = tmp.path().join(format!("inc{i}"));
            let dest = inc.join("openssl");
            fs::create_dir_all(&dest).unwrap();
            for e in fs::read_dir(s.dir.join("include/openssl")).unwrap() {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                let name = name.strip_suffix(".in").unwrap_or(&name);
                fs::copy(e.path(), dest.join(name)).unwrap();
            }
            cmd.arg(inc);
        }
        let st = cmd.status().unwrap();
        assert!(st.success());
        let py = fs::read_to_string(tmp.path().join("out.h")).unwrap();
        assert!(py == generated_data(&sources().unwrap()).unwrap());
    }

    #[test]
    fn series_applies_it_right_after_0006() {
        let dir = patch_path().parent().unwrap().to_path_buf();
        let names: Vec<String> = crate::patch::read_series(&dir)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let i = names
            .iter()
            .position(|n| n == PATCH)
            .expect("in the series");
        assert!(names[i - 1].starts_with("0006-"), "{names:?}");
    }
}
