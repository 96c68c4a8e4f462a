//! The case catalogue: tests/conformance/CONFORMANCE.md's table (1-53, "catalogue") plus cases the same contract
//! implies ("contract"). Expectation = newest CPython's default context, and no common-name
//! fallback, ever.

use std::path::{Path, PathBuf};

use anyhow::Result;
use openssl::ssl::SslVersion;

use crate::pki::{dns, ip, Basic, Digest, Eku, Factory, Issued, KeyType, Ku, San, Spec};
use crate::report::Expect;
use crate::server::{
    App, Chain, DhGroup, Script, TlsSpec, EXPORT_SUITES, RC4_SUITES, TRIPLE_DES_SUITES,
};

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

pub fn build(dir: &Path) -> Result<(Materials, Vec<CaseDef>)> {
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

    // Trust material for 51/52: a bundle and a hashed dir holding only the test root.
    let trust_bundle = crate::pki::write_pem(&dir.join("trust-bundle.pem"), &[&root.cert])?;
    let trust_dir = dir.join("trust-certs");
    crate::pki::write_hashed_dir(&trust_dir, &[&root.cert])?;
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

    let client = f.issue(
        &Spec {
            eku: Eku::ClientAuth,
            ku: Ku::Signature,
            ..Spec::leaf("client.test")
        },
        Some(&inter),
    )?;
    let client_cert = crate::pki::write_pem(&dir.join("client.pem"), &[&client.cert, &inter.cert])?;
    let client_key = crate::pki::write_key(&dir.join("client.key"), &client.key)?;

    let leaf = |spec: Spec| -> Result<Issued> { f.issue(&spec, Some(&inter)) };
    let chain = |l: &Issued| Chain {
        certs: vec![l.cert.clone(), inter.cert.clone()],
        key: l.key.clone(),
    };
    let chain_of = |l: &Issued, rest: &[&Issued]| Chain {
        certs: std::iter::once(l.cert.clone())
            .chain(rest.iter().map(|i| i.cert.clone()))
            .collect(),
        key: l.key.clone(),
    };
    let srv = |c: Chain| TlsSpec::new(c);
    let probe = |host: &str| ProbeSpec::tls(host, &root_pem);

    let mut cases: Vec<CaseDef> = Vec::new();
    let mut add = |id: &str, title: &str, expect: Expect, origin: &'static str, how: How| {
        cases.push(CaseDef {
            id: id.to_string(),
            title: title.to_string(),
            expect,
            origin,
            how,
        });
    };
    let tls = |server: TlsSpec, host: &str| How::Tls {
        server: Ok(server),
        probe: probe(host),
    };
    use Expect::{Accept, Check, Refuse};
    const CAT: &str = "catalogue";
    const CON: &str = "contract";

    // ---- chains and validity -----------------------------------------------------------
    let good = leaf(Spec::leaf("good.test"))?;
    add(
        "01",
        "good chain leaf <- intermediate <- root",
        Accept,
        CAT,
        tls(srv(chain(&good)), "good.test"),
    );
    let l = leaf(Spec {
        not_before: -30,
        not_after: -1,
        ..Spec::leaf("expired.test")
    })?;
    add(
        "02",
        "expired leaf",
        Refuse,
        CAT,
        tls(srv(chain(&l)), "expired.test"),
    );
    let l = leaf(Spec {
        not_before: 1,
        not_after: 30,
        ..Spec::leaf("future.test")
    })?;
    add(
        "03",
        "not-yet-valid leaf",
        Refuse,
        CAT,
        tls(srv(chain(&l)), "future.test"),
    );
    let exp_inter = f.issue(
        &Spec {
            basic: Basic::Ca(Some(0)),
            not_before: -60,
            not_after: -1,
            ..Spec::ca("tlsforge Expired Intermediate")
        },
        Some(&root),
    )?;
    let l = f.issue(&Spec::leaf("expiredint.test"), Some(&exp_inter))?;
    add(
        "04",
        "expired intermediate",
        Refuse,
        CAT,
        tls(srv(chain_of(&l, &[&exp_inter])), "expiredint.test"),
    );
    let l = f.issue(&Spec::leaf("selfsigned.test"), None)?;
    add(
        "05",
        "self-signed leaf",
        Refuse,
        CAT,
        tls(srv(chain_of(&l, &[])), "selfsigned.test"),
    );
    let root2 = f.issue(&Spec::ca("tlsforge Untrusted Root CA"), None)?;
    let inter2 = f.issue(
        &Spec {
            basic: Basic::Ca(Some(0)),
            ..Spec::ca("tlsforge Untrusted Intermediate")
        },
        Some(&root2),
    )?;
    let l = f.issue(&Spec::leaf("untrusted.test"), Some(&inter2))?;
    add(
        "06",
        "chain to an untrusted root",
        Refuse,
        CAT,
        tls(srv(chain_of(&l, &[&inter2, &root2])), "untrusted.test"),
    );
    let l = leaf(Spec::leaf("nointer.test"))?;
    add(
        "07",
        "intermediate not sent",
        Refuse,
        CAT,
        tls(srv(chain_of(&l, &[])), "nointer.test"),
    );
    let l = leaf(Spec::leaf("disorder.test"))?;
    add(
        "08",
        "chain out of order, with root and an unrelated cert",
        Accept,
        CAT,
        tls(srv(chain_of(&l, &[&root, &root2, &inter])), "disorder.test"),
    );
    let notca = f.issue(
        &Spec {
            basic: Basic::EndEntity,
            ..Spec::ca("tlsforge CA:FALSE Intermediate")
        },
        Some(&root),
    )?;
    let l = f.issue(&Spec::leaf("notca.test"), Some(&notca))?;
    add(
        "09",
        "intermediate with CA:FALSE",
        Refuse,
        CAT,
        tls(srv(chain_of(&l, &[&notca])), "notca.test"),
    );
    let l = leaf(Spec {
        eku: Eku::ClientAuth,
        ..Spec::leaf("clientauth.test")
    })?;
    add(
        "10",
        "leaf EKU clientAuth only",
        Refuse,
        CAT,
        tls(srv(chain(&l)), "clientauth.test"),
    );

    // ---- signatures and keys -------------------------------------------------------------
    let weak_server = |c: Chain| TlsSpec {
        seclevel: Some(0),
        ciphers: Some("DEFAULT:@SECLEVEL=0".into()),
        ..TlsSpec::new(c)
    };
    let l = leaf(Spec {
        digest: Digest::Md5,
        ..Spec::leaf("md5.test")
    })?;
    add(
        "11",
        "MD5-signed leaf",
        Refuse,
        CAT,
        tls(weak_server(chain(&l)), "md5.test"),
    );
    let l = leaf(Spec {
        digest: Digest::Sha1,
        ..Spec::leaf("sha1.test")
    })?;
    add(
        "12",
        "SHA-1-signed leaf",
        Refuse,
        CAT,
        tls(weak_server(chain(&l)), "sha1.test"),
    );
    let l = leaf(Spec {
        key: KeyType::Rsa(1024),
        ..Spec::leaf("rsa1024.test")
    })?;
    add(
        "13",
        "RSA-1024 leaf",
        Refuse,
        CAT,
        tls(weak_server(chain(&l)), "rsa1024.test"),
    );
    let l = leaf(Spec {
        key: KeyType::Rsa(4096),
        ..Spec::leaf("rsa4096.test")
    })?;
    add(
        "14a",
        "RSA-4096 leaf",
        Accept,
        CAT,
        tls(srv(chain(&l)), "rsa4096.test"),
    );
    let l = leaf(Spec {
        key: KeyType::P256,
        ku: Ku::Signature,
        ..Spec::leaf("p256.test")
    })?;
    add(
        "14b",
        "ECDSA P-256 leaf",
        Accept,
        CAT,
        tls(srv(chain(&l)), "p256.test"),
    );
    let l = leaf(Spec {
        key: KeyType::P384,
        ku: Ku::Signature,
        ..Spec::leaf("p384.test")
    })?;
    add(
        "14c",
        "ECDSA P-384 leaf",
        Accept,
        CAT,
        tls(srv(chain(&l)), "p384.test"),
    );
    let l = leaf(Spec {
        key: KeyType::Ed25519,
        ku: Ku::Signature,
        ..Spec::leaf("ed25519.test")
    })?;
    add(
        "14d",
        "Ed25519 leaf",
        Accept,
        CAT,
        tls(srv(chain(&l)), "ed25519.test"),
    );
    let mut many: Vec<San> = (0..999)
        .map(|i| dns(&format!("n{}.many.test", i)))
        .collect();
    many.push(dns("many.test"));
    let l = leaf(Spec::leaf("many.test").sans(many))?;
    add(
        "15",
        "1000 SANs (host is the last)",
        Accept,
        CAT,
        tls(srv(chain(&l)), "many.test"),
    );

    // ---- host names ----------------------------------------------------------------------
    let l = leaf(Spec::leaf("other.test"))?;
    let other_chain = chain(&l);
    add(
        "16",
        "wrong host (SAN other.test)",
        Refuse,
        CAT,
        tls(srv(other_chain.clone()), "wronghost.test"),
    );
    let wild = leaf(Spec::leaf("*.wild.test"))?;
    add(
        "17",
        "*.wild.test for a.wild.test",
        Accept,
        CAT,
        tls(srv(chain(&wild)), "a.wild.test"),
    );
    add(
        "18",
        "*.wild.test for a.b.wild.test",
        Refuse,
        CAT,
        tls(srv(chain(&wild)), "a.b.wild.test"),
    );
    add(
        "19",
        "*.wild.test for wild.test",
        Refuse,
        CAT,
        tls(srv(chain(&wild)), "wild.test"),
    );
    let l = leaf(Spec::leaf("f*.wild.test"))?;
    add(
        "20",
        "partial wildcard f*.wild.test for foo.wild.test",
        Refuse,
        CAT,
        tls(srv(chain(&l)), "foo.wild.test"),
    );
    let l = leaf(Spec::leaf("*.test"))?;
    add(
        "21",
        "*.test (wildcard over a one-label suffix)",
        Refuse,
        CAT,
        tls(srv(chain(&l)), "anything.test"),
    );
    let l = leaf(Spec::leaf("cnonly.test").sans(vec![]))?;
    add(
        "22",
        "no SAN, CN = host",
        Refuse,
        CAT,
        tls(srv(chain(&l)), "cnonly.test"),
    );
    let l = leaf(Spec::leaf("cnsan.test").sans(vec![dns("other.test")]))?;
    add(
        "23",
        "SAN other name, CN = host",
        Refuse,
        CAT,
        tls(srv(chain(&l)), "cnsan.test"),
    );
    let l = leaf(Spec {
        san_critical: true,
        ..Spec::leaf("nocn.test").cn(None)
    })?;
    add(
        "24",
        "no CN (empty subject, critical SAN = host)",
        Accept,
        CAT,
        tls(srv(chain(&l)), "nocn.test"),
    );
    let l = leaf(Spec::leaf("127.0.0.1").sans(vec![ip("127.0.0.1")]))?;
    add(
        "25",
        "IP SAN 127.0.0.1, dialled by IP (CN = IP too)",
        Accept,
        CAT,
        tls(srv(chain(&l)), "127.0.0.1"),
    );
    let l = leaf(Spec::leaf("127.0.0.1").cn(Some("ip as dns")))?;
    add(
        "26",
        "IP written as a DNS SAN",
        Refuse,
        CAT,
        tls(srv(chain(&l)), "127.0.0.1"),
    );
    let l = leaf(Spec::leaf("127.0.0.1").sans(vec![]))?;
    add(
        "27",
        "IP only in the CN",
        Refuse,
        CAT,
        tls(srv(chain(&l)), "127.0.0.1"),
    );
    let l = leaf(
        Spec::leaf("nul.test")
            .cn(Some("nul byte san"))
            .sans(vec![San::RawDns(b"nul.test\0.other.test".to_vec())]),
    )?;
    add(
        "28",
        "NUL byte inside a SAN dNSName (CVE-2013-4238)",
        Refuse,
        CAT,
        tls(srv(chain(&l)), "nul.test"),
    );
    let l = leaf(Spec::leaf("MiXeD.Case.test"))?;
    add(
        "29",
        "SAN MiXeD.Case.test for mixed.case.test",
        Accept,
        CAT,
        tls(srv(chain(&l)), "mixed.case.test"),
    );

    // ---- protocol versions and suites ----------------------------------------------------
    let only = |min: SslVersion, max: SslVersion| TlsSpec {
        min: Some(min),
        max: Some(max),
        ..TlsSpec::new(chain(&good))
    };
    add(
        "30",
        "TLS 1.3 only",
        Accept,
        CAT,
        tls(only(SslVersion::TLS1_3, SslVersion::TLS1_3), "good.test"),
    );
    add(
        "31",
        "TLS 1.2 only",
        Accept,
        CAT,
        tls(only(SslVersion::TLS1_2, SslVersion::TLS1_2), "good.test"),
    );
    let legacy = |v: SslVersion| TlsSpec {
        seclevel: Some(0),
        ciphers: Some("ECDHE-RSA-AES128-SHA:AES128-SHA:@SECLEVEL=0".into()),
        ..only(v, v)
    };
    add(
        "32",
        "TLS 1.1 only",
        Refuse,
        CAT,
        tls(legacy(SslVersion::TLS1_1), "good.test"),
    );
    add(
        "33",
        "TLS 1.0 only",
        Refuse,
        CAT,
        tls(legacy(SslVersion::TLS1), "good.test"),
    );
    add(
        "34",
        "RC4 only (scripted ServerHello: OpenSSL 3 here has no RC4 suites)",
        Refuse,
        CAT,
        How::Scripted {
            script: Script::Suites {
                label: "RC4",
                codes: RC4_SUITES,
            },
            probe: probe("good.test"),
        },
    );
    let tls12 = |ciphers: &str| TlsSpec {
        max: Some(SslVersion::TLS1_2),
        seclevel: Some(0),
        ciphers: Some(format!("{}:@SECLEVEL=0", ciphers)),
        ..TlsSpec::new(chain(&good))
    };
    add(
        "35",
        "3DES only (scripted ServerHello: OpenSSL 3 here has no 3DES suites)",
        Refuse,
        CAT,
        How::Scripted {
            script: Script::Suites {
                label: "3DES",
                codes: TRIPLE_DES_SUITES,
            },
            probe: probe("good.test"),
        },
    );
    add(
        "36",
        "NULL cipher only",
        Refuse,
        CAT,
        tls(
            tls12("ECDHE-RSA-NULL-SHA:NULL-SHA256:NULL-SHA"),
            "good.test",
        ),
    );
    add(
        "37",
        "anonymous (aNULL) only",
        Refuse,
        CAT,
        tls(
            TlsSpec {
                dh: Some(DhGroup::Modp2048),
                ..tls12(
                    "AECDH-AES128-SHA:AECDH-AES256-SHA:ADH-AES128-GCM-SHA256:ADH-AES256-GCM-SHA384",
                )
            },
            "good.test",
        ),
    );
    let dhe = "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
    add(
        "38",
        "DHE with a 1024-bit group only",
        Refuse,
        CAT,
        tls(
            TlsSpec {
                dh: Some(DhGroup::Modp1024),
                ..tls12(dhe)
            },
            "good.test",
        ),
    );
    add(
        "39",
        "DHE with a 2048-bit group",
        Accept,
        CAT,
        tls(
            TlsSpec {
                dh: Some(DhGroup::Modp2048),
                seclevel: None,
                ciphers: Some(dhe.into()),
                ..tls12(dhe)
            },
            "good.test",
        ),
    );
    add(
        "40",
        "static RSA key exchange only (no forward secrecy)",
        Refuse,
        CAT,
        tls(
            tls12("AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256:AES128-SHA"),
            "good.test",
        ),
    );
    add(
        "41",
        "ECDHE with CBC-SHA1 only",
        Refuse,
        CAT,
        tls(
            tls12("ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA"),
            "good.test",
        ),
    );
    add(
        "42",
        "TLS 1.3 HelloRetryRequest (server only does P-384)",
        Accept,
        CAT,
        tls(
            TlsSpec {
                groups: Some("P-384".into()),
                ..only(SslVersion::TLS1_3, SslVersion::TLS1_3)
            },
            "good.test",
        ),
    );
    let mtls = TlsSpec {
        client_ca: Some(root.cert.clone()),
        ..TlsSpec::new(chain(&good))
    };
    add(
        "43",
        "client certificate required, none sent",
        Refuse,
        CAT,
        tls(mtls.clone(), "good.test"),
    );
    add(
        "44",
        "client certificate required and sent",
        Accept,
        CAT,
        How::Tls {
            server: Ok(mtls),
            probe: ProbeSpec {
                client_cert: true,
                ..probe("good.test")
            },
        },
    );
    let sni_default = leaf(Spec::leaf("default.test"))?;
    let sni_right = leaf(Spec::leaf("sni.test"))?;
    add(
        "45",
        "SNI: default cert wrong, cert for the SNI name right",
        Accept,
        CAT,
        tls(
            TlsSpec {
                sni: Some(("sni.test".into(), chain(&sni_right))),
                ..TlsSpec::new(chain(&sni_default))
            },
            "sni.test",
        ),
    );
    add(
        "46",
        "ALPN: server h2 + http/1.1, client asks h2, http/1.1",
        Expect::AcceptAlpn("h2".into()),
        CAT,
        How::Tls {
            server: Ok(TlsSpec {
                alpn: Some(vec!["h2".into(), "http/1.1".into()]),
                ..TlsSpec::new(chain(&good))
            }),
            probe: ProbeSpec {
                alpn: Some(vec!["h2".into(), "http/1.1".into()]),
                ..probe("good.test")
            },
        },
    );
    add(
        "47",
        "ClientHello: null compression only, SNI not for IP literals, no SSLv2 hello",
        Check,
        CAT,
        How::Hello(HelloCheck::Basics),
    );
    add(
        "48",
        "ClientHello offers an X25519MLKEM768 key share",
        Check,
        CAT,
        How::Hello(HelloCheck::PqShare),
    );

    // ---- HTTPS stacks and trust stores --------------------------------------------------------
    let site = crate::pip::index_site()?;
    let web = leaf(Spec::leaf("localhost").sans(vec![dns("localhost"), ip("127.0.0.1")]))?;
    let web_srv = TlsSpec {
        app: App::Http(site.clone()),
        ..TlsSpec::new(chain(&web))
    };
    let wrong_web_srv = TlsSpec {
        app: App::Http(site.clone()),
        ..TlsSpec::new(other_chain.clone())
    };
    let url = |kind: &'static str, group: Group, cafile: bool| ProbeSpec {
        kind,
        host: "localhost".into(),
        cafile: if cafile { Some(root_pem.clone()) } else { None },
        client_cert: false,
        alpn: None,
        group,
    };
    add(
        "49",
        "HTTPS GET through urllib/urllib2 with the default context",
        Accept,
        CAT,
        How::Tls {
            server: Ok(web_srv.clone()),
            probe: url("urllib", Group::Default, true),
        },
    );
    add(
        "50",
        "urllib/urllib2 GET, server certificate for another host",
        Refuse,
        CAT,
        How::Tls {
            server: Ok(wrong_web_srv.clone()),
            probe: url("urllib", Group::Default, true),
        },
    );
    let no_cafile = |group: Group| ProbeSpec {
        cafile: None,
        group,
        ..probe("good.test")
    };
    add(
        "51",
        "default trust: no cafile, test CA only in the system trust store",
        Accept,
        CAT,
        How::Tls {
            server: Ok(srv(chain(&good))),
            probe: no_cafile(Group::SystemStore),
        },
    );
    add(
        "52",
        "SSL_CERT_FILE overrides the default store",
        Accept,
        CAT,
        How::Tls {
            server: Ok(srv(chain(&good))),
            probe: no_cafile(Group::CertFile),
        },
    );
    use crate::pip::PipCase;
    add(
        "53",
        "pip (from ensurepip) installs from a local HTTPS index, trust only from SSL_CERT_FILE",
        Accept,
        CAT,
        How::Pip(PipCase::CertFile),
    );

    // ---- implied by the contract ------------------------------------------------------------
    add(
        "52b",
        "SSL_CERT_DIR (hashed dir) overrides the default store",
        Accept,
        CON,
        How::Tls {
            server: Ok(srv(chain(&good))),
            probe: no_cafile(Group::CertDir),
        },
    );
    add(
        "52c",
        "control: no cafile, no override: test CA not trusted",
        Refuse,
        CON,
        How::Tls {
            server: Ok(srv(chain(&good))),
            probe: no_cafile(Group::Default),
        },
    );
    add(
        "53b",
        "pip: index certificate for another host",
        Refuse,
        CON,
        How::Pip(PipCase::WrongHost),
    );
    add(
        "53c",
        "pip --cert with the index CA (no other trust) installs",
        Accept,
        CON,
        How::Pip(PipCase::CertFlag),
    );
    add(
        "53d",
        "pip: index chain to an untrusted root",
        Refuse,
        CON,
        How::Pip(PipCase::UntrustedCa),
    );
    // pip with trust only from a distribution's platform bundle (the trust-* namespaces).
    for l in PipCase::LAYOUTS {
        add(
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
    for l in crate::trust::Layout::ALL {
        add(
            l.id(),
            l.title(),
            if l.accepts() { Accept } else { Refuse },
            CON,
            How::Tls {
                server: Ok(srv(chain(&good))),
                probe: no_cafile(Group::Layout(*l)),
            },
        );
    }
    let l = leaf(Spec::leaf("*.0.0.1").cn(Some("ip wildcard")))?;
    add(
        "54",
        "DNS SAN *.0.0.1 (wildcard over an IP), dialled by IP",
        Refuse,
        CON,
        tls(srv(chain(&l)), "127.0.0.1"),
    );
    let l = leaf(Spec::leaf("ipv6 san").sans(vec![ip("::1")]))?;
    add(
        "55",
        "IPv6 SAN ::1, server_hostname ::1",
        Accept,
        CON,
        tls(srv(chain(&l)), "::1"),
    );
    let l = leaf(Spec::leaf("*.UPPER.test"))?;
    add(
        "56",
        "uppercase wildcard *.UPPER.test for a.upper.test",
        Accept,
        CON,
        tls(srv(chain(&l)), "a.upper.test"),
    );
    let l = leaf(Spec::leaf("upper-host.test"))?;
    add(
        "57",
        "host UPPER-HOST.TEST, SAN upper-host.test",
        Accept,
        CON,
        tls(srv(chain(&l)), "UPPER-HOST.TEST"),
    );
    let nc = f.issue(
        &Spec {
            basic: Basic::Ca(Some(0)),
            permitted_dns: vec!["allowed.test".into()],
            ..Spec::ca("tlsforge Constrained Intermediate")
        },
        Some(&root),
    )?;
    let l = f.issue(&Spec::leaf("bad.forbidden.test"), Some(&nc))?;
    add(
        "58",
        "name constraints (permitted allowed.test) violated",
        Refuse,
        CON,
        tls(srv(chain_of(&l, &[&nc])), "bad.forbidden.test"),
    );
    let l = f.issue(&Spec::leaf("ok.allowed.test"), Some(&nc))?;
    add(
        "59",
        "name constraints satisfied",
        Accept,
        CON,
        tls(srv(chain_of(&l, &[&nc])), "ok.allowed.test"),
    );
    let pl0 = f.issue(
        &Spec {
            basic: Basic::Ca(Some(0)),
            ..Spec::ca("tlsforge pathlen:0 CA")
        },
        Some(&root),
    )?;
    let below = f.issue(&Spec::ca("tlsforge CA below pathlen:0"), Some(&pl0))?;
    let l = f.issue(&Spec::leaf("pathlen.test"), Some(&below))?;
    add(
        "60",
        "path length constraint exceeded",
        Refuse,
        CON,
        tls(srv(chain_of(&l, &[&below, &pl0])), "pathlen.test"),
    );
    let i1 = f.issue(&Spec::ca("tlsforge Chain Level 1"), Some(&root))?;
    let i2 = f.issue(&Spec::ca("tlsforge Chain Level 2"), Some(&i1))?;
    let i3 = f.issue(&Spec::ca("tlsforge Chain Level 3"), Some(&i2))?;
    let l = f.issue(&Spec::leaf("deep.test"), Some(&i3))?;
    add(
        "61",
        "three intermediates",
        Accept,
        CON,
        tls(srv(chain_of(&l, &[&i3, &i2, &i1])), "deep.test"),
    );
    let weak_ca = f.issue(
        &Spec {
            key: KeyType::Rsa(1024),
            basic: Basic::Ca(Some(0)),
            ..Spec::ca("tlsforge RSA-1024 Intermediate")
        },
        Some(&root),
    )?;
    let l = f.issue(&Spec::leaf("weakca.test"), Some(&weak_ca))?;
    add(
        "62",
        "RSA-1024 intermediate",
        Refuse,
        CON,
        tls(weak_server(chain_of(&l, &[&weak_ca])), "weakca.test"),
    );
    let sha1_ca = f.issue(
        &Spec {
            digest: Digest::Sha1,
            basic: Basic::Ca(Some(0)),
            ..Spec::ca("tlsforge SHA-1-signed Intermediate")
        },
        Some(&root),
    )?;
    let l = f.issue(&Spec::leaf("sha1int.test"), Some(&sha1_ca))?;
    add(
        "63",
        "SHA-1-signed intermediate",
        Refuse,
        CON,
        tls(weak_server(chain_of(&l, &[&sha1_ca])), "sha1int.test"),
    );
    let ec_ca = f.issue(
        &Spec {
            key: KeyType::P384,
            basic: Basic::Ca(Some(0)),
            ..Spec::ca("tlsforge ECDSA P-384 Intermediate")
        },
        Some(&root),
    )?;
    let l = f.issue(
        &Spec {
            key: KeyType::P256,
            ku: Ku::Signature,
            digest: Digest::Sha384,
            ..Spec::leaf("ecchain.test")
        },
        Some(&ec_ca),
    )?;
    add(
        "64",
        "ECDSA chain: P-384 intermediate, P-256 leaf, ecdsa-with-SHA384",
        Accept,
        CON,
        tls(srv(chain_of(&l, &[&ec_ca])), "ecchain.test"),
    );
    let aead12 = |ciphers: &str| TlsSpec {
        max: Some(SslVersion::TLS1_2),
        ciphers: Some(ciphers.into()),
        ..TlsSpec::new(chain(&good))
    };
    add(
        "65",
        "TLS 1.2 ECDHE-RSA-CHACHA20-POLY1305 only",
        Accept,
        CON,
        tls(aead12("ECDHE-RSA-CHACHA20-POLY1305"), "good.test"),
    );
    add(
        "66",
        "TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256 only",
        Accept,
        CON,
        tls(aead12("ECDHE-RSA-AES128-GCM-SHA256"), "good.test"),
    );
    add(
        "67",
        "TLS 1.2 ECDHE with CBC-SHA256/384 only (FS but not AEAD)",
        Refuse,
        CON,
        tls(
            aead12("ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384"),
            "good.test",
        ),
    );
    add(
        "68",
        "TLS 1.3 AES-128-CCM-8 only",
        Refuse,
        CON,
        tls(
            TlsSpec {
                suites13: Some("TLS_AES_128_CCM_8_SHA256".into()),
                ..only(SslVersion::TLS1_3, SslVersion::TLS1_3)
            },
            "good.test",
        ),
    );
    let l = leaf(Spec {
        aki: false,
        ..Spec::leaf("noaki.test")
    })?;
    add(
        "69",
        "leaf without authorityKeyIdentifier (X509_STRICT)",
        Refuse,
        CON,
        tls(srv(chain(&l)), "noaki.test"),
    );
    let l = leaf(Spec {
        basic: Basic::Ca(None),
        ku: Ku::Absent,
        ..Spec::leaf("caleaf.test")
    })?;
    add(
        "70",
        "leaf with CA:TRUE and no keyUsage",
        Refuse,
        CON,
        tls(srv(chain(&l)), "caleaf.test"),
    );
    let l = leaf(Spec {
        ku: Ku::CertSignOnly,
        ..Spec::leaf("kucertsign.test")
    })?;
    add(
        "71",
        "leaf keyUsage keyCertSign only",
        Refuse,
        CON,
        tls(srv(chain(&l)), "kucertsign.test"),
    );
    let l = leaf(Spec {
        unknown_critical_ext: true,
        ..Spec::leaf("critext.test")
    })?;
    add(
        "72",
        "leaf with an unknown critical extension",
        Refuse,
        CON,
        tls(srv(chain(&l)), "critext.test"),
    );
    let exp_root = f.issue(
        &Spec {
            not_before: -60,
            not_after: -1,
            ..Spec::ca("tlsforge Expired Root CA")
        },
        None,
    )?;
    let exp_root_pem = crate::pki::write_pem(&dir.join("expired-root.pem"), &[&exp_root.cert])?;
    let er_inter = f.issue(
        &Spec {
            basic: Basic::Ca(Some(0)),
            ..Spec::ca("tlsforge Intermediate under Expired Root")
        },
        Some(&exp_root),
    )?;
    let l = f.issue(&Spec::leaf("expiredroot.test"), Some(&er_inter))?;
    add(
        "73",
        "trust anchor (root) expired",
        Refuse,
        CON,
        How::Tls {
            server: Ok(srv(chain_of(&l, &[&er_inter]))),
            probe: ProbeSpec {
                cafile: Some(exp_root_pem),
                ..probe("expiredroot.test")
            },
        },
    );
    let l = leaf(Spec::leaf("partial.test"))?;
    add(
        "74",
        "only the intermediate trusted (VERIFY_X509_PARTIAL_CHAIN)",
        Accept,
        CON,
        How::Tls {
            server: Ok(srv(chain(&l))),
            probe: ProbeSpec {
                cafile: Some(inter_pem.clone()),
                ..probe("partial.test")
            },
        },
    );
    let l = leaf(Spec {
        crl_dp: Some("http://127.0.0.1:9/tlsforge.crl".into()),
        ..Spec::leaf("crldp.test")
    })?;
    add(
        "75",
        "leaf with an unreachable CRL distribution point (no revocation check by default)",
        Accept,
        CON,
        tls(srv(chain(&l)), "crldp.test"),
    );
    let l = leaf(Spec {
        must_staple: true,
        ..Spec::leaf("muststaple.test")
    })?;
    add(
        "76",
        "must-staple leaf, no OCSP staple (not enforced by default)",
        Accept,
        CON,
        tls(srv(chain(&l)), "muststaple.test"),
    );
    let l = leaf(Spec::leaf("xn--bcher-kva.test"))?;
    add(
        "77",
        "U-label host b\u{fc}cher.test, SAN xn--bcher-kva.test",
        Accept,
        CON,
        tls(srv(chain(&l)), "b\u{fc}cher.test"),
    );
    add(
        "78",
        "SSL 3.0 only (scripted ServerHello: no SSLv3 in OpenSSL 3 here)",
        Refuse,
        CON,
        How::Scripted {
            script: Script::Ssl3,
            probe: probe("good.test"),
        },
    );
    add(
        "86",
        "export-grade suites only (scripted ServerHello)",
        Refuse,
        CON,
        How::Scripted {
            script: Script::Suites {
                label: "an export suite",
                codes: EXPORT_SUITES,
            },
            probe: probe("good.test"),
        },
    );
    add(
        "79",
        "DHE with a 512-bit group (Logjam; scripted: OpenSSL 3 refuses to serve it)",
        Refuse,
        CON,
        How::Scripted {
            script: Script::WeakDh {
                chain: chain(&good),
                bits: 512,
            },
            probe: probe("good.test"),
        },
    );
    add(
        "79b",
        "control for 79: the same scripted DHE flight with a 2048-bit group",
        Accept,
        CON,
        How::Scripted {
            script: Script::WeakDh {
                chain: chain(&good),
                bits: 2048,
            },
            probe: probe("good.test"),
        },
    );
    add(
        "80",
        "ClientHello: TLS 1.0/1.1 not offered",
        Check,
        CON,
        How::Hello(HelloCheck::NoOldVersions),
    );
    add(
        "81",
        "ClientHello: every TLS 1.2 suite offered is forward secret and AEAD",
        Check,
        CON,
        How::Hello(HelloCheck::FsAeadOnly),
    );
    add(
        "82",
        "urllib with no context argument (SSL_CERT_FILE trusts the CA)",
        Accept,
        CON,
        How::Tls {
            server: Ok(web_srv.clone()),
            probe: url("urllib_default", Group::CertFile, false),
        },
    );
    add(
        "83",
        "urllib with no context argument, certificate for another host",
        Refuse,
        CON,
        How::Tls {
            server: Ok(wrong_web_srv.clone()),
            probe: url("urllib_default", Group::CertFile, false),
        },
    );
    add(
        "84",
        "http.client/httplib HTTPSConnection with the default context",
        Accept,
        CON,
        How::Tls {
            server: Ok(web_srv.clone()),
            probe: url("httplib", Group::Default, true),
        },
    );
    add(
        "85",
        "http.client/httplib with no context argument, certificate for another host",
        Refuse,
        CON,
        How::Tls {
            server: Ok(wrong_web_srv),
            probe: url("httplib_default", Group::CertFile, false),
        },
    );

    let index_wrong_chain = other_chain;
    let untrusted_web = f.issue(
        &Spec::leaf("localhost").sans(vec![dns("localhost"), ip("127.0.0.1")]),
        Some(&inter2),
    )?;
    Ok((
        Materials {
            root_pem,
            client_cert,
            client_key,
            trust_bundle,
            trust_dir,
            index_chain: chain(&web),
            index_wrong_chain,
            index_untrusted_chain: chain_of(&untrusted_web, &[&inter2, &root2]),
            layout_files,
        },
        cases,
    ))
}
