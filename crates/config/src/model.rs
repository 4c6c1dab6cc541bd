//! The whole configuration of an appliance, its cross-setting rules and its factory defaults.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::certs::CertificateSettings;
use crate::mail::{
    DeliverySettings, DomainPattern, ListenerLimits, ListenerTls, RecipientAction, lookup,
};
use crate::tls::TlsSettings;
use crate::users::{AdminUser, PasswordHash, Role, UserName};

/// Everything an administrator configures. One value of this type is one generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub system: SystemSettings,
    pub tls: TlsSettings,
    pub listeners: Listeners,
    pub delivery: DeliverySettings,
    pub certificates: CertificateSettings,
    pub users: BTreeMap<UserName, AdminUser>,
}

/// Identity of the appliance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemSettings {
    pub hostname: Hostname,
}

/// Where the services listen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listeners {
    /// SMTP listeners by name (`IncomingMail`).
    pub smtp: BTreeMap<ListenerName, SmtpListener>,
    /// The Classic web UI (HTTPS).
    pub classic_ui: SocketAddr,
    /// The next-generation UI and the REST API (HTTPS).
    pub ngui: SocketAddr,
}

/// An SMTP listener: where it accepts connections, its TLS, the recipient domains it accepts
/// mail for, and its limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpListener {
    pub address: SocketAddr,
    pub tls: ListenerTls,
    /// The Recipient Access Table. A recipient whose domain no entry accepts is refused
    /// (`550 5.7.1`): a fresh appliance relays for nobody.
    pub recipient_access: BTreeMap<DomainPattern, RecipientAction>,
    pub limits: ListenerLimits,
}

impl SmtpListener {
    /// A listener on `address` with the factory settings: TLS preferred, an empty RAT.
    pub fn new(address: SocketAddr) -> Self {
        Self {
            address,
            tls: ListenerTls::Preferred,
            recipient_access: BTreeMap::new(),
            limits: ListenerLimits::default(),
        }
    }

    /// Whether the RAT accepts mail for `domain`.
    pub fn accepts(&self, domain: &str) -> bool {
        lookup(&self.recipient_access, domain)
            .is_some_and(|(_, action)| *action == RecipientAction::Accept)
    }
}

/// The addresses of a fresh appliance's listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactoryListeners {
    pub smtp: SocketAddr,
    pub classic_ui: SocketAddr,
    pub ngui: SocketAddr,
}

impl FactoryListeners {
    /// Host mode: unprivileged ports on loopback.
    pub const HOST: Self = Self {
        smtp: SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 2525),
        classic_ui: SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8443),
        ngui: SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4431),
    };

    /// The appliance: the standard ports on every interface.
    pub const APPLIANCE: Self = Self {
        smtp: SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 25),
        classic_ui: SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 443),
        ngui: SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 4431),
    };
}

impl Config {
    /// The name of the first administrator account.
    pub const FIRST_ADMIN: &str = "admin";
    /// The name of the factory SMTP listener.
    pub const FIRST_LISTENER: &str = "IncomingMail";

    /// The configuration of a fresh appliance: the seed's TLS defaults, one SMTP listener, and
    /// the `admin` account with the given password.
    pub fn factory(hostname: Hostname, listeners: FactoryListeners, admin: PasswordHash) -> Self {
        let admin_user = AdminUser {
            full_name: "Administrator".to_owned(),
            role: Role::Administrator,
            password: admin,
            login_password: None,
        };
        Self {
            system: SystemSettings { hostname },
            tls: TlsSettings::factory(),
            listeners: Listeners {
                smtp: BTreeMap::from([(
                    ListenerName(Self::FIRST_LISTENER.to_owned()),
                    SmtpListener::new(listeners.smtp),
                )]),
                classic_ui: listeners.classic_ui,
                ngui: listeners.ngui,
            },
            delivery: DeliverySettings::factory(),
            certificates: CertificateSettings::default(),
            users: BTreeMap::from([(UserName(Self::FIRST_ADMIN.to_owned()), admin_user)]),
        }
    }

    /// Checks the rules that span several settings (each setting's own rules are in its type).
    /// A configuration that fails here is never committed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.users.values().any(|u| u.role == Role::Administrator) {
            return Err(ConfigError::NoAdministrator);
        }
        let mut bound: Vec<(String, SocketAddr)> = self
            .listeners
            .smtp
            .iter()
            .map(|(name, l)| (format!("SMTP listener {name}"), l.address))
            .collect();
        bound.push(("Classic UI".to_owned(), self.listeners.classic_ui));
        bound.push(("NGUI".to_owned(), self.listeners.ngui));
        for (i, (a_name, a)) in bound.iter().enumerate() {
            for (b_name, b) in &bound[i + 1..] {
                let overlap = a.port() == b.port()
                    && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified());
                if overlap {
                    return Err(ConfigError::AddressInUse {
                        first: a_name.clone(),
                        second: b_name.clone(),
                        address: *b,
                    });
                }
            }
            if a.port() == 0 {
                return Err(ConfigError::NoPort(a_name.clone()));
            }
        }
        for (name, listener) in &self.listeners.smtp {
            listener
                .limits
                .check()
                .map_err(|e| ConfigError::Mail(format!("SMTP listener {name}: {e}")))?;
        }
        for (service, name) in &self.certificates.assigned {
            if !self.certificates.imported.contains_key(name) {
                return Err(ConfigError::Mail(format!(
                    "{service} is assigned certificate {name}, which is not imported"
                )));
            }
        }
        for (domain, destination) in &self.delivery.destinations {
            if !(1..=1000).contains(&destination.max_concurrency) {
                return Err(ConfigError::Mail(format!(
                    "destination {domain}: max concurrency must be from 1 to 1000, not {}",
                    destination.max_concurrency
                )));
            }
        }
        Ok(())
    }
}

/// The appliance's fully qualified host name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Hostname(String);

impl Hostname {
    pub fn new(name: &str) -> Result<Self, ConfigError> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if is_dns_name(&name) {
            Ok(Self(name))
        } else {
            Err(ConfigError::BadHostname(name))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `name` is a DNS name: dot-separated labels of 1–63 letters, digits and inner
/// hyphens, 253 characters at most.
pub(crate) fn is_dns_name(name: &str) -> bool {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    name.len() <= 253 && name.split('.').all(label_ok)
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Hostname {
    type Error = ConfigError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<Hostname> for String {
    fn from(h: Hostname) -> String {
        h.0
    }
}

/// A listener's name: 1–64 letters, digits, `_` or `-` (`IncomingMail`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ListenerName(String);

impl ListenerName {
    pub fn new(name: &str) -> Result<Self, ConfigError> {
        let ok = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(ConfigError::BadListenerName(name.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ListenerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ListenerName {
    type Error = ConfigError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<ListenerName> for String {
    fn from(n: ListenerName) -> String {
        n.0
    }
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("at least one user must have the Administrator role")]
    NoAdministrator,
    #[error("{first} and {second} both use {address}")]
    AddressInUse {
        first: String,
        second: String,
        address: SocketAddr,
    },
    #[error("{0} has no port")]
    NoPort(String),
    #[error("'{0}' is not a valid host name")]
    BadHostname(String),
    #[error("'{0}' is not a valid listener name: use letters, digits, '_' or '-'")]
    BadListenerName(String),
    #[error("{0}")]
    Mail(String),
    /// A setting that could not be read back into the model (after a merge, or from JSON).
    #[error("invalid setting: {0}")]
    Invalid(String),
}

/// A valid configuration for tests, with a fixed password hash: tests must not pay for argon2
/// each time they need a configuration.
#[cfg(test)]
pub(crate) fn sample() -> Config {
    let hash = PasswordHash::try_from(
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$X4hW/0kb6YyM8qX8oaZWmbYQJYTCKwMeLhxLrbWT5rU"
            .to_owned(),
    )
    .unwrap();
    Config::factory(
        Hostname::new("mail.example.com").unwrap(),
        FactoryListeners::HOST,
        hash,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factory_config_is_valid() {
        let c = sample();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.listeners.smtp.len(), 1);
        assert_eq!(c.listeners.ngui.port(), 4431);
    }

    #[test]
    fn overlapping_listeners_are_refused() {
        let mut c = sample();
        c.listeners.ngui = "0.0.0.0:8443".parse().unwrap();
        assert!(matches!(
            c.validate(),
            Err(ConfigError::AddressInUse { .. })
        ));
        c.listeners.ngui = "127.0.0.2:8443".parse().unwrap();
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn an_administrator_must_remain() {
        let mut c = sample();
        c.users.clear();
        assert_eq!(c.validate(), Err(ConfigError::NoAdministrator));
    }

    #[test]
    fn hostnames() {
        assert_eq!(
            Hostname::new("Mail.Example.COM.").unwrap().as_str(),
            "mail.example.com"
        );
        for bad in ["", "a..b", "-a.b", "a_b.c", &"a".repeat(64)] {
            assert!(Hostname::new(bad).is_err(), "{bad}");
        }
    }
}
