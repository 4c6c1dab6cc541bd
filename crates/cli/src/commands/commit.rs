//! `commit`, `clear`, `commitdetail` and `rollbackconfig`: what happens to a session's pending
//! changes, and the history of committed generations.

use std::io::Write;

use postern_config::Commit;
use postern_control::{ClientError, ControlError};
use postern_logs::format_unix_time;

use super::CommandError;
use crate::console::Console;
use crate::session::Session;

/// The longest `commit confirmed` window: a day.
const MAX_CONFIRM_MINUTES: u32 = 24 * 60;

/// `commit [comment]`, `commit confirmed <minutes> [comment]`, and the form the tests use to
/// see a rollback without waiting minutes, `commit confirmed-seconds <n> [comment]` (not shown
/// by `help`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct CommitArgs {
    confirm_within_secs: Option<u32>,
    comment: String,
}

fn parse_commit(args: &str) -> Result<CommitArgs, CommandError> {
    let (first, rest) = args
        .split_once(char::is_whitespace)
        .map_or((args, ""), |(a, b)| (a, b.trim()));
    let (unit_secs, max) = match first.to_ascii_lowercase().as_str() {
        "confirmed" => (60, MAX_CONFIRM_MINUTES),
        "confirmed-seconds" => (1, MAX_CONFIRM_MINUTES * 60),
        _ => {
            return Ok(CommitArgs {
                confirm_within_secs: None,
                comment: args.to_owned(),
            });
        }
    };
    let (n, comment) = rest
        .split_once(char::is_whitespace)
        .map_or((rest, ""), |(a, b)| (a, b.trim()));
    let within = n
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            super::bad_usage(
                "commit",
                &format!(
                    "'commit confirmed' needs the minutes to wait for confirmation, 1 to \
                     {MAX_CONFIRM_MINUTES}"
                ),
            )
        })?;
    Ok(CommitArgs {
        confirm_within_secs: Some(within * unit_secs),
        comment: comment.to_owned(),
    })
}

pub(super) fn commit<C: Console>(session: &mut Session<C>, args: &str) -> Result<(), CommandError> {
    let CommitArgs {
        confirm_within_secs,
        comment,
    } = parse_commit(args)?;
    let Some(config) = session.pending.clone() else {
        if confirm_within_secs.is_none() {
            // Nothing to commit: a `commit` is how a `commit confirmed` is confirmed.
            let user = session.user.clone();
            match session.runtime.block_on(session.client.confirm(&user)) {
                Ok(generation) => {
                    writeln!(
                        session.out(),
                        "There are no changes to commit. Commit {generation} is confirmed and \
                         will not be rolled back."
                    )?;
                    return Ok(());
                }
                Err(ClientError::Refused(ControlError::NothingToConfirm)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        writeln!(session.out(), "There are no changes to commit.")?;
        return Ok(());
    };
    let comment = if comment.is_empty() {
        session.ask("Please enter some comments describing your changes:", "")?
    } else {
        comment
    };
    let base = session.base.commit.generation;
    let user = session.user.clone();
    let result = session.runtime.block_on(session.client.commit_detailed(
        base,
        config,
        &user,
        &comment,
        confirm_within_secs,
    ));
    match result {
        Ok(landed) => {
            session.pending = None;
            session.refresh()?;
            let when = format_unix_time(session.base.commit.time);
            let out = session.out();
            writeln!(
                out,
                "Changes committed: {when} (configuration generation {})",
                landed.generation
            )?;
            say_confirmed(out, landed.confirmed)?;
            if let Some(c) = &landed.confirmation {
                writeln!(
                    out,
                    "Confirm it with 'commit' (in any session) by {}, or the configuration of \
                     generation {} is committed again automatically.",
                    format_unix_time(c.deadline),
                    c.previous
                )?;
            }
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

/// What a commit that also confirmed an earlier `commit confirmed` says of it.
pub(super) fn say_confirmed(out: &mut dyn Write, earlier: Option<u64>) -> std::io::Result<()> {
    match earlier {
        Some(earlier) => writeln!(
            out,
            "Commit {earlier} is confirmed by this commit and will not be rolled back."
        ),
        None => Ok(()),
    }
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
    session.may_change()?;
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
