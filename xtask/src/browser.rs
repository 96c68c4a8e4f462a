//! The conformance report as a person sees it: headless Chromium (Debian's
//! `chromium`) renders `conformance.html` with no network, writes a
//! screenshot beside it, and dumps the rendered DOM, in which every
//! interpreter column and every case row of `conformance.json` must
//! appear, with one highlighted cell per counted mismatch.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::process::Command;

pub const SCREENSHOT: &str = "conformance.png";

/// What the DOM must hold, from the report's own data.
struct Expected {
    columns: usize,
    rows: usize,
    mismatches: usize,
}

fn expected(json: &Value) -> Expected {
    let interpreters = json["interpreters"].as_array().cloned().unwrap_or_default();
    let reference = |name: &str| {
        interpreters
            .iter()
            .any(|i| i["name"] == name && i["reference"] == true)
    };
    let mismatches = json["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            r["verdict"] == "mismatch" && !reference(r["interpreter"].as_str().unwrap_or(""))
        })
        .count();
    Expected {
        columns: interpreters.len(),
        rows: json["cases"].as_array().map_or(0, Vec::len),
        mismatches,
    }
}

/// Counts in a serialised DOM (Chromium quotes every attribute).
fn counted(dom: &str) -> Expected {
    Expected {
        columns: dom.matches("<th class=\"col").count(),
        rows: dom.matches("<tr class=\"case\">").count(),
        mismatches: dom.matches("<td class=\"mismatch\"").count(),
    }
}

fn chromium(profile: &Path) -> Command {
    let mut c = Command::new("chromium");
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        // (offline: any external asset would fail to load, not be fetched)
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// Renders `dir/conformance.html`; returns what it checked.
pub fn check_report(dir: &Path) -> Result<String> {
    let html = dir.join("conformance.html");
    let text = fs::read_to_string(&html).with_context(|| format!("reading {}", html.display()))?;
    for external in ["<script", "<link", "url(", "src=\"http", "@import"] {
        if text.contains(external) {
            bail!(
                "{} refers to an external asset ({external}): it must work offline",
                html.display()
            );
        }
    }
    let json: Value = serde_json::from_slice(&fs::read(dir.join("conformance.json"))?)?;
    let want = expected(&json);
    let profile = tempfile::tempdir()?;
    let url = format!("file://{}", std::path::absolute(&html)?.display());
    let dom = crate::util::stdout_of(
        chromium(profile.path()).arg("--dump-dom").arg(&url),
        "chromium --dump-dom (Debian package `chromium`)",
    )?;
    let got = counted(&dom);
    if (got.columns, got.rows, got.mismatches) != (want.columns, want.rows, want.mismatches) {
        bail!(
            "the rendered report shows {} interpreter columns, {} case rows and {} highlighted mismatches; conformance.json has {}, {} and {}",
            got.columns, got.rows, got.mismatches, want.columns, want.rows, want.mismatches
        );
    }
    let shot = dir.join(SCREENSHOT);
    let height = 600 + 48 * want.rows;
    let out = chromium(profile.path())
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!(
            "--window-size={},{height}",
            600 + 170 * want.columns
        ))
        .arg(&url)
        .output()
        .context("running chromium --screenshot")?;
    let png = fs::read(&shot).unwrap_or_default();
    if !out.status.success() || !png.starts_with(b"\x89PNG") || png.len() < 10_000 {
        bail!(
            "chromium wrote no screenshot of the report ({} bytes): {}",
            png.len(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(format!(
        "{} columns, {} case rows, {} highlighted mismatches rendered; screenshot {} ({} KB)",
        got.columns,
        got.rows,
        got.mismatches,
        shot.display(),
        png.len() / 1024
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_come_from_the_dom_and_references_are_not_counted() {
        let json = serde_json::json!({
            "interpreters": [{"name": "a", "reference": false}, {"name": "ref", "reference": true}],
            "cases": [{"id": "01"}, {"id": "02"}],
            "results": [
                {"interpreter": "a", "verdict": "mismatch"},
                {"interpreter": "ref", "verdict": "mismatch"},
                {"interpreter": "a", "verdict": "pass"}
            ]
        });
        let want = expected(&json);
        assert_eq!((want.columns, want.rows, want.mismatches), (2, 2, 1));
        let dom = "<table id=\"matrix\"><tr><th class=\"col\">a</th><th class=\"col ref\">ref</th></tr>\
                   <tr class=\"case\"><td class=\"mismatch\" title=\"x\">r</td><td class=\"refdiv\">r</td></tr>\
                   <tr class=\"case\"><td class=\"pass\">a</td></tr></table>";
        let got = counted(dom);
        assert_eq!((got.columns, got.rows, got.mismatches), (2, 2, 1));
    }
}
