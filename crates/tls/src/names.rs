//! Names of protocols and cipher suites as the logs print them: `TLSv1.3`, `TLSv1`; IANA names
//! for TLS 1.3 suites and OpenSSL names for the older ones.

use postern_config::TlsVersion;
use rustls::SupportedCipherSuite;
use rustls::crypto::aws_lc_rs::cipher_suite as rs;

/// The protocol as log lines print it.
pub fn protocol_name(version: TlsVersion) -> &'static str {
    match version {
        TlsVersion::Tls1_0 => "TLSv1",
        TlsVersion::Tls1_1 => "TLSv1.1",
        TlsVersion::Tls1_2 => "TLSv1.2",
        TlsVersion::Tls1_3 => "TLSv1.3",
    }
}

/// The suites rustls serves, by the name the logs use, TLS 1.3 in the fixed preference order.
const RUSTLS_SUITES: [(&str, SupportedCipherSuite); 9] = [
    ("TLS_AES_256_GCM_SHA384", rs::TLS13_AES_256_GCM_SHA384),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        rs::TLS13_CHACHA20_POLY1305_SHA256,
    ),
    ("TLS_AES_128_GCM_SHA256", rs::TLS13_AES_128_GCM_SHA256),
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        rs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        rs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        rs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        rs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        rs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        rs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// The rustls TLS 1.2 suite of an OpenSSL name, if rustls has it.
pub fn rustls_tls12_suite(name: &str) -> Option<SupportedCipherSuite> {
    RUSTLS_SUITES[3..]
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
}

/// The fixed TLS 1.3 suites, in server preference order.
pub fn rustls_tls13_suites() -> Vec<SupportedCipherSuite> {
    RUSTLS_SUITES[..3].iter().map(|(_, s)| *s).collect()
}

/// The log name of a suite rustls negotiated.
pub fn rustls_suite_name(suite: SupportedCipherSuite) -> String {
    RUSTLS_SUITES
        .iter()
        .find(|(_, s)| s.suite() == suite.suite())
        .map_or_else(|| format!("{:?}", suite.suite()), |(n, _)| (*n).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_config::tls::TLS13_CIPHER_SUITES;

    #[test]
    fn tls13_suites_are_the_fixed_three_in_order() {
        let names: Vec<String> = rustls_tls13_suites()
            .into_iter()
            .map(rustls_suite_name)
            .collect();
        assert_eq!(names, TLS13_CIPHER_SUITES);
    }

    #[test]
    fn tls12_names_are_openssl_names() {
        let suite = rustls_tls12_suite("ECDHE-RSA-AES256-GCM-SHA384").unwrap();
        assert_eq!(rustls_suite_name(suite), "ECDHE-RSA-AES256-GCM-SHA384");
        assert!(rustls_tls12_suite("TLS_AES_256_GCM_SHA384").is_none());
        assert!(rustls_tls12_suite("ECDHE-RSA-AES128-SHA").is_none());
        assert_eq!(protocol_name(TlsVersion::Tls1_0), "TLSv1");
    }
}
