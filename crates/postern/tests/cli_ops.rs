//! The CLI's operating commands end to end: `commit confirmed`, the `cli_logs` audit trail, and
//! the log commands (`tail`, `grep`, `findevent`), with the real `postern` binary as gateway
//! and CLI, each test on a fresh data directory.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::{Gateway, TIMEOUT, cli, cli_c};

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
