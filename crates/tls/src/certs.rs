//! Certificates a service presents: made self-signed at first start or imported as PEM, checked
//! (the key signs the certificate, the chain is in order, it is in date), and held in the form
//! each engine needs.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509NameBuilder, X509VerifyResult};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

/// The kind of key of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    EcdsaP256,
    Rsa2048,
}

impl KeyKind {
    fn file_stem(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "factory-ecdsa",
            Self::Rsa2048 => "factory-rsa",
        }
    }

    /// The factory certificate's and key's files in `dir`.
    fn paths(self, dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let stem = self.file_stem();
        (
            dir.join(format!("{stem}.crt")),
            dir.join(format!("{stem}.key")),
        )
    }
}

/// A certificate chain (leaf first) with its private key.
#[derive(Clone)]
pub struct Identity {
    chain: Vec<X509>,
    key: PKey<Private>,
    rustls: Arc<CertifiedKey>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("subject", &self.subject())
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// Why a certificate cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    #[error("no certificate found in the PEM text")]
    NoCertificate,
    #[error("the certificate PEM cannot be read: {0}")]
    BadCertificate(String),
    #[error("the private key PEM cannot be read: {0}")]
    BadKey(String),
    #[error("the private key does not sign the certificate")]
    KeyMismatch,
    #[error(
        "certificate {position} of the chain is not issued by the one after it; order the chain leaf first"
    )]
    ChainOrder { position: usize },
    #[error("the certificate expired on {0}")]
    Expired(String),
    #[error("the certificate is not valid before {0}")]
    NotYetValid(String),
    #[error("only ECDSA and RSA keys are supported")]
    UnsupportedKey,
    #[error("{op} {path}: {reason}")]
    Io {
        op: &'static str,
        path: String,
        reason: String,
    },
    #[error("the TLS library refused the certificate: {0}")]
    Engine(String),
}

impl Identity {
    /// Reads a chain (leaf first, then intermediates) and its key from PEM, and checks them.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, CertificateError> {
        let chain = X509::stack_from_pem(chain_pem)
            .map_err(|e| CertificateError::BadCertificate(first_reason(&e)))?;
        if chain.is_empty() {
            return Err(CertificateError::NoCertificate);
        }
        let key = PKey::private_key_from_pem(key_pem)
            .map_err(|e| CertificateError::BadKey(first_reason(&e)))?;
        Self::new(chain, key)
    }

    fn new(chain: Vec<X509>, key: PKey<Private>) -> Result<Self, CertificateError> {
        if !matches!(key.id(), Id::EC | Id::RSA) {
            return Err(CertificateError::UnsupportedKey);
        }
        let leaf = &chain[0];
        let public = leaf
            .public_key()
            .map_err(|e| CertificateError::BadCertificate(first_reason(&e)))?;
        if !public.public_eq(&key) {
            return Err(CertificateError::KeyMismatch);
        }
        for (position, pair) in chain.windows(2).enumerate() {
            let ordered = pair[1].issued(&pair[0]) == X509VerifyResult::OK
                && pair[1]
                    .public_key()
                    .and_then(|k| pair[0].verify(&k))
                    .unwrap_or(false);
            if !ordered {
                return Err(CertificateError::ChainOrder {
                    position: position + 1,
                });
            }
        }
        let now =
            Asn1Time::days_from_now(0).map_err(|e| CertificateError::Engine(first_reason(&e)))?;
        if leaf.not_after() < now {
            return Err(CertificateError::Expired(leaf.not_after().to_string()));
        }
        if leaf.not_before() > now {
            return Err(CertificateError::NotYetValid(leaf.not_before().to_string()));
        }
        let der_chain = chain
            .iter()
            .map(|c| c.to_der().map(CertificateDer::from))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CertificateError::Engine(first_reason(&e)))?;
        let pkcs8 = key
            .private_key_to_pkcs8()
            .map_err(|e| CertificateError::Engine(first_reason(&e)))?;
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let rustls = CertifiedKey::from_der(
            der_chain,
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8)),
            &provider,
        )
        .map_err(|e| CertificateError::Engine(e.to_string()))?;
        Ok(Self {
            chain,
            key,
            rustls: Arc::new(rustls),
        })
    }

    /// A new self-signed certificate for `hostname`, valid for 3 years.
    pub fn self_signed(hostname: &str, kind: KeyKind) -> Result<Self, CertificateError> {
        let engine = |e: openssl::error::ErrorStack| CertificateError::Engine(first_reason(&e));
        let key = match kind {
            KeyKind::EcdsaP256 => {
                let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(engine)?;
                PKey::from_ec_key(EcKey::generate(&group).map_err(engine)?).map_err(engine)?
            }
            KeyKind::Rsa2048 => {
                PKey::from_rsa(Rsa::generate(2048).map_err(engine)?).map_err(engine)?
            }
        };
        let mut name = X509NameBuilder::new().map_err(engine)?;
        name.append_entry_by_nid(Nid::COMMONNAME, hostname)
            .map_err(engine)?;
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "Postern factory certificate")
            .map_err(engine)?;
        let name = name.build();
        let mut serial = BigNum::new().map_err(engine)?;
        serial
            .rand(127, openssl::bn::MsbOption::MAYBE_ZERO, false)
            .map_err(engine)?;
        let serial = Asn1Integer::from_bn(&serial).map_err(engine)?;
        let mut builder = X509::builder().map_err(engine)?;
        builder.set_version(2).map_err(engine)?;
        builder.set_serial_number(&serial).map_err(engine)?;
        builder.set_subject_name(&name).map_err(engine)?;
        builder.set_issuer_name(&name).map_err(engine)?;
        builder.set_pubkey(&key).map_err(engine)?;
        // Valid from a day ago: a clock that is slightly behind must not refuse it.
        let yesterday = Asn1Time::from_unix(unix_now() - 86_400).map_err(engine)?;
        builder.set_not_before(&yesterday).map_err(engine)?;
        let expiry = Asn1Time::days_from_now(3 * 365).map_err(engine)?;
        builder.set_not_after(&expiry).map_err(engine)?;
        let basic = BasicConstraints::new().build().map_err(engine)?;
        builder.append_extension(basic).map_err(engine)?;
        let mut usage = KeyUsage::new();
        usage.critical().digital_signature();
        if kind == KeyKind::Rsa2048 {
            usage.key_encipherment();
        }
        builder
            .append_extension(usage.build().map_err(engine)?)
            .map_err(engine)?;
        let eku = ExtendedKeyUsage::new()
            .server_auth()
            .client_auth()
            .build()
            .map_err(engine)?;
        builder.append_extension(eku).map_err(engine)?;
        let san = SubjectAlternativeName::new()
            .dns(hostname)
            .build(&builder.x509v3_context(None, None))
            .map_err(engine)?;
        builder.append_extension(san).map_err(engine)?;
        builder
            .sign(&key, MessageDigest::sha256())
            .map_err(engine)?;
        Self::new(vec![builder.build()], key)
    }

    /// The factory certificate of `kind` in `dir`, if it has been made.
    pub fn load_factory(dir: &Path, kind: KeyKind) -> Result<Option<Self>, CertificateError> {
        let (cert_path, key_path) = kind.paths(dir);
        if !(cert_path.exists() && key_path.exists()) {
            return Ok(None);
        }
        let chain = fs::read(&cert_path).map_err(io_error("read", &cert_path))?;
        let key = fs::read(&key_path).map_err(io_error("read", &key_path))?;
        Self::from_pem(&chain, &key).map(Some)
    }

    /// Makes a new factory certificate of `kind` for `hostname` in `dir` (the key readable by
    /// its owner only), replacing any there. An RSA key takes a few hundred milliseconds here
    /// and seconds on an emulated CPU.
    pub fn make_factory(
        dir: &Path,
        hostname: &str,
        kind: KeyKind,
    ) -> Result<Self, CertificateError> {
        let (cert_path, key_path) = kind.paths(dir);
        let identity = Self::self_signed(hostname, kind)?;
        // Keys live here: only the appliance's own user may list or read the directory.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error("create", dir))?;
        let (chain, key) = identity.to_pem()?;
        write_file(&key_path, &key, 0o600).map_err(io_error("write", &key_path))?;
        write_file(&cert_path, &chain, 0o644).map_err(io_error("write", &cert_path))?;
        Ok(identity)
    }

    /// The chain and the key as PEM.
    pub fn to_pem(&self) -> Result<(Vec<u8>, Vec<u8>), CertificateError> {
        let engine = |e: openssl::error::ErrorStack| CertificateError::Engine(first_reason(&e));
        let mut chain = Vec::new();
        for cert in &self.chain {
            chain.extend(cert.to_pem().map_err(engine)?);
        }
        let key = self.key.private_key_to_pem_pkcs8().map_err(engine)?;
        Ok((chain, key))
    }

    pub fn key_kind(&self) -> KeyKind {
        if self.key.id() == Id::RSA {
            KeyKind::Rsa2048
        } else {
            KeyKind::EcdsaP256
        }
    }

    /// When the leaf certificate expires, as OpenSSL prints it.
    pub fn not_after(&self) -> String {
        self.chain[0].not_after().to_string()
    }

    /// The leaf's subject, one line.
    pub fn subject(&self) -> String {
        self.chain[0]
            .subject_name()
            .entries()
            .filter_map(|e| {
                Some(format!(
                    "{}={}",
                    e.object().nid().short_name().ok()?,
                    e.data().to_string().ok()?
                ))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn rustls(&self) -> Arc<CertifiedKey> {
        self.rustls.clone()
    }

    pub(crate) fn chain(&self) -> &[X509] {
        &self.chain
    }

    pub(crate) fn key(&self) -> &PKey<Private> {
        &self.key
    }
}

/// The identities `service` presents under `config`: its assigned imported certificate, or else
/// the `factory` pair.
pub fn identities_for(
    config: &postern_config::Config,
    service: postern_config::TlsService,
    factory: &[Identity],
) -> Result<Vec<Identity>, CertificateError> {
    match config.certificates.for_service(service) {
        Some((_, cert)) => Ok(vec![Identity::from_pem(
            cert.chain_pem.as_bytes(),
            cert.key_pem.as_bytes(),
        )?]),
        None => Ok(factory.to_vec()),
    }
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(tmp, path)
}

fn io_error(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CertificateError {
    let path = path.display().to_string();
    move |e| CertificateError::Io {
        op,
        path,
        reason: e.to_string(),
    }
}

fn first_reason(e: &openssl::error::ErrorStack) -> String {
    e.errors().first().and_then(|e| e.reason()).map_or_else(
        || e.to_string(),
        |r| r.to_ascii_lowercase().replace('_', " "),
    )
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

#[cfg(test)]
mod tests;
