//! `destconfig`: destination controls, how mail is delivered to each destination domain: its
//! TLS setting and how many connections may be open to it at once. `ALL` is the default for
//! every domain without an entry of its own.

use std::io::Write;

use postern_config::{Config, DestinationControl, DestinationTls, DomainPattern};

use super::dialog::{self, Operation};
use super::{CommandError, bad_usage, refused};
use crate::console::Console;
use crate::session::Session;

const NAME: &str = "destconfig";

/// The concurrency limits an administrator may set.
const CONCURRENCY: std::ops::RangeInclusive<u32> = 1..=1000;

pub(super) fn destconfig<C: Console>(
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
            print_table(session.out(), &config)?;
            Ok(())
        }
        Op::Change(change) => run_change(session, &change),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Print,
    Change(Change),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// An entry: `new` adds one (refused if there is one), otherwise changes one. What is not
    /// given is taken from the default (new) or kept (edit).
    Set {
        domain: DomainPattern,
        settings: Settings,
        new: bool,
    },
    Delete(DomainPattern),
}

/// The settings a line gives; at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Settings {
    tls: Option<DestinationTls>,
    concurrency: Option<u32>,
}

impl Settings {
    fn apply_to(self, control: &mut DestinationControl) {
        if let Some(tls) = self.tls {
            control.tls = tls;
        }
        if let Some(n) = self.concurrency {
            control.max_concurrency = n;
        }
    }
}

fn parse(args: &str) -> Result<Op, CommandError> {
    let words: Vec<&str> = args.split_whitespace().collect();
    let Some((first, rest)) = words.split_first() else {
        return Err(bad_usage(NAME, "Give a destconfig operation"));
    };
    let operation = first.to_ascii_lowercase();
    match (operation.as_str(), rest) {
        ("print" | "list", []) => Ok(Op::Print),
        ("print" | "list", _) => Err(bad_usage(
            NAME,
            &format!("'destconfig {operation}' takes no arguments"),
        )),
        ("new" | "edit", [domain, settings @ ..]) => Ok(Op::Change(Change::Set {
            domain: DomainPattern::new(domain).map_err(refused)?,
            settings: parse_settings(&operation, settings)?,
            new: operation == "new",
        })),
        ("new" | "edit", []) => Err(bad_usage(
            NAME,
            &format!("'destconfig {operation}' needs a domain and its settings"),
        )),
        ("delete", [domain]) => Ok(Op::Change(Change::Delete(
            DomainPattern::new(domain).map_err(refused)?,
        ))),
        ("delete", _) => Err(bad_usage(NAME, "'destconfig delete' needs one domain")),
        _ => Err(bad_usage(
            NAME,
            &format!("'{first}' is not a destconfig operation"),
        )),
    }
}

/// `tls <mode>` and `concurrency <n>`, in either order, each at most once.
fn parse_settings(operation: &str, words: &[&str]) -> Result<Settings, CommandError> {
    let mut settings = Settings::default();
    let mut words = words.iter();
    while let Some(key) = words.next() {
        let Some(value) = words.next() else {
            return Err(bad_usage(NAME, &format!("'{key}' needs a value after it")));
        };
        match key.to_ascii_lowercase().as_str() {
            "tls" if settings.tls.is_none() => {
                settings.tls = Some(value.parse::<DestinationTls>().map_err(refused)?);
            }
            "concurrency" if settings.concurrency.is_none() => {
                settings.concurrency =
                    Some(dialog::number_in(value, CONCURRENCY).map_err(CommandError::Refused)?);
            }
            "tls" | "concurrency" => {
                return Err(bad_usage(NAME, &format!("'{key}' is given twice")));
            }
            _ => {
                return Err(bad_usage(
                    NAME,
                    &format!("'{key}' is not a destination setting: use tls or concurrency"),
                ));
            }
        }
    }
    if settings == Settings::default() {
        return Err(bad_usage(
            NAME,
            &format!("'destconfig {operation}' needs tls <mode>, concurrency <n> or both"),
        ));
    }
    Ok(settings)
}

/// Applies one change to `config`; returns what was done, for the administrator.
fn apply(config: &mut Config, change: &Change) -> Result<String, CommandError> {
    let table = &mut config.delivery.destinations;
    match change {
        Change::Set {
            domain,
            settings,
            new: true,
        } => {
            if table.contains_key(domain) {
                return Err(CommandError::Refused(format!(
                    "There is already an entry for {}; change it with 'destconfig edit'.",
                    label(domain)
                )));
            }
            // What is not given comes from the default, as the reference appliance's "Default".
            let mut control = all(table).cloned().unwrap_or_default();
            settings.apply_to(&mut control);
            let said = format!("{} added: {}.", label(domain), describe(&control));
            table.insert(domain.clone(), control);
            Ok(said)
        }
        Change::Set {
            domain, settings, ..
        } => {
            let control = table.get_mut(domain).ok_or_else(|| {
                CommandError::Refused(format!(
                    "{domain} was not found in the destination table; add it with \
                     'destconfig new'."
                ))
            })?;
            settings.apply_to(control);
            Ok(format!("{} is now: {}.", label(domain), describe(control)))
        }
        Change::Delete(domain) if domain.is_all() => Err(CommandError::Refused(
            "ALL cannot be deleted: it is the default that applies to every domain without an \
             entry of its own. Change it with 'destconfig edit ALL tls <mode> concurrency <n>'."
                .to_owned(),
        )),
        Change::Delete(domain) => {
            if table.remove(domain).is_none() {
                return Err(CommandError::Refused(not_found(domain)));
            }
            Ok(format!(
                "{domain} was removed; the default (ALL) applies to it now."
            ))
        }
    }
}

fn all(
    table: &std::collections::BTreeMap<DomainPattern, DestinationControl>,
) -> Option<&DestinationControl> {
    table.iter().find(|(d, _)| d.is_all()).map(|(_, c)| c)
}

fn not_found(domain: &DomainPattern) -> String {
    format!("{domain} was not found in the destination table.")
}

fn label(domain: &DomainPattern) -> String {
    if domain.is_all() {
        "ALL (Default)".to_owned()
    } else {
        domain.to_string()
    }
}

fn describe(control: &DestinationControl) -> String {
    format!(
        "TLS {}, max concurrency {}",
        control.tls, control.max_concurrency
    )
}

fn run_change<C: Console>(session: &mut Session<C>, change: &Change) -> Result<(), CommandError> {
    let mut said = String::new();
    session.stage(|config| {
        said = apply(config, change)?;
        Ok(())
    })?;
    writeln!(session.out(), "{said}")?;
    Ok(())
}

/// The destination table, the default last.
fn print_table(out: &mut dyn Write, config: &Config) -> std::io::Result<()> {
    let table = &config.delivery.destinations;
    let width = table
        .keys()
        .map(|d| label(d).len())
        .max()
        .unwrap_or(0)
        .max(22)
        + 2;
    writeln!(
        out,
        "{:<width$}{:<21}Max Concurrency",
        "Domain", "TLS Setting"
    )?;
    writeln!(
        out,
        "{:<width$}{:<21}===============",
        "=".repeat(width - 2),
        "==================="
    )?;
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(domain, _)| domain.is_all());
    for (domain, control) in entries {
        writeln!(
            out,
            "{:<width$}{:<21}{}",
            label(domain),
            control.tls.to_string(),
            control.max_concurrency
        )?;
    }
    if all(table).is_none() {
        let default = DestinationControl::default();
        writeln!(
            out,
            "{:<width$}{:<21}{}",
            "(Default, built in)",
            default.tls.to_string(),
            default.max_concurrency
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The dialog

const MENU: &[Operation] = &[
    ("NEW", "Create a new entry."),
    ("EDIT", "Modify an entry."),
    ("DELETE", "Remove an entry."),
    ("DEFAULT", "Change the default."),
    ("LIST", "Display a summary list of all entries."),
];

fn interactive<C: Console>(session: &mut Session<C>) -> Result<(), CommandError> {
    loop {
        session.refresh()?;
        let config = session.view().clone();
        let table = &config.delivery.destinations;
        let own = table.keys().filter(|d| !d.is_all()).count();
        writeln!(
            session.out(),
            "{} configured besides the default.",
            dialog::there_are(own, "entry", "entries")
        )?;
        let Some(operation) = dialog::menu(session, MENU)? else {
            return Ok(());
        };
        let existing = |answer: &str| {
            let domain = DomainPattern::new(answer).map_err(|e| format!("{e}."))?;
            match table.contains_key(&domain) {
                true => Ok(domain),
                false => Err(not_found(&domain)),
            }
        };
        let change = match operation {
            "LIST" => {
                print_table(session.out(), &config)?;
                writeln!(session.out())?;
                continue;
            }
            "NEW" => {
                let Some(domain) = dialog::ask_valid(
                    session,
                    "Enter the domain you wish to configure.",
                    "",
                    |answer| {
                        let domain = DomainPattern::new(answer).map_err(|e| format!("{e}."))?;
                        match table.contains_key(&domain) {
                            true => Err(format!(
                                "There is already an entry for {}; use EDIT to change it.",
                                label(&domain)
                            )),
                            false => Ok(domain),
                        }
                    },
                )?
                else {
                    continue;
                };
                let from = all(table).cloned().unwrap_or_default();
                let settings = ask_settings(session, &domain, &from)?;
                Change::Set {
                    domain,
                    settings,
                    new: true,
                }
            }
            "EDIT" | "DEFAULT" => {
                let domain = if operation == "DEFAULT" {
                    DomainPattern::new(DomainPattern::ALL).map_err(refused)?
                } else {
                    let Some(domain) = dialog::ask_valid(
                        session,
                        "Enter the domain you wish to edit.",
                        "",
                        existing,
                    )?
                    else {
                        continue;
                    };
                    domain
                };
                let Some(now) = table.get(&domain) else {
                    // The default was removed by hand: NEW makes it again.
                    writeln!(session.out(), "{}", not_found(&domain))?;
                    continue;
                };
                let settings = ask_settings(session, &domain, now)?;
                Change::Set {
                    domain,
                    settings,
                    new: false,
                }
            }
            _ => {
                let Some(domain) = dialog::ask_valid(
                    session,
                    "Enter the domain you wish to delete.",
                    "",
                    |answer| {
                        let domain = existing(answer)?;
                        match domain.is_all() {
                            true => Err("ALL cannot be deleted: it is the default for every \
                                         domain without an entry; use DEFAULT to change it."
                                .to_owned()),
                            false => Ok(domain),
                        }
                    },
                )?
                else {
                    continue;
                };
                Change::Delete(domain)
            }
        };
        run_change(session, &change)?;
    }
}

/// The per-domain questions, each with the current value as its default.
fn ask_settings<C: Console>(
    session: &mut Session<C>,
    domain: &DomainPattern,
    now: &DestinationControl,
) -> Result<Settings, CommandError> {
    let concurrency = dialog::ask_valid(
        session,
        &format!(
            "Enter the max concurrency limit for \"{}\" (1 to 1000).",
            label(domain)
        ),
        &now.max_concurrency.to_string(),
        |answer| dialog::number_in(answer, CONCURRENCY),
    )?;
    let choices: Vec<String> = DestinationTls::ALL
        .iter()
        .map(ToString::to_string)
        .collect();
    let current = DestinationTls::ALL
        .iter()
        .position(|t| *t == now.tls)
        .unwrap_or(0);
    let i = dialog::choose(
        session,
        "Do you want to use TLS support?",
        &choices,
        current,
    )?;
    Ok(Settings {
        tls: DestinationTls::ALL.get(i).copied(),
        concurrency,
    })
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

    fn change(args: &str) -> Change {
        match parse(args).unwrap() {
            Op::Change(change) => change,
            Op::Print => panic!("{args:?} is not a change"),
        }
    }

    #[test]
    fn one_line_forms_parse() {
        assert_eq!(parse("print").unwrap(), Op::Print);
        assert_eq!(
            change("new Example.test tls required-verify concurrency 5"),
            Change::Set {
                domain: DomainPattern::new("example.test").unwrap(),
                settings: Settings {
                    tls: Some(DestinationTls::RequiredVerify),
                    concurrency: Some(5)
                },
                new: true
            }
        );
        assert_eq!(
            change("EDIT all CONCURRENCY 1000"),
            Change::Set {
                domain: DomainPattern::new("ALL").unwrap(),
                settings: Settings {
                    tls: None,
                    concurrency: Some(1000)
                },
                new: false
            }
        );
    }

    #[test]
    fn bad_lines_say_what_is_valid() {
        assert!(refusal("new example.test tls maybe").contains(
            "'maybe' is not one of no, preferred, required, preferred-verify or required-verify"
        ));
        assert!(refusal("new example.test tls").contains("'tls' needs a value after it"));
        assert!(refusal("new example.test").contains("needs tls <mode>, concurrency <n> or both"));
        assert!(refusal("new example.test concurrency 0").contains("from 1 to 1000"));
        assert!(refusal("new example.test tls no tls required").contains("given twice"));
        assert!(refusal("new example.test speed 5").contains("use tls or concurrency"));
        assert!(refusal("delete").contains("needs one domain"));
        assert!(refusal("frob").contains("Usage:\n  destconfig\n"));
    }

    #[test]
    fn entries_take_the_default_and_all_stays() {
        let mut c = config();
        apply(&mut c, &change("edit ALL tls required concurrency 7")).unwrap();
        let said = apply(&mut c, &change("new example.test concurrency 5")).unwrap();
        assert_eq!(said, "example.test added: TLS Required, max concurrency 5.");
        let existing = apply(&mut c, &change("new example.test tls no")).unwrap_err();
        assert!(
            existing.to_string().contains("destconfig edit"),
            "{existing}"
        );
        apply(&mut c, &change("edit example.test tls preferred-verify")).unwrap();
        assert_eq!(
            c.delivery.destination("example.test"),
            DestinationControl {
                tls: DestinationTls::PreferredVerify,
                max_concurrency: 5
            }
        );
        let missing = apply(&mut c, &change("edit other.test tls no")).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("was not found in the destination")
        );

        let mut out = Vec::new();
        print_table(&mut out, &c).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            "Domain                  TLS Setting          Max Concurrency\n\
             ======================  ===================  ===============\n\
             example.test            Preferred - Verify   5\n\
             ALL (Default)           Required             7\n"
        );

        let all = apply(&mut c, &change("delete ALL"))
            .unwrap_err()
            .to_string();
        assert!(
            all.starts_with("ALL cannot be deleted: it is the default"),
            "{all}"
        );
        apply(&mut c, &change("delete example.test")).unwrap();
        assert!(apply(&mut c, &change("delete example.test")).is_err());
        assert_eq!(c.delivery.destinations.len(), 1);
    }
}
