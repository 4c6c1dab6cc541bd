//! `listenerconfig`: the SMTP listeners: whether they allow encrypted TLS connections (the
//! reference appliance's mail flow policy question), their Recipient Access Table (RAT), and
//! their injection limits.

use std::io::Write;

use postern_config::{
    Config, DomainPattern, ListenerLimits, ListenerName, ListenerTls, RecipientAction, SmtpListener,
};

use super::dialog::{self, Operation};
use super::{CommandError, bad_usage, refused};
use crate::console::Console;
use crate::session::Session;

const NAME: &str = "listenerconfig";

pub(super) fn listenerconfig<C: Console>(
    session: &mut Session<C>,
    args: &str,
) -> Result<(), CommandError> {
    if args.is_empty() {
        return interactive(session);
    }
    match parse(args)? {
        Op::Print => {
            session.refresh()?;
            let config = session.view().clone();
            print_listeners(session.out(), &config)?;
            Ok(())
        }
        Op::RatPrint { listener } => {
            session.refresh()?;
            let config = session.view().clone();
            let (name, found) = find(&config, listener.as_deref())?;
            print_rat(session.out(), &name, found)?;
            Ok(())
        }
        Op::Change { change, listener } => run_changes(session, &[change], listener.as_deref()),
    }
}

/// What a `listenerconfig` line asks for. `listener` is the name given, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Print,
    RatPrint {
        listener: Option<String>,
    },
    Change {
        change: Change,
        listener: Option<String>,
    },
}

/// A change to one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Tls(ListenerTls),
    /// A RAT entry: `new` adds one (refused if there is one), otherwise changes one.
    RatSet {
        domain: DomainPattern,
        action: RecipientAction,
        new: bool,
    },
    RatDelete(DomainPattern),
    Limit(Limit, u64),
}

/// The limits an administrator sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    Connections,
    ConnectionsPerIp,
    MessageSize,
    Recipients,
}

/// The limits of counts: enough for any appliance, and no typo of a million zeros.
const MAX_COUNT: u64 = 1_000_000;
/// The smallest message size limit: RFC 5321 (4.5.3.1.7) has every server take 64K octets.
const MIN_MESSAGE_SIZE: u64 = 64 * 1024;
const MAX_MESSAGE_SIZE: u64 = 1024 * 1024 * 1024;

impl Limit {
    const ALL: [Limit; 4] = [
        Self::Connections,
        Self::ConnectionsPerIp,
        Self::MessageSize,
        Self::Recipients,
    ];

    fn keyword(self) -> &'static str {
        match self {
            Self::Connections => "max-connections",
            Self::ConnectionsPerIp => "max-connections-per-ip",
            Self::MessageSize => "max-message-size",
            Self::Recipients => "max-recipients",
        }
    }

    fn from_keyword(word: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|l| l.keyword().eq_ignore_ascii_case(word))
    }

    fn label(self) -> &'static str {
        match self {
            Self::Connections => "Maximum concurrent connections",
            Self::ConnectionsPerIp => "Maximum concurrent connections from one IP address",
            Self::MessageSize => "Maximum message size",
            Self::Recipients => "Maximum recipients per message",
        }
    }

    fn question(self) -> &'static str {
        match self {
            Self::Connections => "Enter the maximum number of concurrent connections allowed.",
            Self::ConnectionsPerIp => {
                "Enter the maximum number of concurrent connections allowed from a single IP \
                 address."
            }
            Self::MessageSize => {
                "Enter the maximum message size. Add a trailing k for kilobytes or M for \
                 megabytes, or no letter for bytes."
            }
            Self::Recipients => "Enter the maximum number of recipients per message.",
        }
    }

    fn get(self, limits: &ListenerLimits) -> u64 {
        match self {
            Self::Connections => limits.max_connections.into(),
            Self::ConnectionsPerIp => limits.max_connections_per_ip.into(),
            Self::MessageSize => limits.max_message_size,
            Self::Recipients => limits.max_recipients.into(),
        }
    }

    /// Sets a value that [`Limit::parse`] accepted (counts fit in `u32`).
    fn set(self, limits: &mut ListenerLimits, value: u64) {
        let count = u32::try_from(value).unwrap_or(u32::MAX);
        match self {
            Self::Connections => limits.max_connections = count,
            Self::ConnectionsPerIp => limits.max_connections_per_ip = count,
            Self::MessageSize => limits.max_message_size = value,
            Self::Recipients => limits.max_recipients = count,
        }
    }

    fn parse(self, text: &str) -> Result<u64, String> {
        match self {
            Self::MessageSize => parse_size(text)
                .filter(|n| (MIN_MESSAGE_SIZE..=MAX_MESSAGE_SIZE).contains(n))
                .ok_or_else(|| {
                    format!(
                        "'{text}' is not a message size from 64k to 1024M: give bytes \
                         (65536), kilobytes (64k) or megabytes (20M)."
                    )
                }),
            _ => dialog::number_in(text, 1..=MAX_COUNT),
        }
    }

    fn show(self, value: u64) -> String {
        match self {
            Self::MessageSize => show_size(value),
            _ => value.to_string(),
        }
    }
}

/// `65536`, `64k` or `20M` (any case) in bytes.
fn parse_size(text: &str) -> Option<u64> {
    let (digits, unit) = match text.char_indices().last()? {
        (i, 'k' | 'K') => (&text[..i], 1024),
        (i, 'm' | 'M') => (&text[..i], 1024 * 1024),
        _ => (text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

/// A size as the dialog shows it: `20M`, `64k`, or bytes.
fn show_size(bytes: u64) -> String {
    const K: u64 = 1024;
    if bytes != 0 && bytes.is_multiple_of(K * K) {
        format!("{}M", bytes / (K * K))
    } else if bytes != 0 && bytes.is_multiple_of(K) {
        format!("{}k", bytes / K)
    } else {
        bytes.to_string()
    }
}

fn parse(args: &str) -> Result<Op, CommandError> {
    let words: Vec<&str> = args.split_whitespace().collect();
    let Some((first, rest)) = words.split_first() else {
        return Err(bad_usage(NAME, "Give a listenerconfig operation"));
    };
    match first.to_ascii_lowercase().as_str() {
        "print" if rest.is_empty() => Ok(Op::Print),
        "print" => Err(bad_usage(NAME, "'listenerconfig print' takes no arguments")),
        "tls" => {
            let (values, listener) = with_listener(
                rest,
                1,
                "listenerconfig tls",
                "a TLS setting: no, preferred or required",
            )?;
            let tls = values[0].parse::<ListenerTls>().map_err(refused)?;
            Ok(Op::Change {
                change: Change::Tls(tls),
                listener,
            })
        }
        "rcptaccess" => parse_rcptaccess(rest),
        "limits" => {
            let (values, listener) = with_listener(
                rest,
                2,
                "listenerconfig limits",
                "a limit and its value, like max-connections 500",
            )?;
            let limit = Limit::from_keyword(values[0]).ok_or_else(|| {
                let names: Vec<&str> = Limit::ALL.iter().map(|l| l.keyword()).collect();
                CommandError::Refused(format!(
                    "'{}' is not one of {}.",
                    values[0],
                    names.join(", ")
                ))
            })?;
            let value = limit.parse(values[1]).map_err(CommandError::Refused)?;
            Ok(Op::Change {
                change: Change::Limit(limit, value),
                listener,
            })
        }
        _ => Err(bad_usage(
            NAME,
            &format!("'{first}' is not a listenerconfig operation"),
        )),
    }
}

fn parse_rcptaccess(words: &[&str]) -> Result<Op, CommandError> {
    let Some((operation, rest)) = words.split_first() else {
        return Err(bad_usage(
            NAME,
            "'listenerconfig rcptaccess' needs an operation: new, edit, delete or print",
        ));
    };
    let domain = |word: &str| DomainPattern::new(word).map_err(refused);
    match operation.to_ascii_lowercase().as_str() {
        op @ ("new" | "edit") => {
            let (values, listener) = with_listener(
                rest,
                2,
                &format!("listenerconfig rcptaccess {op}"),
                "a domain and an action, accept or reject",
            )?;
            Ok(Op::Change {
                change: Change::RatSet {
                    domain: domain(values[0])?,
                    action: parse_action(values[1])?,
                    new: op == "new",
                },
                listener,
            })
        }
        "delete" => {
            let (values, listener) =
                with_listener(rest, 1, "listenerconfig rcptaccess delete", "a domain")?;
            Ok(Op::Change {
                change: Change::RatDelete(domain(values[0])?),
                listener,
            })
        }
        "print" => {
            let (_, listener) = with_listener(rest, 0, "listenerconfig rcptaccess print", "")?;
            Ok(Op::RatPrint { listener })
        }
        _ => Err(bad_usage(
            NAME,
            &format!("'{operation}' is not a rcptaccess operation: use new, edit, delete or print"),
        )),
    }
}

/// Splits `words` into the `n` values an operation needs and the listener name that may follow.
fn with_listener<'a>(
    words: &'a [&'a str],
    n: usize,
    form: &str,
    needs: &str,
) -> Result<(&'a [&'a str], Option<String>), CommandError> {
    if words.len() < n {
        return Err(bad_usage(NAME, &format!("'{form}' needs {needs}")));
    }
    match &words[n..] {
        [] => Ok((&words[..n], None)),
        [listener] => Ok((&words[..n], Some((*listener).to_owned()))),
        [_, extra, ..] => Err(bad_usage(
            NAME,
            &format!("'{extra}' is one word too many after '{form}'"),
        )),
    }
}

fn parse_action(word: &str) -> Result<RecipientAction, CommandError> {
    match word.to_ascii_lowercase().as_str() {
        "accept" => Ok(RecipientAction::Accept),
        "reject" => Ok(RecipientAction::Reject),
        _ => Err(CommandError::Refused(format!(
            "'{word}' is not one of accept or reject."
        ))),
    }
}

fn action_label(action: RecipientAction) -> &'static str {
    match action {
        RecipientAction::Accept => "Accept",
        RecipientAction::Reject => "Reject",
    }
}

/// The listener named `wanted` (exactly, or in another case if that is unambiguous), or the only
/// listener when no name is given.
fn resolve(config: &Config, wanted: Option<&str>) -> Result<ListenerName, CommandError> {
    let names: Vec<&ListenerName> = config.listeners.smtp.keys().collect();
    let list = || {
        names
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let found = match wanted {
        None => match names.as_slice() {
            [one] => Some(*one),
            [] => {
                return Err(CommandError::Refused(
                    "There are no SMTP listeners.".to_owned(),
                ));
            }
            _ => {
                return Err(CommandError::Refused(format!(
                    "There are several SMTP listeners ({}): name the one you mean at the end \
                     of the command.",
                    list()
                )));
            }
        },
        Some(wanted) => names
            .iter()
            .copied()
            .find(|n| n.as_str() == wanted)
            .or_else(|| {
                let similar: Vec<&ListenerName> = names
                    .iter()
                    .copied()
                    .filter(|n| n.as_str().eq_ignore_ascii_case(wanted))
                    .collect();
                match similar.as_slice() {
                    [one] => Some(*one),
                    _ => None,
                }
            }),
    };
    found.cloned().ok_or_else(|| {
        CommandError::Refused(format!(
            "There is no SMTP listener '{}'; the listeners are: {}.",
            wanted.unwrap_or_default(),
            list()
        ))
    })
}

fn find<'a>(
    config: &'a Config,
    wanted: Option<&str>,
) -> Result<(ListenerName, &'a SmtpListener), CommandError> {
    let name = resolve(config, wanted)?;
    let listener = config
        .listeners
        .smtp
        .get(&name)
        .ok_or_else(|| gone(&name))?;
    Ok((name, listener))
}

fn gone(name: &ListenerName) -> CommandError {
    CommandError::Refused(format!("The SMTP listener {name} no longer exists."))
}

/// Applies one change to `config`; returns what was done, for the administrator.
fn apply(
    config: &mut Config,
    change: &Change,
    wanted: Option<&str>,
) -> Result<String, CommandError> {
    let name = resolve(config, wanted)?;
    let listener = config
        .listeners
        .smtp
        .get_mut(&name)
        .ok_or_else(|| gone(&name))?;
    let rat = &mut listener.recipient_access;
    Ok(match change {
        Change::Tls(tls) => {
            listener.tls = *tls;
            format!("{name}: allow encrypted TLS connections: {tls}.")
        }
        Change::RatSet {
            domain,
            action,
            new,
        } => {
            let label = action_label(*action);
            match (rat.get(domain), new) {
                (Some(old), true) => {
                    return Err(CommandError::Refused(format!(
                        "The Recipient Access Table of {name} already has an entry for {domain} \
                         ({}); change it with 'listenerconfig rcptaccess edit'.",
                        action_label(*old)
                    )));
                }
                (None, false) => {
                    return Err(CommandError::Refused(format!(
                        "The Recipient Access Table of {name} has no entry for {domain}; add one \
                         with 'listenerconfig rcptaccess new'."
                    )));
                }
                _ => {}
            }
            rat.insert(domain.clone(), *action);
            if *new {
                format!("{name}: {domain} {label} added to the Recipient Access Table.")
            } else {
                format!("{name}: {domain} is now {label} in the Recipient Access Table.")
            }
        }
        Change::RatDelete(domain) => {
            if rat.remove(domain).is_none() {
                return Err(CommandError::Refused(format!(
                    "The Recipient Access Table of {name} has no entry for {domain}."
                )));
            }
            let mut said = format!("{name}: {domain} removed from the Recipient Access Table.");
            if rat.is_empty() {
                said.push_str(" The table is empty: mail for every domain will be refused.");
            }
            said
        }
        Change::Limit(limit, value) => {
            limit.set(&mut listener.limits, *value);
            format!(
                "{name}: {} ({}) {}.",
                limit.label(),
                limit.keyword(),
                limit.show(*value)
            )
        }
    })
}

/// Stages `changes` together and tells what they did.
fn run_changes<C: Console>(
    session: &mut Session<C>,
    changes: &[Change],
    listener: Option<&str>,
) -> Result<(), CommandError> {
    let mut said = Vec::new();
    session.stage(|config| {
        for change in changes {
            said.push(apply(config, change, listener)?);
        }
        Ok(())
    })?;
    for line in said {
        writeln!(session.out(), "{line}")?;
    }
    Ok(())
}

fn print_listeners(out: &mut dyn Write, config: &Config) -> std::io::Result<()> {
    if config.listeners.smtp.is_empty() {
        return writeln!(out, "There are no SMTP listeners.");
    }
    for (i, (name, listener)) in config.listeners.smtp.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(out, "Name: {name}")?;
        writeln!(out, "Address: {}", listener.address)?;
        writeln!(out, "Protocol: SMTP")?;
        writeln!(out, "Allow encrypted TLS connections: {}", listener.tls)?;
        print_rat(out, name, listener)?;
        writeln!(out, "Limits:")?;
        let mut rows: Vec<(String, String)> = Limit::ALL
            .iter()
            .map(|limit| {
                (
                    format!("{} ({}):", limit.label(), limit.keyword()),
                    limit.show(limit.get(&listener.limits)),
                )
            })
            .collect();
        rows.push((
            "Command timeout:".to_owned(),
            format!("{} seconds", listener.limits.command_timeout),
        ));
        rows.push((
            "Data timeout:".to_owned(),
            format!("{} seconds", listener.limits.data_timeout),
        ));
        let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0) + 1;
        for (label, value) in rows {
            writeln!(out, "  {label:<width$}{value}")?;
        }
    }
    Ok(())
}

/// The RAT, `ALL` last as it applies last.
fn print_rat(
    out: &mut dyn Write,
    name: &ListenerName,
    listener: &SmtpListener,
) -> std::io::Result<()> {
    let rat = &listener.recipient_access;
    writeln!(
        out,
        "Recipient Access Table of {name} ({}):",
        dialog::count(rat.len(), "entry", "entries")
    )?;
    let width = rat
        .keys()
        .map(|d| d.as_str().len())
        .max()
        .unwrap_or(0)
        .max(22)
        + 2;
    let mut entries: Vec<_> = rat.iter().collect();
    entries.sort_by_key(|(domain, _)| domain.is_all());
    for (domain, action) in entries {
        writeln!(
            out,
            "  {:<width$}{}",
            domain.as_str(),
            action_label(*action)
        )?;
    }
    if rat.is_empty() {
        writeln!(out, "  Mail for every domain is refused.")?;
    } else if !rat.keys().any(DomainPattern::is_all) {
        writeln!(out, "  Mail for any other domain is refused.")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The dialog

const TOP: &[Operation] = &[
    ("EDIT", "Modify a listener."),
    ("PRINT", "Display the settings of every listener."),
];

const EDIT: &[Operation] = &[
    (
        "TLS",
        "Change whether the listener allows encrypted TLS connections.",
    ),
    ("RCPTACCESS", "Modify the Recipient Access Table."),
    ("LIMITS", "Change the injection limits."),
];

const RCPTACCESS: &[Operation] = &[
    ("NEW", "Create a new entry."),
    ("EDIT", "Modify an entry."),
    ("DELETE", "Remove an entry."),
    ("PRINT", "Display the table."),
];

fn interactive<C: Console>(session: &mut Session<C>) -> Result<(), CommandError> {
    loop {
        session.refresh()?;
        let config = session.view().clone();
        let out = session.out();
        writeln!(out, "Currently configured listeners:")?;
        for (i, (name, listener)) in config.listeners.smtp.iter().enumerate() {
            writeln!(
                out,
                "{}. {name} (on {}) SMTP, TLS {}",
                i + 1,
                listener.address,
                listener.tls
            )?;
        }
        match dialog::menu(session, TOP)? {
            None => return Ok(()),
            Some("PRINT") => {
                print_listeners(session.out(), &config)?;
                writeln!(session.out())?;
            }
            Some(_) => {
                if let Some(name) = pick_listener(session, &config)? {
                    edit_listener(session, &name)?;
                }
            }
        }
    }
}

fn pick_listener<C: Console>(
    session: &mut Session<C>,
    config: &Config,
) -> Result<Option<ListenerName>, CommandError> {
    let names: Vec<&ListenerName> = config.listeners.smtp.keys().collect();
    let default = if names.len() == 1 { "1" } else { "" };
    dialog::ask_valid(
        session,
        "Enter the name or number of the listener you wish to edit.",
        default,
        |answer| {
            let by_number = answer
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| names.get(i).copied().cloned());
            match by_number {
                Some(name) => Ok(name),
                None => resolve(config, Some(answer)).map_err(|e| e.to_string()),
            }
        },
    )
}

/// The listener as the session sees it now.
fn current<C: Console>(
    session: &mut Session<C>,
    name: &ListenerName,
) -> Result<SmtpListener, CommandError> {
    session.refresh()?;
    session
        .view()
        .listeners
        .smtp
        .get(name)
        .cloned()
        .ok_or_else(|| gone(name))
}

fn edit_listener<C: Console>(
    session: &mut Session<C>,
    name: &ListenerName,
) -> Result<(), CommandError> {
    loop {
        let listener = current(session, name)?;
        let out = session.out();
        writeln!(out)?;
        writeln!(out, "Name: {name}")?;
        writeln!(out, "Address: {}", listener.address)?;
        writeln!(out, "Allow encrypted TLS connections: {}", listener.tls)?;
        match dialog::menu(session, EDIT)? {
            None => return Ok(()),
            Some("TLS") => {
                let choices: Vec<String> =
                    ListenerTls::ALL.iter().map(ToString::to_string).collect();
                let now = ListenerTls::ALL
                    .iter()
                    .position(|t| *t == listener.tls)
                    .unwrap_or(0);
                let i = dialog::choose(
                    session,
                    "Would you like to allow encrypted TLS connections?",
                    &choices,
                    now,
                )?;
                let tls = ListenerTls::ALL.get(i).copied().unwrap_or(listener.tls);
                run_changes(session, &[Change::Tls(tls)], Some(name.as_str()))?;
            }
            Some("RCPTACCESS") => rat_dialog(session, name)?,
            Some(_) => limits_dialog(session, name, &listener.limits)?,
        }
    }
}

fn rat_dialog<C: Console>(
    session: &mut Session<C>,
    name: &ListenerName,
) -> Result<(), CommandError> {
    loop {
        let listener = current(session, name)?;
        let rat = &listener.recipient_access;
        writeln!(session.out(), "\nRecipient Access Table")?;
        writeln!(
            session.out(),
            "{}.",
            dialog::there_are(rat.len(), "entry", "entries")
        )?;
        let Some(operation) = dialog::menu(session, RCPTACCESS)? else {
            return Ok(());
        };
        let existing = |answer: &str| {
            let domain = DomainPattern::new(answer).map_err(|e| format!("{e}."))?;
            match rat.contains_key(&domain) {
                true => Ok(domain),
                false => Err(format!("There is no entry for {domain}.")),
            }
        };
        let change = match operation {
            "PRINT" => {
                print_rat(session.out(), name, &listener)?;
                continue;
            }
            "NEW" => {
                let Some(domain) = dialog::ask_valid(
                    session,
                    "Enter the recipient domain for this entry.\nDomains such as \"example.com\" \
                     are allowed; \".example.com\" matches its subdomains and ALL every domain.",
                    "",
                    |answer| {
                        let domain = DomainPattern::new(answer).map_err(|e| format!("{e}."))?;
                        match rat.get(&domain) {
                            Some(action) => Err(format!(
                                "There is already an entry for {domain} ({}).",
                                action_label(*action)
                            )),
                            None => Ok(domain),
                        }
                    },
                )?
                else {
                    continue;
                };
                let action = choose_action(session, RecipientAction::Accept)?;
                Change::RatSet {
                    domain,
                    action,
                    new: true,
                }
            }
            "EDIT" => {
                let Some(domain) = dialog::ask_valid(
                    session,
                    "Enter the recipient domain of the entry you wish to edit.",
                    "",
                    existing,
                )?
                else {
                    continue;
                };
                let now = rat.get(&domain).copied().unwrap_or(RecipientAction::Accept);
                let action = choose_action(session, now)?;
                Change::RatSet {
                    domain,
                    action,
                    new: false,
                }
            }
            _ => {
                let Some(domain) = dialog::ask_valid(
                    session,
                    "Enter the recipient domain of the entry you wish to delete.",
                    "",
                    existing,
                )?
                else {
                    continue;
                };
                Change::RatDelete(domain)
            }
        };
        run_changes(session, &[change], Some(name.as_str()))?;
    }
}

fn choose_action<C: Console>(
    session: &mut Session<C>,
    now: RecipientAction,
) -> Result<RecipientAction, CommandError> {
    let actions = [RecipientAction::Accept, RecipientAction::Reject];
    let choices: Vec<String> = actions
        .iter()
        .map(|a| action_label(*a).to_owned())
        .collect();
    let current = actions.iter().position(|a| *a == now).unwrap_or(0);
    let i = dialog::choose(
        session,
        "Select the action to apply to this domain:",
        &choices,
        current,
    )?;
    Ok(actions.get(i).copied().unwrap_or(now))
}

fn limits_dialog<C: Console>(
    session: &mut Session<C>,
    name: &ListenerName,
    limits: &ListenerLimits,
) -> Result<(), CommandError> {
    let mut changes = Vec::new();
    for limit in Limit::ALL {
        let now = limit.show(limit.get(limits));
        // The default is never empty, so Enter keeps it rather than giving up.
        let answer = dialog::ask_valid(session, limit.question(), &now, |a| limit.parse(a))?;
        if let Some(value) = answer.filter(|v| *v != limit.get(limits)) {
            changes.push(Change::Limit(limit, value));
        }
    }
    if changes.is_empty() {
        writeln!(session.out(), "{name}: the limits were not changed.")?;
        return Ok(());
    }
    run_changes(session, &changes, Some(name.as_str()))
}

#[cfg(test)]
mod tests {
    use postern_config::{FactoryListeners, Hostname, PasswordHash};

    use super::*;

    fn config() -> Config {
        let hash = PasswordHash::try_from(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$X4hW/0kb6YyM8qX8oaZWmbYQJYTCKwMeLhxLrbWT5rU"
                .to_owned(),
        )
        .unwrap();
        Config::factory(
            Hostname::new("mail.example.com").unwrap(),
            FactoryListeners::HOST,
            hash,
        )
    }

    fn refusal(args: &str) -> String {
        match parse(args) {
            Err(CommandError::Refused(text)) => text,
            other => panic!("{args:?} was not refused: {other:?}"),
        }
    }

    fn domain(d: &str) -> DomainPattern {
        DomainPattern::new(d).unwrap()
    }

    #[test]
    fn one_line_forms_parse() {
        assert_eq!(parse("print").unwrap(), Op::Print);
        assert_eq!(
            parse("TLS Required").unwrap(),
            Op::Change {
                change: Change::Tls(ListenerTls::Required),
                listener: None
            }
        );
        assert_eq!(
            parse("rcptaccess new .Example.TEST accept Outgoing").unwrap(),
            Op::Change {
                change: Change::RatSet {
                    domain: domain(".example.test"),
                    action: RecipientAction::Accept,
                    new: true
                },
                listener: Some("Outgoing".to_owned())
            }
        );
        assert_eq!(
            parse("rcptaccess delete ALL").unwrap(),
            Op::Change {
                change: Change::RatDelete(domain("ALL")),
                listener: None
            }
        );
        assert_eq!(
            parse("rcptaccess print IncomingMail").unwrap(),
            Op::RatPrint {
                listener: Some("IncomingMail".to_owned())
            }
        );
        assert_eq!(
            parse("limits max-message-size 10M").unwrap(),
            Op::Change {
                change: Change::Limit(Limit::MessageSize, 10 * 1024 * 1024),
                listener: None
            }
        );
        assert_eq!(
            parse("limits max-connections-per-ip 5 IncomingMail").unwrap(),
            Op::Change {
                change: Change::Limit(Limit::ConnectionsPerIp, 5),
                listener: Some("IncomingMail".to_owned())
            }
        );
    }

    #[test]
    fn bad_lines_say_what_is_valid() {
        assert!(refusal("tls maybe").contains("'maybe' is not one of no, preferred or required"));
        assert!(refusal("tls").contains("needs a TLS setting"));
        assert!(refusal("tls no a b").contains("'b' is one word too many"));
        assert!(refusal("rcptaccess new example.test maybe").contains("accept or reject"));
        assert!(refusal("rcptaccess new *.example.test accept").contains("is not a domain"));
        assert!(refusal("rcptaccess frob").contains("use new, edit, delete or print"));
        assert!(refusal("rcptaccess").contains("needs an operation"));
        assert!(refusal("limits max-connections 0").contains("from 1 to 1000000"));
        assert!(refusal("limits max-message-size 20").contains("64k to 1024M"));
        assert!(refusal("limits speed 5").contains("max-connections, max-connections-per-ip"));
        let usage = refusal("frob");
        assert!(usage.starts_with("'frob' is not a listenerconfig operation. Usage:"));
        assert!(usage.contains("listenerconfig rcptaccess new <domain|.domain|ALL>"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Some(65536));
        assert_eq!(parse_size("64k"), Some(65536));
        assert_eq!(parse_size("20M"), Some(20 * 1024 * 1024));
        for bad in ["", "M", "-1k", "1.5M", "20MB", "99999999999999999999M"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        assert_eq!(show_size(20 * 1024 * 1024), "20M");
        assert_eq!(show_size(65536), "64k");
        assert_eq!(show_size(65537), "65537");
    }

    #[test]
    fn changes_apply_to_the_only_listener_or_the_one_named() {
        let mut c = config();
        let new = Change::RatSet {
            domain: domain("example.test"),
            action: RecipientAction::Accept,
            new: true,
        };
        let said = apply(&mut c, &new, None).unwrap();
        assert_eq!(
            said,
            "IncomingMail: example.test Accept added to the Recipient Access Table."
        );
        assert!(c.listeners.smtp.values().all(|l| l.accepts("example.test")));
        // Adding it again is refused; editing it is not.
        assert!(apply(&mut c, &new, None).is_err());
        let edit = Change::RatSet {
            domain: domain("example.test"),
            action: RecipientAction::Reject,
            new: false,
        };
        apply(&mut c, &edit, Some("incomingmail")).unwrap();
        assert!(
            c.listeners
                .smtp
                .values()
                .all(|l| !l.accepts("example.test"))
        );

        let mut second = c.listeners.smtp.values().next().unwrap().clone();
        second.address = "127.0.0.1:2526".parse().unwrap();
        c.listeners
            .smtp
            .insert(ListenerName::new("Outgoing").unwrap(), second);
        let tls = Change::Tls(ListenerTls::Required);
        let several = apply(&mut c, &tls, None).unwrap_err().to_string();
        assert!(
            several.contains("several SMTP listeners (IncomingMail, Outgoing)"),
            "{several}"
        );
        let unknown = apply(&mut c, &tls, Some("Nope")).unwrap_err().to_string();
        assert_eq!(
            unknown,
            "There is no SMTP listener 'Nope'; the listeners are: IncomingMail, Outgoing."
        );
        apply(&mut c, &tls, Some("Outgoing")).unwrap();
        let tls_of = |c: &Config, n: &str| c.listeners.smtp[&ListenerName::new(n).unwrap()].tls;
        assert_eq!(tls_of(&c, "Outgoing"), ListenerTls::Required);
        assert_eq!(tls_of(&c, "IncomingMail"), ListenerTls::Preferred);
    }

    #[test]
    fn deleting_and_printing_the_rat() {
        let mut c = config();
        let missing = apply(&mut c, &Change::RatDelete(domain("example.test")), None);
        assert!(
            missing
                .unwrap_err()
                .to_string()
                .contains("has no entry for example.test")
        );
        for (d, action) in [
            ("ALL", RecipientAction::Reject),
            ("example.test", RecipientAction::Accept),
        ] {
            let change = Change::RatSet {
                domain: domain(d),
                action,
                new: true,
            };
            apply(&mut c, &change, None).unwrap();
        }
        let mut out = Vec::new();
        print_listeners(&mut out, &c).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("Name: IncomingMail\nAddress: 127.0.0.1:2525\n"),
            "{out}"
        );
        assert!(
            out.contains("Allow encrypted TLS connections: Preferred\n"),
            "{out}"
        );
        // ALL applies last, and is listed last.
        let entries = "  example.test            Accept\n  ALL                     Reject\n";
        assert!(out.contains(entries), "{out}");
        assert!(out.contains("(max-message-size):"), "{out}");
        assert!(out.contains("20M\n"), "{out}");

        let said = apply(&mut c, &Change::RatDelete(domain("ALL")), None).unwrap();
        assert!(!said.contains("empty"), "{said}");
        let said = apply(&mut c, &Change::RatDelete(domain("example.test")), None).unwrap();
        assert!(
            said.ends_with("mail for every domain will be refused."),
            "{said}"
        );
    }
}
