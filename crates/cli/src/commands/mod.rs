//! The command table and dispatch. Each group of commands has its own module.

mod certconfig;
mod commit;
mod delivernow;
mod destconfig;
mod dialog;
mod listenerconfig;
mod logs;
mod power;
mod smtproutes;
mod sslconfig;
mod status;
mod tlsverify;
mod users;

use postern_control::ClientError;

use crate::console::Console;
use crate::session::Session;

/// A command as `help` shows it.
#[derive(Debug, Clone, Copy)]
pub struct CommandInfo {
    pub name: &'static str,
    pub summary: &'static str,
    /// The forms a script can use, one per line.
    pub usage: &'static [&'static str],
}

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[CommandInfo] = &[
    CommandInfo {
        name: "certconfig",
        summary: "Import certificates and choose the one each TLS service presents.",
        usage: &[
            "certconfig print",
            "certconfig import <name> <chain-pem-file> <key-pem-file>",
            "certconfig paste <name>        (paste the certificate, key and chain, each ending with '.')",
            "certconfig assign <gui|inbound|outbound> <name|factory>",
            "certconfig delete <name>",
        ],
    },
    CommandInfo {
        name: "clear",
        summary: "Discard the changes of this session that are not committed.",
        usage: &["clear"],
    },
    CommandInfo {
        name: "commit",
        summary: "Commit the changes of this session.",
        usage: &[
            "commit",
            "commit <comment>",
            "commit confirmed <minutes> [comment]",
            "  confirmed: rolled back automatically unless confirmed in time by a 'commit'",
            "  (in any session; a 'commit' with no changes just confirms)",
        ],
    },
    CommandInfo {
        name: "commitdetail",
        summary: "Show what a commit changed.",
        usage: &[
            "commitdetail",
            "commitdetail <generation>",
            "commitdetail all",
        ],
    },
    CommandInfo {
        name: "delivernow",
        summary: "Retry now the queued mail that waits for a retry.",
        usage: &[
            "delivernow               (asks: by recipient domain, or all)",
            "delivernow <domain>",
            "delivernow ALL",
        ],
    },
    CommandInfo {
        name: "destconfig",
        summary: "Show or set how mail is delivered to each destination domain: TLS, concurrency.",
        usage: &[
            "destconfig",
            "destconfig print",
            "destconfig new <domain|.domain> [tls <mode>] [concurrency <n>]",
            "destconfig edit <domain|.domain|ALL> [tls <mode>] [concurrency <n>]",
            "destconfig delete <domain|.domain>",
            "  mode: no, preferred, required, preferred-verify, required-verify",
            "  concurrency: 1 to 1000 connections at once to the domain",
            "  ALL is the default for every other domain; it cannot be deleted.",
            "  What 'new' does not set is taken from ALL.",
        ],
    },
    CommandInfo {
        name: "findevent",
        summary: "Find messages in mail_logs and show all their lines.",
        usage: &[
            "findevent                (asks what to search for)",
            "findevent -m <MID> [mail_logs]",
            "findevent [-i] -f <envelope sender regex> [mail_logs]",
            "findevent [-i] -t <envelope recipient regex> [mail_logs]",
            "  shows the lines of each matching message and of its connections (ICID, DCID);",
            "  -i: case insensitive",
        ],
    },
    CommandInfo {
        name: "grep",
        summary: "Show the lines of a log that match a regular expression.",
        usage: &[
            "grep                     (asks for the log and the expression)",
            "grep [-i] [-c] <regex> <log>",
            "grep [-i] [-c] -e <regex> <log>",
            "  log: mail_logs, cli_logs, gui_logs or system_logs (current and rotated files);",
            "  -i: case insensitive; -c: count the lines only;",
            "  quote an expression with spaces: grep 'TLS success' mail_logs",
        ],
    },
    CommandInfo {
        name: "help",
        summary: "List the commands, or show how to use one.",
        usage: &["help", "help <command>"],
    },
    CommandInfo {
        name: "listenerconfig",
        summary: "Show or set the SMTP listeners: TLS, Recipient Access Table, limits.",
        usage: &[
            "listenerconfig",
            "listenerconfig print",
            "listenerconfig tls <no|preferred|required> [listener]",
            "listenerconfig rcptaccess new <domain|.domain|ALL> <accept|reject> [listener]",
            "listenerconfig rcptaccess edit <domain|.domain|ALL> <accept|reject> [listener]",
            "listenerconfig rcptaccess delete <domain|.domain|ALL> [listener]",
            "listenerconfig rcptaccess print [listener]",
            "listenerconfig limits <limit> <n> [listener]",
            "  limit: max-connections, max-connections-per-ip, max-recipients,",
            "  max-message-size (bytes, or with a k or M suffix: 20M)",
            "  listener: its name, needed only when there are several",
        ],
    },
    CommandInfo {
        name: "passwd",
        summary: "Change your own password (at once, without 'commit').",
        usage: &["passwd                   (asks for the old password, then the new one twice)"],
    },
    CommandInfo {
        name: "quit",
        summary: "End the session (uncommitted changes are discarded).",
        usage: &["quit", "exit"],
    },
    CommandInfo {
        name: "reboot",
        summary: "Restart the appliance (asks for confirmation).",
        usage: &[
            "reboot",
            "  on the appliance only; uncommitted changes of this session are lost",
        ],
    },
    CommandInfo {
        name: "rollbackconfig",
        summary: "Go back to one of the last 10 committed configurations.",
        usage: &["rollbackconfig", "rollbackconfig <generation>"],
    },
    CommandInfo {
        name: "shutdown",
        summary: "Power off the appliance (asks for confirmation).",
        usage: &[
            "shutdown",
            "  on the appliance only; uncommitted changes of this session are lost",
        ],
    },
    CommandInfo {
        name: "smtproutes",
        summary: "Show or set the SMTP routes: the hosts that mail for a domain is sent to.",
        usage: &[
            "smtproutes",
            "smtproutes print",
            "smtproutes new <domain|.domain|ALL> <host[:port]>[,<host[:port]>...]",
            "smtproutes edit <domain|.domain|ALL> <host[:port]>[,<host[:port]>...]",
            "smtproutes delete <domain|.domain|ALL>",
            "smtproutes clear",
            "  hosts are tried in order; IPv6 addresses go in brackets: [2001:db8::1]:25;",
            "  domains without a route are delivered to their MX hosts",
        ],
    },
    CommandInfo {
        name: "sslconfig",
        summary: "Show or set the TLS protocols and ciphers of each service.",
        usage: &[
            "sslconfig                (the dialog: GUI, INBOUND, OUTBOUND, OTHER_CLIENT_TLSV10,",
            "                          PEER_CERT_FQDN, PEER_CERT_X509, VERIFY)",
            "sslconfig print",
            "sslconfig verify <cipher string>",
            "sslconfig <gui|inbound|outbound|other> <selection> [ciphers <string>]",
            "sslconfig peer_cert_fqdn <enable|disable>",
            "sslconfig peer_cert_x509 <enable|disable>",
            "  selection: 1 = TLS v1.3, 2 = TLS v1.2, 3 = TLS v1.1, 4 = TLS v1.0;",
            "  one number (2), a range (1-3) or a list (1,2,3); it must be contiguous;",
            "  peer_cert_fqdn: a verified certificate must name the host in subjectAltName",
            "  (RFC 6125), never only in its common name; peer_cert_x509: only CA",
            "  certificates are trust anchors (RFC 5280); both for TLS -Verify destinations",
            "  and tlsverify",
        ],
    },
    CommandInfo {
        name: "status",
        summary: "Show the system status: uptime, services, counters and gauges.",
        usage: &["status", "status detail"],
    },
    CommandInfo {
        name: "tail",
        summary: "Show the last lines of a log; on a terminal, follow it until Ctrl-C.",
        usage: &[
            "tail                     (a numbered list of the logs)",
            "tail <log>",
            "  log: mail_logs, cli_logs, gui_logs or system_logs",
        ],
    },
    CommandInfo {
        name: "tlsverify",
        summary: "Connect to a domain's mail host as delivery would and show the TLS it gets.",
        usage: &[
            "tlsverify <domain>",
            "  uses the domain's SMTP route or MX hosts, the committed Outbound SMTP TLS",
            "  policy and the domain's destination controls; no mail is sent",
        ],
    },
    CommandInfo {
        name: "userconfig",
        summary: "Show, add or delete the accounts of administrators and operators.",
        usage: &[
            "userconfig               (the dialog: NEW, DELETE, PASSWORD)",
            "userconfig print",
            "userconfig new <name> <administrator|operator> [full name]",
            "userconfig delete <name>",
            "userconfig password <name>",
            "  new and password then read the password twice (not echoed, not logged);",
            "  operators look at the configuration and the logs and change nothing",
        ],
    },
    CommandInfo {
        name: "version",
        summary: "Show the firmware version.",
        usage: &["version"],
    },
];

/// Why a command did not do what was asked. Everything but `Io` is told to the administrator
/// and the session goes on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The request is wrong; the text says why and what would be right.
    #[error("{0}")]
    Refused(String),
    /// Input ended in the middle of a dialog; nothing was changed.
    #[error("Input ended before the dialog was complete; nothing was changed.")]
    InputEnded,
    #[error("{0}")]
    Control(#[from] ClientError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub(crate) fn dispatch<C: Console>(
    session: &mut Session<C>,
    name: &str,
    args: &str,
) -> Result<(), CommandError> {
    match name.to_ascii_lowercase().as_str() {
        "help" | "?" => help(session, args),
        "version" => status::version(session),
        "status" => status::status(session, args),
        "certconfig" => certconfig::certconfig(session, args),
        "commit" => commit::commit(session, args),
        "clear" => commit::clear(session),
        "commitdetail" => commit::commitdetail(session, args),
        "rollbackconfig" => commit::rollbackconfig(session, args),
        "sslconfig" => sslconfig::sslconfig(session, args),
        "listenerconfig" => listenerconfig::listenerconfig(session, args),
        "smtproutes" => smtproutes::smtproutes(session, args),
        "destconfig" => destconfig::destconfig(session, args),
        "tail" => logs::tail(session, args),
        "grep" => logs::grep(session, args),
        "findevent" => logs::findevent(session, args),
        "userconfig" => users::userconfig(session, args),
        "passwd" | "password" => users::passwd(session, args),
        "tlsverify" => tlsverify::tlsverify(session, args),
        "delivernow" => delivernow::delivernow(session, args),
        "reboot" => power::power(session, power::Power::Reboot, args),
        "shutdown" => power::power(session, power::Power::Shutdown, args),
        _ => Err(CommandError::Refused(unknown(name))),
    }
}

/// A command line that is not one of `command`'s forms: what is wrong, then its forms.
fn bad_usage(command: &str, problem: &str) -> CommandError {
    let mut text = format!("{problem}. Usage:");
    for line in COMMANDS
        .iter()
        .filter(|c| c.name == command)
        .flat_map(|c| c.usage)
    {
        text.push_str("\n  ");
        text.push_str(line);
    }
    CommandError::Refused(text)
}

/// A setting the configuration's own rules refused, in their words.
fn refused(e: impl std::fmt::Display) -> CommandError {
    CommandError::Refused(format!("{e}."))
}

fn unknown(name: &str) -> String {
    match nearest(name) {
        Some(near) => {
            format!("Unknown command: '{name}'. Did you mean '{near}'? Type 'help' for the list.")
        }
        None => format!("Unknown command: '{name}'. Type 'help' for the list of commands."),
    }
}

/// The command `name` is most likely a slip for: the one a few typing errors away (a swapped
/// pair counts as one; about one error in three letters), or the only one it begins.
fn nearest(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    let allowed = (name.chars().count() / 3).max(1);
    let close = COMMANDS
        .iter()
        .map(|c| (strsim::damerau_levenshtein(c.name, &name), c.name))
        .filter(|(distance, _)| *distance <= allowed)
        .min();
    if let Some((_, near)) = close {
        return Some(near);
    }
    let mut beginning = COMMANDS
        .iter()
        .filter(|c| name.len() >= 3 && c.name.starts_with(&name));
    match (beginning.next(), beginning.next()) {
        (Some(only), None) => Some(only.name),
        _ => None,
    }
}

fn help<C: Console>(session: &mut Session<C>, args: &str) -> Result<(), CommandError> {
    let out = session.out();
    if args.is_empty() {
        writeln!(out, "Commands:")?;
        for c in COMMANDS {
            writeln!(out, "{:<16}{}", c.name, c.summary)?;
        }
        writeln!(out, "Type 'help <command>' to see how to use one.")?;
        return Ok(());
    }
    let Some(c) = COMMANDS.iter().find(|c| c.name.eq_ignore_ascii_case(args)) else {
        return Err(CommandError::Refused(unknown(args)));
    };
    writeln!(out, "{} - {}", c.name, c.summary)?;
    writeln!(out, "Usage:")?;
    for line in c.usage {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slip_names_the_command_meant_and_nonsense_names_none() {
        for (typed, meant) in [
            ("sslconfg", "sslconfig"),
            ("comit", "commit"),
            ("grpe", "grep"),
            ("STATSU", "status"),
            ("commitdetial", "commitdetail"),
            ("listener", "listenerconfig"),
            ("find", "findevent"),
            ("rollback", "rollbackconfig"),
        ] {
            assert_eq!(nearest(typed), Some(meant), "{typed}");
        }
        // Too short, too far, or the beginning of two commands.
        for typed in ["ls", "xyzzy", "halt", "com", "c"] {
            assert_eq!(nearest(typed), None, "{typed}");
        }
        assert_eq!(
            unknown("sslconfg"),
            "Unknown command: 'sslconfg'. Did you mean 'sslconfig'? Type 'help' for the list."
        );
    }

    #[test]
    fn every_command_has_a_summary_and_its_forms() {
        let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        let listed = names.clone();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names, listed, "help lists each command once, in order");
        for c in COMMANDS {
            assert!(!c.summary.is_empty(), "{}", c.name);
            assert!(
                c.usage.first().is_some_and(|u| u.starts_with(c.name)),
                "{}: the first form is the command itself",
                c.name
            );
        }
    }
}
