//! Host mode end to end: the real `postern` binary, `postern run` as the gateway and
//! `postern cli` sessions fed through stdin, each test on a fresh data directory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use postern_logs::Subscription;
use tempfile::TempDir;

mod common;

use common::{
    Captured, Finished, Gateway, HOSTNAME, POLL, SmtpClient, TIMEOUT, cli, cli_c, postern,
    run_to_end, starttls_protocol, wait_mail_log, wait_or_kill,
};

/// The CLI's prompt on `HOSTNAME`, without and with pending changes.
const PROMPT: &str = "mail.example.com> ";
const PENDING_PROMPT: &str = "mail.example.com (uncommitted changes)> ";

const FACTORY_INBOUND: &str = "Inbound SMTP method: tlsv1_1tlsv1_2\n";
const TLS13_INBOUND: &str = "Inbound SMTP method: tlsv1_1tlsv1_2tlsv1_3\n";
const FACTORY_OUTBOUND: &str = "Outbound SMTP method: tlsv1_1tlsv1_2\n";
const TLS13_OUTBOUND: &str = "Outbound SMTP method: tlsv1_2tlsv1_3\n";

// ---------------------------------------------------------------------------------------------
// Helpers

/// What `sslconfig print` shows in a new session.
fn sslconfig(data: &Path) -> String {
    let (ok, out) = cli(data, "sslconfig print\n");
    assert!(ok, "sslconfig print failed:\n{out}");
    out
}

fn generation_files(data: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(data.join("config"))
        .expect("reading DATA/config")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.starts_with("gen-") || n.ends_with(".tmp"))
        .collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// An interactive `postern cli` session: lines are sent one at a time and the test waits for
/// what they print. Killed when dropped.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Captured,
    stderr: Captured,
    drains: Vec<JoinHandle<()>>,
    /// Output before this byte has been matched by `expect` already.
    seen: usize,
}

impl Session {
    fn open(data: &Path) -> Self {
        let mut child = postern(&["cli"], data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning postern cli");
        let stdin = child.stdin.take();
        let (stdout, out_thread) = Captured::drain(child.stdout.take().expect("stdout"));
        let (stderr, err_thread) = Captured::drain(child.stderr.take().expect("stderr"));
        Self {
            child,
            stdin,
            stdout,
            stderr,
            drains: vec![out_thread, err_thread],
            seen: 0,
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").expect("writing to the CLI");
        stdin.flush().expect("flushing to the CLI");
    }

    /// Sends `line` and waits for the prompt `next` after its output; returns that output and
    /// the prompt.
    fn command(&mut self, line: &str, next: &str) -> String {
        self.send(line);
        // The echo of the line after its prompt: what follows is this command's output.
        self.expect(&format!("{line}\n"));
        self.expect(next)
    }

    /// Waits until the output after what was expected before shows `text`; returns the output
    /// from there up to the end of `text`.
    fn expect(&mut self, text: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let exited = self.child.try_wait().expect("try_wait");
            // After an exit, one last look: the text may have arrived just before it.
            let wait = if exited.is_some() {
                Duration::ZERO
            } else {
                Duration::from_millis(100)
            };
            if let Some(end) = self.stdout.find_after(self.seen, text, wait) {
                let shown = self.stdout.slice(self.seen, end);
                self.seen = end;
                return shown;
            }
            if exited.is_some() || Instant::now() >= deadline {
                panic!(
                    "the CLI did not print {text:?} (exited: {exited:?}); after what was \
                     expected before it printed:\n{}\n--- stderr ---\n{}",
                    self.stdout.slice(self.seen, usize::MAX),
                    self.stderr.text()
                );
            }
        }
    }

    /// Closes stdin (end of input) and waits for the session to end.
    fn finish(mut self) -> Finished {
        drop(self.stdin.take());
        let stdout = self.stdout.clone();
        let status = wait_or_kill(&mut self.child, "postern cli", || stdout.text());
        for drain in self.drains.drain(..) {
            let _ = drain.join();
        }
        Finished {
            status,
            stdout: self.stdout.text(),
            stderr: self.stderr.text(),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small tmpfs mounted on a temporary directory for as long as this lives.
struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status();
        match status {
            Ok(s) if s.success() => Self { dir },
            other => panic!(
                "this test mounts a tmpfs to fill the disk and needs root \
                 (mount -t tmpfs on {} failed: {other:?})",
                dir.path().display()
            ),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Runs before `dir` is removed; whatever ran on it has been stopped by then.
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Writes `path` until the filesystem is full.
fn fill(path: &Path) {
    let mut file = fs::File::create(path).expect("creating the fill file");
    let chunk = [0u8; 4096];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. First start

#[test]
fn first_start_writes_a_private_random_password_and_the_factory_generation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);

    let password_file = data.join("initial-admin-password");
    assert_eq!(mode(&password_file), 0o600);
    let password = fs::read_to_string(&password_file).expect("reading the password");
    let password = password.trim_end();
    assert!(
        password.chars().count() >= 16,
        "password {password:?} is shorter than 16 characters"
    );
    assert!(!password.contains(char::is_whitespace), "{password:?}");

    assert_eq!(generation_files(data), ["gen-0000000001.cfg"]);
    assert_eq!(mode(&data.join("config")), 0o700);
    assert_eq!(mode(&gateway.socket()), 0o600);
    drop(gateway);

    // A second start keeps the password it wrote.
    let gateway = Gateway::start(data, &[]);
    let again = fs::read_to_string(&password_file).expect("reading the password");
    assert_eq!(again.trim_end(), password);
    drop(gateway);
}

#[test]
fn a_password_file_replaces_the_random_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("admin-password");
    fs::write(&secret, "correct horse battery\n").expect("writing the password file");
    let data = dir.path().join("data");
    let gateway = Gateway::start(
        &data,
        &["--admin-password-file", secret.to_str().expect("utf-8")],
    );

    assert!(!data.join("initial-admin-password").exists());
    assert_eq!(generation_files(&data), ["gen-0000000001.cfg"]);
    let done = cli_c(&data, "version");
    assert!(done.ok(), "{done:?}");
    drop(gateway);
}

#[test]
fn a_short_password_file_is_refused_before_anything_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("admin-password");
    fs::write(&secret, "short\n").expect("writing the password file");
    let data = dir.path().join("data");
    let mut run = postern(&["run"], &data);
    run.args(["--hostname", HOSTNAME, "--admin-password-file"])
        .arg(&secret);
    let done = run_to_end(run, "");

    assert_eq!(done.status.code(), Some(64), "{done:?}");
    assert!(
        done.stderr.contains("shorter than") && done.stderr.contains("characters"),
        "the refusal does not mention the length: {done:?}"
    );
    assert!(!done.stdout.contains("postern: ready"), "{done:?}");
    assert!(!postern_control::socket_path(&data).exists());
    assert!(!data.join("config").exists());
    assert!(!data.join("initial-admin-password").exists());
}

// ---------------------------------------------------------------------------------------------
// 2.–5. Script sessions: commit, refusals, discarding, dialogs

#[test]
fn sslconfig_commit_through_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    let (ok, out) = cli(
        data,
        "sslconfig inbound 1-3\ncommit tls13\nsslconfig print\ncommitdetail\n",
    );
    assert!(ok, "{out}");
    assert!(out.contains(TLS13_INBOUND), "{out}");
    assert!(out.contains("Changes committed:"), "{out}");
    assert!(out.contains("(configuration generation 2)"), "{out}");
    assert!(out.contains("Comment: tls13\n"), "{out}");
    assert!(
        out.contains("tls.inbound_smtp.protocols: tlsv1_1tlsv1_2 -> tlsv1_1tlsv1_2tlsv1_3"),
        "{out}"
    );
    assert!(!out.contains("Warning: uncommitted"), "{out}");
    // The input is echoed after its prompt.
    assert!(
        out.contains(&format!("{PROMPT}sslconfig inbound 1-3\n")),
        "{out}"
    );

    let printed = sslconfig(data);
    assert!(printed.contains(TLS13_INBOUND), "{printed}");
    assert!(printed.contains(FACTORY_OUTBOUND), "{printed}");
    assert_eq!(
        generation_files(data),
        ["gen-0000000001.cfg", "gen-0000000002.cfg"]
    );
}

/// The seed article's flow: the `sslconfig` dialog, INBOUND, `1-3`, Enter for the rest, commit
/// with a comment; then a TLS v1.3 client gets TLS v1.3 from the running smtpd, and mail_logs
/// has the seed's line.
#[test]
fn the_seed_dialog_turns_on_tls13_for_inbound_smtp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);

    // Before: the factory default gives TLS v1.2 to a client that could do TLS v1.3.
    assert_eq!(starttls_protocol(gateway.smtp, &[]), "TLSv1.2");

    let (ok, out) = cli(
        data,
        "sslconfig\nINBOUND\n1-3\n\n\ncommit\nTLS 1.3 for inbound\nsslconfig print\n",
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("Enter the inbound SMTP ssl method you want to use."),
        "{out}"
    );
    assert!(out.contains("[2-3]> 1-3"), "{out}");
    assert!(
        out.contains("Please enter some comments describing your changes:"),
        "{out}"
    );
    assert!(
        out.contains("Inbound SMTP method: tlsv1_1tlsv1_2tlsv1_3"),
        "{out}"
    );

    // The service applies the commit to new connections; give it a moment to hear of it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while starttls_protocol(gateway.smtp, &[]) != "TLSv1.3" {
        assert!(Instant::now() < deadline, "smtpd still negotiates TLS v1.2");
        thread::sleep(Duration::from_millis(100));
    }
    wait_mail_log(data, |l| {
        l.contains(" Info: ICID ")
            && l.ends_with(" TLS success protocol TLSv1.3 cipher TLS_AES_256_GCM_SHA384")
    });
    // A client limited to TLS v1.0 is refused, and the refusal is logged with the engine's text.
    assert_eq!(
        starttls_protocol(gateway.smtp, &["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"]),
        "failed"
    );
    wait_mail_log(data, |l| l.contains(" TLS failed: ("));

    // All along the SMTP service ran without a restart, and its counters reached `status`.
    thread::sleep(Duration::from_millis(2500));
    let status = cli_c(data, "status");
    assert!(status.stdout.contains("smtpd"), "{status:?}");
    assert!(status.stdout.contains(", 0 restarts"), "{status:?}");
    assert!(
        status.stdout.contains("Inbound TLS Successes"),
        "{status:?}"
    );
}

/// PEER_CERT_FQDN and PEER_CERT_X509: the dialog's toggle (Enter leaves it unchanged), the
/// one-line forms, the settings print, and the journal's summary of each change.
#[test]
fn peer_certificate_checks_are_toggled_by_dialog_and_one_line_forms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    let printed = sslconfig(data);
    assert!(
        printed.contains("Peer certificate FQDN validation: disabled\n")
            && printed.contains("Peer certificate X509 validation: disabled\n"),
        "{printed}"
    );

    let (ok, out) = cli(
        data,
        "sslconfig\nPEER_CERT_X509\n\nPEER_CERT_FQDN\nENABLE\n\ncommit\nfqdn on\ncommitdetail\n",
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("- PEER_CERT_FQDN - Validate peer certificate FQDN compliance")
            && out.contains("- PEER_CERT_X509 - Validate peer certificate X509 compliance"),
        "{out}"
    );
    assert!(
        out.contains("Peer certificate X509 validation is disabled.")
            && out.contains("- ENABLE - Enable peer certificate X509 validation.\n[]> \n"),
        "{out}"
    );
    assert!(
        out.contains("- ENABLE - Enable peer certificate FQDN validation.\n[]> ENABLE\n")
            && out.contains("Peer certificate FQDN validation: enabled\n"),
        "{out}"
    );
    assert!(
        out.contains("tls.peer_certificates.fqdn: false -> true")
            && !out.contains("tls.peer_certificates.x509"),
        "{out}"
    );
    let printed = sslconfig(data);
    assert!(
        printed.contains("Peer certificate FQDN validation: enabled\n")
            && printed.contains("Peer certificate X509 validation: disabled\n"),
        "{printed}"
    );

    // The dialog offers the way back; the one-line forms set either state.
    let (ok, out) = cli(data, "sslconfig\nPEER_CERT_FQDN\n\n\n");
    assert!(ok, "{out}");
    assert!(
        out.contains("- DISABLE - Disable peer certificate FQDN validation."),
        "{out}"
    );
    let (ok, out) = cli(
        data,
        "sslconfig peer_cert_x509 enable\nsslconfig PEER_CERT_FQDN disable\ncommit both\ncommitdetail\n",
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("tls.peer_certificates.fqdn: true -> false")
            && out.contains("tls.peer_certificates.x509: false -> true"),
        "{out}"
    );
    let printed = sslconfig(data);
    assert!(
        printed.contains("Peer certificate FQDN validation: disabled\n")
            && printed.contains("Peer certificate X509 validation: enabled\n"),
        "{printed}"
    );

    let refused = cli_c(data, "sslconfig peer_cert_fqdn on");
    assert!(!refused.ok(), "{refused:?}");
    assert!(
        refused
            .stdout
            .contains("'on' is neither enable nor disable. Usage:")
            && refused
                .stdout
                .contains("sslconfig peer_cert_fqdn <enable|disable>"),
        "{refused:?}"
    );
    let help = cli_c(data, "help sslconfig");
    assert!(
        help.stdout
            .contains("sslconfig peer_cert_x509 <enable|disable>"),
        "{help:?}"
    );
}

#[test]
fn a_non_contiguous_selection_is_refused_and_nothing_is_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    let (ok, out) = cli(data, "sslconfig inbound 1,3\ncommit bad\n");
    assert!(!ok, "a refused command must fail the session:\n{out}");
    assert!(
        out.contains("TLS v1.3 cannot be enabled with TLS v1.1 unless TLS v1.2 is also enabled"),
        "{out}"
    );
    assert!(out.contains("There are no changes to commit."), "{out}");
    assert!(!out.contains("Changes committed"), "{out}");

    assert!(sslconfig(data).contains(FACTORY_INBOUND));
    assert_eq!(generation_files(data), ["gen-0000000001.cfg"]);
    let version = cli_c(data, "version");
    assert!(
        version.stdout.contains("Configuration generation: 1\n"),
        "{version:?}"
    );
}

#[test]
fn a_cipher_string_that_leaves_a_version_without_ciphers_is_not_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    // CBC suites only: rustls, which serves TLS v1.2, has none of them.
    let (ok, out) = cli(
        data,
        "sslconfig inbound 2 ciphers ECDHE-RSA-AES128-SHA\ncommit cbc\n",
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains(
            "Inbound SMTP: the cipher string 'ECDHE-RSA-AES128-SHA' selects no cipher usable \
             with TLS v1.2"
        ),
        "{out}"
    );
    assert_eq!(generation_files(data), ["gen-0000000001.cfg"]);
    // The same string with TLS v1.1 and v1.0 only is usable.
    let (ok, out) = cli(
        data,
        "sslconfig inbound 3-4 ciphers ECDHE-RSA-AES128-SHA\ncommit cbc\n",
    );
    assert!(ok, "{out}");
    assert!(sslconfig(data).contains("Inbound SMTP method: tlsv1_0tlsv1_1\n"));
}

#[test]
fn uncommitted_changes_are_discarded_at_the_end_of_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    let (ok, out) = cli(data, "sslconfig inbound 1-3\nsslconfig print\n");
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("{PENDING_PROMPT}sslconfig print\n")),
        "the prompt does not show the pending changes:\n{out}"
    );
    // The session sees its own pending change.
    assert!(out.contains(TLS13_INBOUND), "{out}");
    assert!(
        out.contains("Warning: uncommitted changes were discarded"),
        "{out}"
    );

    let printed = sslconfig(data);
    assert!(printed.contains(FACTORY_INBOUND), "{printed}");
    assert!(!printed.contains("(uncommitted changes)"), "{printed}");
    assert_eq!(generation_files(data), ["gen-0000000001.cfg"]);
}

#[test]
fn commit_asks_for_a_comment_and_clear_asks_to_confirm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    let (ok, out) = cli(
        data,
        "sslconfig inbound 1-3\ncommit\nenable TLS 1.3 inbound\ncommitdetail\n",
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("Please enter some comments describing your changes:"),
        "{out}"
    );
    assert!(out.contains("Changes committed:"), "{out}");
    assert!(out.contains("Comment: enable TLS 1.3 inbound\n"), "{out}");

    // `clear`, declined: the change stays pending; confirmed: it is gone.
    let (ok, out) = cli(
        data,
        "sslconfig outbound 1-2\nclear\nn\nsslconfig print\nclear\ny\nsslconfig print\n",
    );
    assert!(ok, "{out}");
    assert_eq!(
        out.matches("Are you sure you want to clear all changes since the last commit?")
            .count(),
        2,
        "{out}"
    );
    let (declined, confirmed) = out
        .split_once("Changes cleared:")
        .unwrap_or_else(|| panic!("clear did not clear:\n{out}"));
    assert!(declined.contains(TLS13_OUTBOUND), "{out}");
    assert!(
        declined.contains(&format!("{PENDING_PROMPT}sslconfig print")),
        "{out}"
    );
    assert!(confirmed.contains(FACTORY_OUTBOUND), "{out}");
    assert!(confirmed.contains(TLS13_INBOUND), "{out}");
    assert!(
        confirmed.contains(&format!("{PROMPT}sslconfig print")),
        "{out}"
    );
    assert!(!out.contains("Warning: uncommitted"), "{out}");

    let printed = sslconfig(data);
    assert!(printed.contains(FACTORY_OUTBOUND), "{printed}");
    assert_eq!(
        generation_files(data),
        ["gen-0000000001.cfg", "gen-0000000002.cfg"]
    );
}

// ---------------------------------------------------------------------------------------------
// 6.–7. Concurrent sessions and rollback

#[test]
fn two_sessions_with_pending_changes_both_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    let mut a = Session::open(data);
    let staged = a.command("sslconfig inbound 1-3", PENDING_PROMPT);
    assert!(staged.contains(TLS13_INBOUND), "{staged}");

    let (ok, out) = cli(data, "sslconfig outbound 1-2\ncommit b\n");
    assert!(ok, "{out}");
    assert!(out.contains("(configuration generation 2)"), "{out}");

    a.send("commit a");
    a.expect("(configuration generation 3)");
    let a = a.finish();
    assert!(a.ok(), "{a:?}");
    assert!(!a.stdout.contains("Warning: uncommitted"), "{a:?}");

    let printed = sslconfig(data);
    assert!(printed.contains(TLS13_INBOUND), "{printed}");
    assert!(printed.contains(TLS13_OUTBOUND), "{printed}");
}

#[test]
fn rollback_to_the_factory_generation_through_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    let (ok, out) = cli(
        data,
        "sslconfig inbound 1-3\ncommit one\nsslconfig outbound 1-2\ncommit two\n",
    );
    assert!(ok, "{out}");
    let printed = sslconfig(data);
    assert!(printed.contains(TLS13_INBOUND) && printed.contains(TLS13_OUTBOUND));

    // The choices are listed newest first without the current one: 2 is the factory.
    let (ok, out) = cli(
        data,
        "rollbackconfig\n2\ny\nsslconfig print\ncommitdetail\n",
    );
    assert!(ok, "{out}");
    let choice = out
        .lines()
        .find(|l| l.starts_with("2."))
        .unwrap_or_else(|| panic!("no choice 2 listed:\n{out}"));
    assert!(
        choice.ends_with("factory defaults") && choice.contains(" system "),
        "choice 2 is not the factory generation: {choice:?}\n{out}"
    );
    assert!(
        out.contains("Do you want to commit this configuration now?"),
        "{out}"
    );
    assert!(
        out.contains("Rolled back to generation 1: committed as generation 4."),
        "{out}"
    );
    let (_, after) = out.split_once("Rolled back").expect("checked above");
    assert!(after.contains(FACTORY_INBOUND), "{out}");
    assert!(after.contains(FACTORY_OUTBOUND), "{out}");
    assert!(
        after.contains("Comment: rollback to generation 1\n"),
        "{out}"
    );

    let printed = sslconfig(data);
    assert!(printed.contains(FACTORY_INBOUND), "{printed}");
    assert!(printed.contains(FACTORY_OUTBOUND), "{printed}");
}

// ---------------------------------------------------------------------------------------------
// 8.–9. The supervisor's lock and socket

#[test]
fn a_killed_supervisor_starts_again_with_its_committed_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let (ok, out) = cli(data, "sslconfig inbound 1-3\ncommit before the crash\n");
    assert!(ok, "{out}");
    let socket = gateway.socket();
    gateway.crash();

    // What a crash leaves behind: the socket file (nobody listens) and the lock file.
    assert!(socket.exists(), "the test needs a stale socket file");
    let stale = cli_c(data, "version");
    assert!(!stale.ok(), "{stale:?}");

    let _gateway = Gateway::start(data, &[]);
    let version = cli_c(data, "version");
    assert!(version.ok(), "{version:?}");
    assert!(
        version.stdout.contains("Configuration generation: 2\n"),
        "{version:?}"
    );
    let printed = sslconfig(data);
    assert!(printed.contains(TLS13_INBOUND), "{printed}");
    // The restart did not start over from a fresh factory generation.
    assert_eq!(
        generation_files(data),
        ["gen-0000000001.cfg", "gen-0000000002.cfg"]
    );
}

#[test]
fn a_second_supervisor_on_the_same_data_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);

    let mut second = postern(&["run"], data);
    second.args(["--hostname", HOSTNAME]);
    let done = run_to_end(second, "");
    assert!(!done.ok(), "{done:?}");
    assert!(
        done.stderr
            .contains("another Postern supervisor is running"),
        "{done:?}"
    );
    assert!(!done.stdout.contains("postern: ready"), "{done:?}");

    // The first one still serves, on the same socket.
    assert!(gateway.socket().exists());
    let version = cli_c(data, "version");
    assert!(version.ok(), "{version:?}");
}

// ---------------------------------------------------------------------------------------------
// 10. A full disk

#[test]
fn a_commit_on_a_full_disk_fails_and_succeeds_once_there_is_room() {
    let tmpfs = Tmpfs::mount("256k");
    let data = tmpfs.path();
    let gateway = Gateway::start(data, &[]);

    let mut session = Session::open(data);
    session.expect(PROMPT);
    let staged = session.command("sslconfig inbound 1-3", PENDING_PROMPT);
    assert!(staged.contains(TLS13_INBOUND), "{staged}");

    let filler = data.join("fill");
    fill(&filler);
    let refusal = session.command("commit x", PENDING_PROMPT);
    assert!(
        refusal.contains("The changes were not committed")
            && (refusal.contains("No space left") || refusal.contains("could not be saved")),
        "{refusal}"
    );
    assert!(!refusal.contains("Changes committed"), "{refusal}");

    // The session goes on with its change pending; the committed configuration is unchanged.
    let pending = session.command("sslconfig print", PENDING_PROMPT);
    assert!(pending.contains(TLS13_INBOUND), "{pending}");
    let printed = sslconfig(data);
    assert!(printed.contains(FACTORY_INBOUND), "{printed}");
    assert_eq!(generation_files(data), ["gen-0000000001.cfg"]);

    fs::remove_file(&filler).expect("removing the fill file");
    let landed = session.command("commit x", PROMPT);
    assert!(landed.contains("Changes committed:"), "{landed}");
    assert!(landed.contains("(configuration generation 2)"), "{landed}");
    let done = session.finish();
    // The failed commit counts as a failed command.
    assert!(!done.ok(), "{done:?}");

    let printed = sslconfig(data);
    assert!(printed.contains(TLS13_INBOUND), "{printed}");
    assert_eq!(
        generation_files(data),
        ["gen-0000000001.cfg", "gen-0000000002.cfg"]
    );
    // Stop the gateway before the tmpfs is unmounted.
    drop(gateway);
    drop(tmpfs);
}

// ---------------------------------------------------------------------------------------------
// 11.–12. One-command mode, no gateway, orderly stop

#[test]
fn one_command_mode_and_a_missing_gateway() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);

    let version = cli_c(data, "version");
    assert!(version.ok(), "{version:?}");
    assert!(version.stdout.contains("Version:"), "{version:?}");
    assert!(
        version.stdout.contains(&format!("Hostname: {HOSTNAME}\n")),
        "{version:?}"
    );

    let unknown = cli_c(data, "nosuchcommand");
    assert!(!unknown.ok(), "{unknown:?}");
    assert!(unknown.stdout.contains("Unknown command"), "{unknown:?}");
    drop(gateway);

    let nobody = tempfile::tempdir().expect("tempdir");
    let done = cli_c(nobody.path(), "version");
    assert!(!done.ok(), "{done:?}");
    assert!(done.stderr.contains("is Postern running?"), "{done:?}");
}

#[test]
fn sigterm_stops_the_supervisor_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let socket = gateway.socket();
    assert!(socket.exists());

    let (status, took) = gateway.terminate();
    assert!(status.success(), "postern run exited with {status}");
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    assert!(!socket.exists(), "the control socket was left behind");

    let log_path = Subscription::SystemLogs.current_path(data);
    let log =
        fs::read_to_string(&log_path).unwrap_or_else(|e| panic!("{}: {e}", log_path.display()));
    assert!(log.contains("Postern supervisor stopped"), "{log}");
}

// ---------------------------------------------------------------------------------------------
// 13.–17. Mail flow commands: listenerconfig, smtproutes, destconfig

/// The line of `text` that starts with `start` (after any indentation).
fn line_starting<'a>(text: &'a str, start: &str) -> Option<&'a str> {
    text.lines().find(|l| l.trim_start().starts_with(start))
}

/// Whether `text` has a line whose words are `words`, whatever the spaces between them.
fn has_row(text: &str, words: &[&str]) -> bool {
    text.lines()
        .any(|l| l.split_whitespace().eq(words.iter().copied()))
}

/// Runs `stdin` in a session that must fail (a refused command) and print `message`; nothing
/// is committed.
fn refused(data: &Path, stdin: &str, message: &str) {
    let (ok, out) = cli(data, stdin);
    assert!(!ok, "{stdin:?} was not refused:\n{out}");
    assert!(
        out.contains(message),
        "{stdin:?} did not say {message:?}:\n{out}"
    );
    assert!(!out.contains("Changes committed"), "{out}");
}

#[test]
fn listenerconfig_changes_through_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    let (ok, out) = cli(
        data,
        "listenerconfig rcptaccess new example.test accept\n\
         listenerconfig rcptaccess new .example.test reject IncomingMail\n\
         listenerconfig tls required\n\
         listenerconfig limits max-message-size 10M\n\
         listenerconfig limits max-recipients 50 IncomingMail\n\
         commit rat\n",
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("IncomingMail: example.test Accept added to the Recipient Access Table."),
        "{out}"
    );
    assert!(out.contains("(configuration generation 2)"), "{out}");

    // A new session sees what was committed.
    let (ok, printed) = cli(
        data,
        "listenerconfig print\nlistenerconfig rcptaccess print\n",
    );
    assert!(ok, "{printed}");
    assert!(printed.contains("Name: IncomingMail\n"), "{printed}");
    assert!(
        line_starting(&printed, "Address: 127.0.0.1:").is_some(),
        "{printed}"
    );
    assert!(
        printed.contains("Allow encrypted TLS connections: Required\n"),
        "{printed}"
    );
    assert!(has_row(&printed, &["example.test", "Accept"]), "{printed}");
    assert!(has_row(&printed, &[".example.test", "Reject"]), "{printed}");
    assert!(
        printed.contains("Mail for any other domain is refused."),
        "{printed}"
    );
    let size = line_starting(&printed, "Maximum message size (max-message-size):")
        .unwrap_or_else(|| panic!("no message size:\n{printed}"));
    assert!(size.ends_with(" 10M"), "{size}");
    let recipients = line_starting(&printed, "Maximum recipients per message")
        .unwrap_or_else(|| panic!("no recipients limit:\n{printed}"));
    assert!(recipients.ends_with(" 50"), "{recipients}");
    assert!(
        printed.contains("Recipient Access Table of IncomingMail (2 entries):"),
        "{printed}"
    );

    // The journal names the settings.
    let (ok, detail) = cli(data, "commitdetail\n");
    assert!(ok, "{detail}");
    assert!(
        detail.contains("listeners.smtp.IncomingMail.recipient_access.example.test: added"),
        "{detail}"
    );

    // Delete and edit, then the whole RAT again.
    let (ok, out) = cli(
        data,
        "listenerconfig rcptaccess delete .EXAMPLE.test\n\
         listenerconfig rcptaccess edit example.test reject\n\
         commit again\nlistenerconfig rcptaccess print\n",
    );
    assert!(ok, "{out}");
    let (_, after) = out.split_once("Changes committed").expect("committed");
    assert!(has_row(after, &["example.test", "Reject"]), "{out}");
    assert!(!after.contains(".example.test"), "{out}");
}

#[test]
fn listenerconfig_refuses_bad_input_and_says_what_is_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    refused(
        data,
        "listenerconfig tls maybe\ncommit x\n",
        "'maybe' is not one of no, preferred or required.",
    );
    refused(
        data,
        "listenerconfig rcptaccess new *.example.test accept\n",
        "'*.example.test' is not a domain: use a name like example.com, .example.com for its \
         subdomains, or ALL.",
    );
    refused(
        data,
        "listenerconfig rcptaccess new example.test allow\n",
        "'allow' is not one of accept or reject.",
    );
    refused(
        data,
        "listenerconfig rcptaccess delete example.test\n",
        "The Recipient Access Table of IncomingMail has no entry for example.test.",
    );
    refused(
        data,
        "listenerconfig tls required Outgoing\n",
        "There is no SMTP listener 'Outgoing'; the listeners are: IncomingMail.",
    );
    refused(
        data,
        "listenerconfig limits max-connections 0\n",
        "'0' is not a number from 1 to 1000000.",
    );
    refused(
        data,
        "listenerconfig limits max-message-size 20\n",
        "is not a message size from 64k to 1024M",
    );
    refused(
        data,
        "listenerconfig frobnicate\n",
        "'frobnicate' is not a listenerconfig operation. Usage:\n  listenerconfig\n",
    );
    // A refused line in a script does not stop the lines after it.
    let (ok, out) = cli(
        data,
        "listenerconfig rcptaccess new example.test maybe\n\
         listenerconfig rcptaccess new example.test accept\nlistenerconfig rcptaccess print\n",
    );
    assert!(!ok, "{out}");
    assert!(has_row(&out, &["example.test", "Accept"]), "{out}");
    assert!(out.contains("Warning: uncommitted changes"), "{out}");
    assert_eq!(generation_files(data), ["gen-0000000001.cfg"]);

    let help = cli_c(data, "help listenerconfig");
    assert!(help.ok(), "{help:?}");
    assert!(
        help.stdout.contains(
            "  listenerconfig rcptaccess new <domain|.domain|ALL> <accept|reject> [listener]\n"
        ),
        "{help:?}"
    );
}

#[test]
fn smtproutes_through_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    let (ok, out) = cli(data, "smtproutes print\n");
    assert!(ok, "{out}");
    assert!(out.contains("There are no routes configured."), "{out}");

    let (ok, out) = cli(
        data,
        "smtproutes new example.test 127.0.0.1:2526\n\
         smtproutes new ALL relay1.example.net, [::1]:2527\ncommit r\n",
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("Mail for example.test will be delivered to 127.0.0.1:2526."),
        "{out}"
    );
    let (ok, printed) = cli(data, "smtproutes print\n");
    assert!(ok, "{printed}");
    assert!(has_row(&printed, &["Domain", "Destinations"]), "{printed}");
    assert!(
        has_row(&printed, &["example.test", "127.0.0.1:2526"]),
        "{printed}"
    );
    assert!(
        has_row(&printed, &["ALL", "relay1.example.net:25,", "[::1]:2527"]),
        "{printed}"
    );

    refused(
        data,
        "smtproutes new example.test 127.0.0.1:2528\n",
        "There is already a route for example.test; change it with 'smtproutes edit'.",
    );
    refused(
        data,
        "smtproutes new other.test mx.other.test:0\n",
        "'mx.other.test:0' is not a host: use a name or address with an optional port",
    );
    refused(
        data,
        "smtproutes delete other.test\n",
        "There is no route for other.test.",
    );
    refused(
        data,
        "smtproutes edit other.test mx.other.test\n",
        "There is no route for other.test; add one with 'smtproutes new'.",
    );

    let (ok, out) = cli(
        data,
        "smtproutes edit example.test 127.0.0.1:2529,127.0.0.2\nsmtproutes delete ALL\n\
         commit e\nsmtproutes print\n",
    );
    assert!(ok, "{out}");
    let (_, after) = out.split_once("Changes committed").expect("committed");
    assert!(
        has_row(after, &["example.test", "127.0.0.1:2529,", "127.0.0.2:25"]),
        "{out}"
    );
    assert!(
        after.contains("Mail for any other domain is delivered to its MX hosts."),
        "{out}"
    );

    let (ok, out) = cli(data, "smtproutes clear\ncommit c\nsmtproutes print\n");
    assert!(ok, "{out}");
    assert!(out.contains("1 route removed."), "{out}");
    assert!(out.contains("There are no routes configured."), "{out}");
}

#[test]
fn destconfig_through_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    let (ok, out) = cli(
        data,
        "destconfig new example.test tls required-verify concurrency 5\ncommit d\n",
    );
    assert!(ok, "{out}");
    let (ok, printed) = cli(data, "destconfig print\n");
    assert!(ok, "{printed}");
    assert!(
        has_row(
            &printed,
            &["Domain", "TLS", "Setting", "Max", "Concurrency"]
        ),
        "{printed}"
    );
    assert!(
        has_row(&printed, &["example.test", "Required", "-", "Verify", "5"]),
        "{printed}"
    );
    assert!(
        has_row(&printed, &["ALL", "(Default)", "Preferred", "20"]),
        "{printed}"
    );

    // What `new` does not set comes from the default; `edit` keeps what it does not set.
    let (ok, out) = cli(
        data,
        "destconfig edit ALL tls no concurrency 30\ndestconfig new other.test concurrency 2\n\
         destconfig edit example.test tls preferred-verify\ncommit e\ndestconfig print\n",
    );
    assert!(ok, "{out}");
    let (_, after) = out.split_once("Changes committed").expect("committed");
    assert!(has_row(after, &["other.test", "No", "2"]), "{out}");
    assert!(
        has_row(after, &["example.test", "Preferred", "-", "Verify", "5"]),
        "{out}"
    );
    assert!(has_row(after, &["ALL", "(Default)", "No", "30"]), "{out}");

    refused(
        data,
        "destconfig delete ALL\n",
        "ALL cannot be deleted: it is the default that applies to every domain without an \
         entry of its own.",
    );
    refused(
        data,
        "destconfig new example.test tls required\n",
        "There is already an entry for example.test; change it with 'destconfig edit'.",
    );
    refused(
        data,
        "destconfig new third.test tls sometimes\n",
        "'sometimes' is not one of no, preferred, required, preferred-verify or required-verify.",
    );
    refused(
        data,
        "destconfig new third.test concurrency 5000\n",
        "'5000' is not a number from 1 to 1000.",
    );
    refused(
        data,
        "destconfig delete third.test\n",
        "third.test was not found in the destination table.",
    );

    let (ok, out) = cli(
        data,
        "destconfig delete other.test\ncommit x\ndestconfig print\n",
    );
    assert!(ok, "{out}");
    let (_, after) = out.split_once("Changes committed").expect("committed");
    assert!(!after.contains("other.test"), "{out}");
}

#[test]
fn the_mail_flow_dialogs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    // Each menu comes back after an operation; Enter on its `[]>` goes back up.
    let (ok, out) = cli(
        data,
        "listenerconfig\nEDIT\n\nRCPTACCESS\nNEW\nexample.test\n\nPRINT\n\nTLS\n3\n\n\n\
         smtproutes\nnew\nexample.test\nmx1.example.test, 127.0.0.1:2526\n\n\
         destconfig\nNEW\nexample.test\n0\n5\nrequired-verify\n\n\
         commit dialogs\n",
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("Choose the operation you want to perform:\n- EDIT - Modify a listener.\n"),
        "{out}"
    );
    assert!(
        out.contains("- RCPTACCESS - Modify the Recipient Access Table.\n"),
        "{out}"
    );
    assert!(
        out.contains("Select the action to apply to this domain:\n1. Accept\n2. Reject\n[1]> \n"),
        "{out}"
    );
    assert!(
        out.contains(
            "Would you like to allow encrypted TLS connections?\n1. No\n2. Preferred\n\
             3. Required\n[2]> 3\n"
        ),
        "{out}"
    );
    assert!(out.contains("- NEW - Create a new route.\n"), "{out}");
    assert!(
        out.contains(
            "Enter the max concurrency limit for \"example.test\" (1 to 1000).\n[20]> 0\n"
        ),
        "{out}"
    );
    // A wrong answer is asked again.
    assert!(out.contains("'0' is not a number from 1 to 1000."), "{out}");
    assert!(
        out.contains("5. Required - Verify\n[2]> required-verify\n"),
        "{out}"
    );
    assert!(out.contains("Changes committed"), "{out}");

    let (ok, printed) = cli(
        data,
        "listenerconfig print\nsmtproutes print\ndestconfig print\n",
    );
    assert!(ok, "{printed}");
    assert!(has_row(&printed, &["example.test", "Accept"]), "{printed}");
    assert!(
        printed.contains("Allow encrypted TLS connections: Required\n"),
        "{printed}"
    );
    assert!(
        has_row(
            &printed,
            &["example.test", "mx1.example.test:25,", "127.0.0.1:2526"]
        ),
        "{printed}"
    );
    assert!(
        has_row(&printed, &["example.test", "Required", "-", "Verify", "5"]),
        "{printed}"
    );
}

#[test]
fn a_rat_entry_lets_mail_in_for_its_domain_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    let (ok, out) = cli(
        data,
        "listenerconfig rcptaccess new example.test accept\ncommit rat\nlistenerconfig print\n",
    );
    assert!(ok, "{out}");
    let address = line_starting(&out, "Address: ")
        .and_then(|l| l.trim().strip_prefix("Address: "))
        .unwrap_or_else(|| panic!("no listener address:\n{out}"))
        .to_owned();

    // The service applies a commit to the connections after it has seen it: until then the
    // old table refuses the domain.
    let deadline = Instant::now() + TIMEOUT;
    let mut smtp = loop {
        let (mut smtp, greeting) = SmtpClient::connect(&address);
        assert!(greeting.starts_with("220 "), "{greeting}");
        let ehlo = smtp.command("EHLO client.example.net");
        assert!(ehlo.starts_with("250"), "{ehlo}");
        let mail = smtp.command("MAIL FROM:<sender@example.net>");
        assert!(mail.starts_with("250 "), "{mail}");
        let rcpt = smtp.command("RCPT TO:<user@example.test>");
        if rcpt.starts_with("250 ") {
            break smtp;
        }
        assert!(rcpt.starts_with("550 5.7.1 "), "{rcpt}");
        assert!(
            Instant::now() < deadline,
            "the RAT entry was not applied within {TIMEOUT:?}: {rcpt}"
        );
        let _ = smtp.command("QUIT");
        thread::sleep(POLL);
    };
    let other = smtp.command("RCPT TO:<user@other.test>");
    assert!(other.starts_with("550 5.7.1 "), "{other}");
    let data_reply = smtp.command("DATA");
    assert!(data_reply.starts_with("354 "), "{data_reply}");
    let queued = smtp.command(
        "From: <sender@example.net>\r\nTo: <user@example.test>\r\nSubject: RAT\r\n\r\nHello.\r\n.",
    );
    assert!(queued.starts_with("250 "), "{queued}");
    let bye = smtp.command("QUIT");
    assert!(bye.starts_with("221 "), "{bye}");

    let log_path = Subscription::MailLogs.current_path(data);
    let deadline = Instant::now() + TIMEOUT;
    let log = loop {
        let log = fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains(" queued for delivery") || Instant::now() >= deadline {
            break log;
        }
        thread::sleep(POLL);
    };
    let queued_line = log
        .lines()
        .find(|l| l.contains(" queued for delivery"))
        .unwrap_or_else(|| panic!("{} has no queued message:\n{log}", log_path.display()));
    let mid = queued_line
        .split_once("MID ")
        .and_then(|(_, rest)| rest.strip_suffix(" queued for delivery"))
        .unwrap_or_else(|| panic!("not a queued line: {queued_line}"));
    assert!(
        !mid.is_empty() && mid.bytes().all(|b| b.is_ascii_digit()),
        "{queued_line}"
    );
    // Its one recipient is the accepted one; the refused one never became a recipient.
    assert!(
        log.lines().any(|l| l.contains(&format!("MID {mid} ICID "))
            && l.ends_with(" RID 0 To: <user@example.test>")),
        "{log}"
    );
    assert!(!log.contains("To: <user@other.test>"), "{log}");
}
