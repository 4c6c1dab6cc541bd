//! `delivernow`: retry now the queued mail that waits for a retry, for one recipient domain or
//! all of them, instead of at its scheduled time.

use super::{CommandError, bad_usage};
use crate::console::Console;
use crate::session::Session;

pub(super) fn delivernow<C: Console>(
    session: &mut Session<C>,
    args: &str,
) -> Result<(), CommandError> {
    let words: Vec<&str> = args.split_whitespace().collect();
    let domain = match words.as_slice() {
        [] => {
            let choice = session.ask(
                "Please choose the messages to deliver now:\n1. By recipient domain\n2. All messages",
                "2",
            )?;
            match choice.trim() {
                "1" => {
                    let domain = session.ask("Enter the recipient domain.", "")?;
                    domain_arg(&domain)?
                }
                "2" => None,
                other => {
                    return Err(CommandError::Refused(format!(
                        "'{other}' is not one of the choices; nothing was done."
                    )));
                }
            }
        }
        [one] if one.eq_ignore_ascii_case("all") => None,
        [one] => domain_arg(one)?,
        _ => return Err(bad_usage("delivernow", "Give one domain, or ALL")),
    };
    let user = session.user.clone();
    session
        .runtime
        .block_on(session.client.deliver_now(domain.as_deref(), &user))?;
    let out = session.out();
    match &domain {
        Some(d) => writeln!(out, "Delivery now requested for the queued mail of {d}.")?,
        None => writeln!(out, "Delivery now requested for all queued mail.")?,
    }
    Ok(())
}

/// A recipient domain as given: lower case, without a trailing dot; refused when empty or when
/// it cannot be a domain.
fn domain_arg(text: &str) -> Result<Option<String>, CommandError> {
    let domain = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let valid = !domain.is_empty()
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    if valid {
        Ok(Some(domain))
    } else {
        Err(CommandError::Refused(format!(
            "'{}' is not a domain; give a domain like example.com, or ALL.",
            text.trim()
        )))
    }
}
