//! Durability end to end: every message that got `250` is delivered, whatever is killed when.
//!
//! Each test runs the real gateway (`postern run`) on a fresh data directory, with the Recipient
//! Access Table open for `example.test` and an SMTP route sending that domain to a test sink in
//! this process. Clients send numbered messages (`X-Test-Id: <n>`) and note which got `250` to
//! the final dot; the sink notes which arrived, how many times.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Gateway, POLL, TIMEOUT, cli, cli_c};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use postern_logs::Subscription;

/// The domain the RAT accepts and the route sends to the sink.
const DOMAIN: &str = "example.test";
/// Messages a kill test sends: ids `0..MESSAGES`, each tried once.
const MESSAGES: u64 = 2_000;
/// Client connections sending at once.
const CLIENTS: usize = 4;
/// Messages a client sends on one connection before it says QUIT and connects again.
const MESSAGES_PER_CONNECTION: usize = 25;
/// Connect, read and write timeout of a client and of the sink's conversations.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the clients may take to send every message, the restarts included.
const SEND_DEADLINE: Duration = Duration::from_secs(90);
/// How long every acknowledged message may take to reach the sink after the clients are done.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(60);
/// Duplicates allowed, per mille of the acknowledged messages.
const MAX_DUPLICATES_PER_MILLE: usize = 10;

// ---------------------------------------------------------------------------------------------
// The sink: the next hop for example.test

/// What the sink was given: how many times each id arrived.
#[derive(Debug, Default)]
struct Received {
    counts: BTreeMap<u64, u32>,
    /// Messages without a readable `X-Test-Id`.
    unmarked: u32,
}

/// An SMTP server on loopback that takes every message (no STARTTLS, no limits) and counts
/// them by their `X-Test-Id`. Stops accepting connections when dropped.
struct Sink {
    port: u16,
    received: Arc<Mutex<Received>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Sink {
    /// On a port of its own.
    fn start() -> Self {
        Self::serve(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding the sink"))
    }

    /// On `port`, picked before (see [`port_for_later`]).
    fn start_on(port: u16) -> Self {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                Ok(listener) => return Self::serve(listener),
                Err(e) if Instant::now() >= deadline => panic!("binding the sink on {port}: {e}"),
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn serve(listener: TcpListener) -> Self {
        let port = listener.local_addr().expect("sink address").port();
        let received = Arc::new(Mutex::new(Received::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let received = received.clone();
            let stop = stop.clone();
            // Non-blocking, so that it sees the stop flag without a connection to wake it.
            listener
                .set_nonblocking(true)
                .expect("a non-blocking listener");
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let stream = match listener.accept() {
                        Ok((stream, _)) if stream.set_nonblocking(false).is_ok() => stream,
                        Ok(_) | Err(_) => {
                            thread::sleep(POLL);
                            continue;
                        }
                    };
                    let received = received.clone();
                    let stop = stop.clone();
                    // A conversation that fails just ends: what it had not finished is not
                    // counted, and the gateway has no 250 for it.
                    thread::spawn(move || {
                        let _ = converse(stream, &received, &stop);
                    });
                }
            })
        };
        Self {
            port,
            received,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// How many times each id arrived so far.
    fn counts(&self) -> BTreeMap<u64, u32> {
        self.received.lock().expect("sink lock").counts.clone()
    }

    fn unmarked(&self) -> u32 {
        self.received.lock().expect("sink lock").unmarked
    }

    /// Waits until every id of `ids` has arrived; the ones still missing after `wait`.
    fn wait_for(&self, ids: &BTreeSet<u64>, wait: Duration) -> Vec<u64> {
        let deadline = Instant::now() + wait;
        loop {
            let counts = self.counts();
            let missing: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|id| !counts.contains_key(id))
                .collect();
            if missing.is_empty() || Instant::now() >= deadline {
                return missing;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// One SMTP conversation of the sink. A message counts once the final dot has been read,
/// before the `250` is sent.
fn converse(stream: TcpStream, received: &Mutex<Received>, stop: &AtomicBool) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    writer.write_all(b"220 sink.test ESMTP test sink\r\n")?;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 || stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let verb = line
            .get(..4)
            .map(|v| v.to_ascii_uppercase())
            .unwrap_or_default();
        let reply: &[u8] = match verb.as_slice() {
            // No extensions: in particular no STARTTLS, so Preferred TLS goes on in clear text.
            b"EHLO" | b"HELO" => b"250 sink.test\r\n",
            b"MAIL" | b"RCPT" | b"RSET" | b"NOOP" => b"250 2.0.0 OK\r\n",
            b"DATA" => {
                writer.write_all(b"354 2.0.0 go ahead\r\n")?;
                let body = read_body(&mut reader)?;
                let mut received = received.lock().expect("sink lock");
                match test_id(&body) {
                    Some(id) => *received.counts.entry(id).or_default() += 1,
                    None => received.unmarked += 1,
                }
                b"250 2.0.0 OK delivered\r\n"
            }
            b"QUIT" => {
                writer.write_all(b"221 2.0.0 bye\r\n")?;
                return Ok(());
            }
            _ => b"500 5.5.1 unknown command\r\n",
        };
        writer.write_all(reply)?;
    }
}

/// The message after DATA, up to the line with the dot alone, dot-stuffing undone. A connection
/// that ends before the dot is an error: the message did not arrive.
fn read_body(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" {
            return Ok(body);
        }
        let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
        body.extend_from_slice(unstuffed);
    }
}

/// The number in the message's `X-Test-Id:` header.
fn test_id(body: &[u8]) -> Option<u64> {
    const HEADER: &[u8] = b"\r\nX-Test-Id: ";
    let at = body.windows(HEADER.len()).position(|w| w == HEADER)? + HEADER.len();
    let digits: Vec<u8> = body[at..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// A loopback port that nothing listens on, for a sink started later. It is below the kernel's
/// range of ephemeral ports, so that no connection (the gateway's own, to others) takes it as
/// its local port meanwhile.
fn port_for_later() -> u16 {
    let low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768)
        .max(11_000);
    let first = 10_000;
    let span = u32::from(low - first);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let start = (nanos ^ std::process::id().wrapping_mul(2_654_435_761)) % span;
    (0..span)
        .map(|i| first + u16::try_from((start + i) % span).expect("below the range"))
        .find(|&port| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok())
        .expect("a free port below the ephemeral range")
}

// ---------------------------------------------------------------------------------------------
// Clients

/// A client connection that has been greeted and has said EHLO.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(port: u16) -> io::Result<Self> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&address, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let _ = stream.set_nodelay(true);
        let mut client = Self {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
        };
        client.expect("greeting", 220)?;
        client.command("EHLO client.example.net", 250)?;
        Ok(client)
    }

    /// The code and the last line of the next reply, all its lines read.
    fn reply(&mut self) -> io::Result<(u16, String)> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            // `250-...` goes on, `250 ...` is the last line.
            if line.as_bytes().get(3) != Some(&b'-') {
                let code = line
                    .get(..3)
                    .and_then(|c| c.parse().ok())
                    .ok_or_else(|| io::Error::other(format!("not a reply: {line:?}")))?;
                return Ok((code, line));
            }
        }
    }

    /// The last line of the next reply, when its code is `code`.
    fn expect(&mut self, what: &str, code: u16) -> io::Result<String> {
        match self.reply()? {
            (c, line) if c == code => Ok(line),
            (_, line) => Err(io::Error::other(format!("{what}: {}", line.trim_end()))),
        }
    }

    fn command(&mut self, line: &str, code: u16) -> io::Result<String> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())?;
        self.expect(line, code)
    }

    /// One message with id `id`; `Ok` only for a `250` to the final dot, with the MID the
    /// gateway gave it.
    fn send(&mut self, id: u64) -> io::Result<u64> {
        self.command("MAIL FROM:<sender@example.net>", 250)?;
        self.command(&format!("RCPT TO:<user{}@{DOMAIN}>", id % 10), 250)?;
        self.command("DATA", 354)?;
        self.writer.write_all(message(id).as_bytes())?;
        let queued = self.expect("end of data", 250)?;
        // `250 2.0.0 Ok: queued as MID 6`
        queued
            .rsplit_once("MID ")
            .and_then(|(_, mid)| mid.trim_end().parse().ok())
            .ok_or_else(|| io::Error::other(format!("no MID in {queued:?}")))
    }

    fn quit(mut self) {
        let _ = self.command("QUIT", 221);
    }
}

/// Message `id`, a few hundred bytes, with its final dot.
fn message(id: u64) -> String {
    format!(
        "From: <sender@example.net>\r\nTo: <user{}@{DOMAIN}>\r\nSubject: durability {id}\r\n\
         Message-ID: <{id}@client.example.net>\r\nX-Test-Id: {id}\r\n\r\n\
         This is message {id} of the durability test.\r\n\
         ..A line that starts with a dot, stuffed.\r\n\
         Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor \
         incididunt\r\nut labore et dolore magna aliqua. Ut enim ad minim veniam, quis \
         nostrud exercitation\r\nullamco laboris nisi ut aliquip ex ea commodo consequat.\r\n\
         .\r\n",
        id % 10
    )
}

/// What one client thread did.
#[derive(Debug, Default)]
struct ClientReport {
    /// Ids it tried to send.
    attempted: u64,
    /// Ids that got `250` to the final dot, with their MIDs.
    acked: Vec<(u64, u64)>,
    connections: u64,
    errors: u64,
    /// The first few errors, for a failure's message.
    first_errors: Vec<String>,
}

impl ClientReport {
    fn error(&mut self, what: &str, e: &io::Error) {
        self.errors += 1;
        if self.first_errors.len() < 5 {
            self.first_errors.push(format!("{what}: {e}"));
        }
    }
}

/// `CLIENTS` threads sending ids `0..total` to the gateway on `port`: each takes the next id
/// once it has a connection, tries it once, and connects again after an error.
struct Load {
    next: Arc<AtomicU64>,
    acked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<ClientReport>>,
    total: u64,
}

/// What all clients did.
#[derive(Debug, Default)]
struct LoadReport {
    attempted: u64,
    /// Ids that got `250` to the final dot, with their MIDs.
    acked: BTreeMap<u64, u64>,
    connections: u64,
    errors: u64,
    first_errors: Vec<String>,
}

impl Load {
    fn start(port: u16, total: u64) -> Self {
        let next = Arc::new(AtomicU64::new(0));
        let acked = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + SEND_DEADLINE;
        let threads = (0..CLIENTS)
            .map(|_| {
                let (next, acked, stop) = (next.clone(), acked.clone(), stop.clone());
                thread::spawn(move || client(port, total, deadline, &next, &acked, &stop))
            })
            .collect();
        Self {
            next,
            acked,
            stop,
            threads,
            total,
        }
    }

    /// Waits until `count` messages got `250`.
    fn wait_acked(&self, count: u64, wait: Duration) {
        let deadline = Instant::now() + wait;
        while self.acked.load(Ordering::SeqCst) < count {
            assert!(
                Instant::now() < deadline,
                "only {} of the first {count} messages got 250 within {wait:?}",
                self.acked.load(Ordering::SeqCst)
            );
            thread::sleep(POLL);
        }
    }

    /// Waits for the clients to end (they end at `SEND_DEADLINE` at the latest).
    fn finish(mut self) -> LoadReport {
        let mut report = LoadReport::default();
        for thread in self.threads.drain(..) {
            let one = thread.join().expect("a client thread panicked");
            report.attempted += one.attempted;
            report.acked.extend(one.acked);
            report.connections += one.connections;
            report.errors += one.errors;
            report.first_errors.extend(one.first_errors);
        }
        assert!(
            self.next.load(Ordering::SeqCst) >= self.total,
            "the clients did not get through {} messages within {SEND_DEADLINE:?}: {report:?}",
            self.total
        );
        report
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        // A test that failed half way: the clients stop at their next message.
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn client(
    port: u16,
    total: u64,
    deadline: Instant,
    next: &AtomicU64,
    acked: &AtomicU64,
    stop: &AtomicBool,
) -> ClientReport {
    let mut report = ClientReport::default();
    let mut open: Option<(Client, usize)> = None;
    while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
        let (connection, sent) = match &mut open {
            Some(open) => open,
            None => match Client::connect(port) {
                Ok(c) => {
                    report.connections += 1;
                    open.insert((c, 0))
                }
                Err(e) => {
                    // The service is restarting: try again shortly.
                    report.error("connect", &e);
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
            },
        };
        let id = next.fetch_add(1, Ordering::SeqCst);
        if id >= total {
            break;
        }
        report.attempted += 1;
        match connection.send(id) {
            Ok(mid) => {
                report.acked.push((id, mid));
                acked.fetch_add(1, Ordering::SeqCst);
                *sent += 1;
                if *sent >= MESSAGES_PER_CONNECTION
                    && let Some((connection, _)) = open.take()
                {
                    connection.quit();
                }
            }
            Err(e) => {
                // The id is not tried again: whether it arrives or not, it never got 250.
                report.error(&format!("message {id}"), &e);
                open = None;
            }
        }
    }
    if let Some((connection, _)) = open {
        connection.quit();
    }
    report
}

// ---------------------------------------------------------------------------------------------
// The gateway

/// Opens the RAT for `DOMAIN`, routes it to the sink on `sink_port`, and waits until the
/// listener on `smtp` accepts a recipient there.
fn configure(data: &Path, smtp: u16, sink_port: u16) {
    let (ok, out) = cli(
        data,
        &format!(
            "listenerconfig rcptaccess new {DOMAIN} accept\n\
             smtproutes new {DOMAIN} 127.0.0.1:{sink_port}\ncommit durability\n"
        ),
    );
    assert!(ok, "{out}");
    // The service applies a commit to the connections after it has seen it.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let accepted = Client::connect(smtp).and_then(|mut c| {
            c.command("MAIL FROM:<sender@example.net>", 250)?;
            c.command(&format!("RCPT TO:<probe@{DOMAIN}>"), 250)?;
            c.quit();
            Ok(())
        });
        match accepted {
            Ok(()) => return,
            Err(e) if Instant::now() >= deadline => {
                panic!("the RAT entry was not applied within {TIMEOUT:?}: {e}")
            }
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The pid of smtpd when `status` shows it running.
fn smtpd_pid(data: &Path) -> Option<i32> {
    let status = cli_c(data, "status");
    status.stdout.lines().find_map(|line| {
        line.trim_start()
            .strip_prefix("smtpd")?
            .trim_start()
            .strip_prefix("Running (pid ")?
            .split(')')
            .next()?
            .parse()
            .ok()
    })
}

/// Waits until smtpd runs with a pid other than `old`; its pid.
fn wait_smtpd_running(data: &Path, old: Option<i32>) -> i32 {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match smtpd_pid(data) {
            Some(pid) if Some(pid) != old => return pid,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "smtpd was not running again within {TIMEOUT:?}:\n{}",
            cli_c(data, "status").stdout
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn sigkill(pid: i32) {
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("SIGKILL");
}

/// The live (not zombie) `postern smtpd` processes of `data`.
fn smtpd_processes(data: &Path) -> Vec<i32> {
    // The supervisor gives its services the canonical path.
    let data = data.canonicalize().unwrap_or_else(|_| data.to_owned());
    let wanted = format!("smtpd\0--data\0{}\0", data.display());
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']));
            String::from_utf8_lossy(&cmdline).ends_with(&wanted) && !zombie
        })
        .collect()
}

/// Power loss, as near as a test gets: SIGKILL to smtpd first (the supervisor's death would
/// give it SIGTERM and an orderly stop), then to the supervisor. Returns once no smtpd of
/// `data` is left.
fn kill_the_tree(gateway: Gateway) {
    let data = gateway.data.clone();
    let smtpd = smtpd_pid(&data).expect("smtpd is running");
    sigkill(smtpd);
    gateway.crash();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = smtpd_processes(&data);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "smtpd processes {left:?} still run {TIMEOUT:?} after the supervisor was killed"
        );
        thread::sleep(POLL);
    }
}

/// The counter `name` of `status`, once smtpd has reported it.
fn counter(data: &Path, name: &str) -> Option<u64> {
    let status = cli_c(data, "status");
    status
        .stdout
        .lines()
        .find_map(|line| line.trim_start().strip_prefix(name)?.trim().parse().ok())
}

/// Waits until smtpd reports `Messages In Queue` as `count`.
fn wait_queue_length(data: &Path, count: u64, wait: Duration) {
    let deadline = Instant::now() + wait;
    loop {
        let now = counter(data, "Messages In Queue");
        if now == Some(count) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the queue did not hold {count} messages within {wait:?} (it holds {now:?}):\n{}",
            cli_c(data, "status").stdout
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// The mail_logs lines (rotated files too) about `mid`.
fn mail_log_of(data: &Path, mid: u64) -> String {
    let current = Subscription::MailLogs.current_path(data);
    let mut files: Vec<_> = current
        .parent()
        .and_then(|dir| fs::read_dir(dir).ok())
        .into_iter()
        .flatten()
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| *p != current)
        .collect();
    files.sort();
    files.push(current);
    let needle = format!("MID {mid} ");
    let end = format!("MID {mid}");
    files
        .iter()
        .flat_map(|f| {
            fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(&needle) || l.ends_with(&end))
                .map(|l| format!("{l}\n"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The distinct MIDs of the mail_logs lines `Delayed: DCID .. MID <mid> ...`.
fn delayed_mids(data: &Path) -> BTreeSet<u64> {
    let log = fs::read_to_string(Subscription::MailLogs.current_path(data)).unwrap_or_default();
    log.lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once("Delayed: DCID ")?;
            let (_, rest) = rest.split_once(" MID ")?;
            rest.split(' ').next()?.parse().ok()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The tests

/// What is killed in the middle of a run.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// SIGKILL to smtpd; the supervisor starts it again.
    Smtpd,
    /// SIGKILL to smtpd and to the supervisor; `postern run` is started again by the test.
    Tree,
}

/// Sends `MESSAGES` messages from `CLIENTS` connections, kills what `kill` says once half of
/// them got `250`, and checks that every message that got `250` reaches the sink.
fn kill_during_a_run(kill: Kill) {
    let started = Instant::now();
    let sink = Sink::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    // The listener keeps the address of the first start.
    let smtp = gateway.smtp;
    configure(data, smtp, sink.port);

    let load = Load::start(smtp, MESSAGES);
    load.wait_acked(MESSAGES / 2, SEND_DEADLINE);
    let at_kill = load.acked.load(Ordering::SeqCst);
    let gateway = match kill {
        Kill::Smtpd => {
            let pid = smtpd_pid(data).expect("smtpd is running");
            sigkill(pid);
            wait_smtpd_running(data, Some(pid));
            gateway
        }
        Kill::Tree => {
            kill_the_tree(gateway);
            Gateway::start(data, &[])
        }
    };
    let restarted = started.elapsed();
    let report = load.finish();
    let sent = started.elapsed();

    let acked: BTreeSet<u64> = report.acked.keys().copied().collect();
    let missing = sink.wait_for(&acked, DELIVERY_DEADLINE);
    let delivered_all = started.elapsed();
    // What was queued and not acknowledged goes too; then the counts are final.
    wait_queue_length(data, 0, DELIVERY_DEADLINE);
    let counts = sink.counts();
    let duplicates: usize = counts.values().map(|&n| n as usize - 1).sum();
    let duplicated_ids = counts.values().filter(|&&n| n > 1).count();
    let unacked_delivered = counts.keys().filter(|id| !acked.contains(id)).count();
    let stray = counts.keys().filter(|&&id| id >= MESSAGES).count();

    println!(
        "kill -9 of {kill:?}: {MESSAGES} messages sent over {} connections, {} got 250 ({} \
         before the kill), {} client errors; {} distinct delivered ({} of them never got \
         250), {duplicates} duplicates of {duplicated_ids} ids, {missing} acknowledged \
         missing; restarted at {restarted:?}, sent by {sent:?}, delivered by {delivered_all:?}, \
         queue empty by {:?}",
        report.connections,
        report.acked.len(),
        at_kill,
        report.errors,
        counts.len(),
        unacked_delivered,
        started.elapsed(),
        missing = missing.len(),
    );
    assert_eq!(report.attempted, MESSAGES, "{report:?}");
    assert!(
        missing.is_empty(),
        "{} messages got 250 and never reached the sink: {:?}; what mail_logs says of them:\n{}",
        missing.len(),
        &missing[..missing.len().min(50)],
        missing
            .iter()
            .take(5)
            .map(|id| mail_log_of(data, report.acked[id]))
            .collect::<String>()
    );
    assert_eq!(stray, 0, "ids that were never sent arrived: {counts:?}");
    assert_eq!(sink.unmarked(), 0, "messages without an X-Test-Id arrived");
    assert!(
        duplicates * 1000 <= report.acked.len() * MAX_DUPLICATES_PER_MILLE,
        "{duplicates} duplicates for {} acknowledged messages",
        report.acked.len()
    );
    drop(gateway);
}

#[test]
fn kill_9_of_smtpd_during_a_run() {
    kill_during_a_run(Kill::Smtpd);
}

#[test]
fn kill_9_of_the_whole_host_mode_tree_during_a_run() {
    kill_during_a_run(Kill::Tree);
}

/// Mail the gateway takes the moment a commit opens the RAT for a domain goes by the route
/// committed with it: it is not delivered (and bounced) with the routes of before the commit.
#[test]
fn mail_accepted_right_after_a_commit_goes_by_its_route() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let smtp = gateway.smtp;

    let commit = {
        let data = data.to_owned();
        let sink_port = sink.port;
        thread::spawn(move || {
            cli(
                &data,
                &format!(
                    "listenerconfig rcptaccess new {DOMAIN} accept\n\
                     smtproutes new {DOMAIN} 127.0.0.1:{sink_port}\ncommit route\n"
                ),
            )
        })
    };
    // New connections until one takes the recipient: the first after the commit reached the
    // listener. Its message is queued at once.
    let deadline = Instant::now() + TIMEOUT;
    let mid = loop {
        let sent = Client::connect(smtp).and_then(|mut c| c.send(0).inspect(|_| c.quit()));
        match sent {
            Ok(mid) => break mid,
            Err(e) if Instant::now() >= deadline => {
                panic!("the RAT entry was not applied within {TIMEOUT:?}: {e}")
            }
            Err(_) => {}
        }
    };
    let (ok, out) = commit.join().expect("the commit thread");
    assert!(ok, "{out}");

    let missing = sink.wait_for(&BTreeSet::from([0]), TIMEOUT);
    assert!(
        missing.is_empty(),
        "the message did not reach the sink; mail_logs:\n{}",
        mail_log_of(data, mid)
    );
    assert_eq!(sink.counts(), BTreeMap::from([(0, 1)]));
    drop(gateway);
}

/// With the next hop down, accepted mail is deferred and stays queued across an orderly restart
/// and a crash of the whole tree; once the next hop is up, each message arrives, once.
#[test]
fn mail_for_a_stopped_sink_stays_queued_across_restarts() {
    const COUNT: u64 = 20;
    let started = Instant::now();
    let sink_port = port_for_later();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let smtp = gateway.smtp;
    configure(data, smtp, sink_port);

    let mut client = Client::connect(smtp).expect("connecting to the gateway");
    for id in 0..COUNT {
        client
            .send(id)
            .unwrap_or_else(|e| panic!("message {id} was not accepted: {e}"));
    }
    client.quit();
    // Each was tried, found the sink down and deferred.
    let deadline = Instant::now() + TIMEOUT;
    while delayed_mids(data).len() < COUNT as usize {
        assert!(
            Instant::now() < deadline,
            "not every message was deferred within {TIMEOUT:?}: {:?}",
            delayed_mids(data)
        );
        thread::sleep(Duration::from_millis(100));
    }
    wait_queue_length(data, COUNT, TIMEOUT);

    // An orderly restart...
    let (status, _) = gateway.terminate();
    assert!(status.success(), "postern run exited with {status}");
    let gateway = Gateway::start(data, &[]);
    wait_queue_length(data, COUNT, TIMEOUT);
    // ... and a crash.
    kill_the_tree(gateway);
    let gateway = Gateway::start(data, &[]);
    wait_queue_length(data, COUNT, TIMEOUT);
    let restarted = started.elapsed();

    // The first retry comes a minute after the first attempt.
    let sink = Sink::start_on(sink_port);
    let ids: BTreeSet<u64> = (0..COUNT).collect();
    let missing = sink.wait_for(&ids, Duration::from_secs(90));
    let delivered = started.elapsed();
    wait_queue_length(data, 0, TIMEOUT);
    let counts = sink.counts();
    println!(
        "stopped sink: {COUNT} messages got 250 and were deferred; restarted twice by \
         {restarted:?}; {} delivered by {delivered:?}, {} missing; counts {:?}",
        counts.len(),
        missing.len(),
        counts.values().collect::<BTreeSet<_>>()
    );
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    assert!(
        counts.values().all(|&n| n == 1),
        "delivered more than once: {counts:?}"
    );
    assert_eq!(counts.len(), COUNT as usize, "{counts:?}");
    drop(gateway);
}
