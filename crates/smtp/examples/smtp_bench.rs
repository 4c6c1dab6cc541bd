//! The SMTP peers of `cargo xtask bench smtp`, which measures Postern and Postfix as relays: a
//! load client and a sink that speak STARTTLS (Postfix's `smtp-source` and `smtp-sink` do not),
//! and a holder of idle connections for the memory figure. TLS is Postern's own engine on both
//! ends, TLS v1.2 and v1.3, certificates not checked.
//!
//! - `cert --out DIR`: a self-signed ECDSA P-256 certificate and key for the sink and for
//!   Postfix's smtpd, as `DIR/bench-ecdsa.crt` and `DIR/bench-ecdsa.key`.
//! - `sink --port P --messages N [--cert F --key F]`: takes mail on 127.0.0.1:P and throws it
//!   away, offering STARTTLS when given a certificate; exits once it has answered `250` to the
//!   N-th message, printing `messages N sessions S tls_sessions T tls PROTOCOL/CIPHER`.
//! - `load --port P --sessions S --messages N --size L --from A --to B [--starttls]`: as
//!   `smtp-source -s S -m N -l L -f A -t B`: S sessions at a time, one message per connection
//!   (greeting, EHLO, STARTTLS and EHLO again when asked, MAIL, RCPT, DATA, QUIT), each message
//!   a few header lines and L bytes of payload. A message that fails is sent again, up to a
//!   limit. Prints `messages N failures F seconds S per_second R tls PROTOCOL/CIPHER`.
//! - `idle --port P --connections N [--starttls]`: opens N connections and takes each to the
//!   point where a client would send MAIL (greeting, EHLO, and STARTTLS and EHLO again when
//!   asked), prints `idle N tls PROTOCOL/CIPHER`, and holds them open until its standard input
//!   ends.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use postern_config::{CipherString, ProtocolRange, ServiceTls, TlsSettings, TlsVersion};
use postern_smtp::outbound::session::{DataOutcome, StartTls, mail_params};
use postern_smtp::outbound::{ClientSession, Timeouts};
use postern_smtp_proto::{DataDecoder, DataStatus, ForwardPath, LineBuffer, Reply, ReversePath};
use postern_tls::{Identity, KeyKind, Negotiated, TlsAcceptor, TlsConnector, Verification};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;

const USAGE: &str = "usage: smtp_bench cert --out DIR
       smtp_bench sink --port P --messages N [--cert FILE --key FILE]
       smtp_bench load --port P --sessions S --messages N --size L --from A --to B [--starttls]
       smtp_bench idle --port P --connections N [--starttls]";

/// The name in the benchmark certificate, and the one the clients ask for.
const SERVER_NAME: &str = "bench.example.com";
/// The clients' EHLO name.
const CLIENT_NAME: &str = "load.example.org";
/// Failed messages the load client sends again before it gives up.
const MAX_FAILURES: u64 = 100;
/// Connections the idle client opens at a time.
const OPENING: usize = 50;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        return Err(USAGE.into());
    };
    let options = Options(rest);
    match command.as_str() {
        "cert" => cert(&options),
        "sink" => sink(&options),
        "load" => load(&options),
        "idle" => idle(&options),
        _ => Err(USAGE.into()),
    }
}

fn cert(options: &Options<'_>) -> Result<()> {
    let dir = Path::new(options.text("--out")?);
    let (chain, key) = Identity::self_signed(SERVER_NAME, KeyKind::EcdsaP256)?.to_pem()?;
    fs::create_dir_all(dir)?;
    fs::write(dir.join("bench-ecdsa.crt"), chain)?;
    fs::write(dir.join("bench-ecdsa.key"), key)?;
    Ok(())
}

/// TLS v1.2 and v1.3 with the factory cipher string: what the peers of both relays offer.
fn policy() -> Result<ServiceTls> {
    Ok(ServiceTls {
        protocols: ProtocolRange::new(TlsVersion::Tls1_2, TlsVersion::Tls1_3),
        ciphers: CipherString::new(TlsSettings::DEFAULT_CIPHERS)?,
    })
}

/// How many sessions negotiated each protocol and cipher.
#[derive(Debug, Default)]
struct TlsCounts(Mutex<BTreeMap<String, u64>>);

impl TlsCounts {
    fn add(&self, negotiated: &Negotiated) {
        let key = format!("{}/{}", negotiated.protocol(), negotiated.cipher);
        *self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default() += 1;
    }

    fn total(&self) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .sum()
    }

    /// The most frequent `PROTOCOL/CIPHER`, or `none`.
    fn most(&self) -> String {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .max_by_key(|(_, n)| **n)
            .map_or_else(|| "none".to_owned(), |(k, _)| k.clone())
    }
}

// --- sink -------------------------------------------------------------------------------------

/// What the sink's sessions share.
#[derive(Debug)]
struct Sink {
    target: u64,
    received: AtomicU64,
    sessions: AtomicU64,
    tls: TlsCounts,
    /// Told when the `target`-th message has had its `250`.
    done: Notify,
}

fn sink(options: &Options<'_>) -> Result<()> {
    let port: u16 = options.number("--port")?;
    let target: u64 = options.number("--messages")?;
    let acceptor = match options.optional("--cert") {
        Some(cert) => {
            let identity =
                Identity::from_pem(&fs::read(cert)?, &fs::read(options.text("--key")?)?)?;
            Some(TlsAcceptor::new(&policy()?, &[identity])?)
        }
        None => None,
    };
    let sink = Arc::new(Sink {
        target,
        received: AtomicU64::new(0),
        sessions: AtomicU64::new(0),
        tls: TlsCounts::default(),
        done: Notify::new(),
    });
    let shared = sink.clone();
    one_thread()?.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let (sink, acceptor) = (shared.clone(), acceptor.clone());
                    tokio::spawn(async move {
                        sink.sessions.fetch_add(1, Ordering::Relaxed);
                        // A relay that goes away mid-session is the relay's business.
                        let _ = serve_sink(stream, acceptor.as_ref(), &sink).await;
                    });
                }
                () = shared.done.notified() => break,
            }
        }
        Ok::<_, BoxError>(())
    })?;
    println!(
        "messages {} sessions {} tls_sessions {} tls {}",
        sink.received.load(Ordering::Relaxed),
        sink.sessions.load(Ordering::Relaxed),
        sink.tls.total(),
        sink.tls.most()
    );
    Ok(())
}

/// A connection in clear text or after STARTTLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One session of the sink: every command accepted, every message counted and dropped.
async fn serve_sink(stream: TcpStream, acceptor: Option<&TlsAcceptor>, sink: &Sink) -> Result<()> {
    let mut conn: Box<dyn Io> = Box::new(stream);
    let mut lines = LineBuffer::new();
    let mut out = b"220 sink.example.test ESMTP smtp_bench\r\n".to_vec();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut body = Vec::with_capacity(64 * 1024);
    let mut tls = false;
    loop {
        while let Some(line) = lines.next_line() {
            let Ok(line) = line else {
                out.extend_from_slice(b"500 5.5.2 Error: bad syntax\r\n");
                continue;
            };
            let verb = line
                .as_bytes()
                .split(|b| *b == b' ')
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            match verb.as_slice() {
                b"EHLO" => {
                    out.extend_from_slice(
                        b"250-sink.example.test\r\n250-PIPELINING\r\n250-SIZE 0\r\n250-8BITMIME\r\n",
                    );
                    if acceptor.is_some() && !tls {
                        out.extend_from_slice(b"250-STARTTLS\r\n");
                    }
                    out.extend_from_slice(b"250 ENHANCEDSTATUSCODES\r\n");
                }
                b"HELO" => out.extend_from_slice(b"250 sink.example.test\r\n"),
                b"MAIL" => out.extend_from_slice(b"250 2.1.0 Ok\r\n"),
                b"RCPT" => out.extend_from_slice(b"250 2.1.5 Ok\r\n"),
                b"RSET" | b"NOOP" => out.extend_from_slice(b"250 2.0.0 Ok\r\n"),
                b"QUIT" => {
                    out.extend_from_slice(b"221 2.0.0 Bye\r\n");
                    conn.write_all(&out).await?;
                    let _ = conn.shutdown().await;
                    return Ok(());
                }
                b"STARTTLS" => match acceptor {
                    Some(acceptor) if !tls => {
                        out.extend_from_slice(b"220 2.0.0 Ready to start TLS\r\n");
                        conn.write_all(&out).await?;
                        out.clear();
                        // Nothing sent before the handshake counts after it (RFC 3207 4.2).
                        lines.clear();
                        let (stream, negotiated) = acceptor
                            .accept(conn)
                            .await
                            .map_err(|e| format!("handshake: {e}"))?;
                        sink.tls.add(&negotiated);
                        conn = Box::new(stream);
                        tls = true;
                    }
                    _ => out.extend_from_slice(b"454 4.7.0 TLS not available\r\n"),
                },
                b"DATA" => {
                    out.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
                    conn.write_all(&out).await?;
                    out.clear();
                    let mut decoder = DataDecoder::new(1 << 40);
                    let mut input = lines.take_pending();
                    loop {
                        match decoder.decode(&input, &mut body) {
                            DataStatus::Done { consumed, .. } => {
                                lines.push(&input[consumed..]);
                                break;
                            }
                            DataStatus::NeedMore => {
                                let n = conn.read(&mut chunk).await?;
                                if n == 0 {
                                    return Ok(());
                                }
                                input.clear();
                                input.extend_from_slice(&chunk[..n]);
                            }
                        }
                    }
                    body.clear();
                    out.extend_from_slice(b"250 2.0.0 Ok: queued\r\n");
                    conn.write_all(&out).await?;
                    out.clear();
                    if sink.received.fetch_add(1, Ordering::Relaxed) + 1 == sink.target {
                        sink.done.notify_one();
                    }
                }
                _ => out.extend_from_slice(b"502 5.5.2 Error: command not recognized\r\n"),
            }
        }
        if !out.is_empty() {
            conn.write_all(&out).await?;
            out.clear();
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        lines.push(&chunk[..n]);
    }
}

// --- load -------------------------------------------------------------------------------------

/// What every message of the load client carries.
#[derive(Debug)]
struct Load {
    addr: SocketAddr,
    connector: Option<TlsConnector>,
    sender: ReversePath,
    recipient: ForwardPath,
    /// The header lines after `Message-Id`, the blank line, and the payload.
    rest: Vec<u8>,
    from: String,
    to: String,
    /// Messages not sent yet.
    remaining: AtomicU64,
    sent: AtomicU64,
    failures: AtomicU64,
    first_failure: Mutex<Option<String>>,
    tls: TlsCounts,
}

fn load(options: &Options<'_>) -> Result<()> {
    let port: u16 = options.number("--port")?;
    let sessions: usize = options.number("--sessions")?;
    let messages: u64 = options.number("--messages")?;
    let size: usize = options.number("--size")?;
    let (from, to) = (options.text("--from")?, options.text("--to")?);
    let connector = if options.flag("--starttls") {
        Some(TlsConnector::new(&policy()?, &Verification::None)?)
    } else {
        None
    };
    let load = Arc::new(Load {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        connector,
        sender: ReversePath::parse(&format!("<{from}>"), false)?,
        recipient: ForwardPath::parse(&format!("<{to}>"), false)?,
        rest: payload(size),
        from: from.to_owned(),
        to: to.to_owned(),
        remaining: AtomicU64::new(messages),
        sent: AtomicU64::new(0),
        failures: AtomicU64::new(0),
        first_failure: Mutex::new(None),
        tls: TlsCounts::default(),
    });
    let began = Instant::now();
    let workers = load.clone();
    one_thread()?.block_on(async move {
        let mut tasks = JoinSet::new();
        for _ in 0..sessions {
            let load = workers.clone();
            tasks.spawn(async move { load_worker(&load).await });
        }
        while tasks.join_next().await.is_some() {}
    });
    let seconds = began.elapsed().as_secs_f64();
    let sent = load.sent.load(Ordering::Relaxed);
    let failures = load.failures.load(Ordering::Relaxed);
    if let Some(first) = &*load
        .first_failure
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
    {
        eprintln!("smtp_bench load: first failure: {first}");
    }
    println!(
        "messages {sent} failures {failures} seconds {seconds:.3} per_second {:.1} tls {}",
        sent as f64 / seconds,
        load.tls.most()
    );
    if sent < messages {
        return Err(format!("{sent} of {messages} messages sent").into());
    }
    Ok(())
}

/// One session at a time until no message is left; a failed message goes back on the pile.
async fn load_worker(load: &Load) {
    loop {
        let taken = load
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        let Ok(id) = taken else { return };
        match send_one(load, id).await {
            Ok(()) => {
                load.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                load.remaining.fetch_add(1, Ordering::Relaxed);
                let failures = load.failures.fetch_add(1, Ordering::Relaxed) + 1;
                load.first_failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert_with(|| e.to_string());
                if failures >= MAX_FAILURES {
                    load.remaining.store(0, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}

/// One connection, one message.
async fn send_one(load: &Load, id: u64) -> Result<()> {
    let mut session = open(load.addr, load.connector.as_ref(), &load.tls).await?;
    let mut message = format!(
        "From: <{}>\r\nTo: <{}>\r\nDate: {}\r\nMessage-Id: <{}.{id}@{CLIENT_NAME}>\r\n",
        load.from,
        load.to,
        chrono::Utc::now().to_rfc2822(),
        std::process::id(),
    )
    .into_bytes();
    message.extend_from_slice(&load.rest);
    let params = mail_params(session.capabilities(), &message, false);
    let (mail, rcpts) = session
        .envelope(&load.sender, params, std::slice::from_ref(&load.recipient))
        .await?;
    expect(&mail, "MAIL")?;
    for rcpt in &rcpts {
        expect(rcpt, "RCPT")?;
    }
    match session.data(&message).await? {
        DataOutcome::Sent(reply) => expect(&reply, "the message")?,
        DataOutcome::Refused(reply) => return Err(format!("DATA: {reply}").into()),
    }
    session.quit().await;
    Ok(())
}

/// A session taken to where MAIL may be sent: greeting, EHLO, and with `connector` STARTTLS and
/// EHLO again.
async fn open(
    addr: SocketAddr,
    connector: Option<&TlsConnector>,
    tls: &TlsCounts,
) -> Result<ClientSession<TcpStream>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut session = ClientSession::new(stream, Timeouts::default());
    expect(&session.greeting().await?, "the greeting")?;
    expect(&session.hello(CLIENT_NAME).await?, "EHLO")?;
    if let Some(connector) = connector {
        match session.starttls(connector, SERVER_NAME).await? {
            StartTls::Done(negotiated) => tls.add(&negotiated),
            StartTls::Refused(reply) => return Err(format!("STARTTLS refused: {reply}").into()),
            StartTls::Failed(failure) => return Err(format!("handshake: {failure}").into()),
        }
        expect(&session.hello(CLIENT_NAME).await?, "EHLO after STARTTLS")?;
    }
    Ok(session)
}

/// A `2xx` reply, or an error that names the step.
fn expect(reply: &Reply, step: &str) -> Result<()> {
    if reply.is_positive_completion() {
        Ok(())
    } else {
        Err(format!("{step}: {reply}").into())
    }
}

/// The header lines after `Message-Id`, a blank line, and `size` bytes of payload in lines of
/// 80 (as `smtp-source -l` sends).
fn payload(size: usize) -> Vec<u8> {
    let mut out = b"Subject: postern smtp bench\r\n\r\n".to_vec();
    let start = out.len();
    let mut line = 0usize;
    while out.len() - start < size {
        line += 1;
        let left = size - (out.len() - start);
        let mut text = format!("{line}");
        let width = left.min(80).saturating_sub(2).max(text.len());
        while text.len() < width {
            text.push('X');
        }
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

// --- idle -------------------------------------------------------------------------------------

fn idle(options: &Options<'_>) -> Result<()> {
    let port: u16 = options.number("--port")?;
    let connections: usize = options.number("--connections")?;
    let connector = if options.flag("--starttls") {
        Some(TlsConnector::new(&policy()?, &Verification::None)?)
    } else {
        None
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let tls = Arc::new(TlsCounts::default());
    let runtime = one_thread()?;
    let sessions = runtime.block_on(async {
        let mut sessions = Vec::with_capacity(connections);
        let mut opening = JoinSet::new();
        for _ in 0..connections {
            if opening.len() >= OPENING
                && let Some(opened) = opening.join_next().await
            {
                sessions.push(opened??);
            }
            let (connector, tls) = (connector.clone(), tls.clone());
            opening.spawn(async move { open(addr, connector.as_ref(), &tls).await });
        }
        while let Some(opened) = opening.join_next().await {
            sessions.push(opened??);
        }
        Ok::<_, BoxError>(sessions)
    })?;
    println!("idle {} tls {}", sessions.len(), tls.most());
    io::stdout().flush()?;
    // Held until whoever started us closes our standard input (or goes away).
    io::stdin().read_to_end(&mut Vec::new())?;
    drop(sessions);
    drop(runtime);
    Ok(())
}

// --- common -----------------------------------------------------------------------------------

/// The command-line options after the subcommand, as `--name value` pairs and `--flag`s.
struct Options<'a>(&'a [String]);

impl Options<'_> {
    fn optional(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.0.get(i + 1))
            .map(String::as_str)
    }

    fn text(&self, name: &str) -> Result<&str> {
        self.optional(name)
            .ok_or_else(|| format!("{name} is missing\n{USAGE}").into())
    }

    fn number<T>(&self, name: &str) -> Result<T>
    where
        T: std::str::FromStr,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        Ok(self.text(name)?.parse()?)
    }

    fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
}

/// A runtime on the calling thread only: one core's worth of work, as Postfix's single-process
/// `smtp-source` and `smtp-sink`.
fn one_thread() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
