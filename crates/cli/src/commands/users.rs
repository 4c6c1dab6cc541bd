//! `userconfig` and `passwd`: the accounts of the appliance's administrators, with argon2
//! password hashes in the configuration. Passwords are read without echo and are never logged.

use postern_config::{AdminUser, Config, LoginHash, PasswordHash, Role, UserName};

use super::dialog::{self, Operation};
use super::{CommandError, bad_usage, refused};
use crate::console::Console;
use crate::session::Session;

const NAME: &str = "userconfig";

const OPERATIONS: &[Operation] = &[
    ("NEW", "Create a new account."),
    ("DELETE", "Remove an account."),
    ("PASSWORD", "Change the password for a user."),
];

const ROLES: [Role; 2] = [Role::Administrator, Role::Operator];

pub(super) fn userconfig<C: Console>(
    session: &mut Session<C>,
    args: &str,
) -> Result<(), CommandError> {
    let words: Vec<&str> = args.split_whitespace().collect();
    match words.as_slice() {
        [] => interactive(session),
        ["print"] => {
            session.refresh()?;
            let config = session.view().clone();
            print(session, &config)
        }
        [op, name, role, full_name @ ..] if op.eq_ignore_ascii_case("new") => {
            let role = parse_role(role)?;
            let full_name = if full_name.is_empty() {
                (*name).to_owned()
            } else {
                full_name.join(" ")
            };
            new_user(session, name, role, &full_name)
        }
        [op, name] if op.eq_ignore_ascii_case("delete") => delete(session, name),
        [op, name] if op.eq_ignore_ascii_case("password") => set_password(session, name),
        _ => Err(bad_usage(NAME, "Unknown userconfig form")),
    }
}

fn interactive<C: Console>(session: &mut Session<C>) -> Result<(), CommandError> {
    loop {
        session.refresh()?;
        let config = session.view().clone();
        print(session, &config)?;
        let Some(op) = dialog::menu(session, OPERATIONS)? else {
            return Ok(());
        };
        let result = match op {
            "NEW" => ask_new_user(session),
            "DELETE" => match ask_user(session, &config, "delete")? {
                Some(name) => delete(session, &name),
                None => Ok(()),
            },
            _ => match ask_user(session, &config, "change the password of")? {
                Some(name) => set_password(session, &name),
                None => Ok(()),
            },
        };
        // A refusal inside the dialog is told, and the menu comes back.
        match result {
            Err(CommandError::Refused(why)) => writeln!(session.out(), "{why}")?,
            other => other?,
        }
    }
}

fn print<C: Console>(session: &mut Session<C>, config: &Config) -> Result<(), CommandError> {
    let out = session.out();
    writeln!(out)?;
    writeln!(out, "Users:")?;
    for (i, (name, user)) in config.users.iter().enumerate() {
        writeln!(
            out,
            "{}. {name} - \"{}\" ({})",
            i + 1,
            user.full_name,
            role_name(user.role)
        )?;
    }
    Ok(())
}

fn ask_new_user<C: Console>(session: &mut Session<C>) -> Result<(), CommandError> {
    let Some(name) = dialog::ask_valid(session, "Enter the new username.", "", |answer| {
        UserName::new(answer).map_err(|e| format!("{e}."))
    })?
    else {
        return Ok(());
    };
    let full_name = session.ask(&format!("Enter the full name for {name}."), name.as_str())?;
    let roles: Vec<String> = ROLES.iter().map(|r| role_line(*r)).collect();
    let role = dialog::choose(session, &format!("Assign a role to \"{name}\":"), &roles, 0)?;
    new_user(session, name.as_str(), ROLES[role], &full_name)
}

fn ask_user<C: Console>(
    session: &mut Session<C>,
    config: &Config,
    what: &str,
) -> Result<Option<String>, CommandError> {
    let names: Vec<String> = config.users.keys().map(ToString::to_string).collect();
    let answer = session.ask(
        &format!("Enter the user name or number of the account to {what}."),
        "",
    )?;
    if answer.is_empty() {
        return Ok(None);
    }
    let by_number = answer
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| names.get(i));
    Ok(Some(by_number.cloned().unwrap_or(answer)))
}

fn new_user<C: Console>(
    session: &mut Session<C>,
    name: &str,
    role: Role,
    full_name: &str,
) -> Result<(), CommandError> {
    let name = UserName::new(name).map_err(refused)?;
    session.refresh()?;
    if session.view().users.contains_key(&name) {
        return Err(CommandError::Refused(format!(
            "There is already a user '{name}'."
        )));
    }
    let (password, login) = new_password(session, &format!("Enter the password for {name}."))?;
    let user = AdminUser {
        full_name: full_name.to_owned(),
        role,
        password,
        login_password: Some(login),
    };
    let added = name.clone();
    session.stage(move |config| {
        config.users.insert(added, user);
        Ok(())
    })?;
    writeln!(
        session.out(),
        "User {name} ({}) added; 'commit' applies it.",
        role_name(role)
    )?;
    Ok(())
}

fn delete<C: Console>(session: &mut Session<C>, name: &str) -> Result<(), CommandError> {
    let name = known_user(session, name)?;
    if name.as_str() == session.user {
        return Err(CommandError::Refused(
            "You cannot delete the account you are using.".to_owned(),
        ));
    }
    let removed = name.clone();
    session.stage(move |config| {
        config.users.remove(&removed);
        if !config.users.values().any(|u| u.role == Role::Administrator) {
            return Err(CommandError::Refused(
                "The last administrator cannot be deleted.".to_owned(),
            ));
        }
        Ok(())
    })?;
    writeln!(session.out(), "User {name} deleted; 'commit' applies it.")?;
    Ok(())
}

/// An administrator sets a user's password (staged, like every other change).
fn set_password<C: Console>(session: &mut Session<C>, name: &str) -> Result<(), CommandError> {
    let name = known_user(session, name)?;
    let (password, login) = new_password(session, &format!("Enter the new password for {name}."))?;
    let changed = name.clone();
    session.stage(move |config| {
        if let Some(user) = config.users.get_mut(&changed) {
            user.password = password;
            user.login_password = Some(login);
        }
        Ok(())
    })?;
    writeln!(
        session.out(),
        "The password of {name} is changed; 'commit' applies it."
    )?;
    Ok(())
}

/// `passwd`: a user changes their own password. It takes effect at once (its own commit,
/// whatever else this session has pending), as on the reference appliance.
pub(super) fn passwd<C: Console>(session: &mut Session<C>, args: &str) -> Result<(), CommandError> {
    if !args.is_empty() {
        return Err(bad_usage(
            "passwd",
            "'passwd' changes your own password and takes no arguments",
        ));
    }
    let name = UserName::new(&session.user).map_err(refused)?;
    let committed = session.runtime.block_on(session.client.config())?;
    let Some(user) = committed.config.users.get(&name) else {
        return Err(CommandError::Refused(format!(
            "There is no user '{name}' on this appliance."
        )));
    };
    let old = session
        .read_secret("Old password: ")?
        .ok_or(CommandError::InputEnded)?;
    if !user.password.verify(&old) {
        return Err(CommandError::Refused(
            "The old password is not correct; the password was not changed.".to_owned(),
        ));
    }
    let (password, login) = new_password(session, "")?;
    let mut config = committed.config.clone();
    if let Some(user) = config.users.get_mut(&name) {
        user.password = password;
        user.login_password = Some(login);
    }
    let landed = session.runtime.block_on(session.client.commit_detailed(
        committed.commit.generation,
        config,
        &session.user,
        &format!("passwd: {name} changed their password"),
        None,
    ))?;
    session.refresh()?;
    let out = session.out();
    writeln!(
        out,
        "Password changed (configuration generation {}).",
        landed.generation
    )?;
    super::commit::say_confirmed(out, landed.confirmed)?;
    Ok(())
}

/// Reads a new password twice; refused when they differ or it is too weak. Its hashes: for
/// Postern's own logins, and for the appliance's console and SSH logins.
fn new_password<C: Console>(
    session: &mut Session<C>,
    question: &str,
) -> Result<(PasswordHash, LoginHash), CommandError> {
    if !question.is_empty() {
        writeln!(session.out(), "{question}")?;
    }
    let first = session
        .read_secret("New password: ")?
        .ok_or(CommandError::InputEnded)?;
    let again = session
        .read_secret("Please enter the new password again: ")?
        .ok_or(CommandError::InputEnded)?;
    if first != again {
        return Err(CommandError::Refused(
            "The passwords do not match; nothing was changed.".to_owned(),
        ));
    }
    let password = PasswordHash::new(&first).map_err(refused)?;
    let login = LoginHash::new(&first).map_err(refused)?;
    Ok((password, login))
}

fn known_user<C: Console>(session: &mut Session<C>, name: &str) -> Result<UserName, CommandError> {
    session.refresh()?;
    UserName::new(name)
        .ok()
        .filter(|n| session.view().users.contains_key(n))
        .ok_or_else(|| CommandError::Refused(format!("There is no user '{name}'.")))
}

fn parse_role(text: &str) -> Result<Role, CommandError> {
    ROLES
        .into_iter()
        .find(|r| role_name(*r).eq_ignore_ascii_case(text))
        .ok_or_else(|| {
            bad_usage(
                NAME,
                &format!("'{text}' is not a role; use administrator or operator"),
            )
        })
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Administrator => "Administrator",
        Role::Operator => "Operator",
    }
}

fn role_line(role: Role) -> String {
    match role {
        Role::Administrator => "Administrator - changes the configuration and the accounts".into(),
        Role::Operator => {
            "Operator - looks at the configuration and the logs, changes nothing".into()
        }
    }
}
