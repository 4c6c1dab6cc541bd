//! The CLI's operating commands end to end: `commit confirmed`, the `cli_logs` audit trail, and
//! the log commands (`tail`, `grep`, `findevent`), with the real `postern` binary as gateway
//! and CLI, each test on a fresh data directory.

use std::io::Write;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::{
    Captured, Finished, Gateway, POLL, TIMEOUT, cli, cli_c, postern, run_to_end, send_mail,
    wait_mail_log,
};

const FACTORY_INBOUND: &str = "Inbound SMTP method: tlsv1_1tlsv1_2\n";
const TLS13_INBOUND: &str = "Inbound SMTP method: tlsv1_1tlsv1_2tlsv1_3\n";

/// Runs `commitdetail <generation>` until its output contains `needle` (within `TIMEOUT`);
/// answers that output.
fn wait_commitdetail(data: &Path, generation: u64, needle: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let done = cli_c(data, &format!("commitdetail {generation}"));
        if done.ok() && done.stdout.contains(needle) {
            return done.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "commitdetail {generation} did not show {needle:?} within {TIMEOUT:?}: {done:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

fn inbound_method(data: &Path) -> String {
    let (ok, out) = cli(data, "sslconfig print\n");
    assert!(ok, "{out}");
    out
}

fn system_logs(data: &Path) -> String {
    std::fs::read_to_string(data.join("logs/system_logs/system.current")).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// commit confirmed

#[test]
fn an_unconfirmed_commit_is_rolled_back_by_a_new_generation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    let (ok, out) = cli(
        data,
        "sslconfig inbound 1-3\ncommit confirmed-seconds 2 tls13 on probation\nstatus\n",
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("Changes committed: ") && out.contains("(configuration generation 2)"),
        "{out}"
    );
    assert!(
        out.contains("Confirm it with 'commit' (in any session) by ")
            && out.contains("or the configuration of generation 1 is committed again"),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("Awaiting confirmation:")
            && l.contains("commit 2 by admin, rolled back to generation 1 at ")),
        "{out}"
    );
    assert!(inbound_method(data).contains(TLS13_INBOUND));

    let detail = wait_commitdetail(
        data,
        3,
        "Comment: Automatic rollback: commit 2 was not confirmed within 2 seconds",
    );
    assert!(detail.contains(" by system\n"), "{detail}");
    assert!(
        detail.contains("tls.inbound_smtp.protocols: tlsv1_1tlsv1_2tlsv1_3 -> tlsv1_1tlsv1_2"),
        "{detail}"
    );
    assert!(inbound_method(data).contains(FACTORY_INBOUND));
    let log = system_logs(data);
    assert!(
        log.lines().any(|l| l.contains(
            "Warning: Commit 2 by admin was not confirmed within 2 seconds; rolled back to \
             generation 1 as generation 3"
        )),
        "{log}"
    );
    let done = cli_c(data, "status");
    assert!(
        done.ok() && !done.stdout.contains("Awaiting confirmation"),
        "{done:?}"
    );
}

#[test]
fn a_commit_in_another_session_confirms_and_the_change_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    // The minutes form: confirmed long before its minute is up.
    let (ok, out) = cli(data, "sslconfig inbound 1-3\ncommit confirmed 1 tls13\n");
    assert!(ok, "{out}");
    assert!(out.contains("(configuration generation 2)"), "{out}");
    let confirmed = cli_c(data, "commit");
    assert!(confirmed.ok(), "{confirmed:?}");
    assert!(
        confirmed.stdout.contains(
            "There are no changes to commit. Commit 2 is confirmed and will not be rolled back."
        ),
        "{confirmed:?}"
    );
    let again = cli_c(data, "commit");
    assert!(
        again.ok() && again.stdout.trim_end() == "There are no changes to commit.",
        "{again:?}"
    );

    // The seconds form, confirmed by a commit of other changes; then past its deadline.
    let (ok, out) = cli(
        data,
        "sslconfig outbound 1-3\ncommit confirmed-seconds 2 outbound tls13\n",
    );
    assert!(ok && out.contains("(configuration generation 3)"), "{out}");
    let (ok, out) = cli(data, "sslconfig gui 1-3\ncommit gui tls13\n");
    assert!(ok, "{out}");
    assert!(
        out.contains("(configuration generation 4)")
            && out.contains("Commit 3 is confirmed by this commit and will not be rolled back."),
        "{out}"
    );
    // A window in which nothing must happen: past the deadline of commit 3.
    thread::sleep(Duration::from_secs(3));
    let done = cli_c(data, "commitdetail all");
    assert!(done.ok(), "{done:?}");
    assert!(done.stdout.starts_with("Generation 4: "), "{done:?}");
    assert!(!done.stdout.contains("Automatic rollback"), "{done:?}");
    let print = inbound_method(data);
    assert!(print.contains(TLS13_INBOUND), "{print}");
    assert!(
        print.contains("Outbound SMTP method: tlsv1_1tlsv1_2tlsv1_3\n"),
        "{print}"
    );
    let log = system_logs(data);
    assert!(log.contains("User admin confirmed commit 2"), "{log}");
    assert!(
        log.contains("Commit 3 is confirmed by admin's commit 4"),
        "{log}"
    );
}

#[test]
fn commit_confirmed_needs_its_minutes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);
    for bad in [
        "commit confirmed",
        "commit confirmed 0 x",
        "commit confirmed soon",
        "commit confirmed 1441",
    ] {
        let (ok, out) = cli(data, &format!("sslconfig inbound 1-3\n{bad}\n"));
        assert!(!ok, "{bad}: {out}");
        assert!(
            out.contains(
                "'commit confirmed' needs the minutes to wait for confirmation, 1 to 1440"
            ) && out.contains("commit confirmed <minutes> [comment]"),
            "{bad}: {out}"
        );
        assert!(
            out.contains("Warning: uncommitted changes were discarded"),
            "{bad}: {out}"
        );
    }
    let done = cli_c(data, "commitdetail");
    assert!(done.stdout.starts_with("Generation 1: "), "{done:?}");
}

#[test]
fn a_restarted_gateway_still_rolls_back_an_unconfirmed_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let (ok, out) = cli(
        data,
        "sslconfig inbound 1-3\ncommit confirmed-seconds 4 tls13\n",
    );
    assert!(ok && out.contains("(configuration generation 2)"), "{out}");
    let (status, _) = gateway.terminate();
    assert!(status.success(), "{status}");
    assert!(data.join("config/confirm-pending").exists());

    let _gateway = Gateway::start(data, &[]);
    let done = cli_c(data, "status");
    assert!(
        done.stdout.contains("Awaiting confirmation") || system_logs(data).contains("rolled back"),
        "{done:?}"
    );
    let detail = wait_commitdetail(
        data,
        3,
        "Comment: Automatic rollback: commit 2 was not confirmed within 4 seconds",
    );
    assert!(detail.contains(" by system\n"), "{detail}");
    assert!(inbound_method(data).contains(FACTORY_INBOUND));
    assert!(!data.join("config/confirm-pending").exists());
}

// ---------------------------------------------------------------------------------------------
// cli_logs

fn cli_logs(data: &Path) -> String {
    std::fs::read_to_string(data.join("logs/cli_logs/cli.current")).unwrap_or_default()
}

/// The event of a line: what follows `<time> ` (the time is `Ddd Mmm dd HH:MM:SS YYYY`, 24
/// characters, the day space-padded).
fn event(line: &str) -> &str {
    line.get(25..).unwrap_or_default()
}

#[test]
fn every_line_entered_goes_to_cli_logs_and_secrets_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    let (ok, out) = cli(
        data,
        "status\nsslconfig inbound 1-3\ncommit\ninbound tls13, asked for\n",
    );
    assert!(ok, "{out}");
    let done = cli_c(data, "version");
    assert!(done.ok(), "{done:?}");

    // A pasted private key is a secret.
    let cert = std::fs::read_to_string(data.join("certs/factory-ecdsa.crt")).expect("cert");
    let key = std::fs::read_to_string(data.join("certs/factory-ecdsa.key")).expect("key");
    let (ok, out) = cli(
        data,
        &format!("certconfig paste pasted\n{cert}.\n{key}.\n.\nclear\ny\n"),
    );
    assert!(ok, "{out}");
    assert!(out.contains("Certificate pasted imported"), "{out}");

    let log = cli_logs(data);
    let events: Vec<&str> = log.lines().map(event).collect();
    let entered = |what: &str, prompt: &str| {
        events.iter().any(|e| {
            e.starts_with("Info: PID ")
                && e.ends_with(&format!(
                    ": User admin entered '{what}'; prompt was '{prompt}'"
                ))
        })
    };
    assert!(entered("status", "mail.example.com> "), "{log}");
    assert!(
        entered("sslconfig inbound 1-3", "mail.example.com> "),
        "{log}"
    );
    assert!(
        entered("commit", "mail.example.com (uncommitted changes)> "),
        "{log}"
    );
    assert!(
        entered(
            "inbound tls13, asked for",
            "Please enter some comments describing your changes:\\n[]> "
        ),
        "{log}"
    );
    assert!(entered("version", "mail.example.com> "), "{log}");
    assert!(
        entered("certconfig paste pasted", "mail.example.com> "),
        "{log}"
    );
    assert!(
        events.iter().any(|e| e.ends_with(
            ": User admin entered a secret, not logged; prompt was 'Paste private key in PEM \
             format (end with a line '.'):'"
        )),
        "{log}"
    );
    for key_line in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(
            !log.contains(key_line),
            "a line of the key is in cli_logs:\n{log}"
        );
    }
    // One process id per session: the script's lines share one, `-c` has another.
    let pid = |e: &&str| e.split(':').nth(1).map(str::trim).map(str::to_owned);
    let script: Vec<String> = events
        .iter()
        .filter(|e| e.contains("entered 'status'") || e.contains("entered 'commit'"))
        .filter_map(pid)
        .collect();
    assert_eq!(script.len(), 2, "{log}");
    assert_eq!(script[0], script[1], "{log}");
    assert!(script[0].starts_with("PID "), "{log}");
    let version = events
        .iter()
        .find(|e| e.contains("entered 'version'"))
        .and_then(pid)
        .expect("the version line");
    assert_ne!(version, script[0], "{log}");
}

// ---------------------------------------------------------------------------------------------
// tail, grep, findevent

/// The MID of the last message from `sender`, from its `From:` line (earlier ones may have
/// been refused at RCPT).
fn mid_of(log: &str, sender: &str) -> String {
    log.lines()
        .rfind(|l| l.ends_with(&format!(" From: <{sender}>")))
        .and_then(|l| l.split_once(" MID "))
        .and_then(|(_, rest)| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no From line for {sender}:\n{log}"))
        .to_owned()
}

fn ok_output(data: &Path, command: &str) -> String {
    let done: Finished = cli_c(data, command);
    assert!(done.ok(), "{command}: {done:?}");
    done.stdout
}

#[test]
fn findevent_grep_and_tail_read_the_mail_that_went_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let (ok, out) = cli(
        data,
        "listenerconfig rcptaccess new example.test accept\ncommit rat\n",
    );
    assert!(ok, "{out}");
    // smtpd applies the commit to connections after it has seen it.
    let deadline = Instant::now() + TIMEOUT;
    while !send_mail(gateway.smtp, "alice@example.net", "bob@example.test") {
        assert!(Instant::now() < deadline, "the RAT entry was not applied");
        thread::sleep(POLL);
    }
    assert!(send_mail(
        gateway.smtp,
        "carol@example.net",
        "dave@example.test"
    ));
    let log = wait_mail_log(data, |l| l.contains(" From: <carol@example.net>"));
    let log = wait_mail_log(data, |l| {
        l.ends_with(&format!(
            "MID {} queued for delivery",
            mid_of(&log, "carol@example.net")
        ))
    });
    let (alice, carol) = (
        mid_of(&log, "alice@example.net"),
        mid_of(&log, "carol@example.net"),
    );

    // findevent: by sender, by MID, by recipient; each message with its connection's lines.
    let by_sender = ok_output(data, "findevent -f ^alice@");
    assert!(
        by_sender.contains(&format!("Start MID {alice} ICID "))
            && by_sender.contains(&format!("MID {alice} ICID "))
            && by_sender.contains(" RID 0 To: <bob@example.test>")
            && by_sender.contains(&format!("MID {alice} queued for delivery"))
            && by_sender.contains("Info: New SMTP ICID "),
        "{by_sender}"
    );
    assert!(
        !by_sender.contains("carol") && !by_sender.contains("dave"),
        "{by_sender}"
    );
    let icid = by_sender
        .lines()
        .find_map(|l| l.split_once(&format!("Start MID {alice} ICID ")))
        .map(|(_, icid)| icid.to_owned())
        .expect("the Start line");
    assert!(
        by_sender.contains(&format!("New SMTP ICID {icid} ")),
        "{by_sender}"
    );
    let by_mid = ok_output(data, &format!("findevent -m {carol} mail_logs"));
    assert!(by_mid.contains(" From: <carol@example.net>"), "{by_mid}");
    assert!(!by_mid.contains("alice"), "{by_mid}");
    let by_recipient = ok_output(data, "findevent -i -t '^DAVE@EXAMPLE\\.test$'");
    assert!(
        by_recipient.contains(" To: <dave@example.test>"),
        "{by_recipient}"
    );
    assert!(!by_recipient.contains("bob@"), "{by_recipient}");
    let none = ok_output(data, "findevent -t ^nobody@");
    assert_eq!(none.trim_end(), "No matching message IDs were found.");
    let (ok, out) = cli(
        data,
        "findevent\n2\n{carol}\n"
            .replace("{carol}", &carol)
            .as_str(),
    );
    assert!(ok && out.contains(" From: <carol@example.net>"), "{out}");

    // grep: current and rotated files, case, counts, bad expressions.
    let rotated = data.join("logs/mail_logs/mail.@20200101T000000.s");
    std::fs::write(
        &rotated,
        "Wed Jan  1 00:00:00 2020 Info: MID 1 ICID 1 From: <old@example.net>\n",
    )
    .expect("writing a rotated file");
    let found = ok_output(data, "grep 'From: <(carol|old)@' mail_logs");
    let lines: Vec<&str> = found.lines().collect();
    assert_eq!(lines.len(), 2, "{found}");
    assert!(lines[0].ends_with("From: <old@example.net>"), "{found}");
    assert!(lines[1].ends_with("From: <carol@example.net>"), "{found}");
    assert_eq!(
        ok_output(data, "grep -c -i 'from: <CAROL@' mail_logs").trim_end(),
        "1"
    );
    assert_eq!(
        ok_output(data, "grep -c 'from: <CAROL@' mail_logs").trim_end(),
        "0"
    );
    assert_eq!(
        ok_output(data, "grep -e nothing-like-this system_logs").trim_end(),
        "No results were found."
    );
    let bad = cli_c(data, "grep '(' mail_logs");
    assert!(
        !bad.ok() && bad.stdout.contains("'(' is not a regular expression"),
        "{bad:?}"
    );
    let bad = cli_c(data, "grep x no_logs");
    assert!(
        !bad.ok()
            && bad.stdout.contains(
                "'no_logs' is not a log of this appliance; the logs are cli_logs, gui_logs, \
                 mail_logs, system_logs"
            ),
        "{bad:?}"
    );

    // tail: from a script it prints the last lines and returns.
    let tail = ok_output(data, "tail cli_logs");
    let last = tail.lines().last().unwrap_or_default();
    assert!(
        last.ends_with(": User admin entered 'tail cli_logs'; prompt was 'mail.example.com> '"),
        "{tail}"
    );
    let tail = ok_output(data, "tail mail_logs");
    let file =
        std::fs::read_to_string(data.join("logs/mail_logs/mail.current")).expect("mail_logs");
    let shown: Vec<&str> = tail.lines().collect();
    assert!((1..=20).contains(&shown.len()), "{tail}");
    let all: Vec<&str> = file.lines().collect();
    assert!(
        all.windows(shown.len()).any(|w| w == shown.as_slice()),
        "tail shows lines that are not consecutive lines of mail_logs:\n{tail}"
    );
    assert!(all.len() < 20 || shown.len() == 20, "{tail}");
    let (ok, out) = cli(data, "tail\n3\n");
    assert!(ok, "{out}");
    assert!(
        out.contains("Currently configured logs:\n1. \"cli_logs\" Type: \"CLI Audit Logs\"\n")
            && out.contains("3. \"mail_logs\" Type: \"Text Mail Logs\"\n")
            && out.contains("Enter the number of the log you wish to tail."),
        "{out}"
    );
    assert!(out.contains(&format!("MID {carol} ")), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Usability

#[test]
fn help_shows_every_command_s_forms_and_a_slip_names_the_command_meant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    let list = ok_output(data, "help");
    let names: Vec<&str> = list
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("Type "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for expected in ["commit", "findevent", "grep", "sslconfig", "tail"] {
        assert!(names.contains(&expected), "{list}");
    }
    let script: String = names.iter().map(|n| format!("help {n}\n")).collect();
    let (ok, out) = cli(data, &script);
    assert!(ok, "{out}");
    for name in &names {
        assert!(
            out.contains(&format!("{name} - ")) && out.contains(&format!("Usage:\n  {name}")),
            "help {name}:\n{out}"
        );
    }
    assert!(
        out.contains("  commit confirmed <minutes> [comment]\n"),
        "{out}"
    );

    let slip = cli_c(data, "sslconfg print");
    assert!(!slip.ok(), "{slip:?}");
    assert_eq!(
        slip.stdout.trim_end(),
        "Unknown command: 'sslconfg'. Did you mean 'sslconfig'? Type 'help' for the list."
    );
    let nonsense = cli_c(data, "xyzzy");
    assert_eq!(
        nonsense.stdout.trim_end(),
        "Unknown command: 'xyzzy'. Type 'help' for the list of commands."
    );
    let help_slip = cli_c(data, "help findevnt");
    assert!(
        !help_slip.ok() && help_slip.stdout.contains("Did you mean 'findevent'?"),
        "{help_slip:?}"
    );
    let quit = cli_c(data, "quit");
    assert!(quit.ok() && quit.stdout.is_empty(), "{quit:?}");
}

// ---------------------------------------------------------------------------------------------
// userconfig and passwd

/// `postern cli --user USER` with `stdin` as its input.
fn cli_as(data: &Path, user: &str, stdin: &str) -> Finished {
    let mut command = postern(&["cli"], data);
    command.args(["--user", user]);
    run_to_end(command, stdin)
}

#[test]
fn accounts_are_added_and_deleted_and_passwords_are_neither_shown_nor_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    let (ok, out) = cli(
        data,
        "userconfig new ops operator Night Operator\nops-secret-1\nops-secret-1\n\
         commit ops\nuserconfig print\n",
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("User ops (Operator) added; 'commit' applies it."),
        "{out}"
    );
    assert!(
        out.contains("Users:\n1. admin - \"Administrator\" (Administrator)\n2. ops - \"Night Operator\" (Operator)\n"),
        "{out}"
    );
    let detail = ok_output(data, "commitdetail");
    assert!(detail.contains("users.ops: added "), "{detail}");
    assert!(
        !detail.contains("argon2") && !detail.contains("$6$"),
        "{detail}"
    );

    // The dialog, for an administrator.
    let (ok, out) = cli(
        data,
        "userconfig\nnew\nlee\nLee Admin\n1\nlee-secret-1\nlee-secret-1\n\ncommit lee\n",
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("Assign a role to \"lee\":\n1. Administrator - "),
        "{out}"
    );
    assert!(out.contains("User lee (Administrator) added"), "{out}");

    // Refusals: passwords that differ or are short, a name taken, the account in use.
    for (script, why) in [
        (
            "userconfig new x1 administrator\nx1-secret-1\nx1-secret-2\n",
            "The passwords do not match; nothing was changed.",
        ),
        (
            "userconfig new x1 operator\nshort\nshort\n",
            "the password must have at least 8 characters",
        ),
        (
            "userconfig new ops operator\n",
            "There is already a user 'ops'.",
        ),
        (
            "userconfig delete admin\n",
            "You cannot delete the account you are using.",
        ),
        (
            "userconfig new Bad! operator\n",
            "'Bad!' is not a valid user name",
        ),
    ] {
        let (ok, out) = cli(data, script);
        assert!(!ok && out.contains(why), "{script}: {out}");
    }

    // An operator looks and changes nothing, but changes their own password.
    let looked = cli_as(data, "ops", "sslconfig print\nsslconfig inbound 1-3\n");
    assert!(!looked.ok(), "{looked:?}");
    assert!(looked.stdout.contains(FACTORY_INBOUND), "{looked:?}");
    assert!(
        looked.stdout.contains(
            "ops is an operator: operators can look at the configuration and the logs, not \
             change them."
        ),
        "{looked:?}"
    );
    let changed = cli_as(
        data,
        "ops",
        "passwd\nops-secret-1\nops-secret-2\nops-secret-2\n",
    );
    assert!(changed.ok(), "{changed:?}");
    assert!(
        changed.stdout.contains("Old password: \nNew password: \nPlease enter the new password again: \nPassword changed (configuration generation 4)."),
        "{changed:?}"
    );
    let wrong = cli_as(data, "ops", "passwd\nops-secret-1\n");
    assert!(
        !wrong.ok()
            && wrong
                .stdout
                .contains("The old password is not correct; the password was not changed."),
        "{wrong:?}"
    );
    let right = cli_as(
        data,
        "ops",
        "passwd\nops-secret-2\nops-secret-3\nops-secret-3\n",
    );
    assert!(
        right.ok() && right.stdout.contains("Password changed"),
        "{right:?}"
    );
    let detail = ok_output(data, "commitdetail");
    assert!(
        detail.contains(" by ops\nComment: passwd: ops changed their password\n")
            && detail.contains("users.ops.password: changed"),
        "{detail}"
    );

    // Deleted by an administrator.
    let (ok, out) = cli(
        data,
        "userconfig delete ops\ncommit no more ops\nuserconfig print\n",
    );
    assert!(ok, "{out}");
    assert!(!out.contains("2. ops"), "{out}");
    let gone = cli_as(data, "ops", "status\n");
    assert!(
        !gone.ok() && gone.stderr.contains("there is no user 'ops'"),
        "{gone:?}"
    );

    // No password was shown or logged.
    let log = cli_logs(data);
    for secret in ["ops-secret-", "lee-secret-", "x1-secret-"] {
        assert!(!log.contains(secret), "{secret} in cli_logs:\n{log}");
        assert!(!out.contains(secret), "{secret} shown");
        assert!(!changed.stdout.contains(secret), "{secret} shown");
    }
    assert!(
        log.contains(": User ops entered a secret, not logged; prompt was 'Old password: '"),
        "{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// On a terminal

/// A `postern cli` whose terminal is a pseudo-terminal: what it prints, and the terminal's own
/// echo of what is typed, come back through the master side.
struct TerminalSession {
    child: std::process::Child,
    master: std::fs::File,
    output: Captured,
    seen: usize,
}

impl TerminalSession {
    fn open(data: &Path) -> Self {
        let pty = nix::pty::openpty(None, None).expect("a pseudo-terminal");
        let slave = std::fs::File::from(pty.slave);
        let mut command = postern(&["cli"], data);
        command
            .stdin(slave.try_clone().expect("slave"))
            .stdout(slave.try_clone().expect("slave"))
            .stderr(slave);
        let child = command.spawn().expect("spawning postern cli");
        // The parent's copies of the terminal go, so that the master sees the end when the
        // session ends.
        drop(command);
        let master = std::fs::File::from(pty.master);
        let (output, _) = Captured::drain(master.try_clone().expect("master"));
        Self {
            child,
            master,
            output,
            seen: 0,
        }
    }

    fn type_line(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .expect("typing on the terminal");
    }

    /// Waits for `text` after what was seen before; answers the output up to its end.
    fn expect(&mut self, text: &str) -> String {
        let end = self
            .output
            .find_after(self.seen, text, TIMEOUT)
            .unwrap_or_else(|| {
                panic!(
                    "the terminal did not show {text:?}; after what was seen before:\n{}",
                    self.output.slice(self.seen, usize::MAX)
                )
            });
        let shown = self.output.slice(self.seen, end);
        self.seen = end;
        shown
    }
}

impl Drop for TerminalSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn on_a_terminal_tail_follows_until_ctrl_c_and_a_password_is_not_echoed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);
    let mut terminal = TerminalSession::open(data);
    terminal.expect("mail.example.com> ");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(terminal.child.id()).expect("pid"));
    let ctrl_c = || nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("Ctrl-C");
    // Before anything: it neither ends the session nor stops the tail to come.
    ctrl_c();

    terminal.type_line("tail system_logs");
    terminal.expect("(following; press Ctrl-C to stop)");
    let (ok, out) = cli(data, "sslconfig inbound 1-3\ncommit seen while following\n");
    assert!(ok, "{out}");
    terminal.expect("Info: User admin committed generation 2: seen while following");
    ctrl_c();
    terminal.expect("mail.example.com> ");
    // At a prompt, Ctrl-C does not end the session.
    ctrl_c();
    terminal.type_line("status");
    terminal.expect("Configuration generation:      2");
    terminal.expect("mail.example.com> ");

    // The terminal echoes what is typed, except while the password is read.
    terminal.type_line("passwd");
    let shown = terminal.expect("Old password: ");
    assert!(shown.contains("passwd"), "{shown}");
    terminal.type_line("not-the-password");
    let shown = terminal.expect("The old password is not correct");
    assert!(!shown.contains("not-the-password"), "{shown}");
    terminal.expect("mail.example.com> ");
    terminal.type_line("version");
    let shown = terminal.expect("Configuration generation: 2");
    assert!(shown.contains("version"), "the echo is back: {shown}");
    terminal.type_line("quit");
    let status = common::wait_or_kill(&mut terminal.child, "postern cli", String::new);
    // It ended on quit; non-zero, as a session with a failed command (the wrong password) does.
    assert_eq!(status.code(), Some(1), "{status}");
}

// ---------------------------------------------------------------------------------------------
// tlsverify

/// `tlsverify` against a real STARTTLS server (the gateway's own listener, through an SMTP
/// route): TLS v1.2 with the factory policies; a version mismatch explained once Outbound SMTP
/// is TLS v1.3 only; a certificate that does not verify under Required - Verify.
#[test]
fn tlsverify_reports_the_tls_a_delivery_would_get() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let route = format!(
        "smtproutes new example.test 127.0.0.1:{}\ncommit route to ourselves\n",
        gateway.smtp
    );
    let (ok, out) = cli(data, &route);
    assert!(ok, "{out}");

    let done = cli_c(data, "tlsverify example.test");
    assert!(done.status.success(), "{done:?}");
    assert!(
        done.stdout
            .contains("TLS successfully established: protocol TLSv1.2 cipher ECDHE-"),
        "{done:?}"
    );
    assert!(
        done.stdout.contains("TLS verification completed."),
        "{done:?}"
    );

    let (ok, out) = cli(data, "sslconfig outbound 1\ncommit outbound 1.3 only\n");
    assert!(ok, "{out}");
    let done = cli_c(data, "tlsverify example.test");
    assert!(!done.status.success(), "{done:?}");
    assert!(
        done.stdout
            .contains("TLS version mismatch could be the failure reason"),
        "{done:?}"
    );
    assert!(done.stdout.contains("TLS verification failed."), "{done:?}");

    let (ok, out) = cli(
        data,
        "sslconfig outbound 2-3\ndestconfig new example.test tls required-verify\ncommit verify\n",
    );
    assert!(ok, "{out}");
    let done = cli_c(data, "tlsverify example.test");
    assert!(!done.status.success(), "{done:?}");
    assert!(done.stdout.contains("TLS failed: ("), "{done:?}");

    let done = cli_c(data, "tlsverify");
    assert!(!done.status.success());
    assert!(done.stdout.contains("tlsverify <domain>"), "{done:?}");
}

// ---------------------------------------------------------------------------------------------
// delivernow

/// Accepts one SMTP conversation on `listener` and answers everything with success; returns
/// the recipients it was given.
fn one_message_sink(listener: std::net::TcpListener) -> thread::JoinHandle<Vec<String>> {
    use std::io::{BufRead, BufReader, Write};
    thread::spawn(move || {
        let (stream, _) = listener.accept().expect("a delivery");
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let mut writer = stream.try_clone().expect("clone");
        let mut reader = BufReader::new(stream);
        let mut recipients = Vec::new();
        let _ = writer.write_all(b"220 sink.example ESMTP\r\n");
        let mut line = String::new();
        let mut in_data = false;
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            let command = line.trim_end().to_owned();
            line.clear();
            if in_data {
                if command == "." {
                    in_data = false;
                    let _ = writer.write_all(b"250 2.0.0 queued\r\n");
                }
                continue;
            }
            let upper = command.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") {
                b"250-sink.example\r\n250 8BITMIME\r\n"
            } else if upper.starts_with("DATA") {
                in_data = true;
                b"354 go on\r\n"
            } else if upper.starts_with("QUIT") {
                let _ = writer.write_all(b"221 bye\r\n");
                break;
            } else {
                if upper.starts_with("RCPT TO:") {
                    recipients.push(command[8..].to_owned());
                }
                b"250 ok\r\n"
            };
            let _ = writer.write_all(reply);
        }
        recipients
    })
}

/// A message deferred because its next hop was down is retried at once by `delivernow`, well
/// before its first retry (a minute later) would be due.
#[test]
fn delivernow_retries_deferred_mail_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    // A port nothing listens on yet: the first attempt is refused and deferred.
    let port = common::free_port();
    let (ok, out) = cli(
        data,
        &format!(
            "listenerconfig rcptaccess new example.test accept\nsmtproutes new example.test 127.0.0.1:{port}\ncommit down route\n"
        ),
    );
    assert!(ok, "{out}");
    let deadline = Instant::now() + TIMEOUT;
    while !send_mail(gateway.smtp, "alice@example.net", "bob@example.test") {
        assert!(Instant::now() < deadline, "the RAT entry was never applied");
        thread::sleep(POLL);
    }
    wait_mail_log(data, |l| l.contains("Connection Error: DCID"));

    let sink = one_message_sink(
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("binding the sink"),
    );
    let done = cli_c(data, "delivernow example.test");
    assert!(done.status.success(), "{done:?}");
    assert!(done.stdout.contains("Delivery now requested"), "{done:?}");
    let log = wait_mail_log(data, |l| {
        l.contains(" done") && l.contains("Message finished MID")
    });
    assert!(
        log.contains("Delivery now requested for example.test"),
        "{log}"
    );
    assert_eq!(sink.join().expect("sink"), ["<bob@example.test>"]);

    let refused = cli_c(data, "delivernow not/a/domain");
    assert!(!refused.status.success(), "{refused:?}");
}

// ---------------------------------------------------------------------------------------------
// The system logins (DATA/run/shadow)

/// The hash of `name` in DATA/run/shadow, once `wanted` accepts it (within `TIMEOUT`): the
/// supervisor writes the file after the commit has answered.
fn shadow_hash(data: &Path, name: &str, wanted: impl Fn(Option<&str>) -> bool) -> Option<String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = std::fs::read_to_string(data.join("run/shadow")).unwrap_or_default();
        let hash = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .and_then(|rest| rest.split(':').next())
            .map(str::to_owned);
        if wanted(hash.as_deref()) {
            return hash;
        }
        assert!(
            Instant::now() < deadline,
            "DATA/run/shadow did not get the {name} line wanted within {TIMEOUT:?}:\n{text}"
        );
        thread::sleep(POLL);
    }
}

/// Whether `hash` is the SHA-512 crypt of `password` as OpenSSL computes it (`openssl passwd
/// -6`, the algorithm of glibc's crypt that BusyBox login and dropbear use).
fn crypt_of(hash: Option<&str>, password: &str) -> bool {
    let Some(salt) = hash
        .and_then(|h| h.strip_prefix("$6$"))
        .and_then(|h| h.split('$').next())
    else {
        return false;
    };
    let out = std::process::Command::new("openssl")
        .args(["passwd", "-6", "-salt", salt, password])
        .output()
        .expect("openssl passwd (Debian package openssl)");
    String::from_utf8_lossy(&out.stdout).trim() == hash.unwrap_or_default()
}

/// The console and SSH logins follow the committed users: the first start's password, a new
/// user, a changed password, a deleted user; the system accounts stay locked.
#[test]
fn the_system_logins_follow_the_committed_passwords() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let first = gateway.admin_password();

    let shadow = data.join("run/shadow");
    let mode = std::fs::metadata(&shadow)
        .expect("DATA/run/shadow")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&shadow).expect("DATA/run/shadow");
    for system in ["root", "postern", "nobody"] {
        assert!(text.contains(&format!("{system}:!:")), "{text}");
    }
    shadow_hash(data, "admin", |h| crypt_of(h, &first));

    let (ok, out) = cli(
        data,
        "userconfig new ops operator\nops-secret-1\nops-secret-1\ncommit ops\n",
    );
    assert!(ok, "{out}");
    shadow_hash(data, "ops", |h| crypt_of(h, "ops-secret-1"));

    let changed = cli_as(
        data,
        "ops",
        "passwd\nops-secret-1\nops-secret-2\nops-secret-2\n",
    );
    assert!(changed.ok(), "{changed:?}");
    let hash = shadow_hash(data, "ops", |h| crypt_of(h, "ops-secret-2"));
    assert!(!crypt_of(hash.as_deref(), "ops-secret-1"));
    shadow_hash(data, "admin", |h| crypt_of(h, &first));

    let (ok, out) = cli(data, "userconfig delete ops\ncommit no more ops\n");
    assert!(ok, "{out}");
    shadow_hash(data, "ops", |h| h.is_none());
    assert!(
        system_logs(data).contains("System login passwords written to "),
        "{}",
        system_logs(data)
    );
}

// ---------------------------------------------------------------------------------------------
// reboot, shutdown

/// On a host (process 1 is not the appliance's BusyBox init) `reboot` and `shutdown` refuse
/// before asking anything, even with a `y` waiting, and the gateway runs on.
#[test]
fn reboot_and_shutdown_refuse_on_a_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);
    for command in ["reboot", "shutdown"] {
        let (ok, out) = cli(data, &format!("{command}\ny\n"));
        assert!(!ok, "{out}");
        assert!(
            out.contains(&format!(
                "{command} is only available on the appliance: process 1 here"
            )) && out.contains("This machine is not rebooted or shut down from the CLI."),
            "{out}"
        );
        assert!(!out.contains("Are you sure"), "{out}");
        let help = cli_c(data, &format!("help {command}"));
        assert!(help.stdout.contains("on the appliance only"), "{help:?}");
    }
    let status = cli_c(data, "version");
    assert!(status.ok(), "{status:?}");
}
