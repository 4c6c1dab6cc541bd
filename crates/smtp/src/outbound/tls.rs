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
use std::sync::{Arc, OnceLock};

use openssl::x509::X509;
use postern_config::{DestinationTls, PeerCertificateChecks, ServiceTls};
use postern_tls::{TlsConnector, TlsError, Verification};

/// The CA certificates that `-Verify` destinations must chain to: a PEM bundle, read into DER
/// the first time a verifying connection needs it (the system bundle holds some 150
/// certificates, whose parsing would slow every start under emulation). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct CaRoots(Arc<Bundle>);

#[derive(Debug, Default)]
struct Bundle {
    pem: Vec<u8>,
    ders: OnceLock<Vec<Vec<u8>>>,
}

impl CaRoots {
    /// Where Debian, Buildroot's ca-certificates package and most distributions keep the system
    /// CA bundle (the appliance image too).
    pub const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

    /// The certificates of a PEM bundle; what cannot be read is left out.
    pub fn from_pem(pem: &[u8]) -> Self {
        Self(Arc::new(Bundle {
            pem: pem.to_vec(),
            ders: OnceLock::new(),
        }))
    }

    /// The system CA set from [`Self::SYSTEM_BUNDLE`].
    pub fn system() -> std::io::Result<Self> {
        Self::load(Path::new(Self::SYSTEM_BUNDLE))
    }

    pub fn load(bundle: &Path) -> std::io::Result<Self> {
        std::fs::read(bundle).map(|pem| Self::from_pem(&pem))
    }

    /// Whether the bundle has a PEM certificate at all, without reading them.
    pub fn has_pem_certificate(&self) -> bool {
        let marker = b"-----BEGIN CERTIFICATE-----";
        self.0.pem.windows(marker.len()).any(|w| w == marker)
    }

    /// The certificates, as DER (read from the PEM on the first call).
    fn ders(&self) -> &[Vec<u8>] {
        self.0.ders.get_or_init(|| {
            X509::stack_from_pem(&self.0.pem)
                .map(|certs| certs.iter().filter_map(|c| c.to_der().ok()).collect())
                .unwrap_or_default()
        })
    }

    pub fn len(&self) -> usize {
        self.ders().len()
    }

    pub fn is_empty(&self) -> bool {
        self.ders().is_empty()
    }

    /// Whether the PEM has been read into certificates yet.
    #[cfg(test)]
    pub(crate) fn is_read(&self) -> bool {
        self.0.ders.get().is_some()
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
    /// the peer certificate checks of `sslconfig`: built when a `-Verify` delivery first needs
    /// it.
    verifying: Option<Arc<Verifying>>,
}

/// What the verifying connector is built from, and the connector once built (`None` when the
/// engine refused it).
#[derive(Debug)]
struct Verifying {
    policy: ServiceTls,
    roots: CaRoots,
    checks: PeerCertificateChecks,
    connector: OnceLock<Option<TlsConnector>>,
}

impl Verifying {
    fn build(&self) -> Option<TlsConnector> {
        let verifying = |roots: Vec<Vec<u8>>| Verification::Roots {
            roots,
            checks: self.checks,
        };
        let ders = self.roots.ders();
        TlsConnector::new(&self.policy, &verifying(ders.to_vec()))
            .or_else(|_| {
                // One certificate of the bundle the engine cannot use must not cost the others.
                let usable = ders
                    .iter()
                    .filter(|der| {
                        TlsConnector::new(&self.policy, &Verification::roots(vec![(*der).clone()]))
                            .is_ok()
                    })
                    .cloned()
                    .collect();
                TlsConnector::new(&self.policy, &verifying(usable))
            })
            .ok()
    }
}

impl OutboundTls {
    /// The connectors for `policy`. An error means the engine refused the policy (which a commit
    /// would not let through); the caller logs it and delivers as if TLS were unavailable.
    pub fn new(
        policy: &ServiceTls,
        roots: &CaRoots,
        checks: PeerCertificateChecks,
    ) -> Result<Self, TlsError> {
        let opportunistic = TlsConnector::new(policy, &Verification::None)?;
        Ok(Self {
            opportunistic: Some(opportunistic),
            verifying: Some(Arc::new(Verifying {
                policy: policy.clone(),
                roots: roots.clone(),
                checks,
                connector: OnceLock::new(),
            })),
        })
    }

    /// The connector for a handshake that checks the certificate (`verify`) or does not.
    pub fn connector(&self, verify: bool) -> Option<&TlsConnector> {
        if verify {
            let verifying = self.verifying.as_ref()?;
            verifying
                .connector
                .get_or_init(|| verifying.build())
                .as_ref()
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
