//! The parts the reference appliance's dialogs are made of: the operation menu (`Choose the
//! operation you want to perform:`), numbered choices with the current one as `[default]>`, and
//! questions asked again until the answer is valid.

use super::CommandError;
use crate::console::Console;
use crate::session::Session;

/// One operation of a menu: its name (typed in any case) and what it does.
pub(super) type Operation = (&'static str, &'static str);

/// Shows the menu and reads the operation chosen. Enter on the empty `[]>`, or the end of input,
/// leaves the menu (`None`); an unknown name shows the menu again.
pub(super) fn menu<C: Console>(
    session: &mut Session<C>,
    operations: &[Operation],
) -> Result<Option<&'static str>, CommandError> {
    loop {
        let out = session.out();
        writeln!(out)?;
        writeln!(out, "Choose the operation you want to perform:")?;
        for (name, what) in operations {
            writeln!(out, "- {name} - {what}")?;
        }
        let Some(answer) =
            session.read_line(Some("Choose the operation you want to perform:"), "[]> ")?
        else {
            return Ok(None);
        };
        let answer = answer.trim();
        if answer.is_empty() {
            return Ok(None);
        }
        if let Some((name, _)) = operations
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(answer))
        {
            return Ok(Some(name));
        }
        let names: Vec<&str> = operations.iter().map(|(name, _)| *name).collect();
        writeln!(
            session.out(),
            "'{answer}' is not one of the operations: {}.",
            names.join(", ")
        )?;
    }
}

/// Asks `question` with numbered `choices`; `current` (an index) is the default. The answer is
/// a number or a choice's text in any case. Asked again until it is one of them.
pub(super) fn choose<C: Console>(
    session: &mut Session<C>,
    question: &str,
    choices: &[String],
    current: usize,
) -> Result<usize, CommandError> {
    let mut text = question.to_owned();
    for (i, choice) in choices.iter().enumerate() {
        text.push_str(&format!("\n{}. {choice}", i + 1));
    }
    loop {
        let answer = session.ask(&text, &(current + 1).to_string())?;
        let by_number = answer
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .filter(|i| *i < choices.len());
        // `Required - Verify` may be typed as the one-line form's `required-verify`.
        let by_name = || {
            let wanted = squeeze(&answer);
            choices.iter().position(|c| squeeze(c) == wanted)
        };
        match by_number.or_else(by_name) {
            Some(i) => return Ok(i),
            None => writeln!(session.out(), "Enter a number from 1 to {}.", choices.len())?,
        }
    }
}

/// Lower case without white space.
fn squeeze(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Asks `question` until `parse` accepts the answer, telling why it did not. Enter with an empty
/// default gives up (`None`): the dialog goes back to its menu.
pub(super) fn ask_valid<C: Console, T>(
    session: &mut Session<C>,
    question: &str,
    default: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, CommandError> {
    loop {
        let answer = session.ask(question, default)?;
        if answer.is_empty() {
            return Ok(None);
        }
        match parse(&answer) {
            Ok(value) => return Ok(Some(value)),
            Err(why) => writeln!(session.out(), "{why}")?,
        }
    }
}

/// A whole number within `range`, or why not.
pub(super) fn number_in<T>(text: &str, range: std::ops::RangeInclusive<T>) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    text.parse::<T>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            format!(
                "'{text}' is not a number from {} to {}.",
                range.start(),
                range.end()
            )
        })
}

/// `n thing` or `n things`.
pub(super) fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `There is currently 1 thing` or `There are currently n things`.
pub(super) fn there_are(n: usize, one: &str, many: &str) -> String {
    let verb = if n == 1 { "is" } else { "are" };
    format!("There {verb} currently {}", count(n, one, many))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_within_a_range() {
        assert_eq!(number_in("5", 1u32..=1000), Ok(5));
        assert_eq!(
            number_in("0", 1u32..=1000),
            Err("'0' is not a number from 1 to 1000.".to_owned())
        );
        assert!(number_in("-1", 1u32..=1000).is_err());
        assert!(number_in("five", 1u32..=1000).is_err());
        assert!(number_in("99999999999999999999", 1u32..=1000).is_err());
    }

    #[test]
    fn choices_match_without_case_or_spaces() {
        assert_eq!(squeeze("Required - Verify"), squeeze("required-verify"));
        assert_ne!(squeeze("Required"), squeeze("required-verify"));
    }

    #[test]
    fn counts() {
        assert_eq!(count(1, "entry", "entries"), "1 entry");
        assert_eq!(count(0, "entry", "entries"), "0 entries");
        assert_eq!(
            there_are(1, "route", "routes"),
            "There is currently 1 route"
        );
        assert_eq!(
            there_are(2, "route", "routes"),
            "There are currently 2 routes"
        );
    }
}
