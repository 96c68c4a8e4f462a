//! ClientHello capture and parsing, plus a "how's my SSL"-style rating of what a client offers.

use std::io::Read;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::suites::{self, Suite};

/// X25519MLKEM768, the post-quantum hybrid group OpenSSL 3.5+/4.0 offer by default.
pub const X25519MLKEM768: u16 = 0x11EC;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClientHello {
    /// The client used an SSLv2-compatible (SSL 2.0 format) ClientHello.
    pub sslv2_format: bool,
    pub record_version: u16,
    pub legacy_version: u16,
    #[serde(default)]
    pub random: Vec<u8>,
    pub session_id_len: usize,
    pub cipher_suites: Vec<u16>,
    pub compression_methods: Vec<u8>,
    /// Extension types in the order sent.
    pub extensions: Vec<u16>,
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    pub supported_versions: Vec<u16>,
    pub supported_groups: Vec<u16>,
    pub key_share_groups: Vec<u16>,
    pub signature_algorithms: Vec<u16>,
}

fn is_grease(v: u16) -> bool {
    (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff)
}

struct Cur<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> Cur<'a> {
    fn new(b: &'a [u8], what: &'static str) -> Self {
        Cur { b, what }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.b.len() < n {
            bail!(
                "truncated {}: need {} bytes, have {}",
                self.what,
                n,
                self.b.len()
            );
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Result<&'a [u8]> {
        let n = self.u8()? as usize;
        self.take(n)
    }
    fn vec16(&mut self) -> Result<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    fn is_empty(&self) -> bool {
        self.b.is_empty()
    }
}

fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

/// Parse the body of a handshake message of type client_hello (without the 4-byte header).
pub fn parse_client_hello_body(body: &[u8]) -> Result<ClientHello> {
    let mut c = Cur::new(body, "ClientHello");
    let mut h = ClientHello {
        legacy_version: c.u16()?,
        ..Default::default()
    };
    h.random = c.take(32)?.to_vec();
    h.session_id_len = c.vec8()?.len();
    h.cipher_suites = u16s(c.vec16()?);
    h.compression_methods = c.vec8()?.to_vec();
    if c.is_empty() {
        return Ok(h);
    }
    let mut exts = Cur::new(c.vec16()?, "extensions");
    while !exts.is_empty() {
        let ty = exts.u16()?;
        let data = exts.vec16()?;
        h.extensions.push(ty);
        let mut d = Cur::new(data, "extension");
        match ty {
            0 => {
                let mut list = Cur::new(d.vec16()?, "server_name");
                while !list.is_empty() {
                    let kind = list.u8()?;
                    let name = list.vec16()?;
                    if kind == 0 {
                        h.sni = Some(String::from_utf8_lossy(name).into_owned());
                    }
                }
            }
            10 => h.supported_groups = u16s(d.vec16()?),
            13 => h.signature_algorithms = u16s(d.vec16()?),
            16 => {
                let mut list = Cur::new(d.vec16()?, "alpn");
                while !list.is_empty() {
                    h.alpn
                        .push(String::from_utf8_lossy(list.vec8()?).into_owned());
                }
            }
            43 => h.supported_versions = u16s(d.vec8()?),
            51 => {
                let mut list = Cur::new(d.vec16()?, "key_share");
                while !list.is_empty() {
                    let g = list.u16()?;
                    list.vec16()?;
                    h.key_share_groups.push(g);
                }
            }
            _ => {}
        }
    }
    Ok(h)
}

/// Parse a ClientHello from the bytes a client sent first (one or more TLS records, or an
/// SSLv2-format hello). Returns Ok(None) if more bytes are needed.
pub fn parse_client_hello(data: &[u8]) -> Result<Option<ClientHello>> {
    if data.is_empty() {
        return Ok(None);
    }
    if data[0] & 0x80 != 0 {
        // SSLv2 record header: 2-byte length with the high bit set, then msg type 1.
        if data.len() < 3 {
            return Ok(None);
        }
        if data[2] != 1 {
            bail!("SSLv2-format record that is not a CLIENT-HELLO");
        }
        let len = (((data[0] & 0x7f) as usize) << 8) | data[1] as usize;
        if data.len() < 2 + len {
            return Ok(None);
        }
        let mut c = Cur::new(&data[3..2 + len], "SSLv2 ClientHello");
        let version = c.u16()?;
        let cs_len = c.u16()? as usize;
        let _sid_len = c.u16()?;
        let _chal_len = c.u16()?;
        let specs = c.take(cs_len)?;
        let suites = specs
            .chunks_exact(3)
            .filter(|s| s[0] == 0)
            .map(|s| u16::from_be_bytes([s[1], s[2]]))
            .collect();
        return Ok(Some(ClientHello {
            sslv2_format: true,
            record_version: 0x0002,
            legacy_version: version,
            cipher_suites: suites,
            compression_methods: vec![0],
            ..Default::default()
        }));
    }
    // TLS records: gather handshake bytes until the whole ClientHello is present.
    let mut hs = Vec::new();
    let mut rest = data;
    let mut record_version = 0;
    loop {
        if rest.len() < 5 {
            return Ok(None);
        }
        if rest[0] != 22 {
            bail!(
                "first record has content type {} (expected handshake, 22)",
                rest[0]
            );
        }
        if record_version == 0 {
            record_version = u16::from_be_bytes([rest[1], rest[2]]);
        }
        let len = u16::from_be_bytes([rest[3], rest[4]]) as usize;
        if rest.len() < 5 + len {
            return Ok(None);
        }
        hs.extend_from_slice(&rest[5..5 + len]);
        rest = &rest[5 + len..];
        if hs.len() >= 4 {
            if hs[0] != 1 {
                bail!(
                    "first handshake message has type {} (expected client_hello, 1)",
                    hs[0]
                );
            }
            let need = ((hs[1] as usize) << 16) | ((hs[2] as usize) << 8) | hs[3] as usize;
            if hs.len() >= 4 + need {
                let mut h = parse_client_hello_body(&hs[4..4 + need])?;
                h.record_version = record_version;
                return Ok(Some(h));
            }
        }
    }
}

/// Read from a socket until a full ClientHello has arrived (or the deadline passes).
/// Returns the parsed hello and the raw bytes read.
pub fn read_client_hello(
    stream: &mut impl Read,
    deadline: Duration,
) -> Result<(ClientHello, Vec<u8>)> {
    let start = Instant::now();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(h) = parse_client_hello(&buf)? {
            return Ok((h, buf));
        }
        if start.elapsed() > deadline {
            bail!(
                "timed out waiting for a complete ClientHello ({} bytes so far)",
                buf.len()
            );
        }
        let n = stream.read(&mut chunk).context("reading ClientHello")?;
        if n == 0 {
            bail!(
                "connection closed before a complete ClientHello ({} bytes)",
                buf.len()
            );
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 1 << 20 {
            bail!("ClientHello larger than 1 MiB");
        }
    }
}

/// What a cipher suite is, as far as the rating cares.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteInfo {
    pub code: u16,
    pub name: String,
    pub tls13: bool,
    pub forward_secret: bool,
    pub aead: bool,
    /// RC4, DES/3DES, NULL encryption, export-grade, anonymous, MD5 MAC.
    pub weak: bool,
    pub known: bool,
}

pub fn suite_info(code: u16) -> SuiteInfo {
    match suites::find(code) {
        Some(&Suite {
            name,
            protocol: proto,
            kx,
            au,
            enc,
            mac,
            ..
        }) => {
            let tls13 = proto == "TLSv1.3";
            let forward_secret =
                tls13 || (matches!(kx, "ECDH" | "DH" | "ECDHEPSK" | "DHEPSK") && au != "None");
            let aead = mac == "AEAD";
            let weak = enc.starts_with("RC4")
                || enc.starts_with("DES")
                || enc.starts_with("3DES")
                || enc.starts_with("RC2")
                || enc == "None"
                || au == "None"
                || kx.contains("(512)")
                || mac == "MD5";
            SuiteInfo {
                code,
                name: name.to_string(),
                tls13,
                forward_secret,
                aead,
                weak,
                known: true,
            }
        }
        None => SuiteInfo {
            code,
            name: format!("unknown-0x{:04X}", code),
            tls13: (code >> 8) == 0x13,
            forward_secret: (code >> 8) == 0x13,
            aead: (code >> 8) == 0x13,
            weak: false,
            known: false,
        },
    }
}

/// Signalling values that are not real suites.
fn is_scsv(code: u16) -> bool {
    code == 0x00FF || code == 0x5600 || is_grease(code)
}

pub fn version_name(v: u16) -> String {
    match v {
        0x0002 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv1.0".into(),
        0x0302 => "TLSv1.1".into(),
        0x0303 => "TLSv1.2".into(),
        0x0304 => "TLSv1.3".into(),
        v if is_grease(v) => "GREASE".into(),
        v => format!("0x{:04X}", v),
    }
}

pub fn group_name(g: u16) -> String {
    match g {
        0x0017 => "P-256".into(),
        0x0018 => "P-384".into(),
        0x0019 => "P-521".into(),
        0x001D => "X25519".into(),
        0x001E => "X448".into(),
        0x0100 => "ffdhe2048".into(),
        0x0101 => "ffdhe3072".into(),
        0x0102 => "ffdhe4096".into(),
        0x0103 => "ffdhe6144".into(),
        0x0104 => "ffdhe8192".into(),
        0x0200 => "MLKEM512".into(),
        0x0201 => "MLKEM768".into(),
        0x0202 => "MLKEM1024".into(),
        0x11EB => "SecP256r1MLKEM768".into(),
        0x11EC => "X25519MLKEM768".into(),
        0x11ED => "SecP384r1MLKEM1024".into(),
        0x6399 => "X25519Kyber768Draft00".into(),
        g if is_grease(g) => "GREASE".into(),
        g => format!("0x{:04X}", g),
    }
}

/// The rating of one client's hello.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rating {
    pub suites_offered: usize,
    pub tls13_suites: usize,
    /// TLS 1.2-and-below suites that are forward secret and AEAD.
    pub fs_aead_suites: usize,
    pub non_fs_suites: Vec<String>,
    pub non_aead_suites: Vec<String>,
    pub weak_suites: Vec<String>,
    pub versions_offered: Vec<String>,
    pub min_version: String,
    pub groups: Vec<String>,
    pub key_shares: Vec<String>,
    pub compression_null_only: bool,
    pub sslv2_format: bool,
    pub pq_hybrid_share: bool,
    pub verdict: String,
    pub line: String,
}

pub fn versions_offered(h: &ClientHello) -> Vec<u16> {
    if !h.supported_versions.is_empty() {
        let mut v: Vec<u16> = h
            .supported_versions
            .iter()
            .copied()
            .filter(|v| !is_grease(*v))
            .collect();
        v.sort();
        v
    } else {
        // No supported_versions: the client offers everything from its legacy version down to
        // whatever it accepts; TLS gives no way to tell the floor, so assume SSLv3.
        (0x0300..=h.legacy_version.min(0x0303)).collect()
    }
}

pub fn rate(h: &ClientHello) -> Rating {
    let suites: Vec<SuiteInfo> = h
        .cipher_suites
        .iter()
        .copied()
        .filter(|c| !is_scsv(*c))
        .map(suite_info)
        .collect();
    let legacy: Vec<&SuiteInfo> = suites.iter().filter(|s| !s.tls13).collect();
    let non_fs: Vec<String> = legacy
        .iter()
        .filter(|s| !s.forward_secret)
        .map(|s| s.name.clone())
        .collect();
    let non_aead: Vec<String> = legacy
        .iter()
        .filter(|s| !s.aead)
        .map(|s| s.name.clone())
        .collect();
    let weak: Vec<String> = suites
        .iter()
        .filter(|s| s.weak)
        .map(|s| s.name.clone())
        .collect();
    let fs_aead = legacy.iter().filter(|s| s.forward_secret && s.aead).count();
    let versions = versions_offered(h);
    let min = versions.first().copied().unwrap_or(h.legacy_version);
    let compression_null_only = h.compression_methods == [0];
    let pq = h.key_share_groups.contains(&X25519MLKEM768);
    let verdict = if !weak.is_empty() || min <= 0x0300 || !compression_null_only || h.sslv2_format {
        "Bad"
    } else if !non_fs.is_empty() || !non_aead.is_empty() || min < 0x0303 {
        "Improvable"
    } else {
        "Probably Okay"
    };
    let groups: Vec<String> = h
        .supported_groups
        .iter()
        .filter(|g| !is_grease(**g))
        .map(|g| group_name(*g))
        .collect();
    let shares: Vec<String> = h
        .key_share_groups
        .iter()
        .filter(|g| !is_grease(**g))
        .map(|g| group_name(*g))
        .collect();
    let line = format!(
        "{}: {} suites ({} TLS1.3, {} FS-AEAD TLS1.2, {} non-FS, {} non-AEAD, {} weak); versions {}; key shares [{}]{}; groups [{}]",
        verdict,
        suites.len(),
        suites.len() - legacy.len(),
        fs_aead,
        non_fs.len(),
        non_aead.len(),
        weak.len(),
        if versions.is_empty() { "?".to_string() } else { format!("{}..{}", version_name(min), version_name(*versions.last().unwrap())) },
        shares.join(","),
        if pq { " (PQ hybrid)" } else { "" },
        groups.join(","),
    );
    Rating {
        suites_offered: suites.len(),
        tls13_suites: suites.len() - legacy.len(),
        fs_aead_suites: fs_aead,
        non_fs_suites: non_fs,
        non_aead_suites: non_aead,
        weak_suites: weak,
        versions_offered: versions.iter().map(|v| version_name(*v)).collect(),
        min_version: version_name(min),
        groups,
        key_shares: shares,
        compression_null_only,
        sslv2_format: h.sslv2_format,
        pq_hybrid_share: pq,
        verdict: verdict.to_string(),
        line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a TLS 1.3-style ClientHello record the way a client would.
    pub(crate) fn build_hello(
        sni: Option<&str>,
        suites: &[u16],
        shares: &[u16],
        versions: &[u16],
    ) -> Vec<u8> {
        fn v16(b: &[u8]) -> Vec<u8> {
            let mut o = (b.len() as u16).to_be_bytes().to_vec();
            o.extend_from_slice(b);
            o
        }
        fn ext(ty: u16, data: &[u8]) -> Vec<u8> {
            let mut o = ty.to_be_bytes().to_vec();
            o.extend(v16(data));
            o
        }
        let mut exts = Vec::new();
        if let Some(s) = sni {
            let mut entry = vec![0u8];
            entry.extend(v16(s.as_bytes()));
            exts.extend(ext(0, &v16(&entry)));
        }
        let groups: Vec<u8> = [0x001Du16, 0x0017, 0x11EC]
            .iter()
            .flat_map(|g| g.to_be_bytes())
            .collect();
        exts.extend(ext(10, &v16(&groups)));
        let mut ks = Vec::new();
        for g in shares {
            ks.extend(g.to_be_bytes());
            ks.extend(v16(&[7u8; 32]));
        }
        exts.extend(ext(51, &v16(&ks)));
        let vs: Vec<u8> = versions.iter().flat_map(|v| v.to_be_bytes()).collect();
        let mut vsd = vec![vs.len() as u8];
        vsd.extend(vs);
        exts.extend(ext(43, &vsd));
        let mut alpn = vec![2u8];
        alpn.extend(b"h2");
        exts.extend(ext(16, &v16(&alpn)));
        let mut body = vec![3, 3];
        body.extend([0x42u8; 32]);
        body.push(32);
        body.extend([0x11u8; 32]);
        let cs: Vec<u8> = suites.iter().flat_map(|c| c.to_be_bytes()).collect();
        body.extend(v16(&cs));
        body.extend([1, 0]);
        body.extend(v16(&exts));
        let mut hs = vec![1u8, 0, (body.len() >> 8) as u8, body.len() as u8];
        hs.extend(body);
        let mut rec = vec![22u8, 3, 1];
        rec.extend(v16(&hs));
        rec
    }

    #[test]
    fn parses_constructed_tls13_hello() {
        let rec = build_hello(
            Some("hello.test"),
            &[0x1301, 0x1302, 0xC02F, 0xC013, 0x009C, 0x00FF, 0x0A0A],
            &[0x11EC, 0x001D],
            &[0x0304, 0x0303, 0x0302],
        );
        let h = parse_client_hello(&rec).unwrap().unwrap();
        assert!(!h.sslv2_format);
        assert_eq!(h.record_version, 0x0301);
        assert_eq!(h.legacy_version, 0x0303);
        assert_eq!(h.session_id_len, 32);
        assert_eq!(h.sni.as_deref(), Some("hello.test"));
        assert_eq!(h.alpn, vec!["h2".to_string()]);
        assert_eq!(h.key_share_groups, vec![0x11EC, 0x001D]);
        assert_eq!(h.supported_groups, vec![0x001D, 0x0017, 0x11EC]);
        assert_eq!(h.compression_methods, vec![0]);
        let r = rate(&h);
        assert!(r.pq_hybrid_share);
        assert_eq!(r.suites_offered, 5); // SCSV and GREASE not counted
        assert_eq!(r.tls13_suites, 2);
        assert_eq!(r.fs_aead_suites, 1);
        assert_eq!(r.non_fs_suites, vec!["AES128-GCM-SHA256".to_string()]);
        assert_eq!(r.non_aead_suites, vec!["ECDHE-RSA-AES128-SHA".to_string()]);
        assert_eq!(r.min_version, "TLSv1.1");
        assert_eq!(r.verdict, "Improvable");
    }

    #[test]
    fn incomplete_hello_needs_more_bytes() {
        let rec = build_hello(None, &[0x1301], &[0x001D], &[0x0304]);
        for cut in [0, 3, 5, 20, rec.len() - 1] {
            assert!(
                parse_client_hello(&rec[..cut]).unwrap().is_none(),
                "cut at {}",
                cut
            );
        }
        let h = parse_client_hello(&rec).unwrap().unwrap();
        assert_eq!(h.sni, None);
        assert!(!rate(&h).pq_hybrid_share);
        assert_eq!(rate(&h).verdict, "Probably Okay");
    }

    #[test]
    fn hello_split_across_records() {
        let rec = build_hello(Some("a.test"), &[0x1301], &[0x001D], &[0x0304]);
        let hs = &rec[5..];
        let (a, b) = hs.split_at(40);
        let mut two = vec![22u8, 3, 1, 0, a.len() as u8];
        two.extend(a);
        two.extend([22u8, 3, 1, (b.len() >> 8) as u8, b.len() as u8]);
        two.extend(b);
        let h = parse_client_hello(&two).unwrap().unwrap();
        assert_eq!(h.sni.as_deref(), Some("a.test"));
    }

    #[test]
    fn sslv2_compatible_hello_detected() {
        // SSLv2 CLIENT-HELLO offering TLS 1.0 with two suites and a 16-byte challenge.
        let mut body = vec![1u8, 3, 1, 0, 6, 0, 0, 0, 16];
        body.extend([0, 0, 0x2F, 0x01, 0x00, 0x80]);
        body.extend([9u8; 16]);
        let mut rec = vec![0x80 | (body.len() >> 8) as u8, body.len() as u8];
        rec.extend(body);
        let h = parse_client_hello(&rec).unwrap().unwrap();
        assert!(h.sslv2_format);
        assert_eq!(h.cipher_suites, vec![0x002F]);
        let r = rate(&h);
        assert_eq!(r.verdict, "Bad");
    }

    #[test]
    fn rejects_non_handshake() {
        assert!(parse_client_hello(b"GET / HTTP/1.1\r\n\r\n").is_err());
    }

    #[test]
    fn suite_classification() {
        let s = suite_info(0xC02F);
        assert!(s.forward_secret && s.aead && !s.weak);
        let s = suite_info(0x0005);
        assert!(s.weak && !s.forward_secret);
        let s = suite_info(0xC027); // ECDHE-RSA-AES128-SHA256
        assert!(s.forward_secret && !s.aead);
        let s = suite_info(0x1301);
        assert!(s.tls13 && s.forward_secret && s.aead);
        let s = suite_info(0xC018); // AECDH-AES128-SHA: anonymous
        assert!(s.weak && !s.forward_secret);
    }
}
