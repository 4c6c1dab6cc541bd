//! `sslconfig`: the TLS protocols and ciphers of each service (seed article).

use std::io::Write;

use postern_config::tls::TLS13_CIPHER_SUITES;
use postern_config::{
    CipherString, Config, PeerCertificateChecks, ProtocolRange, TlsService, TlsVersion,
};
use postern_tls::ciphers::{evaluate, for_range};

use super::{CommandError, bad_usage, dialog};
use crate::console::Console;
use crate::session::Session;

pub(super) fn sslconfig<C: Console>(
    session: &mut Session<C>,
    args: &str,
) -> Result<(), CommandError> {
    let words: Vec<&str> = args.split_whitespace().collect();
    match words.as_slice() {
        [] => {
            session.refresh()?;
            let config = session.view().clone();
            print_settings(session.out(), &config)?;
            dialog(session)
        }
        ["print"] => {
            session.refresh()?;
            let config = session.view().clone();
            Ok(print_settings(session.out(), &config)?)
        }
        [verb, string] if verb.eq_ignore_ascii_case("verify") => verify(session, string),
        [keyword, state] if let Some(check) = PeerCheck::from_keyword(keyword) => {
            let enabled = match state.to_ascii_lowercase().as_str() {
                "enable" => true,
                "disable" => false,
                _ => {
                    return Err(bad_usage(
                        "sslconfig",
                        &format!("'{state}' is neither enable nor disable"),
                    ));
                }
            };
            set_peer_check(session, check, enabled)
        }
        [service, rest @ ..] => {
            let service = TlsService::from_keyword(service).ok_or_else(|| {
                CommandError::Refused(format!(
                    "'{service}' is not a service; use gui, inbound, outbound or other."
                ))
            })?;
            set_service(session, service, rest)
        }
    }
}

const OPERATIONS: &str = "Choose the operation you want to perform:
- GUI - Edit GUI HTTPS ssl settings.
- INBOUND - Edit Inbound SMTP ssl settings.
- OUTBOUND - Edit Outbound SMTP ssl settings.
- OTHER_CLIENT_TLSV10 - Edit TLS v1.0 for other client services.
- PEER_CERT_FQDN - Validate peer certificate FQDN compliance for Outbound SMTP.
- PEER_CERT_X509 - Validate peer certificate X509 compliance for Outbound SMTP.
- VERIFY - Verify and show ssl cipher list.";

/// The interactive `sslconfig`: operations until an empty answer. Each finished edit is staged;
/// a dialog cut short (end of input) changes nothing it had not finished.
fn dialog<C: Console>(session: &mut Session<C>) -> Result<(), CommandError> {
    loop {
        let choice = session.ask(OPERATIONS, "")?;
        match choice.to_ascii_uppercase().as_str() {
            "" => return Ok(()),
            "GUI" => edit_service(session, TlsService::GuiHttps)?,
            "INBOUND" => edit_service(session, TlsService::InboundSmtp)?,
            "OUTBOUND" => edit_service(session, TlsService::OutboundSmtp)?,
            "OTHER_CLIENT_TLSV10" => other_client_tls10(session)?,
            "PEER_CERT_FQDN" => peer_check_dialog(session, PeerCheck::Fqdn)?,
            "PEER_CERT_X509" => peer_check_dialog(session, PeerCheck::X509)?,
            "VERIFY" => {
                let current = session.view().tls.inbound_smtp.ciphers.to_string();
                let string = session.ask("Enter the ssl cipher you want to verify.", &current)?;
                if let Err(e) = verify(session, &string) {
                    writeln!(session.out(), "{e}")?;
                }
            }
            other => writeln!(
                session.out(),
                "'{other}' is not one of the operations listed."
            )?,
        }
    }
}

/// The seed's dialog for one service: the method menu with the current selection as default
/// (a non-contiguous choice is refused with its reason and asked again), then the cipher string.
fn edit_service<C: Console>(
    session: &mut Session<C>,
    service: TlsService,
) -> Result<(), CommandError> {
    let name = match service {
        TlsService::GuiHttps => "GUI HTTPS",
        TlsService::InboundSmtp => "inbound SMTP",
        _ => "outbound SMTP",
    };
    let current = session.view().tls.protocols(service);
    let menu: String = TlsVersion::MENU
        .iter()
        .map(|v| format!("\n{}. {}", v.menu_number(), v.label()))
        .collect();
    let range = loop {
        let question = format!("Enter the {name} ssl method you want to use.{menu}");
        let answer = session.ask(&question, &current.menu_selection())?;
        match ProtocolRange::from_selection(&answer) {
            Ok(range) => break range,
            Err(e) => writeln!(session.out(), "{e}.")?,
        }
    };
    let current_ciphers = session
        .view()
        .tls
        .service(service)
        .map(|s| s.ciphers.to_string())
        .unwrap_or_default();
    let ciphers = loop {
        let question = format!("Enter the {name} ssl cipher you want to use.");
        let answer = session.ask(&question, &current_ciphers)?;
        let checked = CipherString::new(&answer)
            .map_err(|e| e.to_string())
            .and_then(|c| for_range(&c, range).map(|_| c).map_err(|e| e.to_string()));
        match checked {
            Ok(ciphers) => break ciphers,
            Err(e) => writeln!(session.out(), "{e}.")?,
        }
    };
    if service != TlsService::OutboundSmtp {
        writeln!(
            session.out(),
            "TLS Renegotiation for {name} is not supported by either TLS engine; it stays disabled."
        )?;
    }
    session.stage(|config| {
        config
            .tls
            .set_protocols(service, range)
            .map_err(|e| CommandError::Refused(format!("{e}.")))?;
        if let Some(settings) = config.tls.service_mut(service) {
            settings.ciphers = ciphers;
        }
        Ok(())
    })?;
    let method = session.view().tls.protocols(service).method_token();
    writeln!(session.out(), "{} method: {method}", service.label())?;
    Ok(())
}

fn other_client_tls10<C: Console>(session: &mut Session<C>) -> Result<(), CommandError> {
    let enabled = session.view().tls.other_client.tls_v1_0;
    let state = if enabled { "enabled" } else { "disabled" };
    let question = format!(
        "TLS v1.0 for other TLS client services is {state}. TLS v1.0 is deprecated. \
         Do you want to use it?"
    );
    let wanted = session.confirm(&question, enabled)?;
    session.stage(|config| {
        config.tls.other_client.tls_v1_0 = wanted;
        Ok(())
    })
}

/// One of the peer certificate checks of verified TLS client connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerCheck {
    Fqdn,
    X509,
}

impl PeerCheck {
    fn from_keyword(word: &str) -> Option<Self> {
        match word.to_ascii_lowercase().as_str() {
            "peer_cert_fqdn" => Some(Self::Fqdn),
            "peer_cert_x509" => Some(Self::X509),
            _ => None,
        }
    }

    /// `FQDN` or `X509`, as the reference's dialog words it.
    fn name(self) -> &'static str {
        match self {
            Self::Fqdn => "FQDN",
            Self::X509 => "X509",
        }
    }

    fn get(self, checks: &PeerCertificateChecks) -> bool {
        match self {
            Self::Fqdn => checks.fqdn,
            Self::X509 => checks.x509,
        }
    }

    fn set(self, checks: &mut PeerCertificateChecks, enabled: bool) {
        match self {
            Self::Fqdn => checks.fqdn = enabled,
            Self::X509 => checks.x509 = enabled,
        }
    }

    /// What the check does, for the administrator deciding on it.
    fn explanation(self) -> &'static str {
        match self {
            Self::Fqdn => {
                "It applies where the certificate is verified: destinations with TLS Preferred - \
                 Verify or Required - Verify, and tlsverify. When enabled, the host name is \
                 matched only against the certificate's subjectAltName DNS names (RFC 6125); a \
                 subject common name alone is not accepted. Connections with TLS v1.2 and v1.3 \
                 always match this way; the setting changes connections by the legacy engine (an \
                 Outbound SMTP method with TLS v1.0 or v1.1)."
            }
            Self::X509 => {
                "It applies where the certificate is verified: destinations with TLS Preferred - \
                 Verify or Required - Verify, and tlsverify. When enabled, only CA certificates \
                 (basic constraints cA and key usage keyCertSign, RFC 5280) are trust anchors: a \
                 server certificate that is trusted directly, not through a CA, is refused. The \
                 other RFC 5280 checks of the chain are always made."
            }
        }
    }
}

/// `PEER_CERT_FQDN` or `PEER_CERT_X509`: the state, and the one operation that changes it.
fn peer_check_dialog<C: Console>(
    session: &mut Session<C>,
    check: PeerCheck,
) -> Result<(), CommandError> {
    let enabled = check.get(&session.view().tls.peer_certificates);
    let name = check.name();
    let state = if enabled { "enabled" } else { "disabled" };
    writeln!(
        session.out(),
        "Peer certificate {name} validation is {state}. {}",
        check.explanation()
    )?;
    // The reference names the check in the operation's description.
    let operation = match (check, enabled) {
        (PeerCheck::Fqdn, false) => ("ENABLE", "Enable peer certificate FQDN validation."),
        (PeerCheck::Fqdn, true) => ("DISABLE", "Disable peer certificate FQDN validation."),
        (PeerCheck::X509, false) => ("ENABLE", "Enable peer certificate X509 validation."),
        (PeerCheck::X509, true) => ("DISABLE", "Disable peer certificate X509 validation."),
    };
    match dialog::menu(session, &[operation])? {
        Some(_) => set_peer_check(session, check, !enabled),
        None => Ok(()),
    }
}

/// Stages a peer certificate check and says what it is now.
fn set_peer_check<C: Console>(
    session: &mut Session<C>,
    check: PeerCheck,
    enabled: bool,
) -> Result<(), CommandError> {
    session.stage(|config| {
        check.set(&mut config.tls.peer_certificates, enabled);
        Ok(())
    })?;
    let state = if enabled { "enabled" } else { "disabled" };
    writeln!(
        session.out(),
        "Peer certificate {} validation: {state}",
        check.name()
    )?;
    Ok(())
}

/// The suites a cipher string selects, as `openssl ciphers -v` lists them, and the fixed TLS
/// v1.3 suites.
fn verify<C: Console>(session: &mut Session<C>, string: &str) -> Result<(), CommandError> {
    let ciphers = CipherString::new(string).map_err(|e| CommandError::Refused(format!("{e}.")))?;
    let suites = evaluate(&ciphers).map_err(|e| CommandError::Refused(format!("{e}.")))?;
    let out = session.out();
    for suite in &suites {
        writeln!(out, "{}", suite.description)?;
    }
    writeln!(
        out,
        "TLS v1.3 (fixed, not changed by any cipher string): {}",
        TLS13_CIPHER_SUITES.join(", ")
    )?;
    Ok(())
}

/// `sslconfig <service> <selection> [ciphers <string>]`.
fn set_service<C: Console>(
    session: &mut Session<C>,
    service: TlsService,
    words: &[&str],
) -> Result<(), CommandError> {
    let split = words.iter().position(|w| w.eq_ignore_ascii_case("ciphers"));
    let (selection, ciphers) = match split {
        Some(i) => (&words[..i], Some(&words[i + 1..])),
        None => (words, None),
    };
    if selection.is_empty() {
        return Err(CommandError::Refused(format!(
            "Give the {} protocols to enable, e.g. 'sslconfig {} 1-3'.",
            service.label(),
            service.keyword()
        )));
    }
    let range = ProtocolRange::from_selection(&selection.concat())
        .map_err(|e| CommandError::Refused(format!("{e}.")))?;
    let ciphers = match ciphers {
        None => None,
        Some([one]) => {
            Some(CipherString::new(one).map_err(|e| CommandError::Refused(format!("{e}.")))?)
        }
        Some(_) => {
            return Err(CommandError::Refused(
                "Give one cipher string after 'ciphers', without spaces (e.g. ECDHE+AESGCM:!aNULL)."
                    .to_owned(),
            ));
        }
    };
    session.stage(|config| {
        config
            .tls
            .set_protocols(service, range)
            .map_err(|e| CommandError::Refused(format!("{e}.")))?;
        if let Some(ciphers) = ciphers {
            let settings = config.tls.service_mut(service).ok_or_else(|| {
                CommandError::Refused(format!("{service} has no cipher setting of its own."))
            })?;
            settings.ciphers = ciphers;
        }
        Ok(())
    })?;
    let method = session.view().tls.protocols(service).method_token();
    writeln!(session.out(), "{} method: {method}", service.label())?;
    Ok(())
}

/// The settings banner of `sslconfig`.
fn print_settings(out: &mut dyn Write, config: &Config) -> std::io::Result<()> {
    writeln!(out, "sslconfig settings:")?;
    for service in [
        TlsService::GuiHttps,
        TlsService::InboundSmtp,
        TlsService::OutboundSmtp,
    ] {
        let tls = config.tls.protocols(service);
        writeln!(out, "{} method: {}", service.label(), tls.method_token())?;
        if let Some(settings) = config.tls.service(service) {
            writeln!(out, "{} ciphers: {}", service.label(), settings.ciphers)?;
        }
    }
    let v10 = if config.tls.other_client.tls_v1_0 {
        "enabled"
    } else {
        "disabled"
    };
    writeln!(out, "Other TLS client services: TLS v1.0 {v10}")?;
    let state = |on: bool| if on { "enabled" } else { "disabled" };
    let checks = config.tls.peer_certificates;
    writeln!(
        out,
        "Peer certificate FQDN validation: {}",
        state(checks.fqdn)
    )?;
    writeln!(
        out,
        "Peer certificate X509 validation: {}",
        state(checks.x509)
    )
}
