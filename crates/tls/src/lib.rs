//! Postern's TLS engine: turns the TLS policy of one service into a server acceptor or a client
//! connector that negotiates exactly what the administrator allowed, and names what was
//! negotiated in the words the logs use.
//!
//! # Layout
//!
//! - [`ciphers`]: what an OpenSSL-syntax cipher string selects, in OpenSSL's order (its
//!   algorithm over the suites both engines implement), and the refusal of a string that leaves
//!   an enabled version without a cipher.
//! - [`names`]: protocol and suite names as log lines print them.
//! - [`certs`]: identities (certificate chain + key): factory self-signed ECDSA P-256 and RSA
//!   2048 made at first start, PEM import with its checks.
//! - [`hello`] and [`rewind`]: a look at the ClientHello before an engine is chosen, and the
//!   stream that replays it to that engine.
//! - [`server`]: [`TlsAcceptor`], one per service policy, routing each client to rustls or to
//!   the legacy engine; [`client`]: [`TlsConnector`], offering exactly the policy's range.
//! - [`outcome`]: [`Negotiated`] (protocol and cipher as logged) and [`HandshakeFailure`] (the
//!   engine's `(code, 'reason')` and a [`FailureKind`]).
//! - [`stream`]: [`EngineStream`], the connection after a handshake, whichever engine served it.
//! - `engines`: each engine's configuration from a policy.

#![deny(unsafe_code)]

pub mod certs;
pub mod ciphers;
pub mod client;
mod engines;
pub mod hello;
pub mod names;
pub mod outcome;
pub mod rewind;
pub mod server;
pub mod stream;

pub use certs::{CertificateError, Identity, KeyKind, identities_for};
pub use ciphers::CipherError;
pub use client::{ClientStream, TlsConnector, Verification};
pub use outcome::{Engine, FailureKind, HandshakeFailure, Negotiated};
pub use server::{ServerStream, TlsAcceptor};
pub use stream::EngineStream;

/// Why an acceptor or connector could not be built from a policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error(transparent)]
    Ciphers(#[from] CipherError),
    #[error("no certificate to present")]
    NoIdentity,
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    #[error("the TLS engine refused the configuration: {0}")]
    Engine(String),
}

/// Whether the CPU has the AES and carry-less multiply instructions aws-lc-rs uses for AES-GCM.
pub fn cpu_has_aes_acceleration() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl TlsError {
    pub(crate) fn engine(e: openssl::error::ErrorStack) -> Self {
        Self::Engine(e.to_string())
    }
}
