//! What the integration tests share: the real `postern` binary as `postern run` (the
//! [`Gateway`]) and as `postern cli` sessions fed through stdin; a real browser ([`browser`]).

#![allow(dead_code)]

pub(crate) mod browser;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub(crate) const POSTERN: &str = env!("CARGO_BIN_EXE_postern");
pub(crate) const HOSTNAME: &str = "mail.example.com";
/// How long `postern run` may take to print `postern: ready`.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long any other child may take to do what a test waits for.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(20);
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// Everything a child wrote on one pipe so far, collected by a thread.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<(Mutex<Vec<u8>>, Condvar)>);

impl Captured {
    pub(crate) fn drain(mut pipe: impl Read + Send + 'static) -> (Self, JoinHandle<()>) {
        let captured = Self::default();
        let shared = captured.clone();
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let (bytes, changed) = &*shared.0;
                        bytes
                            .lock()
                            .expect("capture lock")
                            .extend_from_slice(&buf[..n]);
                        changed.notify_all();
                    }
                }
            }
        });
        (captured, thread)
    }

    pub(crate) fn text(&self) -> String {
        self.slice(0, usize::MAX)
    }

    /// The output between bytes `from` and `to` (clamped to what there is).
    pub(crate) fn slice(&self, from: usize, to: usize) -> String {
        let bytes = self.0.0.lock().expect("capture lock");
        let to = to.min(bytes.len());
        String::from_utf8_lossy(bytes.get(from.min(to)..to).unwrap_or_default()).into_owned()
    }

    /// Waits up to `wait` for `needle` to appear at or after byte `from`; its end if it did.
    pub(crate) fn find_after(&self, from: usize, needle: &str, wait: Duration) -> Option<usize> {
        let (bytes, changed) = &*self.0;
        let deadline = Instant::now() + wait;
        let mut guard = bytes.lock().expect("capture lock");
        loop {
            let found = guard
                .get(from..)
                .and_then(|rest| find(rest, needle.as_bytes()))
                .map(|i| from + i + needle.len());
            if found.is_some() {
                return found;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            guard = changed.wait_timeout(guard, left).expect("capture lock").0;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Waits for `child` to exit, killing it and panicking after `TIMEOUT`.
pub(crate) fn wait_or_kill(
    child: &mut Child,
    what: &str,
    output: impl Fn() -> String,
) -> ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not exit within {TIMEOUT:?}; output so far:\n{}",
                output()
            );
        }
        thread::sleep(POLL);
    }
}

/// A finished child process.
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Finished {
    pub(crate) fn ok(&self) -> bool {
        self.status.success()
    }
}

impl std::fmt::Debug for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `command` to completion with `stdin` as its input (within `TIMEOUT`).
pub(crate) fn run_to_end(mut command: Command, stdin: &str) -> Finished {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning postern");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_owned();
    // A child that stops reading (or exits early) must not block the test on a full pipe.
    let writer = thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let (out, out_thread) = Captured::drain(child.stdout.take().expect("stdout"));
    let (err, err_thread) = Captured::drain(child.stderr.take().expect("stderr"));
    let status = wait_or_kill(&mut child, &format!("{command:?}"), || {
        format!("{}\n--- stderr ---\n{}", out.text(), err.text())
    });
    let _ = writer.join();
    let _ = out_thread.join();
    let _ = err_thread.join();
    Finished {
        status,
        stdout: out.text(),
        stderr: err.text(),
    }
}

pub(crate) fn postern(args: &[&str], data: &Path) -> Command {
    let mut command = Command::new(POSTERN);
    command.args(args).arg("--data").arg(data);
    command
}

/// `postern cli --data DATA` with `stdin` as its input: whether it succeeded, and its stdout.
pub(crate) fn cli(data: &Path, stdin: &str) -> (bool, String) {
    let done = run_to_end(postern(&["cli"], data), stdin);
    (done.ok(), done.stdout)
}

/// `postern cli --data DATA -c COMMAND`.
pub(crate) fn cli_c(data: &Path, command: &str) -> Finished {
    let mut cmd = postern(&["cli"], data);
    cmd.args(["-c", command]);
    run_to_end(cmd, "")
}

/// The mail_logs text once a line satisfies `wanted`: the services write their lines after the
/// peer has seen the reply, so a test polls rather than reading once.
pub(crate) fn wait_mail_log(data: &Path, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let log =
            std::fs::read_to_string(data.join("logs/mail_logs/mail.current")).unwrap_or_default();
        if log.lines().any(&wanted) {
            return log;
        }
        assert!(Instant::now() < deadline, "mail_logs lacks the line: {log}");
        thread::sleep(POLL);
    }
}

/// A loopback port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` different loopback ports nothing listens on right now: the probes are held until all
/// are chosen, or the kernel could hand the same port out twice.
pub(crate) fn free_ports<const N: usize>() -> [u16; N] {
    let probes: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("binding a probe"))
        .collect();
    std::array::from_fn(|i| probes[i].local_addr().expect("probe address").port())
}

/// A running `postern run`; killed (SIGKILL) when dropped.
pub(crate) struct Gateway {
    pub(crate) child: Child,
    pub(crate) stderr: Captured,
    pub(crate) data: PathBuf,
    /// The SMTP port given at start (the listener's, when this start made the data directory).
    pub(crate) smtp: u16,
    /// The Classic UI and the NGUI + REST API ports given at start (likewise).
    pub(crate) gui: u16,
    pub(crate) ngui: u16,
}

impl Gateway {
    /// Starts `postern run --data DATA --hostname mail.example.com EXTRA...` and waits for
    /// `postern: ready`.
    pub(crate) fn start(data: &Path, extra: &[&str]) -> Self {
        // Tests run in parallel: each gateway gets its own SMTP port (used on first start).
        let [smtp, gui, ngui] = free_ports::<3>();
        let mut child = postern(&["run"], data)
            .args(["--hostname", HOSTNAME])
            .args(["--smtp", &format!("127.0.0.1:{smtp}")])
            .args(["--gui", &format!("127.0.0.1:{gui}")])
            .args(["--ngui", &format!("127.0.0.1:{ngui}")])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning postern run");
        let (stdout, _) = Captured::drain(child.stdout.take().expect("stdout"));
        let (stderr, _) = Captured::drain(child.stderr.take().expect("stderr"));
        let mut gateway = Self {
            child,
            stderr,
            data: data.to_owned(),
            smtp,
            gui,
            ngui,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if stdout
                .find_after(0, "postern: ready\n", Duration::from_millis(100))
                .is_some()
            {
                return gateway;
            }
            if let Some(status) = gateway.child.try_wait().expect("try_wait") {
                panic!(
                    "postern run exited ({status}) before it was ready:\n{}{}",
                    stdout.text(),
                    gateway.stderr.text()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "postern run was not ready within {READY_TIMEOUT:?}:\n{}{}",
                    stdout.text(),
                    gateway.stderr.text()
                );
            }
        }
    }

    /// The admin password of a data directory this gateway made without `--admin-password-file`.
    pub(crate) fn admin_password(&self) -> String {
        let text = std::fs::read_to_string(self.data.join("initial-admin-password"))
            .expect("DATA/initial-admin-password");
        text.trim_end().to_owned()
    }

    pub(crate) fn socket(&self) -> PathBuf {
        postern_control::socket_path(&self.data)
    }

    pub(crate) fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        kill(Pid::from_raw(pid), signal).expect("signalling postern run");
    }

    /// SIGKILL, as a crash would; returns once the process is gone.
    pub(crate) fn crash(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
    }

    /// SIGTERM, then waits for it to exit on its own.
    pub(crate) fn terminate(mut self) -> (ExitStatus, Duration) {
        let started = Instant::now();
        self.signal(Signal::SIGTERM);
        let stderr = self.stderr.clone();
        let status = wait_or_kill(&mut self.child, "postern run after SIGTERM", || {
            stderr.text()
        });
        (status, started.elapsed())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal SMTP client for the tests: one command, one (possibly multi-line) reply.
pub(crate) struct SmtpClient {
    reader: std::io::BufReader<std::net::TcpStream>,
    writer: std::net::TcpStream,
}

impl SmtpClient {
    /// Connects and reads the greeting.
    pub(crate) fn connect(address: &str) -> (Self, String) {
        let stream = std::net::TcpStream::connect(address)
            .unwrap_or_else(|e| panic!("connecting to {address}: {e}"));
        stream
            .set_read_timeout(Some(TIMEOUT))
            .expect("read timeout");
        let writer = stream.try_clone().expect("cloning the stream");
        let mut client = Self {
            reader: std::io::BufReader::new(stream),
            writer,
        };
        let greeting = client.reply();
        (client, greeting)
    }

    /// The next reply, all its lines.
    pub(crate) fn reply(&mut self) -> String {
        use std::io::BufRead;
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("reading a reply");
            assert!(n > 0, "the server closed the connection; so far: {reply:?}");
            reply.push_str(&line);
            // `250-...` goes on, `250 ...` is the last line.
            if line.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    }

    pub(crate) fn command(&mut self, line: &str) -> String {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("sending a command");
        self.reply()
    }
}

/// Sends one message from `sender` to `recipient` on a connection of its own; answers whether
/// the recipient was accepted (the RAT entry may not be applied yet).
pub(crate) fn send_mail(port: u16, sender: &str, recipient: &str) -> bool {
    let (mut smtp, greeting) = SmtpClient::connect(&format!("127.0.0.1:{port}"));
    assert!(greeting.starts_with("220 "), "{greeting}");
    assert!(smtp.command("EHLO client.example.net").starts_with("250"));
    let mail = smtp.command(&format!("MAIL FROM:<{sender}>"));
    assert!(mail.starts_with("250 "), "{mail}");
    let rcpt = smtp.command(&format!("RCPT TO:<{recipient}>"));
    if !rcpt.starts_with("250 ") {
        assert!(rcpt.starts_with("550 5.7.1 "), "{rcpt}");
        let _ = smtp.command("QUIT");
        return false;
    }
    assert!(smtp.command("DATA").starts_with("354 "));
    let queued = smtp.command(&format!(
        "From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: logs\r\n\r\nHello.\r\n."
    ));
    assert!(queued.starts_with("250 "), "{queued}");
    assert!(smtp.command("QUIT").starts_with("221 "));
    true
}

/// The protocol `openssl s_client -starttls smtp` negotiates with the gateway, or `failed`.
pub(crate) fn starttls_protocol(port: u16, extra: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-starttls", "smtp", "-brief", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client (Debian package openssl)");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Protocol version: "))
        .map_or_else(|| "failed".to_owned(), |v| v.trim().to_owned())
}
