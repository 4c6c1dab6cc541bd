//! The mail of `cargo xtask qemu-test`: a sink on the host that the appliance delivers to, and
//! client threads that inject numbered messages through the forwarded SMTP port, each noting
//! which of its messages got `250` to the final dot. Together they check the appliance's
//! promise across power cuts: nothing it accepted is lost.
//!
//! The guest reaches the host at 10.0.2.2 (QEMU's user-mode network), which QEMU connects to
//! 127.0.0.1 on the host: the sinks listen on loopback only.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The domain the clients send to: the Recipient Access Table accepts it and a route sends it
/// to the sink that listens from the start.
pub(super) const DOMAIN: &str = "example.test";
/// The domain of the held message: its route goes to a port that nothing listens on until
/// the second boot.
pub(super) const HELD_DOMAIN: &str = "held.test";
/// The id of the held message; the clients' ids count up from 0 and never reach it.
pub(super) const HELD_ID: u64 = 1_000_000_000;
/// Client connections sending at once.
const CLIENTS: usize = 4;
/// Messages a client sends on one connection before it says QUIT and connects again, so that
/// the power cut finds connections at every stage.
const MESSAGES_PER_CONNECTION: usize = 10;
/// Connect, read and write timeout of a client and of the sink's conversations: generous, as
/// the guest is emulated on a shared machine.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the sink's acceptor looks at its stop flag, and the clients retry a connection.
const POLL: Duration = Duration::from_millis(100);

/// A random token that names this run's messages, so that the sink can tell them from any
/// other mail and check that each arrived whole.
pub(super) fn run_token() -> anyhow::Result<String> {
    let mut random = [0u8; 8];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut random)?;
    Ok(random.iter().map(|b| format!("{b:02x}")).collect())
}

// ---------------------------------------------------------------------------------------------
// The sink

/// What a sink was given.
#[derive(Debug, Default, Clone)]
pub(super) struct Received {
    /// How many times each id arrived whole.
    pub(super) counts: BTreeMap<u64, u32>,
    /// Messages without this run's id and text, and the first of them.
    pub(super) damaged: u32,
    pub(super) first_damaged: Option<String>,
}

impl Received {
    /// Deliveries beyond the first of each id.
    pub(super) fn duplicates(&self) -> u64 {
        self.counts.values().map(|&n| u64::from(n) - 1).sum()
    }
}

/// An SMTP server on 127.0.0.1 that takes every message (no STARTTLS, no limits) and counts
/// them by their `X-Test-Id`, once it has checked the text. Stops when dropped.
pub(super) struct Sink {
    port: u16,
    received: Arc<Mutex<Received>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Sink {
    /// On a port of its own, for the messages of run `run`.
    pub(super) fn start(run: &str) -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the mail sink")?;
        Self::serve(listener, run)
    }

    /// On `port`, chosen before with [`port_for_later`].
    pub(super) fn start_on(port: u16, run: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .with_context(|| format!("binding the mail sink on 127.0.0.1:{port}"))?;
        Self::serve(listener, run)
    }

    fn serve(listener: TcpListener, run: &str) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        let received = Arc::new(Mutex::new(Received::default()));
        let stop = Arc::new(AtomicBool::new(false));
        // Non-blocking, so that it sees the stop flag without a connection to wake it.
        listener.set_nonblocking(true)?;
        let acceptor = {
            let (received, stop, run) = (received.clone(), stop.clone(), run.to_owned());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let stream = match listener.accept() {
                        Ok((stream, _)) if stream.set_nonblocking(false).is_ok() => stream,
                        Ok(_) | Err(_) => {
                            thread::sleep(POLL);
                            continue;
                        }
                    };
                    let (received, stop, run) = (received.clone(), stop.clone(), run.clone());
                    // A conversation that fails just ends: the message it had not finished is
                    // not counted, and the appliance has no 250 for it.
                    thread::spawn(move || {
                        let _ = converse(stream, &received, &stop, &run);
                    });
                }
            })
        };
        Ok(Self {
            port,
            received,
            stop,
            acceptor: Some(acceptor),
        })
    }

    pub(super) fn port(&self) -> u16 {
        self.port
    }

    /// What arrived so far.
    pub(super) fn received(&self) -> Received {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until every id of `ids` has arrived, or `wait` has passed, or `give_up` says so;
    /// the ids still missing.
    pub(super) fn wait_for(
        &self,
        ids: &BTreeSet<u64>,
        wait: Duration,
        give_up: impl Fn() -> bool,
    ) -> Vec<u64> {
        let deadline = Instant::now() + wait;
        loop {
            let counts = self.received().counts;
            let missing: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|id| !counts.contains_key(id))
                .collect();
            if missing.is_empty() || Instant::now() >= deadline || give_up() {
                return missing;
            }
            thread::sleep(Duration::from_millis(250));
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

/// One SMTP conversation of the sink. A message counts once its final dot has been read,
/// before the `250` is sent: the appliance may then be cut off before it notes the delivery,
/// and deliver it again (a duplicate, which the report counts).
fn converse(
    stream: TcpStream,
    received: &Mutex<Received>,
    stop: &AtomicBool,
    run: &str,
) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    writer.write_all(b"220 sink.test ESMTP qemu-test sink\r\n")?;
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
            // No extensions: in particular no STARTTLS, so the appliance's default (TLS
            // preferred) goes on in clear text.
            b"EHLO" | b"HELO" => b"250 sink.test\r\n",
            b"MAIL" | b"RCPT" | b"RSET" | b"NOOP" => b"250 2.0.0 OK\r\n",
            b"DATA" => {
                writer.write_all(b"354 2.0.0 go ahead\r\n")?;
                let body = read_body(&mut reader)?;
                let mut received = received.lock().unwrap_or_else(|e| e.into_inner());
                match test_id(&body).filter(|&id| is_whole(&body, id, run)) {
                    Some(id) => *received.counts.entry(id).or_default() += 1,
                    None => {
                        received.damaged += 1;
                        if received.first_damaged.is_none() {
                            received.first_damaged = Some(String::from_utf8_lossy(&body).into());
                        }
                    }
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

/// Whether `body` holds the text of message `id` of run `run` (relay headers added before it
/// are allowed), its dot-stuffed line unstuffed.
fn is_whole(body: &[u8], id: u64, run: &str) -> bool {
    let sent = message(id, run);
    let expected = sent
        .strip_suffix(".\r\n")
        .unwrap_or(&sent)
        .replace("\r\n..", "\r\n.");
    body.ends_with(expected.as_bytes())
}

/// A loopback port that nothing listens on now, for a sink started later. It is below the
/// kernel's range of ephemeral ports, so that no connection takes it as its local port
/// meanwhile.
pub(super) fn port_for_later() -> anyhow::Result<u16> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768)
        .max(11_000);
    let first = 10_000;
    let span = u32::from(low - first);
    let start = u32::from_str_radix(&run_token()?[..8], 16)? % span;
    (0..span)
        .filter_map(|i| u16::try_from((start + i) % span).ok())
        .map(|offset| first + offset)
        .find(|&port| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok())
        .context("no free port below the ephemeral range")
}

// ---------------------------------------------------------------------------------------------
// Clients

/// Message `id` of run `run`, a few hundred bytes, with its final dot.
fn message(id: u64, run: &str) -> String {
    let domain = if id == HELD_ID { HELD_DOMAIN } else { DOMAIN };
    format!(
        "From: <sender@example.net>\r\nTo: <user{}@{domain}>\r\nSubject: qemu-test {id}\r\n\
         Message-ID: <{id}.{run}@client.example.net>\r\nX-Test-Id: {id}\r\n\
         X-Test-Run: {run}\r\n\r\n\
         This is message {id} of qemu-test run {run}.\r\n\
         ..A line that starts with a dot, stuffed.\r\n\
         Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor \
         incididunt\r\nut labore et dolore magna aliqua.\r\n.\r\n",
        id % 10
    )
}

/// A client connection that has been greeted and has said EHLO.
pub(super) struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    pub(super) fn connect(port: u16) -> anyhow::Result<Self> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&address, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let _ = stream.set_nodelay(true);
        let mut client = Self {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
        };
        client.expect("the greeting", 220)?;
        client.command("EHLO client.example.net", 250)?;
        Ok(client)
    }

    /// The code and the last line of the next reply, all its lines read.
    fn reply(&mut self) -> anyhow::Result<(u16, String)> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("the connection was closed");
            }
            // `250-...` goes on, `250 ...` is the last line.
            if line.as_bytes().get(3) != Some(&b'-') {
                let code = line
                    .get(..3)
                    .and_then(|c| c.parse().ok())
                    .with_context(|| format!("not an SMTP reply: {line:?}"))?;
                return Ok((code, line));
            }
        }
    }

    /// The last line of the next reply, when its code is `code`.
    fn expect(&mut self, what: &str, code: u16) -> anyhow::Result<String> {
        match self.reply()? {
            (c, line) if c == code => Ok(line),
            (_, line) => bail!("{what}: {}", line.trim_end()),
        }
    }

    pub(super) fn command(&mut self, line: &str, code: u16) -> anyhow::Result<String> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())?;
        self.expect(line, code)
    }

    /// Message `id` of run `run`; `Ok` only for a `250` to the final dot, with the MID the
    /// appliance gave it.
    pub(super) fn send(&mut self, id: u64, run: &str) -> anyhow::Result<u64> {
        let domain = if id == HELD_ID { HELD_DOMAIN } else { DOMAIN };
        self.command("MAIL FROM:<sender@example.net>", 250)?;
        self.command(&format!("RCPT TO:<user{}@{domain}>", id % 10), 250)?;
        self.command("DATA", 354)?;
        self.writer.write_all(message(id, run).as_bytes())?;
        let queued = self.expect("the end of data", 250)?;
        // `250 2.0.0 Ok: queued as MID 6`
        queued
            .rsplit_once("MID ")
            .and_then(|(_, mid)| mid.trim_end().parse().ok())
            .with_context(|| format!("no MID in {queued:?}"))
    }

    pub(super) fn quit(mut self) {
        let _ = self.command("QUIT", 221);
    }
}

/// What the clients did.
#[derive(Debug, Default)]
pub(super) struct LoadReport {
    /// Messages tried (each id once).
    pub(super) attempted: u64,
    /// Ids that got `250` to the final dot.
    pub(super) acked: BTreeSet<u64>,
    pub(super) connections: u64,
    pub(super) errors: u64,
    /// The first few errors, for a failure's message.
    pub(super) first_errors: Vec<String>,
}

/// `CLIENTS` threads sending ids 0, 1, 2... to the appliance until they are stopped: each takes
/// the next id once it has a connection, tries it once, and connects again after an error.
pub(super) struct Load {
    acked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<LoadReport>>,
}

impl Load {
    pub(super) fn start(port: u16, run: &str) -> Self {
        let next = Arc::new(AtomicU64::new(0));
        let acked = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..CLIENTS)
            .map(|_| {
                let (next, acked, stop) = (next.clone(), acked.clone(), stop.clone());
                let run = run.to_owned();
                thread::spawn(move || client(port, &run, &next, &acked, &stop))
            })
            .collect();
        Self {
            acked,
            stop,
            threads,
        }
    }

    /// How many messages got `250` so far.
    pub(super) fn acked(&self) -> u64 {
        self.acked.load(Ordering::SeqCst)
    }

    /// Stops the clients (at their next message, or when their connection fails) and adds up
    /// what they did.
    pub(super) fn finish(mut self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        let mut report = LoadReport::default();
        for thread in self.threads.drain(..) {
            let Ok(one) = thread.join() else {
                report.errors += 1;
                report
                    .first_errors
                    .push("a client thread panicked".to_owned());
                continue;
            };
            report.attempted += one.attempted;
            report.acked.extend(one.acked);
            report.connections += one.connections;
            report.errors += one.errors;
            report
                .first_errors
                .extend(one.first_errors.into_iter().take(2));
        }
        report
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        // A check that failed half way: the clients stop at their next message.
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn client(
    port: u16,
    run: &str,
    next: &AtomicU64,
    acked: &AtomicU64,
    stop: &AtomicBool,
) -> LoadReport {
    let mut report = LoadReport::default();
    let error = |report: &mut LoadReport, what: String| {
        report.errors += 1;
        if report.first_errors.len() < 3 {
            report.first_errors.push(what);
        }
    };
    let mut open: Option<(Client, usize)> = None;
    while !stop.load(Ordering::SeqCst) {
        let (connection, sent) = match &mut open {
            Some(open) => open,
            None => match Client::connect(port) {
                Ok(c) => {
                    report.connections += 1;
                    open.insert((c, 0))
                }
                Err(e) => {
                    // QEMU is gone (the power cut): try again until stopped.
                    error(&mut report, format!("connect: {e:#}"));
                    thread::sleep(POLL);
                    continue;
                }
            },
        };
        let id = next.fetch_add(1, Ordering::SeqCst);
        report.attempted += 1;
        match connection.send(id, run) {
            Ok(_mid) => {
                report.acked.insert(id);
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
                error(&mut report, format!("message {id}: {e:#}"));
                open = None;
            }
        }
    }
    if let Some((connection, _)) = open {
        connection.quit();
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sink counts what a client sends it by id, only this run's whole messages, and a
    /// second delivery of an id as a duplicate.
    #[test]
    fn the_sink_counts_whole_messages_of_its_run() {
        let sink = Sink::start("run1").unwrap();
        let mut client = Client::connect(sink.port()).unwrap();
        // The sink says `250 ... delivered`, not `queued as MID n`: `send` wants the MID.
        for id in [7, 7, 9] {
            let said = client.send(id, "run1").unwrap_err();
            assert!(format!("{said:#}").contains("no MID"), "{said:#}");
        }
        client.send(8, "other-run").unwrap_err();
        client.quit();
        let missing = sink.wait_for(&BTreeSet::from([7, 9, 11]), Duration::from_secs(2), || {
            false
        });
        assert_eq!(missing, [11]);
        let received = sink.received();
        assert_eq!(received.counts, BTreeMap::from([(7, 2), (9, 1)]));
        assert_eq!(received.duplicates(), 1);
        assert_eq!(received.damaged, 1);
        let damaged = received.first_damaged.unwrap_or_default();
        assert!(
            damaged.contains("This is message 8 of qemu-test run other-run."),
            "{damaged}"
        );
    }

    #[test]
    fn a_relayed_message_is_whole_with_headers_added_and_dots_unstuffed() {
        let sent = message(3, "r");
        let mut relayed = b"Received: from client\r\n".to_vec();
        relayed.extend_from_slice(sent.strip_suffix(".\r\n").unwrap().as_bytes());
        assert!(!is_whole(&relayed, 3, "r"), "the dot-stuffed line as sent");
        let unstuffed = String::from_utf8(relayed)
            .unwrap()
            .replace("\r\n..", "\r\n.");
        assert!(is_whole(unstuffed.as_bytes(), 3, "r"));
        assert_eq!(test_id(unstuffed.as_bytes()), Some(3));
        assert!(!is_whole(unstuffed.as_bytes(), 4, "r"));
        assert!(!is_whole(
            &unstuffed.as_bytes()[..unstuffed.len() - 10],
            3,
            "r"
        ));
    }
}
