//! Expectations, observations, the comparison, and the report (table, JSON, HTML).

use serde::{Deserialize, Serialize};

use crate::hello::Rating;

/// What the contract demands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    Accept,
    /// Accept, and negotiate this ALPN protocol.
    AcceptAlpn(String),
    Refuse,
    /// A property of the ClientHello that must hold.
    Check,
}

impl Expect {
    pub fn short(&self) -> String {
        match self {
            Expect::Accept => "A".into(),
            Expect::AcceptAlpn(p) => format!("A {}", p),
            Expect::Refuse => "R".into(),
            Expect::Check => "ok".into(),
        }
    }
}

/// What one interpreter did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Observed {
    Accept {
        version: Option<String>,
        cipher: Option<String>,
        alpn: Option<String>,
    },
    Refuse {
        class: String,
        message: String,
    },
    /// The probe hung: a hang is a failure, never a pass.
    Timeout {
        message: String,
    },
    /// The probe could not run the case (crash, connection refused, ...).
    Error {
        message: String,
    },
    Check {
        ok: bool,
    },
    NotServable {
        reason: String,
    },
}

impl Observed {
    pub fn short(&self) -> String {
        match self {
            Observed::Accept { alpn: Some(p), .. } => format!("A {}", p),
            Observed::Accept { .. } => "A".into(),
            Observed::Refuse { .. } => "R".into(),
            Observed::Timeout { .. } => "T/O".into(),
            Observed::Error { .. } => "ERR".into(),
            Observed::Check { ok: true } => "ok".into(),
            Observed::Check { ok: false } => "FAIL".into(),
            Observed::NotServable { .. } => "n/s".into(),
        }
    }
    pub fn describe(&self) -> String {
        match self {
            Observed::Accept {
                version,
                cipher,
                alpn,
            } => {
                let mut v = vec!["accepted".to_string()];
                for x in [version, cipher, alpn].into_iter().flatten() {
                    v.push(x.clone());
                }
                v.join(" ")
            }
            Observed::Refuse { class, message } => format!("refused: {}: {}", class, message),
            Observed::Timeout { message } => format!("timeout: {}", message),
            Observed::Error { message } => format!("error: {}", message),
            Observed::Check { ok } => if *ok { "check holds" } else { "check fails" }.into(),
            Observed::NotServable { reason } => format!("not servable: {}", reason),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Mismatch,
    NotServable,
}

/// The comparison: does the observation satisfy the expectation?
pub fn judge(expect: &Expect, obs: &Observed) -> Verdict {
    match (expect, obs) {
        (_, Observed::NotServable { .. }) => Verdict::NotServable,
        (Expect::Accept, Observed::Accept { .. }) => Verdict::Pass,
        (Expect::AcceptAlpn(p), Observed::Accept { alpn: Some(a), .. }) if a == p => Verdict::Pass,
        (Expect::Refuse, Observed::Refuse { .. }) => Verdict::Pass,
        (Expect::Check, Observed::Check { ok: true }) => Verdict::Pass,
        _ => Verdict::Mismatch,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseInfo {
    pub id: String,
    pub title: String,
    pub expect: Expect,
    /// "catalogue" (CONFORMANCE.md's table) or "contract" (implied by it).
    pub origin: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseResult {
    pub case: String,
    pub interpreter: String,
    pub observed: Observed,
    pub verdict: Verdict,
    pub detail: String,
    pub ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InterpreterReport {
    pub name: String,
    pub python: String,
    pub reference: bool,
    pub version: String,
    pub openssl: String,
    pub meta: serde_json::Value,
    pub wall_ms: u64,
    pub hello_rating: Option<Rating>,
    pub pip_note: String,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub started_unix: u64,
    pub wall_ms: u64,
    pub interpreters: Vec<InterpreterReport>,
    pub cases: Vec<CaseInfo>,
    pub results: Vec<CaseResult>,
}

impl Report {
    fn is_reference(&self, name: &str) -> bool {
        self.interpreters
            .iter()
            .any(|i| i.name == name && i.reference)
    }
    fn count(&self, v: Verdict) -> usize {
        self.results
            .iter()
            .filter(|r| r.verdict == v && !self.is_reference(&r.interpreter))
            .count()
    }
    /// Mismatches of non-reference interpreters (what fails a run).
    pub fn mismatches(&self) -> usize {
        self.count(Verdict::Mismatch)
    }
    pub fn passed(&self) -> usize {
        self.count(Verdict::Pass)
    }
    pub fn not_servable(&self) -> usize {
        self.count(Verdict::NotServable)
    }
    pub fn result(&self, case: &str, interp: &str) -> Option<&CaseResult> {
        self.results
            .iter()
            .find(|r| r.case == case && r.interpreter == interp)
    }
    pub fn summary_line(&self) -> String {
        format!("{} passed, {} failed", self.passed(), self.mismatches())
    }

    fn cell(&self, r: Option<&CaseResult>, reference: bool) -> String {
        match r {
            None => "-".into(),
            Some(r) => {
                let mark = match (r.verdict, reference) {
                    (Verdict::Mismatch, false) => " !!",
                    (Verdict::Mismatch, true) => " ~",
                    _ => "",
                };
                format!("{}{}", r.observed.short(), mark)
            }
        }
    }

    /// Plain-text table: case x interpreter, then mismatches, timings, ratings.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let title_w = 52;
        let id_w = self
            .cases
            .iter()
            .map(|c| c.id.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let col_w: Vec<usize> = self
            .interpreters
            .iter()
            .map(|i| i.name.len().max(9))
            .collect();
        out.push_str(&format!(
            "{:<id_w$} {:<title_w$} {:<6}",
            "case", "scenario", "expect"
        ));
        for (i, w) in self.interpreters.iter().zip(&col_w) {
            let name = if i.reference {
                format!("{}*", i.name)
            } else {
                i.name.clone()
            };
            out.push_str(&format!(" {:<w$}", name, w = w + 1));
        }
        out.push('\n');
        for c in &self.cases {
            let title: String = c.title.chars().take(title_w).collect();
            out.push_str(&format!(
                "{:<id_w$} {:<title_w$} {:<6}",
                c.id,
                title,
                c.expect.short()
            ));
            for (i, w) in self.interpreters.iter().zip(&col_w) {
                out.push_str(&format!(
                    " {:<w$}",
                    self.cell(self.result(&c.id, &i.name), i.reference),
                    w = w + 1
                ));
            }
            out.push('\n');
        }
        out.push_str("(!! = mismatch, ~ = reference interpreter diverges, n/s = not servable, * = reference)\n\n");
        for i in &self.interpreters {
            let bad: Vec<&CaseResult> = self
                .results
                .iter()
                .filter(|r| r.interpreter == i.name && r.verdict == Verdict::Mismatch)
                .collect();
            out.push_str(&format!(
                "{}{} ({} {}): {} mismatches, wall {:.1} s\n",
                i.name,
                if i.reference { " [reference]" } else { "" },
                i.version,
                i.openssl,
                bad.len(),
                i.wall_ms as f64 / 1000.0
            ));
            for r in bad {
                let c = self.cases.iter().find(|c| c.id == r.case);
                let detail: String = r.detail.chars().take(150).collect();
                out.push_str(&format!(
                    "    {:<4} {} - expected {}, got {} ({})\n",
                    r.case,
                    c.map(|c| c.title.as_str()).unwrap_or(""),
                    c.map(|c| c.expect.short()).unwrap_or_default(),
                    r.observed.short(),
                    detail
                ));
            }
        }
        out.push_str("\nClientHello rating:\n");
        for i in &self.interpreters {
            if let Some(r) = &i.hello_rating {
                out.push_str(&format!("    {:<16} {}\n", i.name, r.line));
            }
        }
        out.push_str("pip trust:\n");
        for i in &self.interpreters {
            if !i.pip_note.is_empty() {
                out.push_str(&format!("    {:<16} {}\n", i.name, i.pip_note));
            }
        }
        let ns: Vec<&CaseResult> = self
            .results
            .iter()
            .filter(|r| r.verdict == Verdict::NotServable)
            .collect();
        if !ns.is_empty() {
            out.push_str("not servable:\n");
            let mut seen = std::collections::BTreeSet::new();
            for r in ns {
                let reason = r.observed.describe();
                if seen.insert((r.case.clone(), reason.clone())) {
                    out.push_str(&format!(
                        "    {:<4} {} ({})\n",
                        r.case, reason, r.interpreter
                    ));
                }
            }
        }
        out.push_str(&format!(
            "total wall {:.1} s; {} not servable (not counted)\n",
            self.wall_ms as f64 / 1000.0,
            self.not_servable()
        ));
        out
    }

    /// Self-contained HTML matrix (no external assets).
    pub fn html(&self) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        let mut h = String::new();
        h.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>tlsforge TLS client conformance</title>\n<style>\n");
        h.push_str("body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;font-size:13px}");
        h.push_str("th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}th{background:#eee;position:sticky;top:0}");
        h.push_str("td.pass{background:#dff3df}td.mismatch{background:#f7c6c6;font-weight:bold}td.refdiv{background:#fbe9c6}");
        h.push_str("td.ns{background:#e4e4e4;color:#666}th.ref{background:#e6e0f3}.small{font-size:12px;color:#555}code{font-size:12px}\n");
        h.push_str("</style></head><body>\n<h1>tlsforge TLS client conformance</h1>\n");
        h.push_str(&format!(
            "<p><b>{}</b> &middot; {} not servable &middot; total wall {:.1} s (reference interpreters not counted)</p>\n",
            esc(&self.summary_line()),
            self.not_servable(),
            self.wall_ms as f64 / 1000.0
        ));
        h.push_str("<table id=interpreters><tr><th>interpreter</th><th>python</th><th>OpenSSL</th><th>mismatches</th><th>wall</th><th>ClientHello rating</th><th>pip</th></tr>\n");
        for i in &self.interpreters {
            let n = self
                .results
                .iter()
                .filter(|r| r.interpreter == i.name && r.verdict == Verdict::Mismatch)
                .count();
            h.push_str(&format!(
                "<tr><td>{}{}</td><td>{}<br><span class=small>{}</span></td><td>{}</td><td>{}</td><td>{:.1} s</td><td class=small>{}</td><td class=small>{}</td></tr>\n",
                esc(&i.name),
                if i.reference { " (reference)" } else { "" },
                esc(&i.version),
                esc(&i.python),
                esc(&i.openssl),
                n,
                i.wall_ms as f64 / 1000.0,
                esc(i.hello_rating.as_ref().map(|r| r.line.as_str()).unwrap_or("")),
                esc(&i.pip_note)
            ));
        }
        h.push_str(
            "</table>\n<h2>Matrix</h2>\n<table id=matrix><tr><th>#</th><th>scenario</th><th>expect</th>",
        );
        for i in &self.interpreters {
            h.push_str(&format!(
                "<th class=\"{}\">{}{}</th>",
                if i.reference { "col ref" } else { "col" },
                esc(&i.name),
                if i.reference {
                    "<br><span class=small>reference</span>"
                } else {
                    ""
                }
            ));
        }
        h.push_str("</tr>\n");
        for c in &self.cases {
            h.push_str(&format!(
                "<tr class=case><td>{}</td><td>{}<br><span class=small>{}</span></td><td>{}</td>",
                esc(&c.id),
                esc(&c.title),
                esc(&c.origin),
                esc(&c.expect.short())
            ));
            for i in &self.interpreters {
                match self.result(&c.id, &i.name) {
                    None => h.push_str("<td>-</td>"),
                    Some(r) => {
                        let class = match (r.verdict, i.reference) {
                            (Verdict::Pass, _) => "pass",
                            (Verdict::Mismatch, false) => "mismatch",
                            (Verdict::Mismatch, true) => "refdiv",
                            (Verdict::NotServable, _) => "ns",
                        };
                        h.push_str(&format!(
                            "<td class={} title=\"{}\">{}</td>",
                            class,
                            esc(&format!("{} | {}", r.observed.describe(), r.detail)),
                            esc(&r.observed.short())
                        ));
                    }
                }
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n<p class=small>Hover a cell for the error message or negotiated parameters. Green: as the contract demands; red: mismatch; amber: a reference interpreter diverges (shown, not counted); grey: not servable on this machine.</p>\n</body></html>\n");
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept() -> Observed {
        Observed::Accept {
            version: Some("TLSv1.3".into()),
            cipher: None,
            alpn: None,
        }
    }
    fn refuse() -> Observed {
        Observed::Refuse {
            class: "SSLCertVerificationError".into(),
            message: "x".into(),
        }
    }

    #[test]
    fn judge_table() {
        assert_eq!(judge(&Expect::Accept, &accept()), Verdict::Pass);
        assert_eq!(judge(&Expect::Refuse, &refuse()), Verdict::Pass);
        assert_eq!(judge(&Expect::Refuse, &accept()), Verdict::Mismatch);
        assert_eq!(judge(&Expect::Accept, &refuse()), Verdict::Mismatch);
        // A hang or a probe error is never a pass, whatever was expected.
        for e in [Expect::Accept, Expect::Refuse, Expect::Check] {
            assert_eq!(
                judge(
                    &e,
                    &Observed::Timeout {
                        message: "t".into()
                    }
                ),
                Verdict::Mismatch
            );
            assert_eq!(
                judge(
                    &e,
                    &Observed::Error {
                        message: "e".into()
                    }
                ),
                Verdict::Mismatch
            );
            assert_eq!(
                judge(&e, &Observed::NotServable { reason: "r".into() }),
                Verdict::NotServable
            );
        }
        assert_eq!(
            judge(&Expect::AcceptAlpn("h2".into()), &accept()),
            Verdict::Mismatch
        );
        let h2 = Observed::Accept {
            version: None,
            cipher: None,
            alpn: Some("h2".into()),
        };
        assert_eq!(judge(&Expect::AcceptAlpn("h2".into()), &h2), Verdict::Pass);
        assert_eq!(
            judge(&Expect::Check, &Observed::Check { ok: false }),
            Verdict::Mismatch
        );
        assert_eq!(
            judge(&Expect::Check, &Observed::Check { ok: true }),
            Verdict::Pass
        );
    }

    #[test]
    fn fabricated_wrong_result_is_a_mismatch_and_reference_is_not_counted() {
        let mut r = Report::default();
        for (n, reference) in [("ours", false), ("system", true)] {
            r.interpreters.push(InterpreterReport {
                name: n.into(),
                reference,
                ..Default::default()
            });
        }
        r.cases.push(CaseInfo {
            id: "22".into(),
            title: "no SAN, CN = host".into(),
            expect: Expect::Refuse,
            origin: "catalogue".into(),
        });
        r.cases.push(CaseInfo {
            id: "01".into(),
            title: "good".into(),
            expect: Expect::Accept,
            origin: "catalogue".into(),
        });
        for interp in ["ours", "system"] {
            // Both wrongly accept the CN-only certificate.
            r.results.push(CaseResult {
                case: "22".into(),
                interpreter: interp.into(),
                observed: accept(),
                verdict: judge(&Expect::Refuse, &accept()),
                detail: String::new(),
                ms: 1,
            });
            r.results.push(CaseResult {
                case: "01".into(),
                interpreter: interp.into(),
                observed: accept(),
                verdict: judge(&Expect::Accept, &accept()),
                detail: String::new(),
                ms: 1,
            });
        }
        assert_eq!(r.mismatches(), 1);
        assert_eq!(r.passed(), 1);
        assert_eq!(r.summary_line(), "1 passed, 1 failed");
        let t = r.table();
        assert!(t.contains("A !!"), "{}", t);
        assert!(t.contains("A ~"), "{}", t);
        let html = r.html();
        assert!(html.contains("class=mismatch"));
        assert!(html.contains("class=refdiv"));
        assert!(!html.contains("http://") && !html.contains("https://"));
        let json = serde_json::to_string(&r).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back.mismatches(), 1);
    }
}
