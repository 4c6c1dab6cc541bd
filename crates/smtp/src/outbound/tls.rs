//! STARTTLS for deliveries: what each destination TLS setting asks for, with the connectors of
//! the Outbound SMTP TLS policy, and the CA certificates the `-Verify` settings check against.
//!
//! The reference appliance's semantics (destination controls): *Preferred* falls back to clear
//! text only when TLS fails **before** the server's `220` to STARTTLS (not offered, or refused);
//! once the handshake has begun a failure defers the message, it is never sent in clear text
//! after all. *Required* delivers nothing without TLS. *Preferred - Verify* delivers over TLS
//! even when the certificate does not verify (on a new connection without the check, since a
//! failed verification ends the handshake), and says so in the log. *Required - Verify* defers.

use std::path::Path;
use std::sync::Arc;

use openssl::x509::X509;
use postern_config::{DestinationTls, PeerCertificateChecks, ServiceTls};
use postern_tls::{TlsConnector, TlsError, Verification};

/// The CA certificates (DER) that `-Verify` destinations must chain to. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct CaRoots(Arc<Vec<Vec<u8>>>);

impl CaRoots {
    /// Where Debian, Buildroot's ca-certificates package and most distributions keep the system
    /// CA bundle.
    pub const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

    /// The certificates of a PEM bundle; what cannot be read is left out.
    pub fn from_pem(pem: &[u8]) -> Self {
        let ders = X509::stack_from_pem(pem)
            .map(|certs| certs.iter().filter_map(|c| c.to_der().ok()).collect())
            .unwrap_or_default();
        Self(Arc::new(ders))
    }

    /// The system CA set from [`Self::SYSTEM_BUNDLE`].
    pub fn system() -> std::io::Result<Self> {
        Self::load(Path::new(Self::SYSTEM_BUNDLE))
    }

    pub fn load(bundle: &Path) -> std::io::Result<Self> {
        std::fs::read(bundle).map(|pem| Self::from_pem(&pem))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The connectors of one Outbound SMTP TLS policy; rebuilt on each commit, and a delivery keeps
/// the one it started with.
#[derive(Debug, Clone, Default)]
pub struct OutboundTls {
    /// Encrypts without checking the certificate (Preferred, Required, and Preferred - Verify
    /// once verification failed). `None` when the policy could not be built: no STARTTLS.
    opportunistic: Option<TlsConnector>,
    /// Checks the chain against the CA roots and the name against the recipient domain, with
    /// the peer certificate checks of `sslconfig`.
    verifying: Option<TlsConnector>,
}

impl OutboundTls {
    /// The connectors for `policy`. An error means the engine refused the policy (which a commit
    /// would not let through); the caller logs it and delivers as if TLS were unavailable.
    pub fn new(
        policy: &ServiceTls,
        roots: &CaRoots,
        checks: PeerCertificateChecks,
    ) -> Result<Self, TlsError> {
        let verifying = |roots: Vec<Vec<u8>>| Verification::Roots { roots, checks };
        let opportunistic = TlsConnector::new(policy, &Verification::None)?;
        let verifying = match TlsConnector::new(policy, &verifying(roots.0.to_vec())) {
            Ok(c) => c,
            // One certificate of the bundle the engine cannot use must not cost the others.
            Err(_) => {
                let usable = roots
                    .0
                    .iter()
                    .filter(|der| {
                        TlsConnector::new(policy, &Verification::roots(vec![(*der).clone()]))
                            .is_ok()
                    })
                    .cloned()
                    .collect();
                TlsConnector::new(policy, &verifying(usable))?
            }
        };
        Ok(Self {
            opportunistic: Some(opportunistic),
            verifying: Some(verifying),
        })
    }

    /// The connector for a handshake that checks the certificate (`verify`) or does not.
    pub fn connector(&self, verify: bool) -> Option<&TlsConnector> {
        if verify {
            self.verifying.as_ref()
        } else {
            self.opportunistic.as_ref()
        }
    }
}

/// Whether the setting tries STARTTLS at all.
pub fn attempts_tls(setting: DestinationTls) -> bool {
    setting != DestinationTls::No
}

/// Whether the setting delivers nothing without TLS.
pub fn requires_tls(setting: DestinationTls) -> bool {
    matches!(
        setting,
        DestinationTls::Required | DestinationTls::RequiredVerify
    )
}

/// Whether the setting checks the certificate against the CA roots and the domain.
pub fn verifies(setting: DestinationTls) -> bool {
    matches!(
        setting,
        DestinationTls::PreferredVerify | DestinationTls::RequiredVerify
    )
}

/// Whether, with this setting, a failed verification lets the delivery go on over TLS without
/// the check.
pub fn unverified_fallback(setting: DestinationTls) -> bool {
    setting == DestinationTls::PreferredVerify
}
