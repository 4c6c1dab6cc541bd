//! The SSL Configuration settings as the web pages and the REST API show and change them: the
//! protocols of each service as a set of versions (which must form one contiguous range) and
//! the TLS ≤ 1.2 cipher strings. Both the Classic UI form and `PUT /api/v1/config/ssl` go
//! through [`SslChange::apply`], so they refuse the same things with the same words.

use postern_config::tls::TLS13_CIPHER_SUITES;
use postern_config::{CipherString, Config, ProtocolRange, TlsService, TlsVersion};
use postern_tls::ciphers::for_range;
use serde::{Deserialize, Serialize};

use crate::state::Refusal;

/// The services with protocols and a cipher string of their own, in the page's order.
pub(crate) const SERVICES: [TlsService; 3] = [
    TlsService::GuiHttps,
    TlsService::InboundSmtp,
    TlsService::OutboundSmtp,
];

/// The settings of `GET /api/v1/config/ssl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SslSettings {
    pub(crate) gui_https: ServiceSettings,
    pub(crate) inbound_smtp: ServiceSettings,
    pub(crate) outbound_smtp: ServiceSettings,
    pub(crate) other_client: OtherSettings,
    /// The fixed TLS v1.3 suites, in server preference order; no setting changes them.
    pub(crate) tls13_ciphers: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ServiceSettings {
    /// Method tokens, oldest first: `["tlsv1_1", "tlsv1_2"]`.
    pub(crate) protocols: Vec<String>,
    /// As `sslconfig` prints it: `tlsv1_1tlsv1_2`.
    pub(crate) method: String,
    pub(crate) ciphers: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OtherSettings {
    pub(crate) tls_v1_0: bool,
    pub(crate) protocols: Vec<String>,
}

impl SslSettings {
    pub(crate) fn of(config: &Config) -> Self {
        let service = |s: TlsService| {
            let range = config.tls.protocols(s);
            ServiceSettings {
                protocols: range.versions().map(|v| v.token().to_owned()).collect(),
                method: range.method_token(),
                ciphers: config
                    .tls
                    .service(s)
                    .map(|t| t.ciphers.as_str().to_owned())
                    .unwrap_or_default(),
            }
        };
        Self {
            gui_https: service(TlsService::GuiHttps),
            inbound_smtp: service(TlsService::InboundSmtp),
            outbound_smtp: service(TlsService::OutboundSmtp),
            other_client: OtherSettings {
                tls_v1_0: config.tls.other_client.tls_v1_0,
                protocols: config
                    .tls
                    .other_client
                    .protocols()
                    .versions()
                    .map(|v| v.token().to_owned())
                    .collect(),
            },
            tls13_ciphers: TLS13_CIPHER_SUITES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

/// A change of the SSL settings: what is given changes, what is left out stays.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SslChange {
    #[serde(default)]
    pub(crate) gui_https: Option<ServiceChange>,
    #[serde(default)]
    pub(crate) inbound_smtp: Option<ServiceChange>,
    #[serde(default)]
    pub(crate) outbound_smtp: Option<ServiceChange>,
    #[serde(default)]
    pub(crate) other_client: Option<OtherChange>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceChange {
    /// Method tokens (`tlsv1_3`) of the versions to enable, in any order.
    #[serde(default)]
    pub(crate) protocols: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) ciphers: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OtherChange {
    pub(crate) tls_v1_0: bool,
}

impl SslChange {
    fn service(&self, service: TlsService) -> Option<&ServiceChange> {
        match service {
            TlsService::GuiHttps => self.gui_https.as_ref(),
            TlsService::InboundSmtp => self.inbound_smtp.as_ref(),
            TlsService::OutboundSmtp => self.outbound_smtp.as_ref(),
            TlsService::OtherClient => None,
        }
    }

    /// The change the Classic UI's Edit Settings form asks for: `gui-tls13=on`,
    /// `gui-ciphers=…`, `other-tls10=on` (an unticked box is simply absent).
    pub(crate) fn from_form(fields: &[(String, String)]) -> Self {
        let has = |name: &str| fields.iter().any(|(k, _)| k == name);
        let service = |service: TlsService| {
            let key = service.keyword();
            let protocols = TlsVersion::MENU
                .into_iter()
                .filter(|v| has(&format!("{key}-{}", box_suffix(*v))))
                .map(|v| v.token().to_owned())
                .collect();
            let ciphers = fields
                .iter()
                .find(|(k, _)| *k == format!("{key}-ciphers"))
                .map(|(_, v)| v.trim().to_owned());
            Some(ServiceChange {
                protocols: Some(protocols),
                ciphers,
            })
        };
        Self {
            gui_https: service(TlsService::GuiHttps),
            inbound_smtp: service(TlsService::InboundSmtp),
            outbound_smtp: service(TlsService::OutboundSmtp),
            other_client: Some(OtherChange {
                tls_v1_0: has("other-tls10"),
            }),
        }
    }

    /// Applies the change to `config`, or refuses it without changing anything.
    pub(crate) fn apply(&self, config: &mut Config) -> Result<(), Refusal> {
        let mut next = config.tls.clone();
        for service in SERVICES {
            let Some(change) = self.service(service) else {
                continue;
            };
            let label = service.label();
            let range = match &change.protocols {
                Some(tokens) => range_of(tokens).map_err(|e| Refusal(format!("{label}: {e}")))?,
                None => next.protocols(service),
            };
            next.set_protocols(service, range)
                .map_err(|e| Refusal(format!("{label}: {e}.")))?;
            let settings = next
                .service_mut(service)
                .ok_or_else(|| Refusal(format!("{label} has no cipher setting.")))?;
            if let Some(text) = &change.ciphers {
                settings.ciphers = CipherString::new(text)
                    .map_err(|e| Refusal(format!("{label} ciphers: {e}.")))?;
            }
            // Only versions up to TLS v1.2 use the string; TLS v1.3 alone needs none of it.
            if range.oldest() != TlsVersion::Tls1_3 {
                for_range(&settings.ciphers, range)
                    .map_err(|e| Refusal(format!("{label} ciphers: {e}.")))?;
            }
        }
        if let Some(other) = &self.other_client {
            next.other_client.tls_v1_0 = other.tls_v1_0;
        }
        config.tls = next;
        Ok(())
    }
}

/// The end of a checkbox's id: `tls13` for TLS v1.3.
pub(crate) fn box_suffix(v: TlsVersion) -> &'static str {
    match v {
        TlsVersion::Tls1_3 => "tls13",
        TlsVersion::Tls1_2 => "tls12",
        TlsVersion::Tls1_1 => "tls11",
        TlsVersion::Tls1_0 => "tls10",
    }
}

/// The range of the versions named by `tokens`; refused when empty, unknown or not contiguous
/// (with the same reason the CLI gives).
pub(crate) fn range_of(tokens: &[String]) -> Result<ProtocolRange, String> {
    if tokens.is_empty() {
        return Err("select at least one TLS version.".to_owned());
    }
    let mut numbers = Vec::new();
    for token in tokens {
        let version = TlsVersion::MENU
            .into_iter()
            .find(|v| v.token() == token)
            .ok_or_else(|| {
                format!("'{token}' is not a TLS version; use tlsv1_0, tlsv1_1, tlsv1_2 or tlsv1_3.")
            })?;
        numbers.push(version.menu_number().to_string());
    }
    ProtocolRange::from_selection(&numbers.join(",")).map_err(|e| format!("{e}."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_config::{FactoryListeners, Hostname, PasswordHash};

    fn config() -> Config {
        Config::factory(
            Hostname::new("mail.example.com").unwrap(),
            FactoryListeners::HOST,
            PasswordHash::new("password-123").unwrap(),
        )
    }

    fn tokens(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_contiguous_set_becomes_a_range_and_a_gap_is_refused_with_the_reason() {
        let range = range_of(&tokens(&["tlsv1_3", "tlsv1_1", "tlsv1_2"])).unwrap();
        assert_eq!(range.method_token(), "tlsv1_1tlsv1_2tlsv1_3");
        let gap = range_of(&tokens(&["tlsv1_3", "tlsv1_1"])).unwrap_err();
        assert!(
            gap.contains("TLS v1.3 cannot be enabled with TLS v1.1"),
            "{gap}"
        );
        assert!(range_of(&[]).is_err());
        assert!(range_of(&tokens(&["sslv3"])).unwrap_err().contains("sslv3"));
    }

    #[test]
    fn the_form_sets_every_service_and_a_refusal_changes_nothing() {
        let mut c = config();
        let form = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        let ok = SslChange::from_form(&form(&[
            ("gui-tls13", "on"),
            ("gui-tls12", "on"),
            ("gui-ciphers", "ECDHE+AESGCM"),
            ("inbound-tls12", "on"),
            ("outbound-tls12", "on"),
            ("outbound-tls11", "on"),
            ("other-tls10", "on"),
        ]));
        ok.apply(&mut c).unwrap();
        assert_eq!(c.tls.gui_https.protocols.method_token(), "tlsv1_2tlsv1_3");
        assert_eq!(c.tls.gui_https.ciphers.as_str(), "ECDHE+AESGCM");
        assert_eq!(c.tls.inbound_smtp.protocols.method_token(), "tlsv1_2");
        assert!(c.tls.other_client.tls_v1_0);

        let before = c.clone();
        let gap = SslChange::from_form(&form(&[("gui-tls13", "on"), ("gui-tls11", "on")]));
        let refusal = gap.apply(&mut c).unwrap_err();
        assert!(refusal.0.starts_with("GUI HTTPS: "), "{refusal}");
        assert_eq!(c, before);

        let nothing = SslChange::from_form(&form(&[
            ("gui-tls12", "on"),
            ("gui-ciphers", "aNULL:!aNULL"),
            ("inbound-tls12", "on"),
            ("outbound-tls12", "on"),
        ]));
        let refusal = nothing.apply(&mut c).unwrap_err();
        assert!(refusal.0.contains("GUI HTTPS ciphers"), "{refusal}");
        assert_eq!(c, before);
    }
}
