//! Building each engine's configuration from a service's policy: rustls for TLS v1.2/v1.3,
//! AWS-LC's libssl for TLS v1.0/v1.1.

use std::sync::Arc;

use openssl::ssl::{SslContextBuilder, SslVersion};
use postern_config::{ProtocolRange, TlsVersion};
use rustls::SupportedProtocolVersion;
use rustls::crypto::CryptoProvider;

use crate::TlsError;
use crate::ciphers::{Suite, explicit_list};
use crate::names::{rustls_tls12_suite, rustls_tls13_suites};

/// The rustls provider for a range: the fixed TLS 1.3 suites, then the TLS 1.2 suites the
/// cipher string selects, in its order. `None` when the range has neither TLS 1.2 nor 1.3.
pub(crate) fn rustls_provider(
    range: ProtocolRange,
    suites: &[Suite],
) -> Option<(Arc<CryptoProvider>, Vec<&'static SupportedProtocolVersion>)> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    let mut versions = Vec::new();
    provider.cipher_suites.clear();
    if range.contains(TlsVersion::Tls1_3) {
        provider.cipher_suites.extend(rustls_tls13_suites());
        versions.push(&rustls::version::TLS13);
    }
    if range.contains(TlsVersion::Tls1_2) {
        provider
            .cipher_suites
            .extend(suites.iter().filter_map(|s| rustls_tls12_suite(&s.name)));
        versions.push(&rustls::version::TLS12);
    }
    (!versions.is_empty()).then(|| (Arc::new(provider), versions))
}

/// Whether the legacy engine is needed: the range reaches below TLS v1.2.
pub(crate) fn needs_legacy(range: ProtocolRange) -> bool {
    range.oldest() < TlsVersion::Tls1_2
}

/// Sets the legacy engine's versions and ciphers to the policy's.
pub(crate) fn configure_legacy(
    builder: &mut SslContextBuilder,
    range: ProtocolRange,
    suites: &[Suite],
) -> Result<(), TlsError> {
    builder
        .set_min_proto_version(Some(ssl_version(range.oldest())))
        .map_err(TlsError::engine)?;
    builder
        .set_max_proto_version(Some(ssl_version(range.newest())))
        .map_err(TlsError::engine)?;
    // The evaluated suites by name, in order: AWS-LC keeps an explicit list's order.
    let list = explicit_list(suites);
    if !list.is_empty() {
        builder.set_cipher_list(&list).map_err(TlsError::engine)?;
    }
    Ok(())
}

fn ssl_version(v: TlsVersion) -> SslVersion {
    match v {
        TlsVersion::Tls1_0 => SslVersion::TLS1,
        TlsVersion::Tls1_1 => SslVersion::TLS1_1,
        TlsVersion::Tls1_2 => SslVersion::TLS1_2,
        TlsVersion::Tls1_3 => SslVersion::TLS1_3,
    }
}

/// The version AWS-LC negotiated.
pub(crate) fn legacy_version(ssl: &openssl::ssl::SslRef) -> TlsVersion {
    match ssl.version_str() {
        "TLSv1.3" => TlsVersion::Tls1_3,
        "TLSv1.2" => TlsVersion::Tls1_2,
        "TLSv1.1" => TlsVersion::Tls1_1,
        _ => TlsVersion::Tls1_0,
    }
}

/// The version rustls negotiated.
pub(crate) fn rustls_version(v: Option<rustls::ProtocolVersion>) -> TlsVersion {
    match v {
        Some(rustls::ProtocolVersion::TLSv1_3) => TlsVersion::Tls1_3,
        _ => TlsVersion::Tls1_2,
    }
}
