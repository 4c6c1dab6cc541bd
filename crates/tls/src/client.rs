//! The client side (outbound SMTP, other TLS client services): a connector offers exactly the
//! policy's range in one ClientHello. A range within TLS v1.2–v1.3 is spoken by rustls; one that
//! reaches TLS v1.0/v1.1 by the legacy engine, so that a peer that speaks only those is reached.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openssl::ssl::{Ssl, SslContext, SslMethod, SslVerifyMode};
use openssl::x509::verify::{X509CheckFlags, X509VerifyFlags};
use openssl::x509::{X509, X509KeyUsage};
use postern_config::{PeerCertificateChecks, ProtocolRange, ServiceTls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_openssl::SslStream;

use crate::TlsError;
use crate::ciphers::for_range;
use crate::engines::{
    configure_legacy, legacy_version, needs_legacy, rustls_provider, rustls_version,
};
use crate::names::rustls_suite_name;
use crate::outcome::{Engine, FailureKind, HandshakeFailure, Negotiated};
use crate::stream::EngineStream;

/// Whether and how the peer's certificate is checked.
#[derive(Debug, Clone)]
pub enum Verification {
    /// Opportunistic TLS (destination TLS Preferred/Required): encrypt, check no certificate.
    None,
    /// The chain must lead to one of `roots` (DER), each trusted as an anchor, and the
    /// certificate must name the host; `checks` are the administrator's extra checks
    /// (sslconfig `PEER_CERT_FQDN`, `PEER_CERT_X509`).
    Roots {
        roots: Vec<Vec<u8>>,
        checks: PeerCertificateChecks,
    },
}

impl Verification {
    /// The chain must lead to one of `roots`, without the extra checks.
    pub fn roots(roots: Vec<Vec<u8>>) -> Self {
        Self::Roots {
            roots,
            checks: PeerCertificateChecks::default(),
        }
    }
}

/// With X.509 validation, whether `der` may be a trust anchor: a CA certificate as RFC 5280
/// has it, with basic constraints asserting cA (4.2.1.9) and a key usage that includes
/// keyCertSign (4.2.1.3). A server's own certificate, trusted directly, is not one.
pub fn is_certificate_authority(der: &[u8]) -> bool {
    let Ok(cert) = X509::from_der(der) else {
        return false;
    };
    let signs_certificates = cert
        .key_usage()
        .is_some_and(|usage| usage.contains(X509KeyUsage::KEY_CERT_SIGN));
    signs_certificates && asserts_ca(&cert)
}

/// Whether the basic constraints of `cert` assert cA. The openssl crate has no reader for them.
#[allow(unsafe_code)]
fn asserts_ca(cert: &X509) -> bool {
    use foreign_types::ForeignType;
    // SAFETY: `cert` owns a live X509 for the duration of the call. X509_get_extension_flags
    // reads it, caching its parsed extensions inside it as every verification does; `cert` is
    // not shared with another thread here.
    let flags = unsafe { openssl_sys::X509_get_extension_flags(cert.as_ptr()) };
    flags & openssl_sys::EXFLAG_CA as u32 != 0
}

/// AWS-LC's `X509_CHECK_FLAG_NEVER_CHECK_SUBJECT` (0x20): no subject common name fallback when
/// a certificate has no DNS names. The openssl crate names it only for OpenSSL builds.
const NEVER_CHECK_SUBJECT: X509CheckFlags = X509CheckFlags::from_bits_retain(0x20);

/// Speaks TLS to a server for one policy. Cheap to clone.
#[derive(Clone)]
pub struct TlsConnector {
    inner: Arc<Inner>,
}

enum Inner {
    Rustls(tokio_rustls::TlsConnector, Duration),
    /// The context, the handshake's time limit, and how the host name is matched.
    Legacy(SslContext, Duration, X509CheckFlags),
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let engine = match &*self.inner {
            Inner::Rustls(..) => "rustls",
            Inner::Legacy(..) => "legacy",
        };
        f.debug_struct("TlsConnector")
            .field("engine", &engine)
            .finish()
    }
}

impl TlsConnector {
    pub fn new(policy: &ServiceTls, verification: &Verification) -> Result<Self, TlsError> {
        Self::with_timeout(policy, verification, crate::server::HANDSHAKE_TIMEOUT)
    }

    pub fn with_timeout(
        policy: &ServiceTls,
        verification: &Verification,
        timeout: Duration,
    ) -> Result<Self, TlsError> {
        let range: ProtocolRange = policy.protocols;
        let suites = for_range(&policy.ciphers, range)?;
        let anchors = |roots: &[Vec<u8>], checks: PeerCertificateChecks| -> Vec<Vec<u8>> {
            roots
                .iter()
                .filter(|der| !checks.x509 || is_certificate_authority(der))
                .cloned()
                .collect()
        };
        if needs_legacy(range) {
            let mut builder =
                SslContext::builder(SslMethod::tls_client()).map_err(TlsError::engine)?;
            let mut host_flags = X509CheckFlags::empty();
            configure_legacy(&mut builder, range, &suites)?;
            match verification {
                Verification::None => builder.set_verify(SslVerifyMode::NONE),
                Verification::Roots { roots, checks } => {
                    for der in anchors(roots, *checks) {
                        let cert = X509::from_der(&der).map_err(TlsError::engine)?;
                        builder
                            .cert_store_mut()
                            .add_cert(cert)
                            .map_err(TlsError::engine)?;
                    }
                    // Every root is a trust anchor, as for rustls. Without this AWS-LC only
                    // ends a chain at a certificate it deems self-signed, which excludes a
                    // pinned leaf such as our factory certificate (its key usage lacks
                    // keyCertSign), and refuses it as having no local issuer.
                    builder
                        .verify_param_mut()
                        .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
                        .map_err(TlsError::engine)?;
                    builder.set_verify(SslVerifyMode::PEER);
                    if checks.fqdn {
                        // RFC 6125: names only from subjectAltName. rustls never looks at the
                        // subject; AWS-LC does when there are no DNS names, unless told not to.
                        host_flags = NEVER_CHECK_SUBJECT;
                    }
                }
            }
            return Ok(Self {
                inner: Arc::new(Inner::Legacy(builder.build(), timeout, host_flags)),
            });
        }
        let (provider, versions) = rustls_provider(range, &suites)
            .ok_or_else(|| TlsError::Engine("no protocol in the range".to_owned()))?;
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| TlsError::Engine(e.to_string()))?;
        let config = match verification {
            Verification::None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth(),
            Verification::Roots { roots, checks } => {
                let mut store = RootCertStore::empty();
                for der in anchors(roots, *checks) {
                    store
                        .add(CertificateDer::from(der))
                        .map_err(|e| TlsError::Engine(e.to_string()))?;
                }
                builder.with_root_certificates(store).with_no_client_auth()
            }
        };
        Ok(Self {
            inner: Arc::new(Inner::Rustls(
                tokio_rustls::TlsConnector::from(Arc::new(config)),
                timeout,
            )),
        })
    }

    /// Runs the client side of a handshake with `server_name` on `stream`.
    pub async fn connect<S>(
        &self,
        server_name: &str,
        stream: S,
    ) -> Result<(ClientStream<S>, Negotiated), HandshakeFailure>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let timeout = match &*self.inner {
            Inner::Rustls(_, t) | Inner::Legacy(_, t, _) => *t,
        };
        match tokio::time::timeout(timeout, self.handshake(server_name, stream)).await {
            Ok(result) => result,
            Err(_) => Err(HandshakeFailure::timed_out("connect")),
        }
    }

    async fn handshake<S>(
        &self,
        server_name: &str,
        stream: S,
    ) -> Result<(ClientStream<S>, Negotiated), HandshakeFailure>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        match &*self.inner {
            Inner::Rustls(connector, _) => {
                let name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
                    HandshakeFailure::new(
                        FailureKind::Other,
                        0,
                        "postern",
                        "connect",
                        "bad server name",
                    )
                })?;
                let tls = connector
                    .connect(name, stream)
                    .await
                    .map_err(|e| HandshakeFailure::from_rustls("connect", &e))?;
                let conn = tls.get_ref().1;
                let negotiated = Negotiated {
                    version: rustls_version(conn.protocol_version()),
                    cipher: conn
                        .negotiated_cipher_suite()
                        .map(rustls_suite_name)
                        .unwrap_or_default(),
                    engine: Engine::Rustls,
                };
                Ok((ClientStream::Rustls(Box::new(tls)), negotiated))
            }
            Inner::Legacy(context, _, host_flags) => {
                let failure = |e: openssl::error::ErrorStack| {
                    HandshakeFailure::new(
                        FailureKind::Other,
                        0,
                        "SSL routines",
                        "connect",
                        &e.to_string(),
                    )
                };
                let mut ssl = Ssl::new(context).map_err(failure)?;
                // The certificate must name what was dialled, an address as well as a host
                // (SNI carries host names only).
                match server_name.parse::<std::net::IpAddr>() {
                    Ok(ip) => ssl.param_mut().set_ip(ip).map_err(failure)?,
                    Err(_) => {
                        ssl.set_hostname(server_name).map_err(failure)?;
                        ssl.param_mut().set_hostflags(*host_flags);
                        ssl.param_mut().set_host(server_name).map_err(failure)?;
                    }
                }
                let mut tls = SslStream::new(ssl, stream).map_err(failure)?;
                Pin::new(&mut tls)
                    .connect()
                    .await
                    .map_err(|e| HandshakeFailure::from_legacy("connect", &e))?;
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
                Ok((ClientStream::Legacy(Box::new(tls)), negotiated))
            }
        }
    }
}

/// Accepts any certificate, but still checks the handshake signatures, so the session keys are
/// bound to the certificate presented: opportunistic encryption, as MTAs do by default.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A client-side TLS connection from either engine.
pub type ClientStream<S> = EngineStream<tokio_rustls::client::TlsStream<S>, SslStream<S>>;
