//! The CLI at a real terminal: `postern cli` under `script` (util-linux), which gives it a
//! pseudo-terminal as the console and the serial line do, so that Ctrl-C is the terminal's
//! SIGINT and the window size is the terminal's.

use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod common;

use common::{Captured, Gateway, POSTERN, TIMEOUT, cli, cli_c, wait_or_kill};

const PROMPT: &str = "mail.example.com> ";
const PENDING_PROMPT: &str = "mail.example.com (uncommitted changes)> ";
const CTRL_C: &str = "\x03";
const CTRL_D: &str = "\x04";
const MORE: &str = "-Press Any Key For More-";

/// `postern cli` on a pseudo-terminal of `rows` lines. What it prints comes back with the
/// terminal's line endings (`\r\n`) and the terminal's echo of what is typed.
struct Terminal {
    child: Child,
    input: Option<ChildStdin>,
    output: Captured,
    drain: Option<JoinHandle<()>>,
    /// Output before this byte has been matched by `expect` already.
    seen: usize,
}

impl Terminal {
    fn open(data: &Path, rows: u16) -> Self {
        let command = format!(
            "stty rows {rows} cols 100 && exec '{POSTERN}' cli --data '{}'",
            data.display()
        );
        let mut child = Command::new("script")
            .args(["--quiet", "--return", "--command", &command, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning script (util-linux)");
        let input = child.stdin.take();
        let (output, drain) = Captured::drain(child.stdout.take().expect("stdout"));
        Self {
            child,
            input,
            output,
            drain: Some(drain),
            seen: 0,
        }
    }

    /// Types `keys` (a line needs its `\n`).
    fn type_keys(&mut self, keys: &str) {
        let input = self.input.as_mut().expect("the terminal is open");
        input.write_all(keys.as_bytes()).expect("typing");
        input.flush().expect("typing");
    }

    /// Waits until the output after what was expected before shows `text` (`\n` as the
    /// terminal's `\r\n`); returns the output up to its end, with `\n` line endings.
    fn expect(&mut self, text: &str) -> String {
        let needle = text.replace('\n', "\r\n");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(end) =
                self.output
                    .find_after(self.seen, &needle, Duration::from_millis(100))
            {
                let shown = self.output.slice(self.seen, end);
                self.seen = end;
                return shown.replace("\r\n", "\n");
            }
            let exited = self.child.try_wait().expect("try_wait");
            if exited.is_some() || Instant::now() >= deadline {
                panic!(
                    "the CLI did not print {text:?} (exited: {exited:?}); after what was \
                     expected before it printed:\n{}",
                    self.output.slice(self.seen, usize::MAX)
                );
            }
        }
    }

    /// Waits for the session to end by itself; its exit status and the output not expected yet.
    fn wait_end(mut self) -> (std::process::ExitStatus, String) {
        let output = self.output.clone();
        let status = wait_or_kill(&mut self.child, "postern cli under script", || {
            output.text()
        });
        drop(self.input.take());
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        let rest = self
            .output
            .slice(self.seen, usize::MAX)
            .replace("\r\n", "\n");
        (status, rest)
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ctrl-C leaves a dialog and drops what was changed in it (what was pending before it stays),
/// gives a new prompt at the command prompt, and never ends the session; Ctrl-D does.
#[test]
fn ctrl_c_leaves_a_dialog_without_its_changes_and_never_ends_the_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);
    let mut terminal = Terminal::open(data, 50);
    terminal.expect(PROMPT);

    // At the command prompt: the half-typed line is dropped and a new prompt given.
    terminal.type_keys("sslconfig inb");
    terminal.type_keys(CTRL_C);
    terminal.expect(PROMPT);
    terminal.type_keys("version\n");
    let version = terminal.expect(PROMPT);
    assert!(!version.contains("Unknown command"), "{version}");

    // A change pending before the dialog.
    terminal.type_keys("sslconfig inbound 1-3\n");
    terminal.expect(PENDING_PROMPT);

    // The dialog stages OUTBOUND 1-2, then is left with Ctrl-C at its menu.
    terminal.type_keys("sslconfig\n");
    terminal.expect("- VERIFY - Verify and show ssl cipher list.\n[]> ");
    terminal.type_keys("OUTBOUND\n");
    terminal.expect("[2-3]> ");
    terminal.type_keys("1-2\n");
    terminal.expect("Enter the outbound SMTP ssl cipher you want to use.\n");
    terminal.expect("]> ");
    terminal.type_keys("\n");
    terminal.expect("Outbound SMTP method: tlsv1_2tlsv1_3\n");
    terminal.expect("[]> ");
    terminal.type_keys(CTRL_C);
    terminal.expect("Interrupted: sslconfig was left; the changes made in it were dropped.\n");
    terminal.expect(PENDING_PROMPT);

    terminal.type_keys("sslconfig print\n");
    let printed = terminal.expect(PENDING_PROMPT);
    assert!(
        printed.contains("Inbound SMTP method: tlsv1_1tlsv1_2tlsv1_3\n"),
        "{printed}"
    );
    assert!(
        printed.contains("Outbound SMTP method: tlsv1_1tlsv1_2\n"),
        "{printed}"
    );

    // Ctrl-C at a question of `commit` commits nothing; the pending change stays pending.
    terminal.type_keys("commit\n");
    // Each Ctrl-C waits for its prompt: one pressed before a question shows is not for it.
    terminal.expect("Please enter some comments describing your changes:\n[]> ");
    terminal.type_keys(CTRL_C);
    terminal.expect("Interrupted: commit was left; nothing was changed.\n");
    terminal.expect(PENDING_PROMPT);
    terminal.type_keys(CTRL_C);
    terminal.expect(PENDING_PROMPT);

    // At a password question (not echoed): left, and the terminal echoes again after it.
    terminal.type_keys("passwd\n");
    terminal.expect("Old password: ");
    terminal.type_keys("secret-typed");
    terminal.type_keys(CTRL_C);
    let left = terminal.expect("Interrupted: passwd was left; nothing was changed.\n");
    assert!(!left.contains("secret-typed"), "{left}");
    terminal.expect(PENDING_PROMPT);
    terminal.type_keys("version\n");
    terminal.expect("version\n");
    terminal.expect(PENDING_PROMPT);

    // Ctrl-D at the prompt ends the session, discarding what is pending, as before.
    terminal.type_keys(CTRL_D);
    let (status, rest) = terminal.wait_end();
    assert!(
        rest.contains("Warning: uncommitted changes were discarded at the end of the session."),
        "{status}: {rest}"
    );
    let committed = cli_c(data, "sslconfig print");
    assert!(
        committed
            .stdout
            .contains("Inbound SMTP method: tlsv1_1tlsv1_2\n")
            && committed
                .stdout
                .contains("Outbound SMTP method: tlsv1_1tlsv1_2\n"),
        "{committed:?}"
    );
}

/// Long output waits for a key after each screenful of a terminal, with the line typed on top;
/// `q` stops the listing and the session goes on. Output that fits, or that goes to a script,
/// is never held up.
#[test]
fn long_output_pages_on_a_terminal_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let _gateway = Gateway::start(data, &[]);

    // 10 rows: the line typed, 8 lines, the question; then 9 lines and the question.
    let mut terminal = Terminal::open(data, 10);
    terminal.expect(PROMPT);
    terminal.type_keys("help\n");
    let first = terminal.expect(MORE);
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines.len(), 10, "{first}");
    assert_eq!(lines[1], "Commands:", "{first}");
    assert!(lines[8].starts_with("findevent "), "{first}");
    terminal.type_keys(" ");
    let second = terminal.expect(MORE);
    // The question was wiped (`\r`, spaces, `\r`); 9 lines, then the question again.
    let lines: Vec<&str> = second.lines().collect();
    assert_eq!(lines.len(), 10, "{second}");
    assert!(
        lines[0].ends_with(
            "\rgrep            Show the lines of a log that match a regular expression."
        ),
        "{second}"
    );
    assert!(lines[8].starts_with("smtproutes "), "{second}");
    assert!(!second.contains("sslconfig "), "{second}");
    terminal.type_keys("q");
    let rest = terminal.expect(PROMPT);
    assert!(
        !rest.contains("tail ") && !rest.contains("version "),
        "{rest}"
    );
    terminal.type_keys("version\n");
    let version = terminal.expect(PROMPT);
    assert!(version.contains("Postern"), "{version}");
    assert!(!version.contains(MORE), "{version}");

    // A terminal tall enough: no question.
    let mut tall = Terminal::open(data, 60);
    tall.expect(PROMPT);
    tall.type_keys("help\n");
    let all = tall.expect(PROMPT);
    assert!(all.contains("version ") && !all.contains(MORE), "{all}");

    // A script is never held up.
    let (ok, out) = cli(data, "help\nhelp\nhelp\n");
    assert!(ok, "{out}");
    assert!(out.contains("version ") && !out.contains(MORE), "{out}");
}
