//! Test PKI, generated fresh for every run with OpenSSL's X509 builder (the system libssl).
//!
//! Extensions the builder has no type for (SAN with a NUL byte, name constraints, CRL
//! distribution points, TLS feature, an unknown critical extension) are written as raw DER.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{Asn1Flag, EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509Extension, X509Name, X509NameBuilder, X509};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    Rsa(u32),
    P256,
    P384,
    Ed25519,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    Sha256,
    Sha384,
    Sha1,
    Md5,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    Dns(String),
    Ip(std::net::IpAddr),
    /// A dNSName given as raw bytes (may hold a NUL).
    RawDns(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basic {
    Absent,
    /// CA:FALSE, critical.
    EndEntity,
    /// CA:TRUE, critical, optional pathlen.
    Ca(Option<u32>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ku {
    Absent,
    /// digitalSignature, keyEncipherment (RSA server).
    ServerRsa,
    /// digitalSignature (ECDSA/EdDSA server).
    Signature,
    /// keyCertSign, cRLSign.
    Ca,
    /// keyCertSign only: no usage a TLS server needs.
    CertSignOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eku {
    Absent,
    ServerAuth,
    ClientAuth,
}

/// Everything about one certificate except its issuer.
#[derive(Debug, Clone)]
pub struct Spec {
    pub cn: Option<String>,
    pub org: Option<String>,
    pub sans: Vec<San>,
    pub san_critical: bool,
    pub key: KeyType,
    /// Use a key of its own instead of the shared one of this type.
    pub own_key: bool,
    pub digest: Digest,
    /// Validity, in days relative to now.
    pub not_before: i64,
    pub not_after: i64,
    pub basic: Basic,
    pub ku: Ku,
    pub eku: Eku,
    pub ski: bool,
    pub aki: bool,
    /// permitted dNSName subtrees (critical name constraints).
    pub permitted_dns: Vec<String>,
    pub crl_dp: Option<String>,
    pub must_staple: bool,
    pub unknown_critical_ext: bool,
}

impl Spec {
    /// A normal TLS server certificate for `host` (DNS SAN, CN = host).
    pub fn leaf(host: &str) -> Spec {
        Spec {
            cn: Some(host.to_string()),
            org: Some("tlsforge conformance".into()),
            sans: vec![San::Dns(host.to_string())],
            san_critical: false,
            key: KeyType::Rsa(2048),
            own_key: false,
            digest: Digest::Sha256,
            not_before: -1,
            not_after: 30,
            basic: Basic::EndEntity,
            ku: Ku::ServerRsa,
            eku: Eku::ServerAuth,
            ski: true,
            aki: true,
            permitted_dns: vec![],
            crl_dp: None,
            must_staple: false,
            unknown_critical_ext: false,
        }
    }

    /// A CA certificate.
    pub fn ca(cn: &str) -> Spec {
        Spec {
            cn: Some(cn.to_string()),
            sans: vec![],
            basic: Basic::Ca(None),
            ku: Ku::Ca,
            eku: Eku::Absent,
            own_key: true,
            not_before: -1,
            not_after: 3650,
            ..Spec::leaf("unused")
        }
    }

    pub fn sans(mut self, sans: Vec<San>) -> Spec {
        self.sans = sans;
        self
    }
    pub fn cn(mut self, cn: Option<&str>) -> Spec {
        self.cn = cn.map(|s| s.to_string());
        self
    }
}

pub fn dns(s: &str) -> San {
    San::Dns(s.to_string())
}
pub fn ip(s: &str) -> San {
    San::Ip(s.parse().expect("ip literal"))
}

/// A certificate with its private key.
#[derive(Clone)]
pub struct Issued {
    pub cert: X509,
    pub key: PKey<Private>,
}

// ---- minimal DER writer -------------------------------------------------------------------

pub fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend([0x81, n as u8]);
    } else if n < 0x10000 {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    } else {
        out.extend([0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn general_names(sans: &[San]) -> Vec<u8> {
    let mut seq = Vec::new();
    for s in sans {
        match s {
            San::Dns(d) => seq.extend(der(0x82, d.as_bytes())),
            San::RawDns(b) => seq.extend(der(0x82, b)),
            San::Ip(std::net::IpAddr::V4(a)) => seq.extend(der(0x87, &a.octets())),
            San::Ip(std::net::IpAddr::V6(a)) => seq.extend(der(0x87, &a.octets())),
        }
    }
    der(0x30, &seq)
}

fn raw_ext(oid: &str, critical: bool, value: &[u8]) -> Result<X509Extension> {
    let obj = Asn1Object::from_str(oid)?;
    let os = Asn1OctetString::new_from_bytes(value)?;
    Ok(X509Extension::new_from_der(&obj, critical, &os)?)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn gen_key(kind: KeyType) -> Result<PKey<Private>> {
    Ok(match kind {
        KeyType::Rsa(bits) => PKey::from_rsa(Rsa::generate(bits)?)?,
        KeyType::P256 | KeyType::P384 => {
            let nid = if kind == KeyType::P256 {
                Nid::X9_62_PRIME256V1
            } else {
                Nid::SECP384R1
            };
            let mut group = EcGroup::from_curve_name(nid)?;
            group.set_asn1_flag(Asn1Flag::NAMED_CURVE);
            PKey::from_ec_key(EcKey::generate(&group)?)?
        }
        KeyType::Ed25519 => PKey::generate_ed25519()?,
    })
}

/// Issues certificates; leaves of one key type share one key (generation is the slow part).
pub struct Factory {
    shared: Mutex<HashMap<KeyType, PKey<Private>>>,
}

impl Default for Factory {
    fn default() -> Self {
        Self::new()
    }
}

impl Factory {
    pub fn new() -> Factory {
        Factory {
            shared: Mutex::new(HashMap::new()),
        }
    }

    fn key_for(&self, spec: &Spec) -> Result<PKey<Private>> {
        if spec.own_key {
            return gen_key(spec.key);
        }
        let mut m = self.shared.lock().unwrap();
        if let Some(k) = m.get(&spec.key) {
            return Ok(k.clone());
        }
        let k = gen_key(spec.key)?;
        m.insert(spec.key, k.clone());
        Ok(k)
    }

    /// Issue `spec`, signed by `issuer` (None: self-signed).
    pub fn issue(&self, spec: &Spec, issuer: Option<&Issued>) -> Result<Issued> {
        let key = self.key_for(spec)?;
        let mut b = X509::builder()?;
        b.set_version(2)?;
        let mut serial = BigNum::new()?;
        serial.rand(63, MsbOption::MAYBE_ZERO, false)?;
        let serial = Asn1Integer::from_bn(&serial)?;
        b.set_serial_number(&serial)?;
        let name = subject_name(spec)?;
        b.set_subject_name(&name)?;
        match issuer {
            Some(i) => b.set_issuer_name(i.cert.subject_name())?,
            None => b.set_issuer_name(&name)?,
        }
        b.set_pubkey(&key)?;
        let nb = Asn1Time::from_unix((now() + spec.not_before * 86400) as _)?;
        b.set_not_before(&nb)?;
        let na = Asn1Time::from_unix((now() + spec.not_after * 86400) as _)?;
        b.set_not_after(&na)?;

        usage_extensions(&mut b, spec)?;
        key_id_extensions(&mut b, spec, issuer)?;
        raw_extensions(&mut b, spec)?;

        let (sign_key, md) = signer(spec, &key, issuer);
        b.sign(sign_key, md).context("signing certificate")?;
        Ok(Issued {
            cert: b.build(),
            key,
        })
    }
}

/// O= (only with a CN) and CN= as `spec` says.
fn subject_name(spec: &Spec) -> Result<X509Name> {
    let mut name = X509NameBuilder::new()?;
    if let Some(o) = &spec.org {
        if spec.cn.is_some() {
            name.append_entry_by_nid(Nid::ORGANIZATIONNAME, o)?;
        }
    }
    if let Some(cn) = &spec.cn {
        name.append_entry_by_nid(Nid::COMMONNAME, cn)?;
    }
    Ok(name.build())
}

/// basicConstraints, keyUsage and extendedKeyUsage.
fn usage_extensions(b: &mut X509Builder, spec: &Spec) -> Result<()> {
    match spec.basic {
        Basic::Absent => {}
        Basic::EndEntity => b.append_extension(BasicConstraints::new().critical().build()?)?,
        Basic::Ca(pathlen) => {
            let mut bc = BasicConstraints::new();
            bc.critical().ca();
            if let Some(p) = pathlen {
                bc.pathlen(p);
            }
            b.append_extension(bc.build()?)?
        }
    }
    let ku = match spec.ku {
        Ku::Absent => None,
        Ku::ServerRsa => Some(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .build()?,
        ),
        Ku::Signature => Some(KeyUsage::new().critical().digital_signature().build()?),
        Ku::Ca => Some(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        ),
        Ku::CertSignOnly => Some(KeyUsage::new().critical().key_cert_sign().build()?),
    };
    if let Some(ku) = ku {
        b.append_extension(ku)?;
    }
    match spec.eku {
        Eku::Absent => {}
        Eku::ServerAuth => b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?,
        Eku::ClientAuth => b.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?,
    }
    Ok(())
}

/// subjectKeyIdentifier and authorityKeyIdentifier (the latter only with an issuer).
fn key_id_extensions(b: &mut X509Builder, spec: &Spec, issuer: Option<&Issued>) -> Result<()> {
    if spec.ski {
        let ext = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
        b.append_extension(ext)?;
    }
    if spec.aki {
        if let Some(i) = issuer {
            let ext = AuthorityKeyIdentifier::new()
                .keyid(true)
                .build(&b.x509v3_context(Some(&i.cert), None))?;
            b.append_extension(ext)?;
        }
    }
    Ok(())
}

/// The extensions written as raw DER: SAN, name constraints, CRL distribution point, TLS
/// feature (must-staple), an unknown critical extension.
fn raw_extensions(b: &mut X509Builder, spec: &Spec) -> Result<()> {
    if !spec.sans.is_empty() {
        b.append_extension(raw_ext(
            "2.5.29.17",
            spec.san_critical,
            &general_names(&spec.sans),
        )?)?;
    }
    if !spec.permitted_dns.is_empty() {
        let mut subtrees = Vec::new();
        for d in &spec.permitted_dns {
            subtrees.extend(der(0x30, &der(0x82, d.as_bytes())));
        }
        let nc = der(0x30, &der(0xA0, &subtrees));
        b.append_extension(raw_ext("2.5.29.30", true, &nc)?)?;
    }
    if let Some(uri) = &spec.crl_dp {
        let dp = der(
            0x30,
            &der(0x30, &der(0xA0, &der(0xA0, &der(0x86, uri.as_bytes())))),
        );
        b.append_extension(raw_ext("2.5.29.31", false, &dp)?)?;
    }
    if spec.must_staple {
        b.append_extension(raw_ext(
            "1.3.6.1.5.5.7.1.24",
            false,
            &der(0x30, &der(0x02, &[5])),
        )?)?;
    }
    if spec.unknown_critical_ext {
        b.append_extension(raw_ext("1.3.6.1.4.1.55555.1.1", true, &[0x05, 0x00])?)?;
    }
    Ok(())
}

/// The signing key (the issuer's, or `key` when self-signed) and digest (none for Ed25519).
fn signer<'a>(
    spec: &Spec,
    key: &'a PKey<Private>,
    issuer: Option<&'a Issued>,
) -> (&'a PKey<Private>, MessageDigest) {
    let (sign_key, sign_kind) = match issuer {
        Some(i) => (&i.key, i.key.id()),
        None => (key, key.id()),
    };
    let md = if sign_kind == openssl::pkey::Id::ED25519 {
        MessageDigest::null()
    } else {
        match spec.digest {
            Digest::Sha256 => MessageDigest::sha256(),
            Digest::Sha384 => MessageDigest::sha384(),
            Digest::Sha1 => MessageDigest::sha1(),
            Digest::Md5 => MessageDigest::md5(),
        }
    };
    (sign_key, md)
}

pub fn pem(certs: &[&X509]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for c in certs {
        out.extend(c.to_pem()?);
    }
    Ok(out)
}

pub fn write_pem(path: &Path, certs: &[&X509]) -> Result<PathBuf> {
    std::fs::write(path, pem(certs)?).with_context(|| format!("writing {}", path.display()))?;
    Ok(path.to_path_buf())
}

pub fn write_key(path: &Path, key: &PKey<Private>) -> Result<PathBuf> {
    std::fs::write(path, key.private_key_to_pem_pkcs8()?)?;
    Ok(path.to_path_buf())
}

/// An OpenSSL hashed certificate directory (`<subject hash>.0`) holding `certs`.
pub fn write_hashed_dir(dir: &Path, certs: &[&X509]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut used: HashMap<u32, u32> = HashMap::new();
    for c in certs {
        let h = c.subject_name_hash();
        let n = used.entry(h).or_insert(0);
        std::fs::write(dir.join(format!("{:08x}.{}", h, n)), c.to_pem()?)?;
        *n += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::X509StoreContext;

    fn verify(root: &X509, chain: &[&X509], leaf: &X509) -> bool {
        let mut sb = X509StoreBuilder::new().unwrap();
        sb.add_cert(root.clone()).unwrap();
        let store = sb.build();
        let mut st = Stack::new().unwrap();
        for c in chain {
            st.push((*c).clone()).unwrap();
        }
        let mut ctx = X509StoreContext::new().unwrap();
        ctx.init(&store, leaf, &st, |c| c.verify_cert()).unwrap()
    }

    #[test]
    fn chain_verifies_and_nul_san_is_kept() {
        let f = Factory::new();
        let root = f.issue(&Spec::ca("Root"), None).unwrap();
        let inter = f
            .issue(
                &Spec {
                    basic: Basic::Ca(Some(0)),
                    ..Spec::ca("Inter")
                },
                Some(&root),
            )
            .unwrap();
        let leaf = f.issue(&Spec::leaf("good.test"), Some(&inter)).unwrap();
        assert!(verify(&root.cert, &[&inter.cert], &leaf.cert));
        let expired = f
            .issue(
                &Spec {
                    not_before: -10,
                    not_after: -1,
                    ..Spec::leaf("x.test")
                },
                Some(&inter),
            )
            .unwrap();
        assert!(!verify(&root.cert, &[&inter.cert], &expired.cert));

        let nul = f
            .issue(
                &Spec::leaf("nul.test").sans(vec![San::RawDns(b"nul.test\0.other.test".to_vec())]),
                Some(&inter),
            )
            .unwrap();
        let names = nul.cert.subject_alt_names().unwrap();
        let raw = names
            .iter()
            .next()
            .unwrap()
            .dnsname()
            .map(|s| s.as_bytes().to_vec());
        // The openssl crate refuses to give back a dNSName with a NUL inside as &str, or gives it
        // back whole; either way the NUL must be in the DER.
        let der = nul.cert.to_der().unwrap();
        assert!(
            der.windows(20).any(|w| w == b"nul.test\0.other.test"),
            "{:?}",
            raw
        );
    }
}
