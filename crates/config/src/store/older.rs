//! The shapes of generations written by older schemas, read and converted to today's model.
//! Only what changed is spelled out again; every part that kept its shape is today's type.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Commit, Generation};
use crate::certs::CertificateSettings;
use crate::mail::DeliverySettings;
use crate::model::{Config, Listeners, SystemSettings};
use crate::tls::{OtherClientTls, PeerCertificateChecks, ServiceTls, TlsSettings};
use crate::users::{AdminUser, PasswordHash, Role, UserName};

/// Schema 1: before `tls.peer_certificates` and `users.*.login_password`.
#[derive(Deserialize)]
pub(super) struct GenerationV1 {
    commit: Commit,
    config: ConfigV1,
}

#[derive(Deserialize)]
struct ConfigV1 {
    system: SystemSettings,
    tls: TlsSettingsV1,
    listeners: Listeners,
    delivery: DeliverySettings,
    certificates: CertificateSettings,
    users: BTreeMap<UserName, AdminUserV2>,
}

#[derive(Deserialize)]
struct TlsSettingsV1 {
    gui_https: ServiceTls,
    inbound_smtp: ServiceTls,
    outbound_smtp: ServiceTls,
    other_client: OtherClientTls,
}

/// Schema 2: before `users.*.login_password`.
#[derive(Deserialize)]
pub(super) struct GenerationV2 {
    commit: Commit,
    config: ConfigV2,
}

#[derive(Deserialize)]
struct ConfigV2 {
    system: SystemSettings,
    tls: TlsSettings,
    listeners: Listeners,
    delivery: DeliverySettings,
    certificates: CertificateSettings,
    users: BTreeMap<UserName, AdminUserV2>,
}

/// A user of schemas 1 and 2.
#[derive(Deserialize)]
struct AdminUserV2 {
    full_name: String,
    role: Role,
    password: PasswordHash,
}

impl From<AdminUserV2> for AdminUser {
    fn from(old: AdminUserV2) -> Self {
        Self {
            full_name: old.full_name,
            role: old.role,
            password: old.password,
            // The password itself is not known: the system login stays as it was.
            login_password: None,
        }
    }
}

fn users(old: BTreeMap<UserName, AdminUserV2>) -> BTreeMap<UserName, AdminUser> {
    old.into_iter().map(|(name, u)| (name, u.into())).collect()
}

impl From<GenerationV1> for Generation {
    fn from(old: GenerationV1) -> Self {
        let ConfigV1 {
            system,
            tls,
            listeners,
            delivery,
            certificates,
            users: old_users,
        } = old.config;
        Self::from(GenerationV2 {
            commit: old.commit,
            config: ConfigV2 {
                system,
                tls: TlsSettings {
                    gui_https: tls.gui_https,
                    inbound_smtp: tls.inbound_smtp,
                    outbound_smtp: tls.outbound_smtp,
                    other_client: tls.other_client,
                    // Schema 1 had no such checks: the peer was checked as with both off.
                    peer_certificates: PeerCertificateChecks::default(),
                },
                listeners,
                delivery,
                certificates,
                users: old_users,
            },
        })
    }
}

impl From<GenerationV2> for Generation {
    fn from(old: GenerationV2) -> Self {
        let ConfigV2 {
            system,
            tls,
            listeners,
            delivery,
            certificates,
            users: old_users,
        } = old.config;
        Self {
            commit: old.commit,
            config: Config {
                system,
                tls,
                listeners,
                delivery,
                certificates,
                users: users(old_users),
            },
        }
    }
}
