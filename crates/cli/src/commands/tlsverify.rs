//! `tlsverify <domain>`: connect to a domain's next hop as a delivery would (its SMTP route or
//! MX hosts, the committed Outbound SMTP TLS policy and destination controls) and say what TLS
//! came of it, or why none did.

use std::time::Duration;

use postern_smtp::outbound::verify::tls_verify;
use postern_smtp::outbound::{CaRoots, DeliveryPolicy, Dns, Timeouts};

use super::{CommandError, bad_usage};
use crate::console::Console;
use crate::session::Session;

/// Shorter than a delivery's: an administrator is waiting.
const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(10),
    greeting: Duration::from_secs(30),
    command: Duration::from_secs(30),
    data_start: Duration::from_secs(30),
    data_block: Duration::from_secs(30),
    data_end: Duration::from_secs(30),
};

pub(super) fn tlsverify<C: Console>(
    session: &mut Session<C>,
    args: &str,
) -> Result<(), CommandError> {
    let domain = match args.split_whitespace().collect::<Vec<_>>().as_slice() {
        [domain] => domain.trim_end_matches('.').to_ascii_lowercase(),
        _ => return Err(bad_usage("tlsverify", "Give one domain")),
    };
    // The committed configuration, not this session's pending changes: what delivery uses.
    let config = session.runtime.block_on(session.client.config())?.config;
    let roots = CaRoots::system().unwrap_or_default();
    let policy = DeliveryPolicy::from_config(&config, &roots)
        .map_err(|e| CommandError::Refused(format!("Outbound SMTP TLS cannot be used: {e}.")))?;
    let dns = Dns::default();
    let mut report = session
        .runtime
        .block_on(tls_verify(&policy, &dns, &domain, TIMEOUTS));
    // A failure's last line is the command's error: scripts see the command fail.
    let failure = (!report.ok).then(|| report.lines.pop()).flatten();
    let out = session.out();
    for line in &report.lines {
        writeln!(out, "{line}")?;
    }
    match failure {
        Some(last) => Err(CommandError::Refused(last)),
        None => Ok(()),
    }
}
