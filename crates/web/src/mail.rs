//! The mail-flow settings as the web pages and the REST API show and change them: SMTP routes,
//! destination controls, the listeners' TLS and Recipient Access Table, and (read-only) the
//! certificates. Every change is checked by the configuration's own types and rules, the same
//! as in the CLI.

use std::str::FromStr;

use postern_config::{
    CertName, Config, DestinationControl, DestinationTls, DomainPattern, ListenerName, ListenerTls,
    RecipientAction, RouteHost, TlsService,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::Refusal;

fn refuse(e: impl std::fmt::Display) -> Refusal {
    Refusal(format!("{e}."))
}

fn domain(text: &str) -> Result<DomainPattern, Refusal> {
    DomainPattern::new(text.trim()).map_err(refuse)
}

fn listener<'a>(
    config: &'a mut Config,
    name: &str,
) -> Result<&'a mut postern_config::SmtpListener, Refusal> {
    let key = ListenerName::new(name).map_err(refuse)?;
    config
        .listeners
        .smtp
        .get_mut(&key)
        .ok_or_else(|| Refusal(format!("There is no listener '{name}'.")))
}

pub(crate) fn routes(config: &Config) -> Value {
    config
        .delivery
        .routes
        .iter()
        .map(|(d, hosts)| {
            json!({ "domain": d.as_str(), "hosts": hosts.iter().map(ToString::to_string).collect::<Vec<_>>() })
        })
        .collect()
}

/// Sets the route of `domain` to `hosts`, tried in order.
pub(crate) fn set_route(
    config: &mut Config,
    domain_text: &str,
    hosts: &[String],
) -> Result<(), Refusal> {
    let d = domain(domain_text)?;
    let hosts = hosts
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| RouteHost::new(h).map_err(refuse))
        .collect::<Result<Vec<_>, _>>()?;
    if hosts.is_empty() {
        return Err(Refusal(format!("Give at least one host for {d}.")));
    }
    config.delivery.routes.insert(d, hosts);
    Refusal::validate(config)
}

pub(crate) fn delete_route(config: &mut Config, domain_text: &str) -> Result<(), Refusal> {
    let d = domain(domain_text)?;
    config
        .delivery
        .routes
        .remove(&d)
        .map(|_| ())
        .ok_or_else(|| Refusal(format!("There is no route for {d}.")))
}

pub(crate) fn destinations(config: &Config) -> Value {
    config
        .delivery
        .destinations
        .iter()
        .map(|(d, c)| {
            json!({ "domain": d.as_str(), "tls": c.tls.keyword(), "tls_label": c.tls.to_string(), "max_concurrency": c.max_concurrency })
        })
        .collect()
}

/// A change of one destination control: what is given changes; a new domain starts from ALL.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DestinationChange {
    #[serde(default)]
    pub(crate) tls: Option<String>,
    #[serde(default)]
    pub(crate) max_concurrency: Option<u32>,
}

pub(crate) fn set_destination(
    config: &mut Config,
    domain_text: &str,
    change: &DestinationChange,
) -> Result<(), Refusal> {
    let d = domain(domain_text)?;
    let mut control: DestinationControl = config
        .delivery
        .destinations
        .get(&d)
        .cloned()
        .unwrap_or_else(|| all_domains(config));
    if let Some(tls) = &change.tls {
        control.tls = DestinationTls::from_str(tls.trim()).map_err(refuse)?;
    }
    if let Some(n) = change.max_concurrency {
        if !(1..=1000).contains(&n) {
            return Err(Refusal(format!(
                "The concurrency must be from 1 to 1000 connections, not {n}."
            )));
        }
        control.max_concurrency = n;
    }
    config.delivery.destinations.insert(d, control);
    Refusal::validate(config)
}

/// The controls of `ALL`, where a new destination starts from.
fn all_domains(config: &Config) -> DestinationControl {
    config
        .delivery
        .destinations
        .iter()
        .find(|(d, _)| d.is_all())
        .map(|(_, c)| c.clone())
        .unwrap_or_default()
}

pub(crate) fn delete_destination(config: &mut Config, domain_text: &str) -> Result<(), Refusal> {
    let d = domain(domain_text)?;
    if d.is_all() {
        return Err(Refusal(
            "ALL is the default for every other domain; it cannot be deleted.".to_owned(),
        ));
    }
    config
        .delivery
        .destinations
        .remove(&d)
        .map(|_| ())
        .ok_or_else(|| Refusal(format!("There are no destination controls for {d}.")))
}

pub(crate) fn listeners(config: &Config) -> Value {
    config
        .listeners
        .smtp
        .iter()
        .map(|(name, l)| {
            json!({
                "name": name.to_string(),
                "address": l.address.to_string(),
                "tls": l.tls.keyword(),
                "recipient_access": l.recipient_access.iter()
                    .map(|(d, a)| json!({ "domain": d.as_str(), "action": a.to_string().to_ascii_lowercase() }))
                    .collect::<Vec<_>>(),
                "limits": l.limits,
            })
        })
        .collect()
}

pub(crate) fn set_listener_tls(config: &mut Config, name: &str, tls: &str) -> Result<(), Refusal> {
    listener(config, name)?.tls = ListenerTls::from_str(tls.trim()).map_err(refuse)?;
    Ok(())
}

pub(crate) fn set_rat(
    config: &mut Config,
    name: &str,
    domain_text: &str,
    action: &str,
) -> Result<(), Refusal> {
    let d = domain(domain_text)?;
    let action = RecipientAction::from_str(action.trim()).map_err(refuse)?;
    listener(config, name)?.recipient_access.insert(d, action);
    Ok(())
}

pub(crate) fn delete_rat(
    config: &mut Config,
    name: &str,
    domain_text: &str,
) -> Result<(), Refusal> {
    let d = domain(domain_text)?;
    listener(config, name)?
        .recipient_access
        .remove(&d)
        .map(|_| ())
        .ok_or_else(|| {
            Refusal(format!(
                "The Recipient Access Table of {name} has no entry for {d}."
            ))
        })
}

/// The imported certificates, what each presents, and which services use it; services without
/// one present the factory self-signed pair.
pub(crate) fn certificates(config: &Config) -> Value {
    let assigned = |name: &CertName| {
        TlsService::ALL
            .into_iter()
            .filter(|s| config.certificates.assigned.get(s) == Some(name))
            .map(|s| s.label())
            .collect::<Vec<_>>()
    };
    let imported: Vec<Value> = config
        .certificates
        .imported
        .iter()
        .map(|(name, cert)| {
            let identity =
                postern_tls::Identity::from_pem(cert.chain_pem.as_bytes(), cert.key_pem.as_bytes());
            let (subject, not_after) = identity.map_or_else(
                |e| (format!("unreadable: {e}"), String::new()),
                |i| (i.subject(), i.not_after()),
            );
            json!({ "name": name.as_str(), "subject": subject, "not_after": not_after, "assigned_to": assigned(name) })
        })
        .collect();
    let factory: Vec<&str> = TlsService::ALL
        .into_iter()
        .filter(|s| *s != TlsService::OtherClient && !config.certificates.assigned.contains_key(s))
        .map(|s| s.label())
        .collect();
    json!({ "imported": imported, "factory_used_by": factory })
}
