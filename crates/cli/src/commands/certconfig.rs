//! `certconfig`: certificates an administrator imports (PEM: chain and key), and which one each
//! TLS service presents. A service without one presents the factory self-signed pair.

use std::fs;

use postern_config::{CertName, ImportedCertificate, TlsService};
use postern_tls::Identity;

use super::{CommandError, bad_usage, refused};
use crate::console::Console;
use crate::session::Session;

pub(super) fn certconfig<C: Console>(
    session: &mut Session<C>,
    args: &str,
) -> Result<(), CommandError> {
    let words: Vec<&str> = args.split_whitespace().collect();
    match words.as_slice() {
        [] | ["print"] => print(session),
        ["import", name, chain, key] => {
            let name = CertName::new(name).map_err(refused)?;
            let read = |path: &str| {
                fs::read_to_string(path)
                    .map_err(|e| CommandError::Refused(format!("Cannot read {path}: {e}.")))
            };
            let (chain, key) = (read(chain)?, read(key)?);
            import(session, name, chain, key)
        }
        ["paste", name] => {
            let name = CertName::new(name).map_err(refused)?;
            let certificate = paste_block(
                session,
                "Paste public certificate in PEM format (end with a line '.'):",
            )?;
            let key = paste_block(
                session,
                "Paste private key in PEM format (end with a line '.'):",
            )?;
            let chain = paste_block(
                session,
                "Paste intermediate certificates in PEM format, if any (end with a line '.'):",
            )?;
            import(session, name, certificate + &chain, key)
        }
        ["assign", service, name] => assign(session, service, name),
        ["delete", name] => delete(session, name),
        _ => Err(bad_usage("certconfig", "Unknown certconfig form")),
    }
}

/// Checks the certificate the way the engines will use it, then stages it.
fn import<C: Console>(
    session: &mut Session<C>,
    name: CertName,
    chain_pem: String,
    key_pem: String,
) -> Result<(), CommandError> {
    let identity = Identity::from_pem(chain_pem.as_bytes(), key_pem.as_bytes()).map_err(refused)?;
    session.stage(|config| {
        config
            .certificates
            .imported
            .insert(name.clone(), ImportedCertificate { chain_pem, key_pem });
        Ok(())
    })?;
    writeln!(
        session.out(),
        "Certificate {name} imported: {}, expires {}.",
        identity.subject(),
        identity.not_after()
    )?;
    Ok(())
}

/// Lines up to one that is a lone `.`. A private key is pasted this way: `cli_logs` records only
/// that a block was entered.
fn paste_block<C: Console>(session: &mut Session<C>, prompt: &str) -> Result<String, CommandError> {
    writeln!(session.out(), "{prompt}")?;
    let mut text = String::new();
    loop {
        let line = session
            .console
            .read_line("")?
            .ok_or(CommandError::InputEnded)?;
        if line.trim() == "." {
            session.audit(None, prompt);
            return Ok(text);
        }
        text.push_str(&line);
        text.push('\n');
    }
}

fn assign<C: Console>(
    session: &mut Session<C>,
    service: &str,
    name: &str,
) -> Result<(), CommandError> {
    let service = match TlsService::from_keyword(service) {
        Some(s @ (TlsService::GuiHttps | TlsService::InboundSmtp | TlsService::OutboundSmtp)) => s,
        _ => {
            return Err(CommandError::Refused(format!(
                "'{service}' is not a service that presents a certificate; use gui, inbound or outbound."
            )));
        }
    };
    let name = if name.eq_ignore_ascii_case(CertName::FACTORY) {
        None
    } else {
        Some(CertName::new(name).map_err(refused)?)
    };
    session.stage(|config| {
        match name {
            Some(name) => {
                if !config.certificates.imported.contains_key(&name) {
                    return Err(CommandError::Refused(format!(
                        "There is no certificate {name}; import it first (certconfig import or paste)."
                    )));
                }
                config.certificates.assigned.insert(service, name);
            }
            None => {
                config.certificates.assigned.remove(&service);
            }
        }
        Ok(())
    })
}

fn delete<C: Console>(session: &mut Session<C>, name: &str) -> Result<(), CommandError> {
    let name = CertName::new(name).map_err(refused)?;
    session.stage(|config| {
        if let Some((service, _)) = config
            .certificates
            .assigned
            .iter()
            .find(|(_, n)| **n == name)
        {
            return Err(CommandError::Refused(format!(
                "Certificate {name} is assigned to {service}; assign another one first."
            )));
        }
        if config.certificates.imported.remove(&name).is_none() {
            return Err(CommandError::Refused(format!(
                "There is no certificate {name}."
            )));
        }
        Ok(())
    })
}

fn print<C: Console>(session: &mut Session<C>) -> Result<(), CommandError> {
    session.refresh()?;
    let certificates = session.view().certificates.clone();
    let out = session.out();
    writeln!(out, "Certificates:")?;
    if certificates.imported.is_empty() {
        writeln!(
            out,
            "  (none imported; every service presents the factory certificates)"
        )?;
    }
    for (name, cert) in &certificates.imported {
        match Identity::from_pem(cert.chain_pem.as_bytes(), cert.key_pem.as_bytes()) {
            Ok(identity) => writeln!(
                out,
                "  {name}: {}, expires {}",
                identity.subject(),
                identity.not_after()
            )?,
            Err(e) => writeln!(out, "  {name}: cannot be used: {e}")?,
        }
    }
    writeln!(out, "Assignments:")?;
    for service in [
        TlsService::GuiHttps,
        TlsService::InboundSmtp,
        TlsService::OutboundSmtp,
    ] {
        let presented = certificates
            .assigned
            .get(&service)
            .map_or_else(|| "factory".to_owned(), ToString::to_string);
        writeln!(out, "  {}: {presented}", service.label())?;
    }
    Ok(())
}
