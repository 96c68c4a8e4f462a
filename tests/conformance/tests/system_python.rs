//! Runs a few cases against the machine's own /usr/bin/python3 (Debian 3.11, system OpenSSL).
//! It passes the wildcard cases and the ClientHello basics, and must fail case 22: Python 3.11
//! still falls back to the common name, which the contract forbids. That proves both halves of
//! the comparison on a real interpreter.

use std::path::Path;

use tlsforge_conformance::{run, Config, Interpreter, Verdict};

#[test]
fn system_python3_few_cases() {
    let py = Path::new("/usr/bin/python3");
    if !py.exists() {
        eprintln!("skipped: no /usr/bin/python3");
        return;
    }
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
    assert_eq!(bad, vec!["22"], "{}", table);
    assert_eq!(report.mismatches(), 1);
    assert!(report.passed() >= 8, "{}", table);
    assert!(out.join("conformance.json").exists());
    let html = std::fs::read_to_string(out.join("conformance.html")).unwrap();
    assert!(html.contains("class=mismatch"));
    let _ = std::fs::remove_dir_all(&out);
}
