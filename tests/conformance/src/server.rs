//! Servers on 127.0.0.1 ephemeral ports: OpenSSL (system libssl) TLS servers with an echo or
//! HTTP application, the ClientHello inspector, and scripted servers that answer a ClientHello
//! with a hand-written ServerHello for what no OpenSSL 3 build can serve (RC4, SSLv3).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use openssl::dh::Dh;
use openssl::pkey::{PKey, Params, Private};
use openssl::ssl::{
    AlpnError, NameType, Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslVerifyMode,
    SslVersion,
};
use openssl::x509::X509;

use crate::hello::{read_client_hello, ClientHello};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener thread; dropping it stops accepting and joins the thread.
pub struct Listener {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    pub fn spawn<F>(handler: F) -> Result<Listener>
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let l = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handler = Arc::new(handler);
        let thread = std::thread::Builder::new()
            .name(format!("srv-{}", port))
            .spawn(move || {
                for conn in l.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
                    let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
                    let h = handler.clone();
                    let _ = std::thread::Builder::new()
                        .stack_size(256 * 1024)
                        .spawn(move || h(conn));
                }
            })?;
        Ok(Listener {
            port,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ =
            TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Certificate chain as sent (leaf first, then the rest in this order) and the leaf's key.
#[derive(Clone)]
pub struct Chain {
    pub certs: Vec<X509>,
    pub key: PKey<Private>,
}

/// What the server does after the handshake.
#[derive(Clone)]
pub enum App {
    /// Read a line, answer "PONG\n".
    Echo,
    /// Answer HTTP/1.x GETs from this site.
    Http(Arc<Site>),
}

/// Static HTTP content: path -> (content type, body).
#[derive(Default)]
pub struct Site {
    pub pages: HashMap<String, (String, Vec<u8>)>,
}

/// Finite-field DH groups for DHE suites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhGroup {
    /// RFC 2409 Oakley group 2 (1024-bit MODP).
    Modp1024,
    /// RFC 3526 group 14 (2048-bit MODP).
    Modp2048,
    /// Freshly generated safe-prime group of this many bits.
    Generated(u32),
}

pub fn make_dh(g: DhGroup) -> Result<Dh<Params>> {
    use openssl::bn::BigNum;
    Ok(match g {
        DhGroup::Modp1024 => Dh::from_pqg(
            BigNum::get_rfc2409_prime_1024()?,
            None,
            BigNum::from_u32(2)?,
        )?,
        DhGroup::Modp2048 => Dh::from_pqg(
            BigNum::get_rfc3526_prime_2048()?,
            None,
            BigNum::from_u32(2)?,
        )?,
        DhGroup::Generated(bits) => Dh::generate_params(bits, 2)?,
    })
}

#[derive(Clone)]
pub struct TlsSpec {
    pub chain: Chain,
    pub min: Option<SslVersion>,
    pub max: Option<SslVersion>,
    /// TLS 1.2-and-below cipher list (OpenSSL syntax, may carry @SECLEVEL).
    pub ciphers: Option<String>,
    /// TLS 1.3 suites.
    pub suites13: Option<String>,
    pub seclevel: Option<u32>,
    pub dh: Option<DhGroup>,
    pub groups: Option<String>,
    /// Require a client certificate issued under this CA.
    pub client_ca: Option<X509>,
    /// When the client's SNI equals the name, present the other chain.
    pub sni: Option<(String, Chain)>,
    /// ALPN protocols the server supports, in preference order.
    pub alpn: Option<Vec<String>>,
    pub app: App,
}

impl TlsSpec {
    pub fn new(chain: Chain) -> TlsSpec {
        TlsSpec {
            chain,
            min: None,
            max: None,
            ciphers: None,
            suites13: None,
            seclevel: None,
            dh: None,
            groups: None,
            client_ca: None,
            sni: None,
            alpn: None,
            app: App::Echo,
        }
    }
}

fn context(spec: &TlsSpec, chain: &Chain) -> Result<SslContextBuilder> {
    let mut b = SslContextBuilder::new(SslMethod::tls_server())?;
    // The security level first: it decides which keys, digests and DH groups the calls below
    // accept. The system openssl.cnf sets level 2.
    if let Some(l) = spec.seclevel {
        b.set_security_level(l);
    }
    b.set_options(SslOptions::NO_TICKET | SslOptions::CIPHER_SERVER_PREFERENCE);
    b.set_min_proto_version(spec.min).context("min protocol")?;
    b.set_max_proto_version(spec.max).context("max protocol")?;
    if let Some(c) = &spec.ciphers {
        b.set_cipher_list(c)
            .with_context(|| format!("cipher list {}", c))?;
    }
    if let Some(s) = &spec.suites13 {
        b.set_ciphersuites(s)
            .with_context(|| format!("TLS 1.3 suites {}", s))?;
    }
    if let Some(l) = spec.seclevel {
        b.set_security_level(l);
    }
    if let Some(dh) = &spec.dh {
        let dh = make_dh(*dh)?;
        b.set_tmp_dh(&dh).context("DH parameters")?;
    }
    if let Some(g) = &spec.groups {
        b.set_groups_list(g)
            .with_context(|| format!("groups {}", g))?;
    }
    b.set_certificate(&chain.certs[0])
        .context("server certificate")?;
    for c in &chain.certs[1..] {
        b.add_extra_chain_cert(c.clone())
            .context("chain certificate")?;
    }
    b.set_private_key(&chain.key).context("server key")?;
    b.check_private_key()?;
    b.set_session_id_context(b"tlsforge-conformance")?;
    if let Some(ca) = &spec.client_ca {
        b.cert_store_mut().add_cert(ca.clone())?;
        b.add_client_ca(ca)?;
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    }
    if let Some(protos) = &spec.alpn {
        let protos = protos.clone();
        b.set_alpn_select_callback(move |_, client| {
            // Server preference order; the answer must borrow from the client's list.
            let mut offered = Vec::new();
            let mut rest = client;
            while let Some((&n, tail)) = rest.split_first() {
                if tail.len() < n as usize {
                    break;
                }
                offered.push(&tail[..n as usize]);
                rest = &tail[n as usize..];
            }
            protos
                .iter()
                .find_map(|p| offered.iter().copied().find(|o| *o == p.as_bytes()))
                .ok_or(AlpnError::NOACK)
        });
    }
    Ok(b)
}

/// Build the server context(s) now (so configuration errors surface as "not servable") and
/// start listening.
pub fn start_tls(spec: TlsSpec) -> Result<Listener> {
    let mut main = context(&spec, &spec.chain)?;
    if let Some((name, alt)) = &spec.sni {
        let alt_ctx: SslContext = context(&spec, alt)?.build();
        let name = name.clone();
        main.set_servername_callback(move |ssl, _alert| {
            if ssl.servername(NameType::HOST_NAME) == Some(name.as_str()) {
                let _ = ssl.set_ssl_context(&alt_ctx);
            }
            Ok(())
        });
    }
    let ctx = main.build();
    let app = spec.app.clone();
    Listener::spawn(move |tcp| {
        let Ok(ssl) = Ssl::new(&ctx) else { return };
        let Ok(mut s) = ssl.accept(tcp) else { return };
        match &app {
            App::Echo => {
                let mut buf = [0u8; 256];
                let mut got = Vec::new();
                while !got.contains(&b'\n') && got.len() < 4096 {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(b"PONG\n");
                let _ = s.flush();
            }
            App::Http(site) => serve_http(&mut s, site),
        }
        let _ = s.shutdown();
        let _ = s.get_ref().shutdown(Shutdown::Both);
    })
}

fn serve_http<S: Read + Write>(s: &mut S, site: &Site) {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
        if req.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&req);
    let mut parts = text.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("/");
    let path = path.split('?').next().unwrap_or("/");
    let (status, ctype, body) = match site.pages.get(path) {
        Some((t, b)) if method == "GET" || method == "HEAD" => ("200 OK", t.as_str(), b.clone()),
        _ => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        status,
        ctype,
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = s.write_all(&body);
    }
    let _ = s.flush();
}

/// One captured ClientHello (or the reason none was captured).
pub type Captures = Arc<Mutex<Vec<Result<ClientHello, String>>>>;

/// Raw TCP listener that reads the first flight, records the ClientHello and answers with a
/// fatal handshake_failure alert.
pub fn start_inspector(captures: Captures) -> Result<Listener> {
    Listener::spawn(move |mut tcp| {
        let r = read_client_hello(&mut tcp, Duration::from_secs(8))
            .map(|(h, _)| h)
            .map_err(|e| format!("{:#}", e));
        captures.lock().unwrap().push(r);
        let _ = tcp.write_all(&[21, 3, 3, 0, 2, 2, 40]);
        let _ = tcp.shutdown(Shutdown::Both);
    })
}

/// Hand-written server flights for what no OpenSSL 3 build here can serve.
#[derive(Clone)]
pub enum Script {
    /// TLS 1.2 ServerHello choosing one of these suites (the first the client offered, else the
    /// first listed). A client that did not offer it must abort; one that did waits for the
    /// server's Certificate, i.e. it accepted.
    Suites {
        label: &'static str,
        codes: &'static [u16],
    },
    /// ServerHello with version SSL 3.0.
    Ssl3,
    /// A full TLS 1.2 DHE-RSA first flight (ServerHello, Certificate, ServerKeyExchange with a
    /// `bits`-bit group, ServerHelloDone): the client either aborts or sends ClientKeyExchange.
    WeakDh { chain: Chain, bits: u32 },
}

pub const RC4_SUITES: &[u16] = &[0x0005, 0xC011, 0x0004, 0xC007];
pub const TRIPLE_DES_SUITES: &[u16] = &[0xC012, 0x000A, 0x0016, 0xC008];
pub const EXPORT_SUITES: &[u16] = &[0x0003, 0x0006, 0x0008, 0x0014, 0x0062, 0x0064];
pub const DHE_RSA_SUITES: &[u16] = &[0x009E, 0x009F, 0xCCAA, 0x0033, 0x0039, 0x0067, 0x006B];

impl Script {
    pub fn describe(&self) -> String {
        match self {
            Script::Suites { label, .. } => format!("ServerHello choosing {}", label),
            Script::Ssl3 => "ServerHello with version SSL 3.0".into(),
            Script::WeakDh { bits, .. } => format!("DHE-RSA flight with a {}-bit DH group", bits),
        }
    }
    /// Suites this script is about (for the "client offered ..." note).
    pub fn codes(&self) -> &'static [u16] {
        match self {
            Script::Suites { codes, .. } => codes,
            Script::Ssl3 => &[],
            Script::WeakDh { .. } => DHE_RSA_SUITES,
        }
    }
}

/// What the client did after the scripted flight.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptObs {
    /// It sent an alert: it refused. (level, description)
    Alert(u8, u8),
    /// It closed the connection without an alert.
    Closed,
    /// It kept waiting for the rest of the server's flight: it accepted the parameters.
    Continued,
    /// It sent a record of this content type that is not an alert (e.g. its ClientKeyExchange).
    Proceeded(u8),
    NoHello(String),
}

pub type ScriptLog = Arc<Mutex<Vec<(Option<ClientHello>, ScriptObs)>>>;

fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
    let n = body.len();
    let mut m = vec![ty, (n >> 16) as u8, (n >> 8) as u8, n as u8];
    m.extend_from_slice(body);
    m
}

fn record(ty: u8, version: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in payload.chunks(16384) {
        out.push(ty);
        out.extend(version.to_be_bytes());
        out.extend((chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn v16(b: &[u8]) -> Vec<u8> {
    let mut o = (b.len() as u16).to_be_bytes().to_vec();
    o.extend_from_slice(b);
    o
}

fn v24(b: &[u8]) -> Vec<u8> {
    let n = b.len();
    let mut o = vec![(n >> 16) as u8, (n >> 8) as u8, n as u8];
    o.extend_from_slice(b);
    o
}

/// A prepared DH key for the WeakDh script: (p, g, Ys).
pub struct WeakDhKey {
    p: Vec<u8>,
    g: Vec<u8>,
    ys: Vec<u8>,
}

pub fn weak_dh_key(bits: u32) -> Result<WeakDhKey> {
    use openssl::bn::BigNum;
    let p = if bits == 2048 {
        BigNum::get_rfc3526_prime_2048()?
    } else {
        let mut p = BigNum::new()?;
        p.generate_prime(bits as i32, true, None, None)?;
        p
    };
    let dh = Dh::from_pqg(p, None, BigNum::from_u32(2)?)?.generate_key()?;
    Ok(WeakDhKey {
        p: dh.prime_p().to_vec(),
        g: dh.generator().to_vec(),
        ys: dh.public_key().to_vec(),
    })
}

/// The server's first flight for `script` in answer to `hello`.
pub fn server_flight(
    script: &Script,
    hello: &ClientHello,
    dh: Option<&WeakDhKey>,
) -> Result<Vec<u8>> {
    let pick = |codes: &[u16]| {
        codes
            .iter()
            .copied()
            .find(|c| hello.cipher_suites.contains(c))
            .unwrap_or(codes[0])
    };
    let (version, suite) = match script {
        Script::Suites { codes, .. } => (0x0303u16, pick(codes)),
        Script::Ssl3 => (
            0x0300,
            hello
                .cipher_suites
                .iter()
                .copied()
                .find(|c| (*c >> 8) != 0x13 && *c != 0x00FF)
                .unwrap_or(0x002F),
        ),
        Script::WeakDh { .. } => (0x0303, pick(DHE_RSA_SUITES)),
    };
    let mut random = [0u8; 32];
    openssl::rand::rand_bytes(&mut random)?;
    random[24..].copy_from_slice(b"notDWNGR");
    let mut sh = version.to_be_bytes().to_vec();
    sh.extend(random);
    sh.push(0); // no session id
    sh.extend(suite.to_be_bytes());
    sh.push(0); // null compression
    if version >= 0x0301 {
        // renegotiation_info (RFC 5746): without it an OpenSSL 3 client aborts on its own.
        sh.extend(v16(&[0xff, 0x01, 0x00, 0x01, 0x00]));
    }
    let mut flight = handshake(2, &sh);
    if let (Script::WeakDh { chain, .. }, Some(dh)) = (script, dh) {
        let mut list = Vec::new();
        for c in &chain.certs {
            list.extend(v24(&c.to_der()?));
        }
        flight.extend(handshake(11, &v24(&list)));
        let mut params = v16(&dh.p);
        params.extend(v16(&dh.g));
        params.extend(v16(&dh.ys));
        let mut signer =
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &chain.key)?;
        signer.update(&hello.random)?;
        signer.update(&random)?;
        signer.update(&params)?;
        let sig = signer.sign_to_vec()?;
        let mut ske = params;
        ske.extend([0x04, 0x01]); // rsa_pkcs1_sha256
        ske.extend(v16(&sig));
        flight.extend(handshake(12, &ske));
        flight.extend(handshake(14, &[]));
    }
    Ok(record(
        22,
        if version == 0x0300 { 0x0300 } else { 0x0303 },
        &flight,
    ))
}

pub fn start_scripted(script: Script, log: ScriptLog) -> Result<Listener> {
    let dh = match &script {
        Script::WeakDh { bits, .. } => Some(weak_dh_key(*bits)?),
        _ => None,
    };
    Listener::spawn(move |mut tcp| {
        let hello = match read_client_hello(&mut tcp, Duration::from_secs(8)) {
            Ok((h, _)) => h,
            Err(e) => {
                log.lock()
                    .unwrap()
                    .push((None, ScriptObs::NoHello(format!("{:#}", e))));
                return;
            }
        };
        let flight = match server_flight(&script, &hello, dh.as_ref()) {
            Ok(f) => f,
            Err(e) => {
                log.lock().unwrap().push((
                    Some(hello),
                    ScriptObs::NoHello(format!("building the flight: {:#}", e)),
                ));
                return;
            }
        };
        let _ = tcp.write_all(&flight);
        // A refusing client alerts at once; waiting 5 s leaves room for a loaded machine.
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
        let mut buf = [0u8; 7];
        let mut got = Vec::new();
        let obs = loop {
            match tcp.read(&mut buf) {
                Ok(0) => break ScriptObs::Closed,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.len() >= 7 {
                        if got[0] == 21 {
                            break ScriptObs::Alert(got[5], got[6]);
                        }
                        break ScriptObs::Proceeded(got[0]);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break ScriptObs::Continued
                }
                Err(_) => break ScriptObs::Closed,
            }
        };
        log.lock().unwrap().push((Some(hello), obs));
        let _ = tcp.shutdown(Shutdown::Both);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{Factory, Spec};
    use openssl::ssl::SslConnector;

    fn wait_for<T: Clone>(v: &Arc<Mutex<Vec<T>>>) -> T {
        for _ in 0..500 {
            if let Some(x) = v.lock().unwrap().last() {
                return x.clone();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("nothing captured");
    }

    #[test]
    fn inspector_captures_a_real_openssl_hello() {
        let caps: Captures = Arc::new(Mutex::new(Vec::new()));
        let l = start_inspector(caps.clone()).unwrap();
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        b.set_alpn_protos(b"\x08http/1.1").unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", l.port)).unwrap();
        assert!(b.build().connect("captured.test", tcp).is_err());
        let h = wait_for(&caps).unwrap();
        assert_eq!(h.sni.as_deref(), Some("captured.test"));
        assert_eq!(h.alpn, vec!["http/1.1".to_string()]);
        assert!(h.supported_versions.contains(&0x0304));
        assert_eq!(h.compression_methods, vec![0]);
        assert!(!h.key_share_groups.is_empty());
        assert_eq!(h.random.len(), 32);
        assert!(!h.sslv2_format);
    }

    #[test]
    fn scripted_rc4_is_refused_and_weak_dh_control_proceeds() {
        let f = Factory::new();
        let root = f.issue(&Spec::ca("Root"), None).unwrap();
        let leaf = f.issue(&Spec::leaf("dh.test"), Some(&root)).unwrap();
        let connect = |script: Script| {
            let log: ScriptLog = Arc::new(Mutex::new(Vec::new()));
            let l = start_scripted(script, log.clone()).unwrap();
            let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
            b.cert_store_mut().add_cert(root.cert.clone()).unwrap();
            let tcp = TcpStream::connect(("127.0.0.1", l.port)).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let _ = b.build().connect("dh.test", tcp);
            wait_for(&log).1
        };
        assert_eq!(
            connect(Script::Suites {
                label: "RC4",
                codes: RC4_SUITES
            }),
            ScriptObs::Alert(2, 47)
        );
        // A real OpenSSL client takes the scripted 2048-bit DHE flight: it proves the flight is
        // well-formed, so a refusal of the 512-bit one is about the group size.
        let chain = Chain {
            certs: vec![leaf.cert.clone()],
            key: leaf.key.clone(),
        };
        assert_eq!(
            connect(Script::WeakDh { chain, bits: 2048 }),
            ScriptObs::Proceeded(22)
        );
    }

    #[test]
    fn tls_server_switches_cert_on_sni_and_selects_alpn() {
        let f = Factory::new();
        let root = f.issue(&Spec::ca("Root"), None).unwrap();
        let wrong = f.issue(&Spec::leaf("default.test"), Some(&root)).unwrap();
        let right = f.issue(&Spec::leaf("sni.test"), Some(&root)).unwrap();
        let chain = |i: &crate::pki::Issued| Chain {
            certs: vec![i.cert.clone()],
            key: i.key.clone(),
        };
        let spec = TlsSpec {
            sni: Some(("sni.test".into(), chain(&right))),
            alpn: Some(vec!["h2".into(), "http/1.1".into()]),
            ..TlsSpec::new(chain(&wrong))
        };
        let l = start_tls(spec).unwrap();
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        b.cert_store_mut().add_cert(root.cert.clone()).unwrap();
        b.set_alpn_protos(b"\x08http/1.1\x02h2").unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", l.port)).unwrap();
        let mut s = b
            .build()
            .connect("sni.test", tcp)
            .expect("handshake with the SNI certificate");
        assert_eq!(s.ssl().selected_alpn_protocol(), Some(&b"h2"[..]));
        s.write_all(b"PING\n").unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"PONG\n");
    }
}
