//! The server side: one acceptor per service policy. A ClientHello is looked at first; a client
//! whose newest version is below TLS v1.2 goes to the legacy engine when the policy enables one
//! of those versions, every other client to rustls.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openssl::ssl::{Ssl, SslContext, SslMethod, SslOptions};
use postern_config::{ProtocolRange, ServiceTls};
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_openssl::SslStream;

use crate::TlsError;
use crate::certs::{Identity, KeyKind};
use crate::ciphers::for_range;
use crate::engines::{
    configure_legacy, legacy_version, needs_legacy, rustls_provider, rustls_version,
};
use crate::hello::{MAX_HELLO, Peek, peek};
use crate::names::rustls_suite_name;
use crate::outcome::{Engine, FailureKind, HandshakeFailure, Negotiated};
use crate::rewind::Rewind;
use crate::stream::EngineStream;

/// How long a client has to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// A fatal protocol_version alert in a TLS v1.0 record, which every client version reads.
const PROTOCOL_VERSION_ALERT: [u8; 7] = [21, 3, 1, 0, 2, 2, 70];

/// Serves TLS for one service's policy. Cheap to clone; a service swaps in a new one on commit
/// and connections already open keep the one they started with.
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: Arc<Inner>,
}

struct Inner {
    range: ProtocolRange,
    rustls: Option<tokio_rustls::TlsAcceptor>,
    legacy: Option<SslContext>,
    timeout: Duration,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("protocols", &self.inner.range.method_token())
            .field("rustls", &self.inner.rustls.is_some())
            .field("legacy", &self.inner.legacy.is_some())
            .finish()
    }
}

impl TlsAcceptor {
    /// An acceptor for `policy`, presenting the given identities (an ECDSA and an RSA one are
    /// best: each client gets the one it prefers).
    pub fn new(policy: &ServiceTls, identities: &[Identity]) -> Result<Self, TlsError> {
        Self::with_timeout(policy, identities, HANDSHAKE_TIMEOUT)
    }

    pub fn with_timeout(
        policy: &ServiceTls,
        identities: &[Identity],
        timeout: Duration,
    ) -> Result<Self, TlsError> {
        let range = policy.protocols;
        let suites = for_range(&policy.ciphers, range)?;
        let ecdsa = identities
            .iter()
            .find(|i| i.key_kind() == KeyKind::EcdsaP256);
        let rsa = identities.iter().find(|i| i.key_kind() == KeyKind::Rsa2048);
        if ecdsa.is_none() && rsa.is_none() {
            return Err(TlsError::NoIdentity);
        }
        let rustls = match rustls_provider(range, &suites) {
            Some((provider, versions)) => {
                let resolver = ByKeyType {
                    ecdsa: ecdsa.map(Identity::rustls),
                    rsa: rsa.map(Identity::rustls),
                };
                let mut config = ServerConfig::builder_with_provider(provider)
                    .with_protocol_versions(&versions)
                    .map_err(|e| TlsError::Engine(e.to_string()))?
                    .with_no_client_auth()
                    .with_cert_resolver(Arc::new(resolver));
                // The administrator's order decides, as on the reference appliance.
                config.ignore_client_order = true;
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
            }
            None => None,
        };
        let legacy = if needs_legacy(range) {
            // Clients this old are best served RSA.
            let identity = rsa.or(ecdsa).ok_or(TlsError::NoIdentity)?;
            let mut builder =
                SslContext::builder(SslMethod::tls_server()).map_err(TlsError::engine)?;
            configure_legacy(&mut builder, range, &suites)?;
            builder.set_options(SslOptions::CIPHER_SERVER_PREFERENCE | SslOptions::NO_TICKET);
            builder
                .set_certificate(&identity.chain()[0])
                .map_err(TlsError::engine)?;
            for extra in &identity.chain()[1..] {
                builder
                    .add_extra_chain_cert(extra.clone())
                    .map_err(TlsError::engine)?;
            }
            builder
                .set_private_key(identity.key())
                .map_err(TlsError::engine)?;
            builder.check_private_key().map_err(TlsError::engine)?;
            Some(builder.build())
        } else {
            None
        };
        Ok(Self {
            inner: Arc::new(Inner {
                range,
                rustls,
                legacy,
                timeout,
            }),
        })
    }

    /// The protocols this acceptor allows.
    pub fn protocols(&self) -> ProtocolRange {
        self.inner.range
    }

    /// Runs the server side of a handshake on `stream` (a TCP connection, or one that just
    /// answered STARTTLS).
    pub async fn accept<S>(
        &self,
        stream: S,
    ) -> Result<(ServerStream<S>, Negotiated), HandshakeFailure>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        match tokio::time::timeout(self.inner.timeout, self.handshake(stream)).await {
            Ok(result) => result,
            Err(_) => Err(HandshakeFailure::timed_out("accept")),
        }
    }

    async fn handshake<S>(
        &self,
        mut stream: S,
    ) -> Result<(ServerStream<S>, Negotiated), HandshakeFailure>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut seen = Vec::with_capacity(1024);
        let newest = loop {
            match peek(&seen) {
                Peek::Hello { newest } => break newest,
                Peek::NotTls => return Err(HandshakeFailure::not_tls("accept")),
                Peek::NeedMore => {
                    let mut chunk = [0u8; 2048];
                    let room = (MAX_HELLO + 5 - seen.len()).min(chunk.len());
                    let n = stream
                        .read(&mut chunk[..room])
                        .await
                        .map_err(|e| HandshakeFailure::io("accept", &e))?;
                    if n == 0 {
                        return Err(HandshakeFailure::new(
                            FailureKind::PeerClosed,
                            0,
                            "postern",
                            "accept",
                            "the peer closed the connection before its ClientHello",
                        ));
                    }
                    seen.extend_from_slice(&chunk[..n]);
                }
            }
        };
        let old_client = newest < 0x0303;
        if old_client && self.inner.legacy.is_none() {
            // rustls asks for the signature_algorithms extension before it looks at versions,
            // and clients older than TLS v1.2 never send it: it would refuse them with a
            // handshake_failure, logged as a cipher problem. Refuse them as it does when it
            // sees the version first: a protocol_version alert, a version mismatch.
            let _ = stream.write_all(&PROTOCOL_VERSION_ALERT).await;
            let refusal =
                rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered);
            let refusal = io::Error::new(io::ErrorKind::InvalidData, refusal);
            return Err(HandshakeFailure::from_rustls("accept", &refusal));
        }
        let stream = Rewind::new(seen, stream);
        let legacy = self
            .inner
            .legacy
            .as_ref()
            .filter(|_| old_client || self.inner.rustls.is_none());
        match (legacy, &self.inner.rustls) {
            (Some(legacy), _) => {
                let ssl = Ssl::new(legacy).map_err(|e| engine_failure(&e))?;
                let mut tls = SslStream::new(ssl, stream).map_err(|e| engine_failure(&e))?;
                Pin::new(&mut tls)
                    .accept()
                    .await
                    .map_err(|e| HandshakeFailure::from_legacy("accept", &e))?;
                let negotiated = Negotiated {
                    version: legacy_version(tls.ssl()),
                    cipher: tls
                        .ssl()
                        .current_cipher()
                        .map(|c| c.name())
                        .unwrap_or("")
                        .to_owned(),
                    engine: Engine::Legacy,
                };
                Ok((ServerStream::Legacy(Box::new(tls)), negotiated))
            }
            (_, Some(rustls)) => {
                let tls = rustls
                    .accept(stream)
                    .await
                    .map_err(|e| HandshakeFailure::from_rustls("accept", &e))?;
                let conn = tls.get_ref().1;
                let negotiated = Negotiated {
                    version: rustls_version(conn.protocol_version()),
                    cipher: conn
                        .negotiated_cipher_suite()
                        .map(rustls_suite_name)
                        .unwrap_or_default(),
                    engine: Engine::Rustls,
                };
                Ok((ServerStream::Rustls(Box::new(tls)), negotiated))
            }
            (None, None) => Err(HandshakeFailure::new(
                FailureKind::Other,
                0,
                "postern",
                "accept",
                "no engine for this policy",
            )),
        }
    }
}

fn engine_failure(e: &openssl::error::ErrorStack) -> HandshakeFailure {
    HandshakeFailure::new(
        FailureKind::Other,
        0,
        "SSL routines",
        "accept",
        &e.to_string(),
    )
}

/// Picks the ECDSA certificate for clients that accept ECDSA signatures, else the RSA one.
#[derive(Debug)]
struct ByKeyType {
    ecdsa: Option<Arc<CertifiedKey>>,
    rsa: Option<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ByKeyType {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        use rustls::SignatureScheme as S;
        let ecdsa_ok = hello.signature_schemes().iter().any(|s| {
            matches!(
                s,
                S::ECDSA_NISTP256_SHA256 | S::ECDSA_NISTP384_SHA384 | S::ECDSA_NISTP521_SHA512
            )
        });
        let ecdsa_suite = hello.cipher_suites().iter().any(|s| {
            let name = format!("{s:?}");
            name.starts_with("TLS13") || name.contains("ECDSA")
        });
        if ecdsa_ok && ecdsa_suite {
            self.ecdsa.clone().or_else(|| self.rsa.clone())
        } else {
            self.rsa.clone().or_else(|| self.ecdsa.clone())
        }
    }
}

/// A server-side TLS connection from either engine.
pub type ServerStream<S> =
    EngineStream<tokio_rustls::server::TlsStream<Rewind<S>>, SslStream<Rewind<S>>>;
