//! Delivery against real peers on loopback: a small SMTP sink (plain, or with STARTTLS by the
//! TLS engine, told to refuse chosen recipients, to stop offering STARTTLS or to hang up in the
//! middle of DATA) that records what it receives, and the real queue and mail log in a
//! temporary data directory. Routes point at the sinks, so no test needs DNS.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postern_config::{
    CipherString, DeliverySettings, DestinationControl, DestinationTls, DomainPattern,
    ProtocolRange, RouteHost, ServiceTls, TlsSettings,
};
use postern_logs::{SharedLog, Subscription};
use postern_smtp_proto::{Command, DataDecoder, DataStatus, LineBuffer, Reply};
use postern_tls::{Identity, KeyKind, TlsAcceptor};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::session::Step;
use super::*;
use crate::queue::{Envelope, RecipientStatus};

// ---------------------------------------------------------------------------------------------
// The sink

/// One message the sink took.
#[derive(Debug, Clone)]
struct Received {
    helo: String,
    /// `TLSv1.3 TLS_AES_256_GCM_SHA384`, when the message came over TLS.
    tls: Option<String>,
    sender: String,
    recipients: Vec<String>,
    body: Vec<u8>,
}

/// What the sink does; tests change it while it runs.
#[derive(Debug, Default)]
struct Behaviour {
    /// Recipients answered with this reply line every time (`550 5.1.1 No such user`).
    refuse: HashMap<String, String>,
    /// Recipients answered `451 4.2.0 Try again later` the first time only.
    defer_once: HashSet<String>,
    /// Hang up after the first bytes of the message.
    drop_in_data: bool,
    /// Answer EHLO with `502`.
    no_ehlo: bool,
    /// Greet with this instead of `220`.
    greeting: Option<String>,
    /// Wait this long before answering the end of a message.
    data_delay: Duration,
}

#[derive(Debug, Default)]
struct Record {
    received: Vec<Received>,
    connections: usize,
    open: usize,
    most_open: usize,
    mail_commands: usize,
}

struct Sink {
    address: SocketAddr,
    record: Arc<Mutex<Record>>,
    behaviour: Arc<Mutex<Behaviour>>,
    task: JoinHandle<()>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Sink {
    /// A sink on a free loopback port; STARTTLS is offered when `tls` is given.
    async fn start(tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let record = Arc::new(Mutex::new(Record::default()));
        let behaviour = Arc::new(Mutex::new(Behaviour::default()));
        let (r, b) = (record.clone(), behaviour.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (r, b, tls) = (r.clone(), b.clone(), tls.clone());
                tokio::spawn(async move {
                    {
                        let mut r = r.lock().unwrap();
                        r.connections += 1;
                        r.open += 1;
                        r.most_open = r.most_open.max(r.open);
                    }
                    SinkSession::new(Box::new(stream), tls, r.clone(), b)
                        .serve()
                        .await;
                    r.lock().unwrap().open -= 1;
                });
            }
        });
        Self {
            address,
            record,
            behaviour,
            task,
        }
    }

    /// A sink offering STARTTLS with a new self-signed certificate for `name`, within `selection`
    /// (`sslconfig` menu numbers: `2` is TLS v1.2 only).
    async fn with_tls(name: &str, selection: &str) -> (Self, Identity) {
        let identity = Identity::self_signed(name, KeyKind::EcdsaP256).unwrap();
        let acceptor =
            TlsAcceptor::new(&tls_policy(selection), std::slice::from_ref(&identity)).unwrap();
        (Self::start(Some(acceptor)).await, identity)
    }

    fn behave(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.behaviour.lock().unwrap());
    }

    fn received(&self) -> Vec<Received> {
        self.record.lock().unwrap().received.clone()
    }

    fn connections(&self) -> usize {
        self.record.lock().unwrap().connections
    }

    fn most_open(&self) -> usize {
        self.record.lock().unwrap().most_open
    }

    fn mail_commands(&self) -> usize {
        self.record.lock().unwrap().mail_commands
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection to the sink.
struct SinkSession {
    stream: Box<dyn Io>,
    lines: LineBuffer,
    acceptor: Option<TlsAcceptor>,
    record: Arc<Mutex<Record>>,
    behaviour: Arc<Mutex<Behaviour>>,
    helo: String,
    tls: Option<String>,
    sender: Option<String>,
    recipients: Vec<String>,
}

impl SinkSession {
    fn new(
        stream: Box<dyn Io>,
        acceptor: Option<TlsAcceptor>,
        record: Arc<Mutex<Record>>,
        behaviour: Arc<Mutex<Behaviour>>,
    ) -> Self {
        Self {
            stream,
            lines: LineBuffer::new(),
            acceptor,
            record,
            behaviour,
            helo: String::new(),
            tls: None,
            sender: None,
            recipients: Vec::new(),
        }
    }

    async fn send(&mut self, text: &str) -> bool {
        self.stream.write_all(text.as_bytes()).await.is_ok()
    }

    async fn read_more(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.lines.push(&chunk[..n]);
                true
            }
        }
    }

    async fn serve(mut self) {
        let refusal = self.behaviour.lock().unwrap().greeting.clone();
        if let Some(greeting) = refusal {
            self.send(&format!("{greeting}\r\n")).await;
            return;
        }
        if !self.send("220 sink.test ESMTP\r\n").await {
            return;
        }
        loop {
            while let Some(line) = self.lines.next_line() {
                let Ok(line) = line else {
                    self.send("500 5.5.2 Bad line\r\n").await;
                    continue;
                };
                if !self.command(line.as_bytes()).await {
                    return;
                }
            }
            if !self.read_more().await {
                return;
            }
        }
    }

    /// Answers one command; false when the connection is over.
    async fn command(&mut self, line: &[u8]) -> bool {
        let Ok(command) = Command::parse_with(line, true) else {
            return self.send("500 5.5.1 Unrecognized command\r\n").await;
        };
        match command {
            Command::Ehlo(name) => {
                if self.behaviour.lock().unwrap().no_ehlo {
                    return self.send("502 5.5.1 EHLO not implemented\r\n").await;
                }
                self.helo = name;
                let mut reply = "250-sink.test\r\n250-PIPELINING\r\n250-SIZE 10000000\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n".to_owned();
                if self.acceptor.is_some() && self.tls.is_none() {
                    reply.push_str("250-STARTTLS\r\n");
                }
                reply.push_str("250 SMTPUTF8\r\n");
                self.send(&reply).await
            }
            Command::Helo(name) => {
                self.helo = name;
                self.send("250 sink.test\r\n").await
            }
            Command::StartTls => {
                let Some(acceptor) = self.acceptor.clone().filter(|_| self.tls.is_none()) else {
                    return self.send("454 4.7.0 TLS not available\r\n").await;
                };
                if !self.send("220 2.0.0 Ready to start TLS\r\n").await {
                    return false;
                }
                self.lines.clear();
                let plain = std::mem::replace(&mut self.stream, Box::new(tokio::io::empty()));
                match acceptor.accept(plain).await {
                    Ok((tls, negotiated)) => {
                        self.stream = Box::new(tls);
                        self.tls = Some(format!("{} {}", negotiated.protocol(), negotiated.cipher));
                        self.helo.clear();
                        true
                    }
                    Err(_) => false,
                }
            }
            Command::Mail { from, .. } => {
                self.record.lock().unwrap().mail_commands += 1;
                let from = from.to_string();
                self.sender = Some(from.trim_matches(['<', '>']).to_owned());
                self.recipients.clear();
                self.send("250 2.1.0 Sender ok\r\n").await
            }
            Command::Rcpt { to, .. } => {
                let to = to.to_string().trim_matches(['<', '>']).to_owned();
                let reply = {
                    let mut b = self.behaviour.lock().unwrap();
                    if let Some(reply) = b.refuse.get(&to) {
                        Some(reply.clone())
                    } else if b.defer_once.remove(&to) {
                        Some("451 4.2.0 Try again later".to_owned())
                    } else {
                        None
                    }
                };
                match reply {
                    Some(reply) => self.send(&format!("{reply}\r\n")).await,
                    None => {
                        self.recipients.push(to);
                        self.send("250 2.1.5 Recipient ok\r\n").await
                    }
                }
            }
            Command::Data => self.data().await,
            Command::Rset => {
                self.sender = None;
                self.recipients.clear();
                self.send("250 2.0.0 Ok\r\n").await
            }
            Command::Quit => {
                self.send("221 2.0.0 Bye\r\n").await;
                false
            }
            _ => self.send("250 2.0.0 Ok\r\n").await,
        }
    }

    async fn data(&mut self) -> bool {
        if self.sender.is_none() || self.recipients.is_empty() {
            return self.send("554 5.5.1 No valid recipients\r\n").await;
        }
        if !self.send("354 Go ahead\r\n").await {
            return false;
        }
        let (drop_in_data, delay) = {
            let b = self.behaviour.lock().unwrap();
            (b.drop_in_data, b.data_delay)
        };
        let mut decoder = DataDecoder::new(u64::MAX);
        let mut body = Vec::new();
        let mut input = self.lines.take_pending();
        loop {
            match decoder.decode(&input, &mut body) {
                DataStatus::Done { consumed, result } => {
                    self.lines.push(&input[consumed..]);
                    if result.is_err() {
                        return self.send("554 5.6.11 Bad message\r\n").await;
                    }
                    break;
                }
                DataStatus::NeedMore => {
                    if drop_in_data && !body.is_empty() {
                        return false;
                    }
                    input.resize(8192, 0);
                    match self.stream.read(&mut input).await {
                        Ok(0) | Err(_) => return false,
                        Ok(n) => input.truncate(n),
                    }
                }
            }
        }
        tokio::time::sleep(delay).await;
        let received = Received {
            helo: self.helo.clone(),
            tls: self.tls.clone(),
            sender: self.sender.take().unwrap_or_default(),
            recipients: std::mem::take(&mut self.recipients),
            body,
        };
        self.record.lock().unwrap().received.push(received);
        self.send("250 2.0.0 Ok: queued\r\n").await
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway

fn tls_policy(selection: &str) -> ServiceTls {
    ServiceTls {
        protocols: ProtocolRange::from_selection(selection).unwrap(),
        ciphers: CipherString::new(TlsSettings::DEFAULT_CIPHERS).unwrap(),
    }
}

/// Routes from each domain to a sink, and one TLS setting for every destination.
fn settings(routes: &[(&str, &Sink)], tls: DestinationTls) -> DeliverySettings {
    DeliverySettings {
        routes: routes
            .iter()
            .map(|(domain, sink)| {
                (
                    DomainPattern::new(domain).unwrap(),
                    vec![RouteHost::new(&sink.address.to_string()).unwrap()],
                )
            })
            .collect(),
        destinations: BTreeMap::from([(
            DomainPattern::new("ALL").unwrap(),
            DestinationControl {
                tls,
                max_concurrency: 5,
            },
        )]),
        max_queue_age: DeliverySettings::DEFAULT_MAX_QUEUE_AGE,
    }
}

fn policy(settings: &DeliverySettings, outbound: &str) -> DeliveryPolicy {
    DeliveryPolicy::new(
        "gw.example.org",
        settings,
        &tls_policy(outbound),
        &CaRoots::default(),
    )
    .unwrap()
}

struct Gateway {
    dir: tempfile::TempDir,
    queue: Queue,
    policy: watch::Sender<Arc<DeliveryPolicy>>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Gateway {
    /// A queue and mail log in a temporary directory, not delivering yet.
    async fn new(policy: DeliveryPolicy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::open(dir.path().join("queue")).await.unwrap().queue;
        Self {
            dir,
            queue,
            policy: watch::channel(Arc::new(policy)).0,
            shutdown: watch::channel(false).0,
            task: None,
        }
    }

    /// Starts delivering, retries a second apart.
    fn start(&mut self) {
        let log = SharedLog::open(self.dir.path(), Subscription::MailLogs, false).unwrap();
        let options = DeliveryOptions {
            retry: RetrySchedule {
                first_delay: 1,
                max_delay: 1,
                max_age: 0,
            },
            timeouts: Timeouts {
                connect: Duration::from_secs(5),
                greeting: Duration::from_secs(5),
                command: Duration::from_secs(5),
                data_start: Duration::from_secs(5),
                data_block: Duration::from_secs(5),
                data_end: Duration::from_secs(5),
            },
            ..DeliveryOptions::default()
        };
        let delivery = Delivery::new(self.queue.clone(), log, options);
        self.task = Some(tokio::spawn(delivery.run(
            self.policy.subscribe(),
            self.shutdown.subscribe(),
            Duration::from_secs(5),
        )));
    }

    async fn started(policy: DeliveryPolicy) -> Self {
        let mut gateway = Self::new(policy).await;
        gateway.start();
        gateway
    }

    async fn submit(&self, sender: &str, recipients: &[&str], body: &[u8]) -> MessageId {
        let mid = self.queue.reserve_mid().await.unwrap();
        let envelope = Envelope {
            mid,
            icid: 1,
            sender: sender.to_owned(),
            recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
            received: unix_now(),
            size: body.len() as u64,
        };
        self.queue.accept(envelope, body.to_vec()).await.unwrap()
    }

    fn set_policy(&self, policy: DeliveryPolicy) {
        self.policy.send_replace(Arc::new(policy));
    }

    fn log(&self) -> String {
        std::fs::read_to_string(Subscription::MailLogs.current_path(self.dir.path()))
            .unwrap_or_default()
    }

    /// Waits until `done` holds, failing the test with the mail log after 20 s.
    async fn until(&self, what: &str, done: impl Fn() -> bool) {
        for _ in 0..1000 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{what} did not happen; mail log:\n{}", self.log());
    }

    /// Waits until the first recipient of `mid` has been deferred at least once. Not "exactly
    /// once": retries a second apart in whole seconds can follow one another at once.
    async fn until_deferred(&self, mid: MessageId) {
        self.until("the deferral", || {
            self.attempts(mid, 0).is_some_and(|n| n >= 1)
        })
        .await;
    }

    async fn until_logged(&self, text: &str) {
        self.until(&format!("'{text}' in the log"), || {
            self.log().contains(text)
        })
        .await;
    }

    /// Waits for the end of connection `dcid`: everything it did is in the log then.
    async fn until_closed(&self, dcid: u64) {
        self.until_logged(&format!("Info: DCID {dcid} close\n"))
            .await;
    }

    /// The failed attempts of a queued recipient; `None` once it is no longer pending.
    fn attempts(&self, mid: MessageId, rid: u32) -> Option<u32> {
        match self.queue.message(mid)?.recipients.get(rid as usize)? {
            RecipientStatus::Pending { attempts, .. } => Some(*attempts),
            _ => None,
        }
    }

    /// The DCIDs of the `New SMTP DCID` lines, in order.
    fn dcids(&self) -> Vec<u64> {
        self.log()
            .lines()
            .filter_map(|l| l.split("New SMTP DCID ").nth(1))
            .filter_map(|rest| rest.split(' ').next()?.parse().ok())
            .collect()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Each of `lines` is in `log`, in this order.
fn assert_in_order(log: &str, lines: &[String]) {
    let mut from = 0;
    for line in lines {
        match log[from..].find(line.as_str()) {
            Some(at) => from += at + line.len(),
            None => panic!("{line:?} is not in the log after what came before it:\n{log}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Delivery

/// Lines that start with dots, a line that is a dot, an 8-bit byte: what dot-stuffing must carry
/// through unchanged.
const TRICKY_BODY: &[u8] =
    b"Subject: dots\r\nFrom: <a@example.org>\r\n\r\n.leading dot\r\n..two dots\r\n.\r\ncaf\xc3\xa9\r\nend\r\n";

#[tokio::test]
async fn a_queued_message_is_delivered_exactly_and_logged_in_order() {
    let sink = Sink::start(None).await;
    let gw = Gateway::started(policy(
        &settings(&[("dest.test", &sink)], DestinationTls::Preferred),
        "1-2",
    ))
    .await;
    let mid = gw
        .submit(
            "a@example.org",
            &["b@dest.test", "c@Dest.Test"],
            TRICKY_BODY,
        )
        .await;
    gw.until("delivery", || gw.queue.message(mid).is_none())
        .await;
    gw.until_logged(&format!("Message finished MID {mid} done"))
        .await;

    let received = sink.received();
    assert_eq!(received.len(), 1, "both recipients in one transaction");
    let r = &received[0];
    assert_eq!(r.body, TRICKY_BODY);
    assert_eq!(r.sender, "a@example.org");
    // Domains are case-insensitive; the path is written with the domain in lower case.
    assert_eq!(r.recipients, ["b@dest.test", "c@dest.test"]);
    assert_eq!(r.helo, "gw.example.org");
    assert_eq!(r.tls, None, "the sink offers no STARTTLS");

    let dcid = gw.dcids()[0];
    let port = sink.address.port();
    assert_in_order(
        &gw.log(),
        &[
            format!(
                "Info: New SMTP DCID {dcid} interface 127.0.0.1 address 127.0.0.1 port {port}\n"
            ),
            format!("Info: Delivery start DCID {dcid} MID {mid} to RID [0, 1]\n"),
            format!("Info: Message done DCID {dcid} MID {mid} to RID [0, 1]\n"),
            format!("Info: Message finished MID {mid} done\n"),
            format!("Info: DCID {dcid} close\n"),
        ],
    );
    assert_eq!(gw.queue.stats().messages, 0);
}

/// The whole relay in one process: a client hands a message to the inbound listener, the queue
/// takes it, delivery passes it on to the route's sink.
#[tokio::test]
async fn a_message_received_inbound_is_relayed_to_its_route() {
    use crate::inbound::{Inbound, InboundListener, InboundPolicy};
    use postern_config::{RecipientAction, SmtpListener};

    let sink = Sink::start(None).await;
    let gw = Gateway::started(policy(
        &settings(&[("dest.test", &sink)], DestinationTls::Preferred),
        "1-2",
    ))
    .await;
    let log = SharedLog::open(gw.dir.path(), Subscription::MailLogs, false).unwrap();
    let bound = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = bound.local_addr().unwrap();
    let mut listener = SmtpListener::new(address);
    listener.recipient_access = BTreeMap::from([(
        DomainPattern::new("dest.test").unwrap(),
        RecipientAction::Accept,
    )]);
    let inbound_policy = InboundPolicy {
        hostname: "gw.example.org".to_owned(),
        listener: "IncomingMail".to_owned(),
        listener_ip: address.ip(),
        settings: listener,
        tls: None,
    };
    let inbound = Inbound::new(gw.queue.clone(), log);
    let (_policy, policy_rx) = watch::channel(Arc::new(inbound_policy));
    let serving = tokio::spawn(
        InboundListener::new(bound, policy_rx, inbound)
            .serve(gw.shutdown.subscribe(), Duration::from_secs(1)),
    );

    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut client = ClientSession::new(stream, Timeouts::default());
    assert_eq!(client.greeting().await.unwrap().code(), 220);
    client.hello("client.example.net").await.unwrap();
    let sender = postern_smtp_proto::ReversePath::parse("<a@example.net>", false).unwrap();
    let to = [postern_smtp_proto::ForwardPath::parse("<b@dest.test>", false).unwrap()];
    let params = session::mail_params(client.capabilities(), TRICKY_BODY, false);
    let (mail, rcpts) = client.envelope(&sender, params, &to).await.unwrap();
    assert_eq!((mail.code(), rcpts[0].code()), (250, 250));
    assert!(matches!(
        client.data(TRICKY_BODY).await.unwrap(),
        session::DataOutcome::Sent(r) if r.code() == 250
    ));
    client.quit().await;

    gw.until("the relay", || sink.received().len() == 1).await;
    let relayed = &sink.received()[0];
    assert_eq!(relayed.body, TRICKY_BODY);
    assert_eq!(relayed.sender, "a@example.net");
    assert_eq!(relayed.recipients, ["b@dest.test"]);
    let _ = gw.shutdown.send(true);
    serving.await.unwrap();
}

#[tokio::test]
async fn messages_due_at_once_share_one_connection() {
    let sink = Sink::start(None).await;
    let mut gw = Gateway::new(policy(
        &settings(&[("dest.test", &sink)], DestinationTls::Preferred),
        "1-2",
    ))
    .await;
    let mut mids = Vec::new();
    for i in 0..3 {
        let body = format!("Subject: {i}\r\n\r\nmessage {i}\r\n");
        mids.push(
            gw.submit(
                "a@example.org",
                &[&format!("r{i}@dest.test")],
                body.as_bytes(),
            )
            .await,
        );
    }
    gw.start();
    gw.until("delivery", || gw.queue.stats().messages == 0)
        .await;
    let dcid = gw.dcids()[0];
    gw.until_closed(dcid).await;
    assert_eq!(sink.connections(), 1);
    let bodies: Vec<Vec<u8>> = sink.received().into_iter().map(|r| r.body).collect();
    assert_eq!(
        bodies,
        (0..3)
            .map(|i| format!("Subject: {i}\r\n\r\nmessage {i}\r\n").into_bytes())
            .collect::<Vec<_>>(),
        "in the order they were queued"
    );
    assert_in_order(
        &gw.log(),
        &mids
            .iter()
            .map(|mid| format!("Message done DCID {dcid} MID {mid} to RID [0]"))
            .collect::<Vec<_>>(),
    );
}

#[tokio::test]
async fn a_destination_gets_no_more_connections_than_its_concurrency() {
    let sink = Sink::start(None).await;
    sink.behave(|b| b.data_delay = Duration::from_millis(20));
    let mut s = settings(&[("dest.test", &sink)], DestinationTls::No);
    s.destinations.insert(
        DomainPattern::new("dest.test").unwrap(),
        DestinationControl {
            tls: DestinationTls::No,
            max_concurrency: 2,
        },
    );
    let mut gw = Gateway::new(policy(&s, "1-2")).await;
    for i in 0..40 {
        gw.submit("a@example.org", &[&format!("r{i}@dest.test")], b"x\r\n")
            .await;
    }
    gw.start();
    gw.until("delivery", || gw.queue.stats().messages == 0)
        .await;
    assert_eq!(sink.received().len(), 40);
    assert_eq!(sink.most_open(), 2, "two connections at once, never more");
    assert_eq!(sink.connections(), 2, "each carrying half of the messages");
}

// ---------------------------------------------------------------------------------------------
// TLS

#[tokio::test]
async fn starttls_preferred_negotiates_tls_1_3() {
    let (sink, _) = Sink::with_tls("dest.test", "1-3").await;
    let gw = Gateway::started(policy(
        &settings(&[("dest.test", &sink)], DestinationTls::Preferred),
        "1-2",
    ))
    .await;
    let mid = gw
        .submit("a@example.org", &["b@dest.test"], TRICKY_BODY)
        .await;
    gw.until("delivery", || gw.queue.message(mid).is_none())
        .await;
    let received = sink.received();
    assert_eq!(
        received[0].tls.as_deref(),
        Some("TLSv1.3 TLS_AES_256_GCM_SHA384")
    );
    assert_eq!(received[0].body, TRICKY_BODY);
    assert_eq!(received[0].helo, "gw.example.org", "EHLO again after TLS");
    let dcid = gw.dcids()[0];
    gw.until_closed(dcid).await;
    assert_in_order(
        &gw.log(),
        &[
            format!("New SMTP DCID {dcid} "),
            format!(
                "Info: DCID {dcid} TLS success protocol TLSv1.3 cipher TLS_AES_256_GCM_SHA384\n"
            ),
            format!("Delivery start DCID {dcid} MID {mid} to RID [0]"),
            format!("Message done DCID {dcid} MID {mid} to RID [0]"),
            format!("Message finished MID {mid} done"),
            format!("DCID {dcid} close"),
        ],
    );
}

/// The seed's case: Outbound SMTP allows TLS v1.3 only and the destination speaks TLS v1.2 at
/// most (rustls on our side).
#[tokio::test]
async fn a_tls_version_mismatch_defers_until_the_policy_is_widened() {
    version_mismatch_until_widened("2", "1", "1-2", "TLSv1.2 ECDHE-").await;
}

/// The other way round, on the legacy engine: Outbound SMTP at its factory TLS v1.1-v1.2 and a
/// destination that speaks TLS v1.3 only.
#[tokio::test]
async fn a_tls_version_mismatch_on_the_legacy_engine_defers_too() {
    version_mismatch_until_widened("1", "2-3", "1-3", "TLSv1.3 TLS_AES_256_GCM_SHA384").await;
}

/// A sink within `sink` and Outbound SMTP within `outbound`, which do not meet: the message is
/// deferred with the reference's line and never sent in clear text; once Outbound SMTP is
/// widened to `widened`, the next attempt delivers it with `negotiated`.
async fn version_mismatch_until_widened(
    sink: &str,
    outbound: &str,
    widened: &str,
    negotiated: &str,
) {
    let (sink, _) = Sink::with_tls("dest.test", sink).await;
    let routes = settings(&[("dest.test", &sink)], DestinationTls::Preferred);
    let gw = Gateway::started(policy(&routes, outbound)).await;
    let mid = gw
        .submit("a@example.org", &["b@dest.test"], TRICKY_BODY)
        .await;
    gw.until_deferred(mid).await;
    let dcid = gw.dcids()[0];
    gw.until_closed(dcid).await;
    let log = gw.log();
    let deferring = log
        .lines()
        .find(|l| l.contains("TLS deferring"))
        .unwrap_or_default();
    assert!(
        deferring.contains(&format!("Info: DCID {dcid} TLS deferring: (")),
        "{log}"
    );
    assert!(
        deferring.ends_with("') TLS version mismatch could be the failure reason"),
        "{log}"
    );
    assert_in_order(
        &log,
        &[
            format!("New SMTP DCID {dcid} "),
            format!("DCID {dcid} TLS deferring: ("),
            format!("Delayed: DCID {dcid} MID {mid} to RID 0 - 4.7.0 - TLS negotiation failed\n"),
            format!("DCID {dcid} close"),
        ],
    );
    assert_eq!(
        sink.mail_commands(),
        0,
        "never in clear text after STARTTLS"
    );
    assert!(!log.contains("Delivery start"), "{log}");

    // The administrator widens Outbound SMTP: the next connection uses the new policy.
    gw.set_policy(policy(&routes, widened));
    gw.until("delivery", || gw.queue.message(mid).is_none())
        .await;
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert!(
        received[0]
            .tls
            .as_deref()
            .is_some_and(|t| t.starts_with(negotiated)),
        "{received:?}"
    );
    assert_eq!(received[0].body, TRICKY_BODY);
    gw.until_logged(&format!("Message finished MID {mid} done"))
        .await;
    let protocol = negotiated.replacen(' ', " cipher ", 1);
    assert!(
        gw.log()
            .contains(&format!("TLS success protocol {protocol}")),
        "{}",
        gw.log()
    );
}

#[tokio::test]
async fn required_tls_without_starttls_defers_and_sends_nothing() {
    let sink = Sink::start(None).await;
    let gw = Gateway::started(policy(
        &settings(&[("dest.test", &sink)], DestinationTls::Required),
        "1-2",
    ))
    .await;
    let mid = gw
        .submit("a@example.org", &["b@dest.test"], b"secret\r\n")
        .await;
    gw.until_deferred(mid).await;
    let dcid = gw.dcids()[0];
    gw.until_closed(dcid).await;
    assert_in_order(
        &gw.log(),
        &[format!(
            "Delayed: DCID {dcid} MID {mid} to RID 0 - 4.7.0 - TLS was required but the destination does not offer STARTTLS\n"
        )],
    );
    assert_eq!(sink.mail_commands(), 0);
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn no_tls_never_starts_tls() {
    let (sink, _) = Sink::with_tls("dest.test", "1-3").await;
    let gw = Gateway::started(policy(
        &settings(&[("dest.test", &sink)], DestinationTls::No),
        "1-2",
    ))
    .await;
    let mid = gw
        .submit("a@example.org", &["b@dest.test"], b"plain\r\n")
        .await;
    gw.until("delivery", || gw.queue.message(mid).is_none())
        .await;
    assert_eq!(sink.received()[0].tls, None);
    assert!(!gw.log().contains("TLS success"));
}

#[tokio::test]
async fn verify_settings_check_the_chain_and_the_domain() {
    let (sink, identity) = Sink::with_tls("dest.test", "1-3").await;
    let (pem, _) = identity.to_pem().unwrap();
    let roots = CaRoots::from_pem(&pem);
    assert_eq!(roots.len(), 1);
    let s = settings(
        &[("dest.test", &sink), ("other.test", &sink)],
        DestinationTls::RequiredVerify,
    );
    let verified = DeliveryPolicy::new("gw.example.org", &s, &tls_policy("1-2"), &roots).unwrap();
    let gw = Gateway::started(verified).await;
    let good = gw
        .submit("a@example.org", &["b@dest.test"], b"one\r\n")
        .await;
    gw.until("delivery", || gw.queue.message(good).is_none())
        .await;
    assert!(sink.received()[0].tls.is_some());

    // The certificate names dest.test: mail for other.test must not go over it.
    let bad = gw
        .submit("a@example.org", &["b@other.test"], b"two\r\n")
        .await;
    gw.until_deferred(bad).await;
    let log = gw.log();
    let deferring = log
        .lines()
        .filter(|l| l.contains("TLS deferring: ("))
        .collect::<Vec<_>>();
    // Retries are a second apart in whole seconds: a second may have come already.
    assert!(!deferring.is_empty(), "{log}");
    assert!(
        deferring.iter().all(|l| !l.contains("version mismatch")),
        "{log}"
    );
    assert_eq!(sink.received().len(), 1);
}

/// sslconfig PEER_CERT_X509 reaches delivery: the destination's self-signed certificate,
/// trusted directly, verifies without it (above) and not with it.
#[tokio::test]
async fn x509_validation_refuses_a_directly_trusted_server_certificate() {
    let (sink, identity) = Sink::with_tls("dest.test", "1-3").await;
    let (pem, _) = identity.to_pem().unwrap();
    let roots = CaRoots::from_pem(&pem);
    let s = settings(&[("dest.test", &sink)], DestinationTls::RequiredVerify);
    let checks = PeerCertificateChecks {
        fqdn: false,
        x509: true,
    };
    let strict = DeliveryPolicy {
        tls: OutboundTls::new(&tls_policy("1-2"), &roots, checks).unwrap(),
        ..DeliveryPolicy::without_tls("gw.example.org", &s)
    };
    let gw = Gateway::started(strict).await;
    let mid = gw
        .submit("a@example.org", &["b@dest.test"], b"one\r\n")
        .await;
    gw.until_deferred(mid).await;
    let log = gw.log();
    assert!(log.contains("TLS deferring: ("), "{log}");
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn preferred_verify_delivers_over_tls_when_the_certificate_does_not_verify() {
    let (sink, _) = Sink::with_tls("dest.test", "1-3").await;
    let gw = Gateway::started(policy(
        &settings(&[("dest.test", &sink)], DestinationTls::PreferredVerify),
        "1-2",
    ))
    .await;
    let mid = gw
        .submit("a@example.org", &["b@dest.test"], b"hello\r\n")
        .await;
    gw.until("delivery", || gw.queue.message(mid).is_none())
        .await;
    let received = sink.received();
    assert!(received[0].tls.is_some(), "{received:?}");
    let dcids = gw.dcids();
    assert_eq!(dcids.len(), 2, "{}", gw.log());
    gw.until_closed(dcids[1]).await;
    assert_in_order(
        &gw.log(),
        &[
            format!("DCID {} TLS failed: (", dcids[0]),
            "certificate not verified for dest.test; delivering over TLS without verification\n"
                .to_owned(),
            format!("DCID {} close", dcids[0]),
            format!("DCID {} TLS success protocol TLSv1.3", dcids[1]),
            format!("Message done DCID {} MID {mid} to RID [0]", dcids[1]),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Failures: retry, bounce, expiry

#[tokio::test]
async fn a_4xx_recipient_is_retried_and_a_5xx_recipient_bounced_to_the_sender() {
    let sink = Sink::start(None).await;
    let senders = Sink::start(None).await;
    sink.behave(|b| {
        b.defer_once.insert("later@dest.test".to_owned());
        b.refuse.insert(
            "nobody@dest.test".to_owned(),
            "550 5.1.1 No such user".to_owned(),
        );
    });
    let gw = Gateway::started(policy(
        &settings(
            &[("dest.test", &sink), ("origin.test", &senders)],
            DestinationTls::Preferred,
        ),
        "1-2",
    ))
    .await;
    let body = b"Subject: for three\r\nMessage-ID: <m1@origin.test>\r\n\r\nhello\r\n";
    let mid = gw
        .submit(
            "alice@origin.test",
            &["ok@dest.test", "later@dest.test", "nobody@dest.test"],
            body,
        )
        .await;
    gw.until_logged(&format!("Message finished MID {mid} done"))
        .await;
    gw.until("the bounce", || senders.received().len() == 1)
        .await;

    let received = sink.received();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[0].recipients, ["ok@dest.test"]);
    assert_eq!(received[1].recipients, ["later@dest.test"]);
    assert!(received.iter().all(|r| r.body == body));

    // The notification to alice goes out over a connection of its own in between.
    let first = gw.dcids()[0];
    let second = gw
        .log()
        .split(&format!(" MID {mid} to RID [1]\n"))
        .next()
        .and_then(|before| before.rsplit("Delivery start DCID ").next())
        .and_then(|dcid| dcid.parse::<u64>().ok())
        .unwrap();
    assert!(second > first);
    assert_in_order(
        &gw.log(),
        &[
            format!("Delivery start DCID {first} MID {mid} to RID [0, 1, 2]"),
            format!("Message done DCID {first} MID {mid} to RID [0]\n"),
            format!(
                "Delayed: DCID {first} MID {mid} to RID 1 - 4.2.0 - Mailbox error ('451', ['4.2.0 Try again later'])\n"
            ),
            format!(
                "Bounced: DCID {first} MID {mid} to RID 2 - 5.1.0 - Unknown address error ('550', ['5.1.1 No such user'])\n"
            ),
            format!("DCID {first} close"),
            format!("Delivery start DCID {second} MID {mid} to RID [1]"),
            format!("Message done DCID {second} MID {mid} to RID [1]\n"),
            format!("Message finished MID {mid} done"),
        ],
    );

    let dsn = &senders.received()[0];
    assert_eq!(dsn.sender, "", "bounces come from the null sender");
    assert_eq!(dsn.recipients, ["alice@origin.test"]);
    let text = String::from_utf8_lossy(&dsn.body);
    for expected in [
        "From: Mail Delivery System <MAILER-DAEMON@gw.example.org>\r\n",
        "To: <alice@origin.test>\r\n",
        "Content-Type: multipart/report; report-type=delivery-status;",
        "Final-Recipient: rfc822; nobody@dest.test\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; 127.0.0.1\r\nDiagnostic-Code: smtp; 550 5.1.1 No such user\r\n",
        "Content-Type: text/rfc822-headers\r\n\r\nSubject: for three\r\nMessage-ID: <m1@origin.test>\r\n",
    ] {
        assert!(text.contains(expected), "{expected:?} not in\n{text}");
    }
    assert!(
        !text.contains("later@dest.test"),
        "only the bounced recipient"
    );
    assert_eq!(gw.queue.stats().messages, 0);
}

#[tokio::test]
async fn a_message_past_the_maximum_age_bounces() {
    let sink = Sink::start(None).await;
    let senders = Sink::start(None).await;
    sink.behave(|b| {
        b.refuse.insert(
            "slow@dest.test".to_owned(),
            "452 4.2.2 Mailbox full".to_owned(),
        );
    });
    let mut s = settings(
        &[("dest.test", &sink), ("origin.test", &senders)],
        DestinationTls::Preferred,
    );
    s.max_queue_age = 0;
    let gw = Gateway::started(policy(&s, "1-2")).await;
    let mid = gw
        .submit(
            "alice@origin.test",
            &["slow@dest.test"],
            b"Subject: x\r\n\r\nx\r\n",
        )
        .await;
    gw.until("the bounce", || senders.received().len() == 1)
        .await;
    gw.until_logged(&format!("Message finished MID {mid} done"))
        .await;
    let dcid = gw.dcids()[0];
    assert!(
        gw.log().contains(&format!(
            "Bounced: DCID {dcid} MID {mid} to RID 0 - 5.4.7 - Delivery expired (message too old) ('452', ['4.2.2 Mailbox full'])\n"
        )),
        "{}",
        gw.log()
    );
    let text = String::from_utf8_lossy(&senders.received()[0].body).into_owned();
    assert!(
        text.contains("Status: 5.4.7\r\nRemote-MTA: dns; 127.0.0.1\r\nDiagnostic-Code: smtp; 452 4.2.2 Mailbox full\r\n"),
        "{text}"
    );
    assert!(gw.queue.message(mid).is_none());
}

#[tokio::test]
async fn a_bounce_is_never_bounced() {
    let sink = Sink::start(None).await;
    let senders = Sink::start(None).await;
    sink.behave(|b| {
        b.refuse.insert(
            "gone@dest.test".to_owned(),
            "550 5.1.1 No such user".to_owned(),
        );
    });
    let gw = Gateway::started(policy(
        &settings(
            &[("ALL", &senders), ("dest.test", &sink)],
            DestinationTls::Preferred,
        ),
        "1-2",
    ))
    .await;
    let mid = gw.submit("", &["gone@dest.test"], b"a bounce\r\n").await;
    gw.until_logged(&format!("Message finished MID {mid} done"))
        .await;
    let log = gw.log();
    assert!(log.contains("Bounced: DCID "), "{log}");
    assert!(
        !log.contains("Start MID"),
        "no notification was made:\n{log}"
    );
    assert_eq!(gw.queue.stats().messages, 0);
    assert!(senders.received().is_empty());
}

#[tokio::test]
async fn a_server_that_hangs_up_in_data_loses_nothing() {
    let sink = Sink::start(None).await;
    sink.behave(|b| b.drop_in_data = true);
    let gw = Gateway::started(policy(
        &settings(&[("dest.test", &sink)], DestinationTls::Preferred),
        "1-2",
    ))
    .await;
    let body: Vec<u8> = (0..2000)
        .flat_map(|i| format!("line {i} of a long message\r\n").into_bytes())
        .collect();
    let mid = gw.submit("a@example.org", &["b@dest.test"], &body).await;
    gw.until_deferred(mid).await;
    sink.behave(|b| b.drop_in_data = false);
    let dcid = gw.dcids()[0];
    gw.until_closed(dcid).await;
    assert!(
        gw.log().contains(&format!(
            "Delayed: DCID {dcid} MID {mid} to RID 0 - 4.4.2 - Bad connection ('000', ['"
        )),
        "{}",
        gw.log()
    );
    assert!(!gw.log().contains("Message done"));
    gw.until("delivery on the retry", || gw.queue.message(mid).is_none())
        .await;
    assert_eq!(sink.received()[0].body, body);
}

#[tokio::test]
async fn a_next_hop_that_refuses_connections_is_skipped() {
    // A port that is bound but does not listen: connections to it are refused, and without
    // SO_REUSEADDR no other listener can take it while the test runs.
    let refusing = tokio::net::TcpSocket::new_v4().unwrap();
    refusing.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let nobody = refusing.local_addr().unwrap();
    let sink = Sink::start(None).await;
    let mut s = settings(&[], DestinationTls::Preferred);
    s.routes.insert(
        DomainPattern::new("dest.test").unwrap(),
        vec![
            RouteHost::new(&nobody.to_string()).unwrap(),
            RouteHost::new(&sink.address.to_string()).unwrap(),
        ],
    );
    let gw = Gateway::started(policy(&s, "1-2")).await;
    let mid = gw.submit("a@example.org", &["b@dest.test"], b"x\r\n").await;
    gw.until("delivery", || gw.queue.message(mid).is_none())
        .await;
    let dcids = gw.dcids();
    assert_eq!(dcids.len(), 1);
    let log = gw.log();
    assert!(
        log.contains(&format!(
            "Connection Error: DCID {} domain: dest.test IP: 127.0.0.1 port: {} details: ",
            dcids[0] - 1,
            nobody.port()
        )),
        "{log}"
    );
    assert!(
        log.contains(" interface: 0.0.0.0 reason: network error\n"),
        "{log}"
    );
}

#[tokio::test]
async fn a_server_without_ehlo_gets_helo_and_the_mail() {
    let (sink, _) = Sink::with_tls("dest.test", "1-3").await;
    sink.behave(|b| b.no_ehlo = true);
    let gw = Gateway::started(policy(
        &settings(&[("dest.test", &sink)], DestinationTls::Preferred),
        "1-2",
    ))
    .await;
    let mid = gw
        .submit("a@example.org", &["b@dest.test"], TRICKY_BODY)
        .await;
    gw.until_logged(&format!("Message finished MID {mid} done"))
        .await;
    let received = sink.received();
    assert_eq!(received[0].helo, "gw.example.org");
    assert_eq!(received[0].body, TRICKY_BODY);
    // HELO announces no STARTTLS: Preferred goes on in clear text.
    assert_eq!(received[0].tls, None);
}

#[tokio::test]
async fn a_host_that_will_not_talk_is_skipped_and_the_mail_waits_for_it() {
    let unwilling = Sink::start(None).await;
    unwilling.behave(|b| b.greeting = Some("554 5.7.1 No SMTP service here".to_owned()));
    let sink = Sink::start(None).await;
    let mut s = settings(&[("alone.test", &unwilling)], DestinationTls::Preferred);
    s.routes.insert(
        DomainPattern::new("dest.test").unwrap(),
        vec![
            RouteHost::new(&unwilling.address.to_string()).unwrap(),
            RouteHost::new(&sink.address.to_string()).unwrap(),
        ],
    );
    let gw = Gateway::started(policy(&s, "1-2")).await;
    let delivered = gw.submit("a@example.org", &["b@dest.test"], b"x\r\n").await;
    gw.until_logged(&format!("Message finished MID {delivered} done"))
        .await;
    assert_eq!(sink.received().len(), 1);

    // With no other host, a 554 greeting defers: it is not a verdict on the recipient.
    let waiting = gw
        .submit("a@example.org", &["b@alone.test"], b"y\r\n")
        .await;
    gw.until_deferred(waiting).await;
    let dcid = *gw.dcids().last().unwrap();
    gw.until_closed(dcid).await;
    assert!(
        gw.log().contains(&format!(
            "Delayed: DCID {dcid} MID {waiting} to RID 0 - 4.7.0 - Security or policy error ('554', ['5.7.1 No SMTP service here'])\n"
        )),
        "{}",
        gw.log()
    );
    assert!(!gw.log().contains("Bounced"));
}

// ---------------------------------------------------------------------------------------------
// The client session against scripted servers

/// Runs `script` as the server on one end of an in-memory stream: it reads what the client
/// sends and writes the given bytes, line by line as each command arrives.
fn scripted(replies: Vec<&'static [u8]>) -> (ClientSession<DuplexStream>, JoinHandle<Vec<u8>>) {
    let (client, mut server) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(async move {
        let mut heard = Vec::new();
        let mut replies = replies.into_iter();
        if let Some(greeting) = replies.next() {
            let _ = server.write_all(greeting).await;
        }
        for reply in replies {
            let mut chunk = [0u8; 1024];
            match server.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => heard.extend_from_slice(&chunk[..n]),
            }
            if server.write_all(reply).await.is_err() {
                break;
            }
        }
        // Then silence, until the client goes away.
        let mut chunk = [0u8; 1024];
        while let Ok(n) = server.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            heard.extend_from_slice(&chunk[..n]);
        }
        heard
    });
    let timeouts = Timeouts {
        greeting: Duration::from_millis(500),
        command: Duration::from_millis(500),
        ..Timeouts::default()
    };
    (ClientSession::new(client, timeouts), task)
}

#[tokio::test]
async fn ehlo_refused_falls_back_to_helo() {
    let (mut session, server) = scripted(vec![
        b"220 old.example ready\r\n",
        b"502 5.5.1 What?\r\n",
        b"250 old.example\r\n",
    ]);
    assert_eq!(session.greeting().await.unwrap().code(), 220);
    let reply = session.hello("gw.example.org").await.unwrap();
    assert_eq!(reply.code(), 250);
    assert!(!session.capabilities().pipelining);
    drop(session);
    let heard = String::from_utf8(server.await.unwrap()).unwrap();
    assert_eq!(heard, "EHLO gw.example.org\r\nHELO gw.example.org\r\n");
}

#[tokio::test]
async fn a_hostile_server_gets_an_error_not_a_panic() {
    let long_line: &'static [u8] = Box::leak(
        [&b"220 "[..], &[b'x'; 10_000][..], b"\r\n"]
            .concat()
            .into_boxed_slice(),
    );
    let (mut session, _server) = scripted(vec![long_line]);
    assert!(matches!(
        session.greeting().await,
        Err(SessionError::Protocol {
            step: Step::Greeting,
            ..
        })
    ));

    let endless: &'static [u8] =
        Box::leak("250-more\r\n".repeat(500).into_bytes().into_boxed_slice());
    let (mut session, _server) = scripted(vec![b"220 ok\r\n", endless]);
    session.greeting().await.unwrap();
    assert!(matches!(
        session.hello("gw").await,
        Err(SessionError::Protocol {
            step: Step::Ehlo,
            ..
        })
    ));

    let (mut session, _server) = scripted(vec![b"hello, I am not SMTP\r\n"]);
    assert!(matches!(
        session.greeting().await,
        Err(SessionError::Protocol { .. })
    ));

    let (mut session, _server) = scripted(vec![]);
    assert!(matches!(
        session.greeting().await,
        Err(SessionError::Timeout(Step::Greeting))
    ));

    // A reply to STARTTLS with more behind it: an injection in clear text is not read as TLS.
    let (mut session, _server) = scripted(vec![
        b"220 ok\r\n",
        b"250-ok\r\n250 STARTTLS\r\n",
        b"220 2.0.0 go\r\n250 injected\r\n",
    ]);
    session.greeting().await.unwrap();
    session.hello("gw").await.unwrap();
    let connector =
        postern_tls::TlsConnector::new(&tls_policy("1-2"), &postern_tls::Verification::None)
            .unwrap();
    assert!(matches!(
        session.starttls(&connector, "mx.example").await,
        Err(SessionError::DataAfterStartTls)
    ));
}

#[tokio::test]
async fn the_envelope_is_pipelined_when_offered() {
    let (mut session, server) = scripted(vec![
        b"220 ok\r\n",
        b"250-ok\r\n250-PIPELINING\r\n250 SIZE 100\r\n",
        b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no\r\n",
    ]);
    session.greeting().await.unwrap();
    session.hello("gw").await.unwrap();
    let sender = postern_smtp_proto::ReversePath::parse("<a@example.org>", false).unwrap();
    let to = ["<b@dest.test>", "<c@dest.test>"]
        .map(|p| postern_smtp_proto::ForwardPath::parse(p, false).unwrap());
    let params = session::mail_params(session.capabilities(), b"0123456789", false);
    let (mail, rcpts) = session.envelope(&sender, params, &to).await.unwrap();
    assert_eq!(mail.code(), 250);
    assert_eq!(
        rcpts.iter().map(Reply::code).collect::<Vec<_>>(),
        [250, 550]
    );
    drop(session);
    let heard = String::from_utf8(server.await.unwrap()).unwrap();
    assert!(
        heard.ends_with("MAIL FROM:<a@example.org> SIZE=10\r\nRCPT TO:<b@dest.test>\r\nRCPT TO:<c@dest.test>\r\n"),
        "one write: {heard:?}"
    );
}

#[test]
fn system_ca_roots_make_a_verifying_connector() {
    // Every CA of the system bundle the image ships must be usable; where there is no bundle,
    // a generated one stands in.
    let roots = match CaRoots::system() {
        Ok(roots) => roots,
        Err(_) => {
            let (pem, _) = Identity::self_signed("ca.test", KeyKind::Rsa2048)
                .unwrap()
                .to_pem()
                .unwrap();
            CaRoots::from_pem(&pem)
        }
    };
    assert!(!roots.is_empty());
    let tls =
        OutboundTls::new(&tls_policy("1-3"), &roots, PeerCertificateChecks::default()).unwrap();
    assert!(tls.connector(true).is_some() && tls.connector(false).is_some());
    assert!(CaRoots::from_pem(b"not a certificate").is_empty());
}

#[test]
fn ca_roots_are_read_when_a_verifying_connection_first_needs_them() {
    let (pem, _) = Identity::self_signed("ca.test", KeyKind::EcdsaP256)
        .unwrap()
        .to_pem()
        .unwrap();
    let roots = CaRoots::from_pem(&pem);
    assert!(roots.has_pem_certificate());
    let tls =
        OutboundTls::new(&tls_policy("1-3"), &roots, PeerCertificateChecks::default()).unwrap();
    assert!(tls.connector(false).is_some());
    assert!(
        !roots.is_read(),
        "a policy without -Verify deliveries read the CA bundle"
    );
    assert!(tls.connector(true).is_some());
    assert!(roots.is_read());
    assert_eq!(roots.len(), 1);
    assert!(!CaRoots::from_pem(b"no certificate here").has_pem_certificate());
}

#[test]
fn due_recipients_are_grouped_by_domain() {
    let message = |mid: u64, recipients: &[&str]| QueuedMessage {
        envelope: Arc::new(Envelope {
            mid: MessageId(mid),
            icid: 1,
            sender: "a@example.org".to_owned(),
            recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
            received: 0,
            size: 0,
        }),
        recipients: vec![
            RecipientStatus::Pending {
                next_attempt: 0,
                attempts: 0
            };
            recipients.len()
        ],
    };
    let due = vec![
        message(1, &["a@one.test", "b@two.test", "c@ONE.test", "postmaster"]),
        message(2, &["d@two.test", "e@one.test"]),
    ];
    let in_flight = HashSet::from([(MessageId(2), RecipientId(1))]);
    type Groups = Vec<(String, Vec<(u64, Vec<u32>)>)>;
    let groups: Groups = group_by_domain(due, 10, &in_flight)
        .into_iter()
        .map(|(domain, batch)| {
            let batch = batch
                .into_iter()
                .map(|(m, rids)| (m.mid().0, rids.into_iter().map(|r| r.0).collect()))
                .collect();
            (domain, batch)
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("one.test".to_owned(), vec![(1, vec![0, 2])]),
            ("two.test".to_owned(), vec![(1, vec![1]), (2, vec![0])]),
            (String::new(), vec![(1, vec![3])]),
        ]
    );
}

#[tokio::test]
async fn a_recipient_without_a_domain_bounces() {
    let senders = Sink::start(None).await;
    let gw = Gateway::started(policy(
        &settings(&[("ALL", &senders)], DestinationTls::Preferred),
        "1-2",
    ))
    .await;
    let mid = gw
        .submit("alice@origin.test", &["postmaster"], b"x\r\n")
        .await;
    gw.until("the bounce", || senders.received().len() == 1)
        .await;
    gw.until_logged(&format!("Message finished MID {mid} done"))
        .await;
    assert!(
        gw.log().contains(&format!(
            "Bounced: DCID 0 MID {mid} to RID 0 - 5.1.3 - Bad destination mailbox address syntax\n"
        )),
        "{}",
        gw.log()
    );
}

/// The session alone, from greeting to QUIT, against the sink (these tests bring their own
/// sink; Postfix's smtp-sink is for the benchmarks).
#[tokio::test]
async fn a_client_session_delivers_to_the_sink() {
    let sink = Sink::start(None).await;
    let stream = tokio::net::TcpStream::connect(sink.address).await.unwrap();
    let mut session = ClientSession::new(stream, Timeouts::default());
    assert_eq!(session.greeting().await.unwrap().code(), 220);
    session.hello("client.test").await.unwrap();
    assert!(session.capabilities().pipelining && !session.capabilities().starttls);
    let sender = postern_smtp_proto::ReversePath::parse("<>", false).unwrap();
    let to = [postern_smtp_proto::ForwardPath::parse("<x@dest.test>", false).unwrap()];
    let params = session::mail_params(session.capabilities(), b"hi\r\n", false);
    let (mail, rcpts) = session.envelope(&sender, params, &to).await.unwrap();
    assert_eq!((mail.code(), rcpts[0].code()), (250, 250));
    assert!(matches!(
        session.data(b"hi\r\n").await.unwrap(),
        session::DataOutcome::Sent(r) if r.code() == 250
    ));
    session.quit().await;
    assert_eq!(sink.received()[0].body, b"hi\r\n");
}
