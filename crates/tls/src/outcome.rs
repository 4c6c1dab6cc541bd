//! What a handshake ended in, in the words of the logs: protocol and cipher on success; on
//! failure the engine's own code and reason in the `(code, 'reason')` shape of the reference
//! appliance, and a classification that decides the log line and what happens next.

use std::fmt;

use postern_config::TlsVersion;
use rustls::{AlertDescription, PeerIncompatible};

use crate::names::protocol_name;

/// The engine that served a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// rustls with aws-lc-rs: TLS v1.2 and v1.3.
    Rustls,
    /// AWS-LC's libssl: clients and servers whose newest version is TLS v1.0 or v1.1.
    Legacy,
}

/// A successful handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub version: TlsVersion,
    /// `TLS_AES_256_GCM_SHA384` for TLS v1.3, `ECDHE-RSA-AES256-GCM-SHA384` before.
    pub cipher: String,
    pub engine: Engine,
}

impl Negotiated {
    /// `TLSv1.3`, `TLSv1.2`, `TLSv1.1`, `TLSv1`.
    pub fn protocol(&self) -> &'static str {
        protocol_name(self.version)
    }
}

/// Why a handshake failed, as far as what follows depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// No TLS version both sides allow ("TLS version mismatch could be the failure reason").
    VersionMismatch,
    /// A common version, but no common cipher suite.
    NoSharedCipher,
    /// One side did not accept the other's certificate.
    CertificateRejected,
    /// The peer closed or reset the connection during the handshake.
    PeerClosed,
    /// The handshake did not finish in time.
    TimedOut,
    /// The peer does not speak TLS.
    NotTls,
    /// Anything else: a protocol error, an internal error.
    Other,
}

/// A failed handshake. Displayed as `(code, 'reason')`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct HandshakeFailure {
    pub kind: FailureKind,
    /// The engine's code: AWS-LC's packed error code, or for rustls the TLS alert number.
    pub code: u64,
    /// `error:<hex>:<library>:<function>:<reason>`.
    pub reason: String,
}

impl fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, '{}')", self.code, self.reason)
    }
}

impl HandshakeFailure {
    pub(crate) fn new(
        kind: FailureKind,
        code: u64,
        library: &str,
        function: &str,
        reason: &str,
    ) -> Self {
        Self {
            kind,
            code,
            reason: format!("error:{code:08X}:{library}:{function}:{reason}"),
        }
    }

    pub(crate) fn timed_out(side: &str) -> Self {
        Self::new(
            FailureKind::TimedOut,
            0,
            "postern",
            side,
            "handshake timed out",
        )
    }

    pub(crate) fn not_tls(side: &str) -> Self {
        Self::new(
            FailureKind::NotTls,
            0,
            "postern",
            side,
            "the peer does not speak TLS",
        )
    }

    /// An I/O error outside either engine.
    pub(crate) fn io(side: &str, e: &std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted => FailureKind::PeerClosed,
            std::io::ErrorKind::TimedOut => FailureKind::TimedOut,
            _ => FailureKind::Other,
        };
        let code = e
            .raw_os_error()
            .and_then(|c| u64::try_from(c).ok())
            .unwrap_or(0);
        Self::new(kind, code, "system", side, &e.to_string())
    }

    /// A rustls handshake error. `side` is `accept` or `connect`.
    pub(crate) fn from_rustls(side: &str, e: &std::io::Error) -> Self {
        let Some(error) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        else {
            return Self::io(side, e);
        };
        let (kind, alert) = classify_rustls(error);
        Self::new(
            kind,
            u64::from(u8::from(alert)),
            "rustls",
            side,
            &error.to_string(),
        )
    }

    /// An AWS-LC handshake error.
    pub(crate) fn from_legacy(side: &str, e: &openssl::ssl::Error) -> Self {
        if let Some(first) = e.ssl_error().and_then(|stack| stack.errors().first()) {
            let reason = first.reason().unwrap_or("unknown");
            let kind = classify_legacy(reason);
            let library = first.library().unwrap_or("SSL routines");
            let function = first.function().unwrap_or("OPENSSL_internal");
            return Self::new(kind, first.code() as u64, library, function, reason);
        }
        match e.io_error() {
            Some(io) => Self::io(side, io),
            None => Self::new(
                FailureKind::PeerClosed,
                0,
                "SSL routines",
                side,
                "the peer closed the connection",
            ),
        }
    }
}

fn classify_rustls(error: &rustls::Error) -> (FailureKind, AlertDescription) {
    use AlertDescription as A;
    match error {
        rustls::Error::PeerIncompatible(p) => match p {
            PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled
            | PeerIncompatible::ServerDoesNotSupportTls12Or13
            | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig => {
                (FailureKind::VersionMismatch, A::ProtocolVersion)
            }
            PeerIncompatible::NoCipherSuitesInCommon => {
                (FailureKind::NoSharedCipher, A::HandshakeFailure)
            }
            _ => (FailureKind::Other, A::HandshakeFailure),
        },
        rustls::Error::AlertReceived(alert) => {
            let kind = match alert {
                A::ProtocolVersion => FailureKind::VersionMismatch,
                A::HandshakeFailure | A::InsufficientSecurity => FailureKind::NoSharedCipher,
                A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA => FailureKind::CertificateRejected,
                _ => FailureKind::Other,
            };
            (kind, *alert)
        }
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            (FailureKind::CertificateRejected, A::BadCertificate)
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateHandshakeMessage { .. } => {
            (FailureKind::Other, A::DecodeError)
        }
        _ => (FailureKind::Other, A::InternalError),
    }
}

fn classify_legacy(reason: &str) -> FailureKind {
    match reason {
        "UNSUPPORTED_PROTOCOL"
        | "TLSV1_ALERT_PROTOCOL_VERSION"
        | "WRONG_VERSION_NUMBER"
        | "UNSUPPORTED_PROTOCOL_FOR_SPKI"
        | "TLSV1_ALERT_INAPPROPRIATE_FALLBACK" => FailureKind::VersionMismatch,
        "NO_SHARED_CIPHER" | "SSLV3_ALERT_HANDSHAKE_FAILURE" | "NO_CIPHER_MATCH" => {
            FailureKind::NoSharedCipher
        }
        r if r.contains("CERTIFICATE") || r.contains("UNKNOWN_CA") || r.contains("BAD_CERT") => {
            FailureKind::CertificateRejected
        }
        "UNEXPECTED_RECORD" | "HTTP_REQUEST" | "HTTPS_PROXY_REQUEST" => FailureKind::NotTls,
        _ => FailureKind::Other,
    }
}
