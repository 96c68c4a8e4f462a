//! Cipher-suite table: IANA code, OpenSSL name, protocol, key exchange, authentication,
//! encryption, MAC. The data lives in `suites.tsv` (tab-separated, embedded at compile time);
//! most of it is the output of `openssl ciphers -V 'ALL:COMPLEMENTOFALL:@SECLEVEL=0'`
//! (OpenSSL 3.0.19) converted by the awk line at the top of that file, plus hand-written rows for
//! the RC4/3DES/export/integrity-only codes OpenSSL 3 no longer lists.

use std::sync::OnceLock;

/// The table's source text.
const SUITES_TSV: &str = include_str!("suites.tsv");

/// One row of the table, as OpenSSL's `ciphers -V` names the columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suite {
    /// IANA code point.
    pub code: u16,
    /// OpenSSL name.
    pub name: &'static str,
    /// Lowest protocol version: SSLv3, TLSv1, TLSv1.2 or TLSv1.3.
    pub protocol: &'static str,
    /// Key exchange (`Kx=`).
    pub kx: &'static str,
    /// Authentication (`Au=`).
    pub au: &'static str,
    /// Encryption (`Enc=`).
    pub enc: &'static str,
    /// MAC (`Mac=`).
    pub mac: &'static str,
}

/// Parse the TSV text: `#` lines and blank lines are skipped; every other line has seven fields.
fn parse(text: &'static str) -> Result<Vec<Suite>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&'static str> = line.split('\t').collect();
        let [code, name, protocol, kx, au, enc, mac] = f[..] else {
            return Err(format!("suites.tsv:{}: {} fields, want 7", n + 1, f.len()));
        };
        let code = code
            .strip_prefix("0x")
            .and_then(|h| u16::from_str_radix(h, 16).ok())
            .ok_or_else(|| format!("suites.tsv:{}: bad code {:?}", n + 1, code))?;
        out.push(Suite {
            code,
            name,
            protocol,
            kx,
            au,
            enc,
            mac,
        });
    }
    Ok(out)
}

/// Every suite, in the table's order.
pub fn suites() -> &'static [Suite] {
    static SUITES: OnceLock<Vec<Suite>> = OnceLock::new();
    SUITES.get_or_init(|| parse(SUITES_TSV).expect("src/suites.tsv"))
}

/// The first row with this code.
pub fn find(code: u16) -> Option<&'static Suite> {
    suites().iter().find(|s| s.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_parses_with_the_old_tables_counts() {
        let all = parse(SUITES_TSV).unwrap();
        // The tuple table this file replaced had 174 rows: 158 from `openssl ciphers -V`, 16 extra.
        assert_eq!(all.len(), 174);
        let extra = SUITES_TSV
            .lines()
            .skip_while(|l| !l.starts_with("# ---- extra rows"))
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .count();
        assert_eq!(extra, 16);
        let count = |p: &str| all.iter().filter(|s| s.protocol == p).count();
        assert_eq!(
            [
                count("SSLv3"),
                count("TLSv1"),
                count("TLSv1.2"),
                count("TLSv1.3")
            ],
            [45, 36, 86, 7]
        );
        let mut codes: Vec<u16> = all.iter().map(|s| s.code).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "duplicate codes");
        assert_eq!(
            all[0],
            Suite {
                code: 0x1302,
                name: "TLS_AES_256_GCM_SHA384",
                protocol: "TLSv1.3",
                kx: "any",
                au: "any",
                enc: "AESGCM(256)",
                mac: "AEAD",
            }
        );
        assert_eq!(find(0xC0B5).unwrap().name, "TLS_SHA384_SHA384");
        assert_eq!(find(0x0003).unwrap().kx, "RSA(512)");
        assert!(find(0xFFFF).is_none());
    }

    #[test]
    fn malformed_rows_are_errors() {
        assert!(parse("0x0001\tNULL-MD5\n").is_err());
        assert!(parse("1\ta\tb\tc\td\te\tf\n").is_err());
        assert_eq!(parse("# c\n\n0x0001\ta\tb\tc\td\te\tf\n").unwrap().len(), 1);
    }
}
