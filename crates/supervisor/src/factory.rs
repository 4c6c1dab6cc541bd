//! The factory certificates, ECDSA P-256 and RSA 2048, self-signed for the hostname: the
//! supervisor makes them in `DATA/certs` (which only root reads) and hands them to the services
//! over their subscriptions. The ECDSA one is made before any service starts; the RSA one,
//! whose key takes seconds on a slow or emulated CPU, once they are ready and at the lowest
//! priority, so that a first boot serves mail that much sooner. Until it is made every client
//! is served the ECDSA certificate; then the services present the pair to new connections.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postern_control::FactoryCertificate;
use postern_tls::{CertificateError, Identity, KeyKind};

use crate::owner::ConfigOwner;
use crate::syslog::SystemLog;

/// The factory certificates in `dir`, the ECDSA one made first when missing, and whether the
/// RSA one is still to be made ([`make_rsa`]).
pub(crate) fn load(
    dir: &Path,
    hostname: &str,
    log: &SystemLog,
) -> Result<(Vec<FactoryCertificate>, bool), CertificateError> {
    let ecdsa = match Identity::load_factory(dir, KeyKind::EcdsaP256)? {
        Some(identity) => identity,
        None => {
            let identity = Identity::make_factory(dir, hostname, KeyKind::EcdsaP256)?;
            log.info(&format!(
                "Factory ECDSA P-256 certificate made for {hostname}"
            ));
            identity
        }
    };
    let mut certificates = vec![pem(&ecdsa)?];
    let rsa = Identity::load_factory(dir, KeyKind::Rsa2048)?;
    let missing = rsa.is_none();
    if let Some(rsa) = rsa {
        certificates.push(pem(&rsa)?);
    }
    Ok((certificates, missing))
}

/// How long the RSA key waits for the services to be ready before it is made anyway.
const READY_WAIT: Duration = Duration::from_secs(30);

/// Makes the factory RSA certificate once the services are ready, on a thread of its own at the
/// lowest CPU priority, then gives it to them.
pub(crate) fn make_rsa(owner: Arc<ConfigOwner>, dir: PathBuf, hostname: String) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(READY_WAIT, owner.all_ready()).await;
        let log = owner.log().clone();
        let spawned = std::thread::Builder::new()
            .name("factory-rsa".into())
            .spawn(move || {
                // Mail and the administrator's sessions come first (nice 19 for this thread).
                let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
                make(&owner, &dir, &hostname);
            });
        if let Err(e) = spawned {
            log.critical(&format!(
                "The factory RSA certificate cannot be made (no thread: {e}); the services \
                 present the ECDSA one only"
            ));
        }
    });
}

fn make(owner: &ConfigOwner, dir: &Path, hostname: &str) {
    let started = Instant::now();
    let made =
        Identity::make_factory(dir, hostname, KeyKind::Rsa2048).and_then(|identity| pem(&identity));
    match made {
        Ok(certificate) => {
            owner.log().info(&format!(
                "Factory RSA 2048 certificate made for {hostname} in {} ms; the services present \
                 it to new connections",
                started.elapsed().as_millis()
            ));
            owner.add_factory_certificate(certificate);
        }
        Err(e) => owner.log().critical(&format!(
            "The factory RSA certificate cannot be made ({e}); the services present the ECDSA \
             one only"
        )),
    }
}

fn pem(identity: &Identity) -> Result<FactoryCertificate, CertificateError> {
    let (chain, key) = identity.to_pem()?;
    let text = |bytes: Vec<u8>| {
        String::from_utf8(bytes)
            .map_err(|_| CertificateError::Engine("PEM that is not text".into()))
    };
    Ok(FactoryCertificate {
        chain_pem: text(chain)?,
        key_pem: text(key)?,
    })
}
