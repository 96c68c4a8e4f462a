//! The case catalogue: tests/conformance/CONFORMANCE.md's table (1-53, "catalogue") plus cases the same contract
//! implies ("contract"). Expectation = newest CPython's default context, and no common-name
//! fallback, ever.

use std::path::{Path, PathBuf};

use anyhow::Result;
use openssl::ssl::SslVersion;

use crate::pip::PipCase;
use crate::pki::{dns, ip, Basic, Digest, Eku, Factory, Issued, KeyType, Ku, San, Spec};
use crate::report::Expect::{self, Accept, Check, Refuse};
use crate::server::{
    App, Chain, DhGroup, Script, TlsSpec, EXPORT_SUITES, RC4_SUITES, TRIPLE_DES_SUITES,
};
use crate::trust::Layout;

/// Which probe process (and environment) a case runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// No SSL_CERT_* variables.
    Default,
    /// SSL_CERT_FILE = bundle holding only the test root.
    CertFile,
    /// SSL_CERT_DIR = hashed dir holding only the test root.
    CertDir,
    /// A private mount namespace whose system trust store holds only the test root.
    SystemStore,
    /// A private mount namespace with one distribution's trust layout (one case each).
    Layout(crate::trust::Layout),
}

impl Group {
    pub fn name(&self) -> &'static str {
        match self {
            Group::Default => "default",
            Group::CertFile => "ssl_cert_file",
            Group::CertDir => "ssl_cert_dir",
            Group::SystemStore => "system_store",
            Group::Layout(l) => l.id(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProbeSpec {
    /// tls | urllib | urllib_default | httplib | httplib_default
    pub kind: &'static str,
    /// server_hostname (tls) or URL host (urllib/httplib).
    pub host: String,
    /// cafile argument to create_default_context; None = no argument.
    pub cafile: Option<PathBuf>,
    pub client_cert: bool,
    pub alpn: Option<Vec<String>>,
    pub group: Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloCheck {
    /// 47: only null compression, SNI for names but not for IP literals, no SSLv2 hello.
    Basics,
    /// 48: X25519MLKEM768 key share.
    PqShare,
    /// TLS 1.0/1.1 (and SSL 3) not offered.
    NoOldVersions,
    /// Every TLS 1.2-and-below suite offered is forward secret and AEAD.
    FsAeadOnly,
}

pub enum How {
    /// A shared OpenSSL server (Err: could not be configured = not servable) and a probe.
    Tls {
        server: Result<TlsSpec, String>,
        probe: ProbeSpec,
    },
    /// A per-interpreter scripted server decides; the probe only connects.
    Scripted {
        script: Script,
        probe: ProbeSpec,
    },
    /// Derived from the ClientHello inspector.
    Hello(HelloCheck),
    /// pip from ensurepip against the local HTTPS index, trust given one way (pip.rs).
    Pip(crate::pip::PipCase),
    NotServable(String),
}

pub struct CaseDef {
    pub id: String,
    pub title: String,
    pub expect: Expect,
    pub origin: &'static str,
    pub how: How,
}

/// Files the probes need.
pub struct Materials {
    pub root_pem: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// Bundle with only the test root (SSL_CERT_FILE, the fake system store).
    pub trust_bundle: PathBuf,
    /// Hashed directory with only the test root (SSL_CERT_DIR, the fake system store).
    pub trust_dir: PathBuf,
    /// Chains for the pip index servers.
    pub index_chain: Chain,
    pub index_wrong_chain: Chain,
    /// localhost, but chaining to a root nobody trusts.
    pub index_untrusted_chain: Chain,
    /// Bundle and Fedora crypto-policies files for the trust-* layouts.
    pub layout_files: crate::trust::LayoutFiles,
}

impl ProbeSpec {
    pub fn tls(host: &str, root: &Path) -> ProbeSpec {
        ProbeSpec {
            kind: "tls",
            host: host.to_string(),
            cafile: Some(root.to_path_buf()),
            client_cert: false,
            alpn: None,
            group: Group::Default,
        }
    }
}

const CAT: &str = "catalogue";
const CON: &str = "contract";

/// The test PKI (a root and an intermediate under it, written to `dir`) and the case list being
/// built; each group of cases below adds to `cases`.
struct Builder<'a> {
    f: Factory,
    dir: &'a Path,
    root: Issued,
    inter: Issued,
    root_pem: PathBuf,
    inter_pem: PathBuf,
    cases: Vec<CaseDef>,
}

impl<'a> Builder<'a> {
    fn new(dir: &'a Path) -> Result<Builder<'a>> {
        let f = Factory::new();
        let root = f.issue(&Spec::ca("tlsforge Test Root CA"), None)?;
        let inter = f.issue(
            &Spec {
                basic: Basic::Ca(Some(0)),
                ..Spec::ca("tlsforge Test Intermediate CA")
            },
            Some(&root),
        )?;
        let root_pem = crate::pki::write_pem(&dir.join("root.pem"), &[&root.cert])?;
        let inter_pem = crate::pki::write_pem(&dir.join("intermediate.pem"), &[&inter.cert])?;
        Ok(Builder {
            f,
            dir,
            root,
            inter,
            root_pem,
            inter_pem,
            cases: Vec::new(),
        })
    }

    fn add(&mut self, id: &str, title: &str, expect: Expect, origin: &'static str, how: How) {
        self.cases.push(CaseDef {
            id: id.to_string(),
            title: title.to_string(),
            expect,
            origin,
            how,
        });
    }

    /// A leaf issued by the intermediate.
    fn leaf(&self, spec: Spec) -> Result<Issued> {
        self.f.issue(&spec, Some(&self.inter))
    }

    /// `l` and the intermediate.
    fn chain(&self, l: &Issued) -> Chain {
        Chain {
            certs: vec![l.cert.clone(), self.inter.cert.clone()],
            key: l.key.clone(),
        }
    }

    /// A TLS probe of `host` that trusts the test root.
    fn probe(&self, host: &str) -> ProbeSpec {
        ProbeSpec::tls(host, &self.root_pem)
    }

    fn tls(&self, server: TlsSpec, host: &str) -> How {
        How::Tls {
            server: Ok(server),
            probe: self.probe(host),
        }
    }

    /// good.test without a cafile argument: trust comes from `group`'s environment.
    fn no_cafile(&self, group: Group) -> ProbeSpec {
        ProbeSpec {
            cafile: None,
            group,
            ..self.probe("good.test")
        }
    }

    /// An HTTPS probe of localhost through `kind` (urllib, httplib, ...).
    fn url(&self, kind: &'static str, group: Group, cafile: bool) -> ProbeSpec {
        ProbeSpec {
            kind,
            host: "localhost".into(),
            cafile: if cafile {
                Some(self.root_pem.clone())
            } else {
                None
            },
            client_cert: false,
            alpn: None,
            group,
        }
    }
}

/// `l`, then `rest` in this order.
fn chain_of(l: &Issued, rest: &[&Issued]) -> Chain {
    Chain {
        certs: std::iter::once(l.cert.clone())
            .chain(rest.iter().map(|i| i.cert.clone()))
            .collect(),
        key: l.key.clone(),
    }
}

fn srv(c: Chain) -> TlsSpec {
    TlsSpec::new(c)
}

/// A server that still serves weak certificates (security level 0).
fn weak_server(c: Chain) -> TlsSpec {
    TlsSpec {
        seclevel: Some(0),
        ciphers: Some("DEFAULT:@SECLEVEL=0".into()),
        ..TlsSpec::new(c)
    }
}

/// good.test with only the versions `min..=max`.
fn only(good: &Chain, min: SslVersion, max: SslVersion) -> TlsSpec {
    TlsSpec {
        min: Some(min),
        max: Some(max),
        ..TlsSpec::new(good.clone())
    }
}

/// good.test with only version `v` and CBC-SHA1 suites.
fn legacy(good: &Chain, v: SslVersion) -> TlsSpec {
    TlsSpec {
        seclevel: Some(0),
        ciphers: Some("ECDHE-RSA-AES128-SHA:AES128-SHA:@SECLEVEL=0".into()),
        ..only(good, v, v)
    }
}

/// good.test up to TLS 1.2 with only `ciphers`, at security level 0.
fn tls12(good: &Chain, ciphers: &str) -> TlsSpec {
    TlsSpec {
        max: Some(SslVersion::TLS1_2),
        seclevel: Some(0),
        ciphers: Some(format!("{}:@SECLEVEL=0", ciphers)),
        ..TlsSpec::new(good.clone())
    }
}

/// good.test up to TLS 1.2 with only `ciphers`, default security level.
fn aead12(good: &Chain, ciphers: &str) -> TlsSpec {
    TlsSpec {
        max: Some(SslVersion::TLS1_2),
        ciphers: Some(ciphers.into()),
        ..TlsSpec::new(good.clone())
    }
}

/// A root and intermediate nobody trusts.
struct Untrusted {
    root: Issued,
    inter: Issued,
}

/// The HTTPS servers of the urllib/httplib cases, and the pip index's chain.
struct Web {
    /// localhost (DNS and IP SAN) under the intermediate.
    chain: Chain,
    srv: TlsSpec,
    /// The same site with the certificate for other.test.
    wrong_srv: TlsSpec,
}

impl Web {
    fn new(b: &Builder, other_chain: &Chain) -> Result<Web> {
        let site = crate::pip::index_site()?;
        let web = b.leaf(Spec::leaf("localhost").sans(vec![dns("localhost"), ip("127.0.0.1")]))?;
        let srv = TlsSpec {
            app: App::Http(site.clone()),
            ..TlsSpec::new(b.chain(&web))
        };
        let wrong_srv = TlsSpec {
            app: App::Http(site.clone()),
            ..TlsSpec::new(other_chain.clone())
        };
        Ok(Web {
            chain: b.chain(&web),
            srv,
            wrong_srv,
        })
    }
}

/// Trust material for 51/52: a bundle and a hashed dir holding only the test root, and the
/// trust-* layouts' files.
fn trust_files(b: &Builder) -> Result<(PathBuf, PathBuf, crate::trust::LayoutFiles)> {
    let dir = b.dir;
    let trust_bundle = crate::pki::write_pem(&dir.join("trust-bundle.pem"), &[&b.root.cert])?;
    let trust_dir = dir.join("trust-certs");
    crate::pki::write_hashed_dir(&trust_dir, &[&b.root.cert])?;
    // Under the names distributions use for the bundle, so a bind mount of this dir over
    // /etc/ssl/certs also satisfies symlinks such as /usr/lib/ssl/cert.pem -> certs/ca-certificates.crt.
    for n in [
        "ca-certificates.crt",
        "cert.pem",
        "ca-bundle.crt",
        "tls-ca-bundle.pem",
    ] {
        std::fs::copy(&trust_bundle, trust_dir.join(n))?;
    }
    let layout_files = crate::trust::write_layout_files(dir, &trust_bundle)?;
    Ok((trust_bundle, trust_dir, layout_files))
}

/// The client certificate (with the intermediate) and key for 44.
fn client_files(b: &Builder) -> Result<(PathBuf, PathBuf)> {
    let client = b.f.issue(
        &Spec {
            eku: Eku::ClientAuth,
            ku: Ku::Signature,
            ..Spec::leaf("client.test")
        },
        Some(&b.inter),
    )?;
    let client_cert =
        crate::pki::write_pem(&b.dir.join("client.pem"), &[&client.cert, &b.inter.cert])?;
    let client_key = crate::pki::write_key(&b.dir.join("client.key"), &client.key)?;
    Ok((client_cert, client_key))
}

pub fn build(dir: &Path) -> Result<(Materials, Vec<CaseDef>)> {
    let mut b = Builder::new(dir)?;
    let (trust_bundle, trust_dir, layout_files) = trust_files(&b)?;
    let (client_cert, client_key) = client_files(&b)?;

    // The catalogue.
    let good = b.chain(&b.leaf(Spec::leaf("good.test"))?);
    validity_cases(&mut b, &good)?;
    let untrusted = chain_cases(&mut b)?;
    signature_cases(&mut b)?;
    let other_chain = wildcard_cases(&mut b)?;
    name_cases(&mut b)?;
    version_cases(&mut b, &good);
    suite_cases(&mut b, &good);
    feature_cases(&mut b, &good)?;
    let web = Web::new(&b, &other_chain)?;
    https_trust_cases(&mut b, &good, &web);

    // Implied by the contract.
    contract_trust_cases(&mut b, &good);
    contract_hostname_cases(&mut b)?;
    contract_chain_cases(&mut b)?;
    contract_intermediate_cases(&mut b)?;
    contract_suite_cases(&mut b, &good);
    contract_leaf_cases(&mut b)?;
    contract_anchor_cases(&mut b)?;
    contract_scripted_cases(&mut b, &good);
    contract_https_cases(&mut b, &web);

    let untrusted_web = b.f.issue(
        &Spec::leaf("localhost").sans(vec![dns("localhost"), ip("127.0.0.1")]),
        Some(&untrusted.inter),
    )?;
    Ok((
        Materials {
            root_pem: b.root_pem,
            client_cert,
            client_key,
            trust_bundle,
            trust_dir,
            index_chain: web.chain,
            index_wrong_chain: other_chain,
            index_untrusted_chain: chain_of(&untrusted_web, &[&untrusted.inter, &untrusted.root]),
            layout_files,
        },
        b.cases,
    ))
}

/// 01-05: a good chain, validity periods, self-signed.
fn validity_cases(b: &mut Builder, good: &Chain) -> Result<()> {
    b.add(
        "01",
        "good chain leaf <- intermediate <- root",
        Accept,
        CAT,
        b.tls(srv(good.clone()), "good.test"),
    );
    let l = b.leaf(Spec {
        not_before: -30,
        not_after: -1,
        ..Spec::leaf("expired.test")
    })?;
    b.add(
        "02",
        "expired leaf",
        Refuse,
        CAT,
        b.tls(srv(b.chain(&l)), "expired.test"),
    );
    let l = b.leaf(Spec {
        not_before: 1,
        not_after: 30,
        ..Spec::leaf("future.test")
    })?;
    b.add(
        "03",
        "not-yet-valid leaf",
        Refuse,
        CAT,
        b.tls(srv(b.chain(&l)), "future.test"),
    );
    let exp_inter = b.f.issue(
        &Spec {
            basic: Basic::Ca(Some(0)),
            not_before: -60,
            not_after: -1,
            ..Spec::ca("tlsforge Expired Intermediate")
        },
        Some(&b.root),
    )?;
    let l =
        b.f.issue(&Spec::leaf("expiredint.test"), Some(&exp_inter))?;
    b.add(
        "04",
        "expired intermediate",
        Refuse,
        CAT,
        b.tls(srv(chain_of(&l, &[&exp_inter])), "expiredint.test"),
    );
    let l = b.f.issue(&Spec::leaf("selfsigned.test"), None)?;
    b.add(
        "05",
        "self-signed leaf",
        Refuse,
        CAT,
        b.tls(srv(chain_of(&l, &[])), "selfsigned.test"),
    );
    Ok(())
}

/// 06-10: untrusted roots, missing and misordered intermediates, CA and EKU flags. Returns the
/// untrusted root and intermediate (06, 08, and the untrusted pip index).
fn chain_cases(b: &mut Builder) -> Result<Untrusted> {
    let root2 = b.f.issue(&Spec::ca("tlsforge Untrusted Root CA"), None)?;
    let inter2 = b.f.issue(
        &Spec {
            basic: Basic::Ca(Some(0)),
            ..Spec::ca("tlsforge Untrusted Intermediate")
        },
        Some(&root2),
    )?;
    let l = b.f.issue(&Spec::leaf("untrusted.test"), Some(&inter2))?;
    b.add(
        "06",
        "chain to an untrusted root",
        Refuse,
        CAT,
        b.tls(srv(chain_of(&l, &[&inter2, &root2])), "untrusted.test"),
    );
    let l = b.leaf(Spec::leaf("nointer.test"))?;
    b.add(
        "07",
        "intermediate not sent",
        Refuse,
        CAT,
        b.tls(srv(chain_of(&l, &[])), "nointer.test"),
    );
    let l = b.leaf(Spec::leaf("disorder.test"))?;
    b.add(
        "08",
        "chain out of order, with root and an unrelated cert",
        Accept,
        CAT,
        b.tls(
            srv(chain_of(&l, &[&b.root, &root2, &b.inter])),
            "disorder.test",
        ),
    );
    let notca = b.f.issue(
        &Spec {
            basic: Basic::EndEntity,
            ..Spec::ca("tlsforge CA:FALSE Intermediate")
        },
        Some(&b.root),
    )?;
    let l = b.f.issue(&Spec::leaf("notca.test"), Some(&notca))?;
    b.add(
        "09",
        "intermediate with CA:FALSE",
        Refuse,
        CAT,
        b.tls(srv(chain_of(&l, &[&notca])), "notca.test"),
    );
    let l = b.leaf(Spec {
        eku: Eku::ClientAuth,
        ..Spec::leaf("clientauth.test")
    })?;
    b.add(
        "10",
        "leaf EKU clientAuth only",
        Refuse,
        CAT,
        b.tls(srv(b.chain(&l)), "clientauth.test"),
    );
    Ok(Untrusted {
        root: root2,
        inter: inter2,
    })
}

/// 11-15: signatures and keys.
fn signature_cases(b: &mut Builder) -> Result<()> {
    let l = b.leaf(Spec {
        digest: Digest::Md5,
        ..Spec::leaf("md5.test")
    })?;
    b.add(
        "11",
        "MD5-signed leaf",
        Refuse,
        CAT,
        b.tls(weak_server(b.chain(&l)), "md5.test"),
    );
    let l = b.leaf(Spec {
        digest: Digest::Sha1,
        ..Spec::leaf("sha1.test")
    })?;
    b.add(
        "12",
        "SHA-1-signed leaf",
        Refuse,
        CAT,
        b.tls(weak_server(b.chain(&l)), "sha1.test"),
    );
    let l = b.leaf(Spec {
        key: KeyType::Rsa(1024),
        ..Spec::leaf("rsa1024.test")
    })?;
    b.add(
        "13",
        "RSA-1024 leaf",
        Refuse,
        CAT,
        b.tls(weak_server(b.chain(&l)), "rsa1024.test"),
    );
    let l = b.leaf(Spec {
        key: KeyType::Rsa(4096),
        ..Spec::leaf("rsa4096.test")
    })?;
    b.add(
        "14a",
        "RSA-4096 leaf",
        Accept,
        CAT,
        b.tls(srv(b.chain(&l)), "rsa4096.test"),
    );
    let l = b.leaf(Spec {
        key: KeyType::P256,
        ku: Ku::Signature,
        ..Spec::leaf("p256.test")
    })?;
    b.add(
        "14b",
        "ECDSA P-256 leaf",
        Accept,
        CAT,
        b.tls(srv(b.chain(&l)), "p256.test"),
    );
    let l = b.leaf(Spec {
        key: KeyType::P384,
        ku: Ku::Signature,
        ..Spec::leaf("p384.test")
    })?;
    b.add(
        "14c",
        "ECDSA P-384 leaf",
        Accept,
        CAT,
        b.tls(srv(b.chain(&l)), "p384.test"),
    );
    let l = b.leaf(Spec {
        key: KeyType::Ed25519,
        ku: Ku::Signature,
        ..Spec::leaf("ed25519.test")
    })?;
    b.add(
        "14d",
        "Ed25519 leaf",
        Accept,
        CAT,
        b.tls(srv(b.chain(&l)), "ed25519.test"),
    );
    let mut many: Vec<San> = (0..999)
        .map(|i| dns(&format!("n{}.many.test", i)))
        .collect();
    many.push(dns("many.test"));
    let l = b.leaf(Spec::leaf("many.test").sans(many))?;
    b.add(
        "15",
        "1000 SANs (host is the last)",
        Accept,
        CAT,
        b.tls(srv(b.chain(&l)), "many.test"),
    );
    Ok(())
}

/// 16-21: wrong host and wildcards. Returns the chain for other.test (16; the wrong-host
/// servers).
fn wildcard_cases(b: &mut Builder) -> Result<Chain> {
    let l = b.leaf(Spec::leaf("other.test"))?;
    let other_chain = b.chain(&l);
    b.add(
        "16",
        "wrong host (SAN other.test)",
        Refuse,
        CAT,
        b.tls(srv(other_chain.clone()), "wronghost.test"),
    );
    let wild = b.leaf(Spec::leaf("*.wild.test"))?;
    b.add(
        "17",
        "*.wild.test for a.wild.test",
        Accept,
        CAT,
        b.tls(srv(b.chain(&wild)), "a.wild.test"),
    );
    b.add(
        "18",
        "*.wild.test for a.b.wild.test",
        Refuse,
        CAT,
        b.tls(srv(b.chain(&wild)), "a.b.wild.test"),
    );
    b.add(
        "19",
        "*.wild.test for wild.test",
        Refuse,
        CAT,
        b.tls(srv(b.chain(&wild)), "wild.test"),
    );
    let l = b.leaf(Spec::leaf("f*.wild.test"))?;
    b.add(
        "20",
        "partial wildcard f*.wild.test for foo.wild.test",
        Refuse,
        CAT,
        b.tls(srv(b.chain(&l)), "foo.wild.test"),
    );
    let l = b.leaf(Spec::leaf("*.test"))?;
    b.add(
        "21",
        "*.test (wildcard over a one-label suffix)",
        Refuse,
        CAT,
        b.tls(srv(b.chain(&l)), "anything.test"),
    );
    Ok(other_chain)
}

/// 22-29: common names, IP addresses, NUL bytes and case in names.
fn name_cases(b: &mut Builder) -> Result<()> {
    let l = b.leaf(Spec::leaf("cnonly.test").sans(vec![]))?;
    b.add(
        "22",
        "no SAN, CN = host",
        Refuse,
        CAT,
        b.tls(srv(b.chain(&l)), "cnonly.test"),
    );
    let l = b.leaf(Spec::leaf("cnsan.test").sans(vec![dns("other.test")]))?;
    b.add(
        "23",
        "SAN other name, CN = host",
        Refuse,
        CAT,
        b.tls(srv(b.chain(&l)), "cnsan.test"),
    );
    let l = b.leaf(Spec {
        san_critical: true,
        ..Spec::leaf("nocn.test").cn(None)
    })?;
    b.add(
        "24",
        "no CN (empty subject, critical SAN = host)",
        Accept,
        CAT,
        b.tls(srv(b.chain(&l)), "nocn.test"),
    );
    let l = b.leaf(Spec::leaf("127.0.0.1").sans(vec![ip("127.0.0.1")]))?;
    b.add(
        "25",
        "IP SAN 127.0.0.1, dialled by IP (CN = IP too)",
        Accept,
        CAT,
        b.tls(srv(b.chain(&l)), "127.0.0.1"),
    );
    let l = b.leaf(Spec::leaf("127.0.0.1").cn(Some("ip as dns")))?;
    b.add(
        "26",
        "IP written as a DNS SAN",
        Refuse,
        CAT,
        b.tls(srv(b.chain(&l)), "127.0.0.1"),
    );
    let l = b.leaf(Spec::leaf("127.0.0.1").sans(vec![]))?;
    b.add(
        "27",
        "IP only in the CN",
        Refuse,
        CAT,
        b.tls(srv(b.chain(&l)), "127.0.0.1"),
    );
    let l = b.leaf(
        Spec::leaf("nul.test")
            .cn(Some("nul byte san"))
            .sans(vec![San::RawDns(b"nul.test\0.other.test".to_vec())]),
    )?;
    b.add(
        "28",
        "NUL byte inside a SAN dNSName (CVE-2013-4238)",
        Refuse,
        CAT,
        b.tls(srv(b.chain(&l)), "nul.test"),
    );
    let l = b.leaf(Spec::leaf("MiXeD.Case.test"))?;
    b.add(
        "29",
        "SAN MiXeD.Case.test for mixed.case.test",
        Accept,
        CAT,
        b.tls(srv(b.chain(&l)), "mixed.case.test"),
    );
    Ok(())
}

/// 30-35: protocol versions, RC4 and 3DES.
fn version_cases(b: &mut Builder, good: &Chain) {
    b.add(
        "30",
        "TLS 1.3 only",
        Accept,
        CAT,
        b.tls(
            only(good, SslVersion::TLS1_3, SslVersion::TLS1_3),
            "good.test",
        ),
    );
    b.add(
        "31",
        "TLS 1.2 only",
        Accept,
        CAT,
        b.tls(
            only(good, SslVersion::TLS1_2, SslVersion::TLS1_2),
            "good.test",
        ),
    );
    b.add(
        "32",
        "TLS 1.1 only",
        Refuse,
        CAT,
        b.tls(legacy(good, SslVersion::TLS1_1), "good.test"),
    );
    b.add(
        "33",
        "TLS 1.0 only",
        Refuse,
        CAT,
        b.tls(legacy(good, SslVersion::TLS1), "good.test"),
    );
    b.add(
        "34",
        "RC4 only (scripted ServerHello: OpenSSL 3 here has no RC4 suites)",
        Refuse,
        CAT,
        How::Scripted {
            script: Script::Suites {
                label: "RC4",
                codes: RC4_SUITES,
            },
            probe: b.probe("good.test"),
        },
    );
    b.add(
        "35",
        "3DES only (scripted ServerHello: OpenSSL 3 here has no 3DES suites)",
        Refuse,
        CAT,
        How::Scripted {
            script: Script::Suites {
                label: "3DES",
                codes: TRIPLE_DES_SUITES,
            },
            probe: b.probe("good.test"),
        },
    );
}

/// 36-42: TLS 1.2 key exchange and suites, TLS 1.3 HelloRetryRequest.
fn suite_cases(b: &mut Builder, good: &Chain) {
    b.add(
        "36",
        "NULL cipher only",
        Refuse,
        CAT,
        b.tls(
            tls12(good, "ECDHE-RSA-NULL-SHA:NULL-SHA256:NULL-SHA"),
            "good.test",
        ),
    );
    b.add(
        "37",
        "anonymous (aNULL) only",
        Refuse,
        CAT,
        b.tls(
            TlsSpec {
                dh: Some(DhGroup::Modp2048),
                ..tls12(
                    good,
                    "AECDH-AES128-SHA:AECDH-AES256-SHA:ADH-AES128-GCM-SHA256:ADH-AES256-GCM-SHA384",
                )
            },
            "good.test",
        ),
    );
    let dhe = "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
    b.add(
        "38",
        "DHE with a 1024-bit group only",
        Refuse,
        CAT,
        b.tls(
            TlsSpec {
                dh: Some(DhGroup::Modp1024),
                ..tls12(good, dhe)
            },
            "good.test",
        ),
    );
    b.add(
        "39",
        "DHE with a 2048-bit group",
        Accept,
        CAT,
        b.tls(
            TlsSpec {
                dh: Some(DhGroup::Modp2048),
                seclevel: None,
                ciphers: Some(dhe.into()),
                ..tls12(good, dhe)
            },
            "good.test",
        ),
    );
    b.add(
        "40",
        "static RSA key exchange only (no forward secrecy)",
        Refuse,
        CAT,
        b.tls(
            tls12(
                good,
                "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256:AES128-SHA",
            ),
            "good.test",
        ),
    );
    b.add(
        "41",
        "ECDHE with CBC-SHA1 only",
        Refuse,
        CAT,
        b.tls(
            tls12(good, "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA"),
            "good.test",
        ),
    );
    b.add(
        "42",
        "TLS 1.3 HelloRetryRequest (server only does P-384)",
        Accept,
        CAT,
        b.tls(
            TlsSpec {
                groups: Some("P-384".into()),
                ..only(good, SslVersion::TLS1_3, SslVersion::TLS1_3)
            },
            "good.test",
        ),
    );
}

/// 43-48: client certificates, SNI, ALPN and the ClientHello.
fn feature_cases(b: &mut Builder, good: &Chain) -> Result<()> {
    let mtls = TlsSpec {
        client_ca: Some(b.root.cert.clone()),
        ..TlsSpec::new(good.clone())
    };
    b.add(
        "43",
        "client certificate required, none sent",
        Refuse,
        CAT,
        b.tls(mtls.clone(), "good.test"),
    );
    b.add(
        "44",
        "client certificate required and sent",
        Accept,
        CAT,
        How::Tls {
            server: Ok(mtls),
            probe: ProbeSpec {
                client_cert: true,
                ..b.probe("good.test")
            },
        },
    );
    let sni_default = b.leaf(Spec::leaf("default.test"))?;
    let sni_right = b.leaf(Spec::leaf("sni.test"))?;
    b.add(
        "45",
        "SNI: default cert wrong, cert for the SNI name right",
        Accept,
        CAT,
        b.tls(
            TlsSpec {
                sni: Some(("sni.test".into(), b.chain(&sni_right))),
                ..TlsSpec::new(b.chain(&sni_default))
            },
            "sni.test",
        ),
    );
    b.add(
        "46",
        "ALPN: server h2 + http/1.1, client asks h2, http/1.1",
        Expect::AcceptAlpn("h2".into()),
        CAT,
        How::Tls {
            server: Ok(TlsSpec {
                alpn: Some(vec!["h2".into(), "http/1.1".into()]),
                ..TlsSpec::new(good.clone())
            }),
            probe: ProbeSpec {
                alpn: Some(vec!["h2".into(), "http/1.1".into()]),
                ..b.probe("good.test")
            },
        },
    );
    b.add(
        "47",
        "ClientHello: null compression only, SNI not for IP literals, no SSLv2 hello",
        Check,
        CAT,
        How::Hello(HelloCheck::Basics),
    );
    b.add(
        "48",
        "ClientHello offers an X25519MLKEM768 key share",
        Check,
        CAT,
        How::Hello(HelloCheck::PqShare),
    );
    Ok(())
}

/// 49-53: HTTPS stacks and trust stores.
fn https_trust_cases(b: &mut Builder, good: &Chain, web: &Web) {
    b.add(
        "49",
        "HTTPS GET through urllib/urllib2 with the default context",
        Accept,
        CAT,
        How::Tls {
            server: Ok(web.srv.clone()),
            probe: b.url("urllib", Group::Default, true),
        },
    );
    b.add(
        "50",
        "urllib/urllib2 GET, server certificate for another host",
        Refuse,
        CAT,
        How::Tls {
            server: Ok(web.wrong_srv.clone()),
            probe: b.url("urllib", Group::Default, true),
        },
    );
    b.add(
        "51",
        "default trust: no cafile, test CA only in the system trust store",
        Accept,
        CAT,
        How::Tls {
            server: Ok(srv(good.clone())),
            probe: b.no_cafile(Group::SystemStore),
        },
    );
    b.add(
        "52",
        "SSL_CERT_FILE overrides the default store",
        Accept,
        CAT,
        How::Tls {
            server: Ok(srv(good.clone())),
            probe: b.no_cafile(Group::CertFile),
        },
    );
    b.add(
        "53",
        "pip (from ensurepip) installs from a local HTTPS index, trust only from SSL_CERT_FILE",
        Accept,
        CAT,
        How::Pip(PipCase::CertFile),
    );
}

/// Implied by the contract: the other trust overrides, pip, and the distribution layouts.
fn contract_trust_cases(b: &mut Builder, good: &Chain) {
    b.add(
        "52b",
        "SSL_CERT_DIR (hashed dir) overrides the default store",
        Accept,
        CON,
        How::Tls {
            server: Ok(srv(good.clone())),
            probe: b.no_cafile(Group::CertDir),
        },
    );
    b.add(
        "52c",
        "control: no cafile, no override: test CA not trusted",
        Refuse,
        CON,
        How::Tls {
            server: Ok(srv(good.clone())),
            probe: b.no_cafile(Group::Default),
        },
    );
    b.add(
        "53b",
        "pip: index certificate for another host",
        Refuse,
        CON,
        How::Pip(PipCase::WrongHost),
    );
    b.add(
        "53c",
        "pip --cert with the index CA (no other trust) installs",
        Accept,
        CON,
        How::Pip(PipCase::CertFlag),
    );
    b.add(
        "53d",
        "pip: index chain to an untrusted root",
        Refuse,
        CON,
        How::Pip(PipCase::UntrustedCa),
    );
    // pip with trust only from a distribution's platform bundle (the trust-* namespaces).
    for l in PipCase::LAYOUTS {
        b.add(
            &format!("pip-{}", l.id()),
            &format!(
                "pip installs, trust only from the platform store: {}",
                l.title().trim_start_matches("default trust, ")
            ),
            Accept,
            CON,
            How::Pip(PipCase::Layout(*l)),
        );
    }
    // Distribution trust layouts, each in its own mount namespace (trust.rs); trust-empty is the
    // control that proves the group can fail.
    for l in Layout::ALL {
        b.add(
            l.id(),
            l.title(),
            if l.accepts() { Accept } else { Refuse },
            CON,
            How::Tls {
                server: Ok(srv(good.clone())),
                probe: b.no_cafile(Group::Layout(*l)),
            },
        );
    }
}

/// 54-57: host names implied by the contract.
fn contract_hostname_cases(b: &mut Builder) -> Result<()> {
    let l = b.leaf(Spec::leaf("*.0.0.1").cn(Some("ip wildcard")))?;
    b.add(
        "54",
        "DNS SAN *.0.0.1 (wildcard over an IP), dialled by IP",
        Refuse,
        CON,
        b.tls(srv(b.chain(&l)), "127.0.0.1"),
    );
    let l = b.leaf(Spec::leaf("ipv6 san").sans(vec![ip("::1")]))?;
    b.add(
        "55",
        "IPv6 SAN ::1, server_hostname ::1",
        Accept,
        CON,
        b.tls(srv(b.chain(&l)), "::1"),
    );
    let l = b.leaf(Spec::leaf("*.UPPER.test"))?;
    b.add(
        "56",
        "uppercase wildcard *.UPPER.test for a.upper.test",
        Accept,
        CON,
        b.tls(srv(b.chain(&l)), "a.upper.test"),
    );
    let l = b.leaf(Spec::leaf("upper-host.test"))?;
    b.add(
        "57",
        "host UPPER-HOST.TEST, SAN upper-host.test",
        Accept,
        CON,
        b.tls(srv(b.chain(&l)), "UPPER-HOST.TEST"),
    );
    Ok(())
}

/// 58-61: name and path-length constraints, a longer chain.
fn contract_chain_cases(b: &mut Builder) -> Result<()> {
    let nc = b.f.issue(
        &Spec {
            basic: Basic::Ca(Some(0)),
            permitted_dns: vec!["allowed.test".into()],
            ..Spec::ca("tlsforge Constrained Intermediate")
        },
        Some(&b.root),
    )?;
    let l = b.f.issue(&Spec::leaf("bad.forbidden.test"), Some(&nc))?;
    b.add(
        "58",
        "name constraints (permitted allowed.test) violated",
        Refuse,
        CON,
        b.tls(srv(chain_of(&l, &[&nc])), "bad.forbidden.test"),
    );
    let l = b.f.issue(&Spec::leaf("ok.allowed.test"), Some(&nc))?;
    b.add(
        "59",
        "name constraints satisfied",
        Accept,
        CON,
        b.tls(srv(chain_of(&l, &[&nc])), "ok.allowed.test"),
    );
    let pl0 = b.f.issue(
        &Spec {
            basic: Basic::Ca(Some(0)),
            ..Spec::ca("tlsforge pathlen:0 CA")
        },
        Some(&b.root),
    )?;
    let below =
        b.f.issue(&Spec::ca("tlsforge CA below pathlen:0"), Some(&pl0))?;
    let l = b.f.issue(&Spec::leaf("pathlen.test"), Some(&below))?;
    b.add(
        "60",
        "path length constraint exceeded",
        Refuse,
        CON,
        b.tls(srv(chain_of(&l, &[&below, &pl0])), "pathlen.test"),
    );
    let i1 =
        b.f.issue(&Spec::ca("tlsforge Chain Level 1"), Some(&b.root))?;
    let i2 = b.f.issue(&Spec::ca("tlsforge Chain Level 2"), Some(&i1))?;
    let i3 = b.f.issue(&Spec::ca("tlsforge Chain Level 3"), Some(&i2))?;
    let l = b.f.issue(&Spec::leaf("deep.test"), Some(&i3))?;
    b.add(
        "61",
        "three intermediates",
        Accept,
        CON,
        b.tls(srv(chain_of(&l, &[&i3, &i2, &i1])), "deep.test"),
    );
    Ok(())
}

/// 62-64: weak and ECDSA intermediates.
fn contract_intermediate_cases(b: &mut Builder) -> Result<()> {
    let weak_ca = b.f.issue(
        &Spec {
            key: KeyType::Rsa(1024),
            basic: Basic::Ca(Some(0)),
            ..Spec::ca("tlsforge RSA-1024 Intermediate")
        },
        Some(&b.root),
    )?;
    let l = b.f.issue(&Spec::leaf("weakca.test"), Some(&weak_ca))?;
    b.add(
        "62",
        "RSA-1024 intermediate",
        Refuse,
        CON,
        b.tls(weak_server(chain_of(&l, &[&weak_ca])), "weakca.test"),
    );
    let sha1_ca = b.f.issue(
        &Spec {
            digest: Digest::Sha1,
            basic: Basic::Ca(Some(0)),
            ..Spec::ca("tlsforge SHA-1-signed Intermediate")
        },
        Some(&b.root),
    )?;
    let l = b.f.issue(&Spec::leaf("sha1int.test"), Some(&sha1_ca))?;
    b.add(
        "63",
        "SHA-1-signed intermediate",
        Refuse,
        CON,
        b.tls(weak_server(chain_of(&l, &[&sha1_ca])), "sha1int.test"),
    );
    let ec_ca = b.f.issue(
        &Spec {
            key: KeyType::P384,
            basic: Basic::Ca(Some(0)),
            ..Spec::ca("tlsforge ECDSA P-384 Intermediate")
        },
        Some(&b.root),
    )?;
    let l = b.f.issue(
        &Spec {
            key: KeyType::P256,
            ku: Ku::Signature,
            digest: Digest::Sha384,
            ..Spec::leaf("ecchain.test")
        },
        Some(&ec_ca),
    )?;
    b.add(
        "64",
        "ECDSA chain: P-384 intermediate, P-256 leaf, ecdsa-with-SHA384",
        Accept,
        CON,
        b.tls(srv(chain_of(&l, &[&ec_ca])), "ecchain.test"),
    );
    Ok(())
}

/// 65-68: TLS 1.2 AEAD suites and TLS 1.3 CCM-8.
fn contract_suite_cases(b: &mut Builder, good: &Chain) {
    b.add(
        "65",
        "TLS 1.2 ECDHE-RSA-CHACHA20-POLY1305 only",
        Accept,
        CON,
        b.tls(aead12(good, "ECDHE-RSA-CHACHA20-POLY1305"), "good.test"),
    );
    b.add(
        "66",
        "TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256 only",
        Accept,
        CON,
        b.tls(aead12(good, "ECDHE-RSA-AES128-GCM-SHA256"), "good.test"),
    );
    b.add(
        "67",
        "TLS 1.2 ECDHE with CBC-SHA256/384 only (FS but not AEAD)",
        Refuse,
        CON,
        b.tls(
            aead12(good, "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384"),
            "good.test",
        ),
    );
    b.add(
        "68",
        "TLS 1.3 AES-128-CCM-8 only",
        Refuse,
        CON,
        b.tls(
            TlsSpec {
                suites13: Some("TLS_AES_128_CCM_8_SHA256".into()),
                ..only(good, SslVersion::TLS1_3, SslVersion::TLS1_3)
            },
            "good.test",
        ),
    );
}

/// 69-72: leaf extensions X509_STRICT checks.
fn contract_leaf_cases(b: &mut Builder) -> Result<()> {
    let l = b.leaf(Spec {
        aki: false,
        ..Spec::leaf("noaki.test")
    })?;
    b.add(
        "69",
        "leaf without authorityKeyIdentifier (X509_STRICT)",
        Refuse,
        CON,
        b.tls(srv(b.chain(&l)), "noaki.test"),
    );
    let l = b.leaf(Spec {
        basic: Basic::Ca(None),
        ku: Ku::Absent,
        ..Spec::leaf("caleaf.test")
    })?;
    b.add(
        "70",
        "leaf with CA:TRUE and no keyUsage",
        Refuse,
        CON,
        b.tls(srv(b.chain(&l)), "caleaf.test"),
    );
    let l = b.leaf(Spec {
        ku: Ku::CertSignOnly,
        ..Spec::leaf("kucertsign.test")
    })?;
    b.add(
        "71",
        "leaf keyUsage keyCertSign only",
        Refuse,
        CON,
        b.tls(srv(b.chain(&l)), "kucertsign.test"),
    );
    let l = b.leaf(Spec {
        unknown_critical_ext: true,
        ..Spec::leaf("critext.test")
    })?;
    b.add(
        "72",
        "leaf with an unknown critical extension",
        Refuse,
        CON,
        b.tls(srv(b.chain(&l)), "critext.test"),
    );
    Ok(())
}

/// 73-77: trust anchors, partial chains, revocation hints, IDNA.
fn contract_anchor_cases(b: &mut Builder) -> Result<()> {
    let exp_root = b.f.issue(
        &Spec {
            not_before: -60,
            not_after: -1,
            ..Spec::ca("tlsforge Expired Root CA")
        },
        None,
    )?;
    let exp_root_pem = crate::pki::write_pem(&b.dir.join("expired-root.pem"), &[&exp_root.cert])?;
    let er_inter = b.f.issue(
        &Spec {
            basic: Basic::Ca(Some(0)),
            ..Spec::ca("tlsforge Intermediate under Expired Root")
        },
        Some(&exp_root),
    )?;
    let l =
        b.f.issue(&Spec::leaf("expiredroot.test"), Some(&er_inter))?;
    b.add(
        "73",
        "trust anchor (root) expired",
        Refuse,
        CON,
        How::Tls {
            server: Ok(srv(chain_of(&l, &[&er_inter]))),
            probe: ProbeSpec {
                cafile: Some(exp_root_pem),
                ..b.probe("expiredroot.test")
            },
        },
    );
    let l = b.leaf(Spec::leaf("partial.test"))?;
    b.add(
        "74",
        "only the intermediate trusted (VERIFY_X509_PARTIAL_CHAIN)",
        Accept,
        CON,
        How::Tls {
            server: Ok(srv(b.chain(&l))),
            probe: ProbeSpec {
                cafile: Some(b.inter_pem.clone()),
                ..b.probe("partial.test")
            },
        },
    );
    let l = b.leaf(Spec {
        crl_dp: Some("http://127.0.0.1:9/tlsforge.crl".into()),
        ..Spec::leaf("crldp.test")
    })?;
    b.add(
        "75",
        "leaf with an unreachable CRL distribution point (no revocation check by default)",
        Accept,
        CON,
        b.tls(srv(b.chain(&l)), "crldp.test"),
    );
    let l = b.leaf(Spec {
        must_staple: true,
        ..Spec::leaf("muststaple.test")
    })?;
    b.add(
        "76",
        "must-staple leaf, no OCSP staple (not enforced by default)",
        Accept,
        CON,
        b.tls(srv(b.chain(&l)), "muststaple.test"),
    );
    let l = b.leaf(Spec::leaf("xn--bcher-kva.test"))?;
    b.add(
        "77",
        "U-label host b\u{fc}cher.test, SAN xn--bcher-kva.test",
        Accept,
        CON,
        b.tls(srv(b.chain(&l)), "b\u{fc}cher.test"),
    );
    Ok(())
}

/// 78, 86, 79, 79b, 80, 81: scripted servers and ClientHello checks.
fn contract_scripted_cases(b: &mut Builder, good: &Chain) {
    b.add(
        "78",
        "SSL 3.0 only (scripted ServerHello: no SSLv3 in OpenSSL 3 here)",
        Refuse,
        CON,
        How::Scripted {
            script: Script::Ssl3,
            probe: b.probe("good.test"),
        },
    );
    b.add(
        "86",
        "export-grade suites only (scripted ServerHello)",
        Refuse,
        CON,
        How::Scripted {
            script: Script::Suites {
                label: "an export suite",
                codes: EXPORT_SUITES,
            },
            probe: b.probe("good.test"),
        },
    );
    b.add(
        "79",
        "DHE with a 512-bit group (Logjam; scripted: OpenSSL 3 refuses to serve it)",
        Refuse,
        CON,
        How::Scripted {
            script: Script::WeakDh {
                chain: good.clone(),
                bits: 512,
            },
            probe: b.probe("good.test"),
        },
    );
    b.add(
        "79b",
        "control for 79: the same scripted DHE flight with a 2048-bit group",
        Accept,
        CON,
        How::Scripted {
            script: Script::WeakDh {
                chain: good.clone(),
                bits: 2048,
            },
            probe: b.probe("good.test"),
        },
    );
    b.add(
        "80",
        "ClientHello: TLS 1.0/1.1 not offered",
        Check,
        CON,
        How::Hello(HelloCheck::NoOldVersions),
    );
    b.add(
        "81",
        "ClientHello: every TLS 1.2 suite offered is forward secret and AEAD",
        Check,
        CON,
        How::Hello(HelloCheck::FsAeadOnly),
    );
}

/// 82-85: urllib and http.client without a context argument.
fn contract_https_cases(b: &mut Builder, web: &Web) {
    b.add(
        "82",
        "urllib with no context argument (SSL_CERT_FILE trusts the CA)",
        Accept,
        CON,
        How::Tls {
            server: Ok(web.srv.clone()),
            probe: b.url("urllib_default", Group::CertFile, false),
        },
    );
    b.add(
        "83",
        "urllib with no context argument, certificate for another host",
        Refuse,
        CON,
        How::Tls {
            server: Ok(web.wrong_srv.clone()),
            probe: b.url("urllib_default", Group::CertFile, false),
        },
    );
    b.add(
        "84",
        "http.client/httplib HTTPSConnection with the default context",
        Accept,
        CON,
        How::Tls {
            server: Ok(web.srv.clone()),
            probe: b.url("httplib", Group::Default, true),
        },
    );
    b.add(
        "85",
        "http.client/httplib with no context argument, certificate for another host",
        Refuse,
        CON,
        How::Tls {
            server: Ok(web.wrong_srv.clone()),
            probe: b.url("httplib_default", Group::CertFile, false),
        },
    );
}
