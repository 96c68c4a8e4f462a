//! Runs a few cases against the machine's own /usr/bin/python3 (system OpenSSL).
//! It passes the wildcard cases and the ClientHello basics; case 22 (no SAN, CN = host) must be
//! a mismatch exactly when that interpreter still falls back to the common name
//! (`hostname_checks_common_name`), which the contract forbids. That proves both halves of the
//! comparison on a real interpreter.

use std::path::Path;

use tlsforge_conformance::{run, Config, Interpreter, Verdict};

#[test]
fn system_python3_few_cases() {
    let py = Path::new("/usr/bin/python3");
    assert!(
        py.exists(),
        "/usr/bin/python3 is part of every build machine (README: fresh machine); this test needs it"
    );
    let cn_fallback = std::process::Command::new(py)
        .args([
            "-c",
            "import ssl; print(ssl.create_default_context().hostname_checks_common_name)",
        ])
        .output()
        .expect("running /usr/bin/python3");
    let cn_fallback = String::from_utf8_lossy(&cn_fallback.stdout).trim() == "True";
    let out = std::env::temp_dir().join(format!("tlsforge-conformance-it-{}", std::process::id()));
    let cfg = Config {
        interpreters: vec![Interpreter {
            name: "system".into(),
            python: py.into(),
            reference: false,
        }],
        out_dir: out.clone(),
        filter: Some("01,wild,22,47".into()),
        jobs: 2,
    };
    let report = run(&cfg).expect("run");
    let table = report.table();
    let ids: Vec<&str> = report.results.iter().map(|r| r.case.as_str()).collect();
    for id in ["01", "17", "18", "19", "20", "21", "22", "47"] {
        assert!(ids.contains(&id), "case {} not run:\n{}", id, table);
    }
    let bad: Vec<&str> = report
        .results
        .iter()
        .filter(|r| r.verdict == Verdict::Mismatch)
        .map(|r| r.case.as_str())
        .collect();
    let want: Vec<&str> = if cn_fallback { vec!["22"] } else { vec![] };
    assert_eq!(bad, want, "{}", table);
    assert_eq!(report.mismatches(), want.len());
    assert!(report.passed() >= 8, "{}", table);
    assert!(out.join("conformance.json").exists());
    let html = std::fs::read_to_string(out.join("conformance.html")).unwrap();
    assert_eq!(html.contains("class=mismatch"), cn_fallback);
    let _ = std::fs::remove_dir_all(&out);
}
