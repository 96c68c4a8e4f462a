//! `conformance --python NAME=PATH [--python ...] [--reference NAME=PATH] [--out DIR] [--filter SUBSTR] [--jobs N]`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use tlsforge_conformance::{run, Config, Interpreter};

const USAGE: &str =
    "usage: conformance --python NAME=PATH [--python NAME=PATH ...] [--reference NAME=PATH ...]
                   [--no-default-reference] [--out DIR] [--filter SUBSTR] [--jobs N]

Runs the TLS client conformance suite against each interpreter. /usr/bin/python3 is added as the
reference interpreter \"system-python3\" unless --reference or --no-default-reference is given.
Prints the case x interpreter table and, last, `N passed, M failed` (reference interpreters not
counted); exits non-zero on any mismatch. Writes DIR/conformance.json and DIR/conformance.html.";

fn interp(spec: &str, reference: bool) -> Result<Interpreter> {
    let (name, path) = spec
        .split_once('=')
        .with_context(|| format!("expected NAME=PATH, got {:?}", spec))?;
    if name.is_empty() || path.is_empty() {
        bail!("expected NAME=PATH, got {:?}", spec);
    }
    Ok(Interpreter {
        name: name.to_string(),
        python: PathBuf::from(path),
        reference,
    })
}

fn parse(args: Vec<String>) -> Result<Config> {
    let mut cfg = Config {
        interpreters: vec![],
        out_dir: PathBuf::from("target/conformance"),
        filter: None,
        jobs: 4,
    };
    let mut default_reference = true;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().with_context(|| format!("{} needs a value", name));
        match a.as_str() {
            "--python" => cfg.interpreters.push(interp(&val("--python")?, false)?),
            "--reference" => {
                cfg.interpreters.push(interp(&val("--reference")?, true)?);
                default_reference = false;
            }
            "--no-default-reference" => default_reference = false,
            "--out" => cfg.out_dir = PathBuf::from(val("--out")?),
            "--filter" => cfg.filter = Some(val("--filter")?),
            "--jobs" => cfg.jobs = val("--jobs")?.parse().context("--jobs")?,
            "-h" | "--help" => {
                println!("{}", USAGE);
                std::process::exit(0);
            }
            other => bail!("unknown argument {:?}\n{}", other, USAGE),
        }
    }
    if default_reference && std::path::Path::new("/usr/bin/python3").exists() {
        cfg.interpreters.push(Interpreter {
            name: "system-python3".into(),
            python: "/usr/bin/python3".into(),
            reference: true,
        });
    }
    if cfg.interpreters.is_empty() {
        bail!("no interpreter given\n{}", USAGE);
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    let cfg = match parse(std::env::args().skip(1).collect()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("conformance: {:#}", e);
            return ExitCode::from(2);
        }
    };
    match run(&cfg) {
        Ok(report) => {
            print!("{}", report.table());
            println!(
                "report: {} and conformance.html",
                cfg.out_dir.join("conformance.json").display()
            );
            println!("{}", report.summary_line());
            if report.mismatches() > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("conformance: {:#}", e);
            ExitCode::from(2)
        }
    }
}
