//! `tail`, `grep` and `findevent`: reading the appliance's logs (`DATA/logs`) from the CLI, over
//! the current file and the rotated ones.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use postern_logs::Subscription;
use postern_logs::for_each_line;
use postern_logs::tracking::ids;
use regex::{Regex, RegexBuilder};

use super::{CommandError, bad_usage};
use crate::console::Console;
use crate::session::Session;

/// Lines `tail` prints before it follows (or returns, from a script).
const TAIL_LINES: usize = 20;
/// How much of the end of a file `tail` reads to find its last lines.
const TAIL_WINDOW: u64 = 256 << 10;
/// How often `tail` looks for new lines while it follows.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// The logs in the order the menus number them.
const LOGS: [Subscription; 4] = [
    Subscription::CliLogs,
    Subscription::GuiLogs,
    Subscription::MailLogs,
    Subscription::SystemLogs,
];

pub(super) fn tail<C: Console>(session: &mut Session<C>, args: &str) -> Result<(), CommandError> {
    let words = split_words(args)?;
    let log = match words.as_slice() {
        [] => match choose_log(session, "Enter the number of the log you wish to tail.")? {
            Some(log) => log,
            None => return Ok(()),
        },
        [name] => log_named("tail", name)?,
        _ => return Err(bad_usage("tail", "'tail' takes one log name")),
    };
    let files = log.files(&session.data)?;
    let lines = last_lines(&files, TAIL_LINES)?;
    let out = session.out();
    if lines.is_empty() {
        writeln!(out, "{} has no lines yet.", log.name())?;
    }
    for line in &lines {
        writeln!(out, "{line}")?;
    }
    if session.interrupt.is_some() {
        follow(session, &log.current_path(&session.data))?;
    }
    Ok(())
}

/// Prints the lines written to `path` from now on, across rotations, until Ctrl-C.
fn follow<C: Console>(session: &mut Session<C>, path: &Path) -> Result<(), CommandError> {
    let Some(mut interrupt) = session.interrupt.take() else {
        return Ok(());
    };
    // A log being followed is not held up by the pager.
    session.console.set_paging(false);
    let result = follow_until(session, path, &mut interrupt);
    session.console.set_paging(true);
    session.interrupt = Some(interrupt);
    result
}

fn follow_until<C: Console>(
    session: &mut Session<C>,
    path: &Path,
    interrupt: &mut tokio::signal::unix::Signal,
) -> Result<(), CommandError> {
    writeln!(session.out(), "(following; press Ctrl-C to stop)")?;
    let mut follower = Follower::at_end(path)?;
    session.runtime.block_on(async {
        // A Ctrl-C pressed earlier, at a prompt, is not one for this.
        while tokio::time::timeout(Duration::ZERO, interrupt.recv())
            .await
            .is_ok()
        {}
    });
    loop {
        let stop = session.runtime.block_on(async {
            tokio::select! {
                _ = interrupt.recv() => true,
                () = tokio::time::sleep(FOLLOW_POLL) => false,
            }
        });
        if stop {
            writeln!(session.out())?;
            return Ok(());
        }
        for line in follower.new_lines()? {
            writeln!(session.out(), "{line}")?;
        }
        session.out().flush()?;
    }
}

/// Reads what is appended to a log file, and moves on to the new file when it is rotated.
#[derive(Debug)]
struct Follower {
    path: PathBuf,
    file: Option<File>,
    /// Bytes read after the last complete line.
    partial: Vec<u8>,
}

impl Follower {
    fn at_end(path: &Path) -> io::Result<Self> {
        let file = match File::open(path) {
            Ok(mut file) => {
                file.seek(SeekFrom::End(0))?;
                Some(file)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(Self {
            path: path.to_owned(),
            file,
            partial: Vec::new(),
        })
    }

    /// The complete lines written since the last call.
    fn new_lines(&mut self) -> io::Result<Vec<String>> {
        let mut bytes = std::mem::take(&mut self.partial);
        if let Some(file) = &mut self.file {
            // The rest of the file, which after a rotation is the rotated file's end.
            file.read_to_end(&mut bytes)?;
        }
        let rotated = match (&self.file, std::fs::metadata(&self.path)) {
            (Some(file), Ok(now)) => file.metadata()?.ino() != now.ino(),
            (None, Ok(_)) => true,
            (_, Err(_)) => false,
        };
        if rotated {
            let mut file = File::open(&self.path)?;
            file.read_to_end(&mut bytes)?;
            self.file = Some(file);
        }
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        self.partial = bytes.split_off(complete);
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect())
    }
}

/// The last `n` lines of the files (oldest first), reading only the ends of large files.
fn last_lines(files: &[PathBuf], n: usize) -> io::Result<Vec<String>> {
    let mut lines: Vec<String> = Vec::new();
    for path in files.iter().rev() {
        let mut file = match File::open(path) {
            Ok(file) => file,
            // Rotated away and removed since it was listed.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        let start = len.saturating_sub(TAIL_WINDOW);
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let text = String::from_utf8_lossy(&bytes);
        let mut these: Vec<&str> = text.lines().collect();
        if start > 0 && !these.is_empty() {
            // The first line read is the end of a line that began before the window.
            these.remove(0);
        }
        let wanted = n - lines.len();
        let skip = these.len().saturating_sub(wanted);
        let mut older: Vec<String> = these[skip..].iter().map(|l| (*l).to_owned()).collect();
        older.append(&mut lines);
        lines = older;
        if lines.len() >= n || start > 0 {
            break;
        }
    }
    Ok(lines)
}

pub(super) fn grep<C: Console>(session: &mut Session<C>, args: &str) -> Result<(), CommandError> {
    let words = split_words(args)?;
    let (pattern, log, insensitive, count) = if words.is_empty() {
        let Some(log) = choose_log(session, "Enter the number of the log you wish to grep.")?
        else {
            return Ok(());
        };
        let pattern = session.ask("Enter the regular expression to grep.", "")?;
        if pattern.is_empty() {
            return Err(CommandError::Refused(
                "No regular expression was entered; nothing was searched.".to_owned(),
            ));
        }
        let insensitive =
            session.confirm("Do you want this search to be case insensitive?", true)?;
        (pattern, log, insensitive, false)
    } else {
        let mut insensitive = false;
        let mut count = false;
        let mut pattern = None;
        let mut rest = Vec::new();
        let mut words = words.into_iter();
        while let Some(word) = words.next() {
            match word.as_str() {
                "-i" => insensitive = true,
                "-c" => count = true,
                "-e" => {
                    let p = words
                        .next()
                        .ok_or_else(|| bad_usage("grep", "'-e' needs a regular expression"))?;
                    pattern = Some(p);
                }
                _ => rest.push(word),
            }
        }
        let (pattern, log) = match (pattern, rest.as_slice()) {
            (Some(p), [log]) => (p, log.clone()),
            (None, [p, log]) => (p.clone(), log.clone()),
            _ => {
                return Err(bad_usage(
                    "grep",
                    "'grep' takes a regular expression and a log name",
                ));
            }
        };
        (pattern, log_named("grep", &log)?, insensitive, count)
    };
    let regex = compile(&pattern, insensitive)?;
    let files = log.files(&session.data)?;
    let mut found = 0u64;
    let out = session.console.out();
    for_each_line(&files, |line| {
        if regex.is_match(line) {
            found += 1;
            if !count {
                writeln!(out, "{line}")?;
            }
        }
        Ok(())
    })?;
    if count {
        writeln!(out, "{found}")?;
    } else if found == 0 {
        writeln!(out, "No results were found.")?;
    }
    Ok(())
}

/// What `findevent` looks for in `mail_logs`.
#[derive(Debug, Clone)]
enum Search {
    Mid(u64),
    Sender(Regex),
    Recipient(Regex),
}

pub(super) fn findevent<C: Console>(
    session: &mut Session<C>,
    args: &str,
) -> Result<(), CommandError> {
    let words = split_words(args)?;
    let search = if words.is_empty() {
        ask_search(session)?
    } else {
        parse_findevent(&words)?
    };
    let files = Subscription::MailLogs.files(&session.data)?;
    let found = find_messages(&files, &search)?;
    let out = session.out();
    if found.is_empty() {
        writeln!(out, "No matching message IDs were found.")?;
        return Ok(());
    }
    for line in found {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn parse_findevent(words: &[String]) -> Result<Search, CommandError> {
    let mut insensitive = false;
    let mut kind = None;
    let mut words = words.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "-i" => insensitive = true,
            flag @ ("-m" | "-f" | "-t") if kind.is_none() => {
                let value = words.next().ok_or_else(|| {
                    bad_usage("findevent", &format!("'{flag}' needs what to look for"))
                })?;
                kind = Some((flag, value.clone()));
            }
            "mail_logs" => {}
            other => {
                return Err(bad_usage(
                    "findevent",
                    &format!("'{other}' is not a findevent option (it searches mail_logs)"),
                ));
            }
        }
    }
    match kind {
        Some(("-m", mid)) => mid.parse().map(Search::Mid).map_err(|_| {
            bad_usage(
                "findevent",
                &format!("'{mid}' is not a message ID (MID), which is a number"),
            )
        }),
        Some(("-f", pattern)) => Ok(Search::Sender(compile(&pattern, insensitive)?)),
        Some((_, pattern)) => Ok(Search::Recipient(compile(&pattern, insensitive)?)),
        None => Err(bad_usage(
            "findevent",
            "'findevent' needs what to look for: -m, -f or -t",
        )),
    }
}

fn ask_search<C: Console>(session: &mut Session<C>) -> Result<Search, CommandError> {
    let question = "Please choose which type of search you want to perform:\n\
                    1. Search by envelope FROM\n\
                    2. Search by Message ID\n\
                    3. Search by envelope TO";
    loop {
        let choice = session.ask(question, "1")?;
        match choice.as_str() {
            "1" | "3" => {
                let pattern =
                    session.ask("Please enter a regular expression to search for.", "")?;
                if pattern.is_empty() {
                    writeln!(session.out(), "A regular expression is needed.")?;
                    continue;
                }
                let regex = compile(&pattern, true)?;
                return Ok(if choice == "1" {
                    Search::Sender(regex)
                } else {
                    Search::Recipient(regex)
                });
            }
            "2" => {
                let mid = session.ask("Please enter the Message ID (MID) to search for.", "")?;
                match mid.parse() {
                    Ok(mid) => return Ok(Search::Mid(mid)),
                    Err(_) => writeln!(session.out(), "'{mid}' is not a message ID.")?,
                }
            }
            other => writeln!(session.out(), "'{other}' is not one of the numbers listed.")?,
        }
    }
}

/// The lines of every message that matches, in log order: the lines naming its MID, and the
/// lines of its connections (ICID in, DCID out) that name no other message.
fn find_messages(files: &[PathBuf], search: &Search) -> io::Result<Vec<String>> {
    let mut mids = BTreeSet::new();
    for_each_line(files, |line| {
        let ids = ids(line);
        let Some(mid) = ids.mid else { return Ok(()) };
        let hit = match search {
            Search::Mid(wanted) => mid == *wanted,
            Search::Sender(regex) => envelope(line, " From: <").is_some_and(|a| regex.is_match(a)),
            Search::Recipient(regex) => envelope(line, " To: <").is_some_and(|a| regex.is_match(a)),
        };
        if hit {
            mids.insert(mid);
        }
        Ok(())
    })?;
    if mids.is_empty() {
        return Ok(Vec::new());
    }
    let mut icids = BTreeSet::new();
    let mut dcids = BTreeSet::new();
    for_each_line(files, |line| {
        let ids = ids(line);
        if ids.mid.is_some_and(|m| mids.contains(&m)) {
            icids.extend(ids.icid);
            dcids.extend(ids.dcid);
        }
        Ok(())
    })?;
    let mut lines = Vec::new();
    for_each_line(files, |line| {
        let ids = ids(line);
        let wanted = match ids.mid {
            Some(mid) => mids.contains(&mid),
            None => {
                ids.icid.is_some_and(|i| icids.contains(&i))
                    || ids.dcid.is_some_and(|d| dcids.contains(&d))
            }
        };
        if wanted {
            lines.push(line.to_owned());
        }
        Ok(())
    })?;
    Ok(lines)
}

/// The address of a `MID 6 ICID 5 From: <a@example.org>` (or `RID 0 To: <...>`) line.
fn envelope<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let (_, rest) = line.split_once(marker)?;
    rest.strip_suffix('>')
}

fn compile(pattern: &str, insensitive: bool) -> Result<Regex, CommandError> {
    RegexBuilder::new(pattern)
        .case_insensitive(insensitive)
        .build()
        .map_err(|e| CommandError::Refused(format!("'{pattern}' is not a regular expression: {e}")))
}

fn log_named(command: &str, name: &str) -> Result<Subscription, CommandError> {
    Subscription::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = LOGS.iter().map(|l| l.name()).collect();
        bad_usage(
            command,
            &format!(
                "'{name}' is not a log of this appliance; the logs are {}",
                names.join(", ")
            ),
        )
    })
}

/// The numbered list of logs; `None` when the answer is empty.
fn choose_log<C: Console>(
    session: &mut Session<C>,
    question: &str,
) -> Result<Option<Subscription>, CommandError> {
    let out = session.out();
    writeln!(out)?;
    writeln!(out, "Currently configured logs:")?;
    for (i, log) in LOGS.iter().enumerate() {
        writeln!(
            out,
            "{}. \"{}\" Type: \"{}\"",
            i + 1,
            log.name(),
            log.description()
        )?;
    }
    loop {
        let answer = session.ask(question, "")?;
        if answer.is_empty() {
            return Ok(None);
        }
        let picked = answer
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| LOGS.get(i))
            .copied()
            .or_else(|| Subscription::from_name(&answer));
        match picked {
            Some(log) => return Ok(Some(log)),
            None => writeln!(
                session.out(),
                "'{answer}' is not one of the numbers listed."
            )?,
        }
    }
}

/// Words of a command line; `'...'` and `"..."` keep spaces inside one word (a regular
/// expression with spaces).
fn split_words(args: &str) -> Result<Vec<String>, CommandError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = None;
    for c in args.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(CommandError::Refused(
            "A quotation mark is not closed.".to_owned(),
        ));
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn words_keep_quoted_spaces() {
        assert_eq!(
            split_words(r#"-i 'TLS success' mail_logs"#).unwrap(),
            ["-i", "TLS success", "mail_logs"]
        );
        assert_eq!(split_words(r#""a 'b'"  c"#).unwrap(), ["a 'b'", "c"]);
        assert_eq!(split_words("''").unwrap(), [""]);
        assert!(split_words("'open").is_err());
    }

    fn write_log(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    }

    #[test]
    fn a_message_is_found_with_its_connections_and_not_its_neighbours() {
        let dir = tempfile::tempdir().unwrap();
        let old = write_log(
            dir.path(),
            "mail.@20260101T000000.s",
            &[
                "t Info: New SMTP ICID 5 interface Management (127.0.0.1) address 127.0.0.1",
                "t Info: ICID 5 TLS success protocol TLSv1.3 cipher TLS_AES_256_GCM_SHA384",
                "t Info: Start MID 6 ICID 5",
                "t Info: MID 6 ICID 5 From: <alice@example.org>",
                "t Info: MID 6 ICID 5 RID 0 To: <bob@example.test>",
                "t Info: Start MID 7 ICID 5",
                "t Info: MID 7 ICID 5 From: <carol@example.org>",
                "t Info: MID 7 ICID 5 RID 0 To: <dave@example.test>",
                "t Info: New SMTP ICID 9 interface Management (127.0.0.1) address 127.0.0.1",
            ],
        );
        let current = write_log(
            dir.path(),
            "mail.current",
            &[
                "t Info: ICID 5 close",
                "t Info: New SMTP DCID 8 interface 127.0.0.1 address 127.0.0.1 port 25",
                "t Info: Delivery start DCID 8 MID 6 to RID [0]",
                "t Info: Message done DCID 8 MID 6 to RID [0]",
                "t Info: Message finished MID 6 done",
                "t Info: DCID 8 close",
                "t Info: MID 60 queued for delivery",
            ],
        );
        let files = [old, current];
        let by_sender =
            find_messages(&files, &Search::Sender(compile("^ALICE@", true).unwrap())).unwrap();
        let by_mid = find_messages(&files, &Search::Mid(6)).unwrap();
        assert_eq!(by_sender, by_mid);
        let shown: Vec<&str> = by_mid.iter().map(|l| &l[8..]).collect();
        assert_eq!(
            shown,
            [
                "New SMTP ICID 5 interface Management (127.0.0.1) address 127.0.0.1",
                "ICID 5 TLS success protocol TLSv1.3 cipher TLS_AES_256_GCM_SHA384",
                "Start MID 6 ICID 5",
                "MID 6 ICID 5 From: <alice@example.org>",
                "MID 6 ICID 5 RID 0 To: <bob@example.test>",
                "ICID 5 close",
                "New SMTP DCID 8 interface 127.0.0.1 address 127.0.0.1 port 25",
                "Delivery start DCID 8 MID 6 to RID [0]",
                "Message done DCID 8 MID 6 to RID [0]",
                "Message finished MID 6 done",
                "DCID 8 close",
            ]
        );
        let by_recipient =
            find_messages(&files, &Search::Recipient(compile("dave@", false).unwrap())).unwrap();
        assert!(by_recipient.iter().all(|l| !l.contains("MID 6 ")));
        assert!(
            by_recipient
                .iter()
                .any(|l| l.ends_with("Start MID 7 ICID 5"))
        );
        assert!(
            find_messages(&files, &Search::Recipient(compile("DAVE@", false).unwrap()))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_last_lines_span_rotated_files_and_follow_sees_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let lines: Vec<String> = (0..30).map(|i| format!("line {i}")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let old = write_log(dir.path(), "system.@20260101T000000.s", &refs[..25]);
        let current = write_log(dir.path(), "system.current", &refs[25..]);
        let last = last_lines(&[old, current.clone()], TAIL_LINES).unwrap();
        assert_eq!(last, refs[10..]);

        let mut follower = Follower::at_end(&current).unwrap();
        assert!(follower.new_lines().unwrap().is_empty());
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&current)
            .unwrap();
        file.write_all(b"new 1\nnew ").unwrap();
        assert_eq!(follower.new_lines().unwrap(), ["new 1"]);
        file.write_all(b"2\n").unwrap();
        // Rotated: the old file's end, then the new file.
        std::fs::rename(&current, dir.path().join("system.@20260101T000001.s")).unwrap();
        write_log(dir.path(), "system.current", &["after rotation"]);
        assert_eq!(follower.new_lines().unwrap(), ["new 2", "after rotation"]);
    }
}
