//! The shapes of generations written by older schemas, read and converted to today's model.
//! Only what changed is spelled out again; every part that kept its shape is today's type.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Commit, Generation};
use crate::certs::CertificateSettings;
use crate::mail::DeliverySettings;
use crate::model::{Config, Listeners, SystemSettings};
use crate::tls::{OtherClientTls, PeerCertificateChecks, ServiceTls, TlsSettings};
use crate::users::{AdminUser, UserName};

/// Schema 1: before `tls.peer_certificates`.
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
    users: BTreeMap<UserName, AdminUser>,
}

#[derive(Deserialize)]
struct TlsSettingsV1 {
    gui_https: ServiceTls,
    inbound_smtp: ServiceTls,
    outbound_smtp: ServiceTls,
    other_client: OtherClientTls,
}

impl From<GenerationV1> for Generation {
    fn from(old: GenerationV1) -> Self {
        let ConfigV1 {
            system,
            tls,
            listeners,
            delivery,
            certificates,
            users,
        } = old.config;
        Self {
            commit: old.commit,
            config: Config {
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
                users,
            },
        }
    }
}
