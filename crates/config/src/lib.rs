//! The configuration of a Postern appliance: the model, its rules, the factory defaults, and the
//! store that keeps every committed generation.
//!
//! # Layout
//!
//! - [`tls`]: the seed article's TLS rules. [`ProtocolRange`] can only hold a contiguous range of
//!   TLS v1.0–v1.3 and is built from `sslconfig` menu selections (`1-3`, `1,2`, `2`); cipher
//!   strings; the fixed TLS 1.3 suites.
//! - [`certs`]: imported certificates and which one each TLS service presents.
//! - [`users`]: administrator accounts and their argon2 password hashes.
//! - [`mail`]: mail flow settings: listener TLS, the Recipient Access Table, limits, SMTP
//!   routes and destination controls.
//! - [`model`]: [`Config`], the whole configuration, with the rules that span settings and the
//!   factory defaults.
//! - [`diff`]: the per-setting summary of a change (for the journal) and the three-way merge
//!   that lets several sessions hold pending changes at once.
//! - [`store`]: generations in `DATA/config`, written crash-safe, with a journal; the only I/O in
//!   this crate.

pub mod certs;
pub mod diff;
pub mod mail;
pub mod model;
pub mod store;
pub mod tls;
pub mod users;

pub use certs::{CertName, CertificateSettings, ImportedCertificate};
pub use mail::{
    DeliverySettings, DestinationControl, DestinationTls, DomainPattern, ListenerLimits,
    ListenerTls, RecipientAction, RouteHost,
};
pub use model::{Config, ConfigError, FactoryListeners, Hostname, ListenerName, SmtpListener};
pub use store::{Commit, Generation, Store, StoreError, StoreWarning};
pub use tls::{
    CipherString, PeerCertificateChecks, ProtocolRange, SelectionError, ServiceTls, TlsService,
    TlsSettings, TlsVersion,
};
pub use users::{AdminUser, LoginHash, PasswordHash, Role, UserName};
