//! `tlsverify`: one STARTTLS conversation with a domain's next hop, as a delivery would have it
//! (its SMTP route or MX hosts, the Outbound SMTP TLS policy, the domain's destination
//! controls), reported step by step for the administrator. No mail is sent.

use postern_tls::FailureKind;
use tokio::net::TcpStream;

use super::DeliveryPolicy;
use super::route::{Dns, NextHops, next_hops};
use super::session::{ClientSession, StartTls, Timeouts};
use super::tls::verifies;

/// Next hops tried at most before giving up.
const MAX_HOPS: usize = 3;

/// What `tlsverify` found: its lines, and whether TLS was established (and verified, when the
/// destination controls ask for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsVerifyReport {
    pub lines: Vec<String>,
    pub ok: bool,
}

/// Runs the check for `domain` (lower case).
pub async fn tls_verify(
    policy: &DeliveryPolicy,
    dns: &Dns,
    domain: &str,
    timeouts: Timeouts,
) -> TlsVerifyReport {
    let mut lines = Vec::new();
    let control = policy.settings.destination(domain);
    let verify = verifies(control.tls);
    lines.push(format!(
        "Performing TLS verification for {domain} (destination controls: TLS {}).",
        control.tls
    ));
    let hops = match next_hops(&policy.settings, dns, domain).await {
        Ok(NextHops::Hosts(hops)) => hops,
        Ok(NextHops::NullMx) => {
            lines.push(format!("{domain} accepts no mail (null MX)."));
            return TlsVerifyReport { lines, ok: false };
        }
        Err(e) => {
            lines.push(format!("No host to connect to: {e}"));
            return TlsVerifyReport { lines, ok: false };
        }
    };
    let Some(connector) = policy.tls.connector(verify) else {
        lines.push(
            "Outbound SMTP TLS cannot be used: its policy was refused by the engine.".to_owned(),
        );
        return TlsVerifyReport { lines, ok: false };
    };
    for hop in hops.iter().take(MAX_HOPS) {
        lines.push(format!(
            "Connecting to {} [{}] port {}.",
            hop.name,
            hop.address.ip(),
            hop.address.port()
        ));
        let stream =
            match tokio::time::timeout(timeouts.connect, TcpStream::connect(hop.address)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    lines.push(format!("Connection failed: {e}."));
                    continue;
                }
                Err(_) => {
                    lines.push("Connection failed: no answer in time.".to_owned());
                    continue;
                }
            };
        let mut session = ClientSession::new(stream, timeouts);
        let greeting = match session.greeting().await {
            Ok(reply) => reply,
            Err(e) => {
                lines.push(format!("No greeting: {e}."));
                continue;
            }
        };
        lines.push(format!("Greeting: {}", one_line(&greeting.to_string())));
        if let Err(e) = session.hello(&policy.hostname).await {
            lines.push(format!("EHLO failed: {e}."));
            continue;
        }
        if !session.capabilities().starttls {
            lines.push(format!("{} does not offer STARTTLS.", hop.name));
            session.quit().await;
            return TlsVerifyReport { lines, ok: false };
        }
        let name = if verify { domain } else { hop.name.as_str() };
        lines.push("STARTTLS".to_owned());
        let ok = match session.starttls(connector, name).await {
            Ok(StartTls::Done(negotiated)) => {
                lines.push(format!(
                    "TLS successfully established: protocol {} cipher {}.",
                    negotiated.protocol(),
                    negotiated.cipher
                ));
                if verify {
                    lines.push(format!("The certificate is valid for {domain}."));
                }
                session.quit().await;
                true
            }
            Ok(StartTls::Refused(reply)) => {
                lines.push(format!(
                    "STARTTLS was refused: {}",
                    one_line(&reply.to_string())
                ));
                session.quit().await;
                false
            }
            Ok(StartTls::Failed(failure)) => {
                let hint = if failure.kind == FailureKind::VersionMismatch {
                    " TLS version mismatch could be the failure reason."
                } else {
                    ""
                };
                lines.push(format!("TLS failed: {failure}{hint}"));
                false
            }
            Err(e) => {
                lines.push(format!("STARTTLS failed: {e}."));
                false
            }
        };
        lines.push(if ok {
            "TLS verification completed.".to_owned()
        } else {
            "TLS verification failed.".to_owned()
        });
        return TlsVerifyReport { lines, ok };
    }
    lines.push("TLS verification failed: no host could be reached.".to_owned());
    TlsVerifyReport { lines, ok: false }
}

/// A multi-line reply on one line.
fn one_line(text: &str) -> String {
    text.lines().map(str::trim).collect::<Vec<_>>().join(" / ")
}
