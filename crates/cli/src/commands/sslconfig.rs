//! `sslconfig`: the TLS protocols and ciphers of each service (seed article).

use std::io::Write;

use postern_config::{CipherString, Config, ProtocolRange, TlsService};

use super::CommandError;
use crate::console::Console;
use crate::session::Session;

pub(super) fn sslconfig<C: Console>(
    session: &mut Session<C>,
    args: &str,
) -> Result<(), CommandError> {
    let words: Vec<&str> = args.split_whitespace().collect();
    match words.as_slice() {
        [] | ["print"] => {
            session.refresh()?;
            let config = session.view().clone();
            print_settings(session.out(), &config)?;
            if words.is_empty() {
                writeln!(
                    session.out(),
                    "\nTo change a service: sslconfig <gui|inbound|outbound|other> <selection> \
                     [ciphers <string>] (see 'help sslconfig')."
                )?;
            }
            Ok(())
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
    writeln!(out, "Other TLS client services: TLS v1.0 {v10}")
}
