//! `smtproutes`: the SMTP routes, the hosts that mail for a domain is sent to instead of the
//! domain's MX hosts.

use std::io::Write;

use postern_config::{Config, DomainPattern, RouteHost};

use super::dialog::{self, Operation};
use super::{CommandError, bad_usage, refused};
use crate::console::Console;
use crate::session::Session;

const NAME: &str = "smtproutes";

pub(super) fn smtproutes<C: Console>(
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
            print_routes(session.out(), &config)?;
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
    /// A route: `new` adds one (refused if there is one), otherwise replaces its hosts.
    Set {
        domain: DomainPattern,
        hosts: Vec<RouteHost>,
        new: bool,
    },
    Delete(DomainPattern),
    Clear,
}

fn parse(args: &str) -> Result<Op, CommandError> {
    let words: Vec<&str> = args.split_whitespace().collect();
    let Some((first, rest)) = words.split_first() else {
        return Err(bad_usage(NAME, "Give a smtproutes operation"));
    };
    let operation = first.to_ascii_lowercase();
    match (operation.as_str(), rest) {
        ("print" | "list", []) => Ok(Op::Print),
        ("clear", []) => Ok(Op::Change(Change::Clear)),
        ("new" | "edit", [domain, hosts @ ..]) if !hosts.is_empty() => {
            Ok(Op::Change(Change::Set {
                domain: DomainPattern::new(domain).map_err(refused)?,
                // `a, b` is as good as `a,b`; a space without a comma is caught by RouteHost.
                hosts: parse_hosts(&hosts.join(" "))?,
                new: operation == "new",
            }))
        }
        ("new" | "edit", _) => Err(bad_usage(
            NAME,
            &format!("'smtproutes {operation}' needs a domain and its destination hosts"),
        )),
        ("delete", [domain]) => Ok(Op::Change(Change::Delete(
            DomainPattern::new(domain).map_err(refused)?,
        ))),
        ("delete", _) => Err(bad_usage(NAME, "'smtproutes delete' needs one domain")),
        ("print" | "list" | "clear", _) => Err(bad_usage(
            NAME,
            &format!("'smtproutes {operation}' takes no arguments"),
        )),
        _ => Err(bad_usage(
            NAME,
            &format!("'{first}' is not a smtproutes operation"),
        )),
    }
}

/// `host[:port]` separated by commas, each once, in the order they are tried.
fn parse_hosts(text: &str) -> Result<Vec<RouteHost>, CommandError> {
    let mut hosts: Vec<RouteHost> = Vec::new();
    for item in text.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(CommandError::Refused(format!(
                "'{text}' has an empty place in its list: separate the hosts with commas, like \
                 mx1.example.com,mx2.example.com:2525."
            )));
        }
        let host = RouteHost::new(item).map_err(refused)?;
        if hosts.contains(&host) {
            return Err(CommandError::Refused(format!(
                "{host} is listed twice; list each destination host once."
            )));
        }
        hosts.push(host);
    }
    Ok(hosts)
}

fn show_hosts(hosts: &[RouteHost]) -> String {
    hosts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Applies one change to `config`; returns what was done, for the administrator.
fn apply(config: &mut Config, change: &Change) -> Result<String, CommandError> {
    let routes = &mut config.delivery.routes;
    Ok(match change {
        Change::Set { domain, hosts, new } => {
            match (routes.contains_key(domain), new) {
                (true, true) => {
                    return Err(CommandError::Refused(format!(
                        "There is already a route for {domain}; change it with 'smtproutes edit'."
                    )));
                }
                (false, false) => {
                    return Err(CommandError::Refused(format!(
                        "There is no route for {domain}; add one with 'smtproutes new'."
                    )));
                }
                _ => {}
            }
            routes.insert(domain.clone(), hosts.clone());
            let whose = if domain.is_all() {
                "every domain without a route of its own".to_owned()
            } else {
                domain.to_string()
            };
            format!(
                "Mail for {whose} will be delivered to {}.",
                show_hosts(hosts)
            )
        }
        Change::Delete(domain) => {
            if routes.remove(domain).is_none() {
                return Err(CommandError::Refused(no_route(domain)));
            }
            format!("The route for {domain} was removed.")
        }
        Change::Clear => {
            if routes.is_empty() {
                "There are no routes to remove.".to_owned()
            } else {
                let n = routes.len();
                routes.clear();
                format!("{} removed.", dialog::count(n, "route", "routes"))
            }
        }
    })
}

fn no_route(domain: &DomainPattern) -> String {
    format!("There is no route for {domain}.")
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

/// The routes, `ALL` (the default route) last.
fn print_routes(out: &mut dyn Write, config: &Config) -> std::io::Result<()> {
    let routes = &config.delivery.routes;
    if routes.is_empty() {
        writeln!(out, "There are no routes configured.")?;
        return writeln!(out, "Mail for every domain is delivered to its MX hosts.");
    }
    let width = routes
        .keys()
        .map(|d| d.as_str().len())
        .max()
        .unwrap_or(0)
        .max(22)
        + 2;
    writeln!(out, "{:<width$}Destinations", "Domain")?;
    writeln!(out, "{:<width$}============", "======")?;
    let mut entries: Vec<_> = routes.iter().collect();
    entries.sort_by_key(|(domain, _)| domain.is_all());
    for (domain, hosts) in entries {
        writeln!(out, "{:<width$}{}", domain.as_str(), show_hosts(hosts))?;
    }
    if !routes.keys().any(DomainPattern::is_all) {
        writeln!(
            out,
            "Mail for any other domain is delivered to its MX hosts."
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The dialog

const MENU: &[Operation] = &[
    ("NEW", "Create a new route."),
    ("EDIT", "Edit destinations of an existing route."),
    ("DELETE", "Remove a route."),
    ("PRINT", "Display all routes."),
    ("CLEAR", "Remove all routes."),
];

const HOSTS_HELP: &str = "Enter the destination hosts, separated by commas, which you want mail \
                          for {domain} to be delivered.\nA port may follow a host after a colon \
                          (mx.example.com:2525); IPv6 addresses go in brackets ([2001:db8::1]:25).";

fn interactive<C: Console>(session: &mut Session<C>) -> Result<(), CommandError> {
    loop {
        session.refresh()?;
        let config = session.view().clone();
        let routes = &config.delivery.routes;
        writeln!(
            session.out(),
            "{} configured.",
            dialog::there_are(routes.len(), "route", "routes")
        )?;
        let Some(operation) = dialog::menu(session, MENU)? else {
            return Ok(());
        };
        let existing = |answer: &str| {
            let domain = DomainPattern::new(answer).map_err(|e| format!("{e}."))?;
            match routes.contains_key(&domain) {
                true => Ok(domain),
                false => Err(no_route(&domain)),
            }
        };
        let change = match operation {
            "PRINT" => {
                print_routes(session.out(), &config)?;
                writeln!(session.out())?;
                continue;
            }
            "CLEAR" => {
                if !routes.is_empty()
                    && !session.confirm("Are you sure you want to remove all routes?", false)?
                {
                    continue;
                }
                Change::Clear
            }
            "NEW" => {
                let Some(domain) = dialog::ask_valid(
                    session,
                    "Enter the hostname you want to route.\nPartial hostnames such as \
                     \".example.com\" are allowed.\nUse \"ALL\" for the default route.",
                    "",
                    |answer| {
                        let domain = DomainPattern::new(answer).map_err(|e| format!("{e}."))?;
                        match routes.get(&domain) {
                            Some(hosts) => Err(format!(
                                "There is already a route for {domain} (to {}).",
                                show_hosts(hosts)
                            )),
                            None => Ok(domain),
                        }
                    },
                )?
                else {
                    continue;
                };
                let Some(hosts) = ask_hosts(session, &domain, "")? else {
                    continue;
                };
                Change::Set {
                    domain,
                    hosts,
                    new: true,
                }
            }
            "EDIT" => {
                let Some(domain) = dialog::ask_valid(
                    session,
                    "Enter the hostname you want to edit.",
                    "",
                    existing,
                )?
                else {
                    continue;
                };
                let now = routes.get(&domain).map_or_else(String::new, |h| {
                    h.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                });
                let Some(hosts) = ask_hosts(session, &domain, &now)? else {
                    continue;
                };
                Change::Set {
                    domain,
                    hosts,
                    new: false,
                }
            }
            _ => {
                let Some(domain) = dialog::ask_valid(
                    session,
                    "Enter the hostname you want to delete.",
                    "",
                    existing,
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

fn ask_hosts<C: Console>(
    session: &mut Session<C>,
    domain: &DomainPattern,
    now: &str,
) -> Result<Option<Vec<RouteHost>>, CommandError> {
    let question = HOSTS_HELP.replace("{domain}", domain.as_str());
    dialog::ask_valid(session, &question, now, |answer| {
        parse_hosts(answer).map_err(|e| e.to_string())
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

    #[test]
    fn one_line_forms_parse() {
        assert_eq!(parse("PRINT").unwrap(), Op::Print);
        assert_eq!(parse("clear").unwrap(), Op::Change(Change::Clear));
        let Op::Change(Change::Set { domain, hosts, new }) =
            parse("new Example.test mx1.example.test, 127.0.0.1:2526,[::1]:25").unwrap()
        else {
            panic!("not a route");
        };
        assert!(new);
        assert_eq!(domain.as_str(), "example.test");
        assert_eq!(
            show_hosts(&hosts),
            "mx1.example.test:25, 127.0.0.1:2526, [::1]:25"
        );
        assert_eq!(
            parse("delete ALL").unwrap(),
            Op::Change(Change::Delete(DomainPattern::new("ALL").unwrap()))
        );
    }

    #[test]
    fn bad_lines_say_what_is_valid() {
        assert!(refusal("new example.test").contains("needs a domain and its destination hosts"));
        assert!(refusal("new example.test mx:0").contains("'mx:0' is not a host"));
        assert!(refusal("new example.test a b").contains("'a b' is not a host"));
        assert!(refusal("new example.test a,,b").contains("an empty place"));
        assert!(refusal("new example.test a,A").contains("a:25 is listed twice"));
        assert!(refusal("new exa_mple.test a").contains("is not a domain"));
        assert!(refusal("delete").contains("needs one domain"));
        assert!(refusal("clear now").contains("takes no arguments"));
        assert!(refusal("frob").contains("Usage:\n  smtproutes\n"));
    }

    #[test]
    fn changes_and_the_table() {
        let mut c = config();
        let mut out = Vec::new();
        print_routes(&mut out, &c).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .starts_with("There are no routes configured.")
        );

        let Op::Change(new) = parse("new example.test 127.0.0.1:2526").unwrap() else {
            panic!("not a change");
        };
        apply(&mut c, &new).unwrap();
        assert!(
            apply(&mut c, &new)
                .unwrap_err()
                .to_string()
                .contains("already a route")
        );
        let Op::Change(all) = parse("new ALL relay.example.net").unwrap() else {
            panic!("not a change");
        };
        apply(&mut c, &all).unwrap();
        assert_eq!(
            c.delivery.route("example.test").unwrap()[0].to_string(),
            "127.0.0.1:2526"
        );
        let mut out = Vec::new();
        print_routes(&mut out, &c).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.ends_with(
                "example.test            127.0.0.1:2526\nALL                     relay.example.net:25\n"
            ),
            "{out}"
        );

        let Op::Change(edit) = parse("edit other.test mx").unwrap() else {
            panic!("not a change");
        };
        assert!(
            apply(&mut c, &edit)
                .unwrap_err()
                .to_string()
                .contains("smtproutes new")
        );
        assert_eq!(apply(&mut c, &Change::Clear).unwrap(), "2 routes removed.");
        assert!(c.delivery.routes.is_empty());
    }
}
