//! `commit`, `clear`, `commitdetail` and `rollbackconfig`: what happens to a session's pending
//! changes, and the history of committed generations.

use std::io::Write;

use postern_config::Commit;
use postern_control::{ClientError, ControlError};
use postern_logs::format_unix_time;

use super::CommandError;
use crate::console::Console;
use crate::session::Session;

pub(super) fn commit<C: Console>(session: &mut Session<C>, args: &str) -> Result<(), CommandError> {
    let Some(config) = session.pending.clone() else {
        writeln!(session.out(), "There are no changes to commit.")?;
        return Ok(());
    };
    let comment = if args.is_empty() {
        session.ask("Please enter some comments describing your changes:", "")?
    } else {
        args.to_owned()
    };
    let base = session.base.commit.generation;
    let user = session.user.clone();
    let result = session
        .runtime
        .block_on(session.client.commit(base, config, &user, &comment));
    match result {
        Ok((generation, _changes)) => {
            session.pending = None;
            session.refresh()?;
            let when = format_unix_time(session.base.commit.time);
            writeln!(
                session.out(),
                "Changes committed: {when} (configuration generation {generation})"
            )?;
            Ok(())
        }
        Err(ClientError::Refused(ControlError::NoChanges)) => {
            // Someone else committed the very same change meanwhile.
            session.pending = None;
            session.refresh()?;
            writeln!(session.out(), "There are no changes to commit.")?;
            Ok(())
        }
        Err(ClientError::Refused(refusal)) => Err(CommandError::Refused(format!(
            "The changes were not committed: {refusal}. They are still pending; \
             correct them, or discard them with 'clear'."
        ))),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn clear<C: Console>(session: &mut Session<C>) -> Result<(), CommandError> {
    if session.pending.is_none() {
        writeln!(session.out(), "No changes have been made.")?;
        return Ok(());
    }
    if session.confirm(
        "Are you sure you want to clear all changes since the last commit?",
        true,
    )? {
        session.pending = None;
        session.refresh()?;
        writeln!(
            session.out(),
            "Changes cleared: {}",
            format_unix_time(now())
        )?;
    }
    Ok(())
}

pub(super) fn commitdetail<C: Console>(
    session: &mut Session<C>,
    args: &str,
) -> Result<(), CommandError> {
    let journal = session.runtime.block_on(session.client.journal())?;
    let shown: Vec<&Commit> = match args {
        "" => journal.last().into_iter().collect(),
        "all" => journal.iter().rev().collect(),
        n => {
            let generation: u64 = n.parse().map_err(|_| {
                CommandError::Refused(format!(
                    "'{n}' is not a generation number; see 'help commitdetail'"
                ))
            })?;
            let found: Vec<&Commit> = journal
                .iter()
                .filter(|c| c.generation == generation)
                .collect();
            if found.is_empty() {
                return Err(CommandError::Refused(format!(
                    "There is no commit of generation {generation}."
                )));
            }
            found
        }
    };
    let out = session.out();
    for commit in shown {
        write_commit(out, commit)?;
    }
    Ok(())
}

fn write_commit(out: &mut dyn Write, commit: &Commit) -> std::io::Result<()> {
    writeln!(
        out,
        "Generation {}: committed {} by {}",
        commit.generation,
        format_unix_time(commit.time),
        commit.user
    )?;
    writeln!(out, "Comment: {}", commit.comment)?;
    if commit.changes.is_empty() {
        writeln!(out, "Changes: none")?;
    } else {
        writeln!(out, "Changes:")?;
        for change in &commit.changes {
            writeln!(out, "  {change}")?;
        }
    }
    writeln!(out)
}

pub(super) fn rollbackconfig<C: Console>(
    session: &mut Session<C>,
    args: &str,
) -> Result<(), CommandError> {
    if session.pending.is_some() {
        return Err(CommandError::Refused(
            "This session has uncommitted changes; commit or clear them before a rollback."
                .to_owned(),
        ));
    }
    let kept = session.runtime.block_on(session.client.kept())?;
    let current = session.base.commit.generation;
    let choices: Vec<&Commit> = kept.iter().filter(|c| c.generation != current).collect();
    if choices.is_empty() {
        writeln!(
            session.out(),
            "There is no earlier configuration to roll back to."
        )?;
        return Ok(());
    }
    let target = if args.is_empty() {
        let out = session.out();
        writeln!(out, "Previous Commits:")?;
        writeln!(
            out,
            "    {:<26}{:<12}{:<8}Description",
            "Committed On", "User", "Gen."
        )?;
        for (i, c) in choices.iter().enumerate() {
            writeln!(
                out,
                "{:<4}{:<26}{:<12}{:<8}{}",
                format!("{}.", i + 1),
                format_unix_time(c.time),
                c.user,
                c.generation,
                c.comment
            )?;
        }
        let answer = session.ask("Enter the number of the config to revert to.", "")?;
        let pick = answer
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| choices.get(i))
            .ok_or_else(|| {
                CommandError::Refused(format!("'{answer}' is not one of the numbers listed."))
            })?;
        pick.generation
    } else {
        args.parse().map_err(|_| {
            CommandError::Refused(format!(
                "'{args}' is not a generation number; see 'help rollbackconfig'"
            ))
        })?
    };
    if args.is_empty()
        && !session.confirm("Do you want to commit this configuration now?", false)?
    {
        // Not now: stage it, so that it can be looked at and committed later.
        let old = session.runtime.block_on(session.client.config_of(target))?;
        session.stage(|config| {
            *config = old;
            Ok(())
        })?;
        writeln!(
            session.out(),
            "Generation {target} is now pending; 'commit' applies it."
        )?;
        return Ok(());
    }
    let user = session.user.clone();
    let (generation, _) = session
        .runtime
        .block_on(session.client.rollback(target, &user))?;
    session.refresh()?;
    writeln!(
        session.out(),
        "Rolled back to generation {target}: committed as generation {generation}."
    )?;
    Ok(())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}
