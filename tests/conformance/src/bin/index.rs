//! `index --ca-out FILE`: the conformance suite's PEP 503 package index
//! (the probe package of the pip cases) over HTTPS on 127.0.0.1, for tools
//! outside the harness (`cargo xtask test` runs `uv pip install` against
//! it). The certificate is for `localhost`, issued by a CA made for this run
//! and written to FILE. Prints the port on the first line of stdout and
//! serves until stdin closes.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use tlsforge_conformance::pip;
use tlsforge_conformance::pki::{dns, Factory, Spec};
use tlsforge_conformance::server::{start_tls, App, Chain, TlsSpec};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ca_out = match args.as_slice() {
        [flag, path] if flag == "--ca-out" => PathBuf::from(path),
        _ => bail!("usage: index --ca-out FILE"),
    };
    let f = Factory::new();
    let ca = f.issue(&Spec::ca("tlsforge index test CA"), None)?;
    let leaf = f.issue(
        &Spec::leaf("localhost").sans(vec![dns("localhost")]),
        Some(&ca),
    )?;
    let index = start_tls(TlsSpec {
        app: App::Http(pip::index_site()?),
        ..TlsSpec::new(Chain {
            certs: vec![leaf.cert.clone()],
            key: leaf.key.clone(),
        })
    })
    .context("index server")?;
    std::fs::write(&ca_out, tlsforge_conformance::pki::pem(&[&ca.cert])?)
        .with_context(|| format!("writing {}", ca_out.display()))?;
    let mut out = std::io::stdout();
    writeln!(out, "{}", index.port)?;
    out.flush()?;
    // (serve until whoever started us closes our stdin)
    for _ in std::io::stdin().lock().lines() {}
    drop(index);
    Ok(())
}
