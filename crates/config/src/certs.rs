//! Certificates an administrator imported, and which one each TLS service presents.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::tls::TlsService;

/// Imported certificates and their assignment to services. A service without an assignment
/// presents the factory self-signed certificates made at first start.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CertificateSettings {
    pub imported: BTreeMap<CertName, ImportedCertificate>,
    pub assigned: BTreeMap<TlsService, CertName>,
}

/// A certificate chain (leaf first) and its private key, as PEM. They live in the configuration
/// so that a rollback brings back the certificate with the settings that name it; the
/// generations are readable by the supervisor's user only, and summaries never show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedCertificate {
    pub chain_pem: String,
    pub key_pem: String,
}

impl CertificateSettings {
    /// The imported certificate `service` presents, if one is assigned.
    pub fn for_service(&self, service: TlsService) -> Option<(&CertName, &ImportedCertificate)> {
        let name = self.assigned.get(&service)?;
        self.imported.get_key_value(name)
    }
}

/// A certificate's name: 1–64 letters, digits, `.`, `_` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CertName(String);

impl CertName {
    /// The word that stands for the factory certificates in assignments.
    pub const FACTORY: &str = "factory";

    pub fn new(name: &str) -> Result<Self, CertNameError> {
        let ok = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            && !name.eq_ignore_ascii_case(Self::FACTORY);
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(CertNameError(name.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CertName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CertName {
    type Error = CertNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<CertName> for String {
    fn from(n: CertName) -> String {
        n.0
    }
}

/// A name that cannot name a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a certificate name: use 1 to 64 letters, digits, '.', '_' or '-' ('factory' \
     stands for the factory certificates)"
)]
pub struct CertNameError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_assignments() {
        assert!(CertName::new("mail-2026.example").is_ok());
        for bad in ["", "a b", "Factory", &"x".repeat(65)] {
            assert!(CertName::new(bad).is_err(), "{bad}");
        }
        let name = CertName::new("corp").unwrap();
        let mut settings = CertificateSettings::default();
        settings.imported.insert(
            name.clone(),
            ImportedCertificate {
                chain_pem: "chain".into(),
                key_pem: "key".into(),
            },
        );
        settings
            .assigned
            .insert(TlsService::InboundSmtp, name.clone());
        assert_eq!(
            settings.for_service(TlsService::InboundSmtp).map(|c| c.0),
            Some(&name)
        );
        assert!(settings.for_service(TlsService::GuiHttps).is_none());
    }
}
