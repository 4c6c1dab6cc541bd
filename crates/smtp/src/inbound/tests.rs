//! Transcript tests: a session over an in-memory stream, with the real queue and mail log in a
//! temporary data directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use postern_config::{
    CipherString, DomainPattern, ListenerTls, ProtocolRange, RecipientAction, ServiceTls,
    SmtpListener, TlsSettings, TlsVersion,
};
use postern_logs::{SharedLog, Subscription};
use postern_smtp_proto::{Reply, ReplyParser};
use postern_tls::{Identity, KeyKind, TlsAcceptor, TlsConnector, Verification};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;

use super::*;
use crate::queue::Queue;

struct Harness {
    dir: tempfile::TempDir,
    inbound: Arc<Inbound>,
    policy: Arc<InboundPolicy>,
}

fn tls_policy(selection: &str) -> ServiceTls {
    ServiceTls {
        protocols: ProtocolRange::from_selection(selection).unwrap(),
        ciphers: CipherString::new(TlsSettings::DEFAULT_CIPHERS).unwrap(),
    }
}

async fn harness(tls: ListenerTls) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(dir.path().join("queue")).await.unwrap().queue;
    let log = SharedLog::open(dir.path(), Subscription::MailLogs, false).unwrap();
    let mut settings = SmtpListener::new("127.0.0.1:2525".parse().unwrap());
    settings.tls = tls;
    settings.recipient_access = BTreeMap::from([(
        DomainPattern::new("example.test").unwrap(),
        RecipientAction::Accept,
    )]);
    settings.limits.max_message_size = 64 * 1024;
    settings.limits.max_recipients = 3;
    let identity = Identity::self_signed("mx.example.test", KeyKind::EcdsaP256).unwrap();
    let acceptor = TlsAcceptor::new(&tls_policy("1-3"), &[identity]).unwrap();
    let policy = Arc::new(InboundPolicy {
        hostname: "mx.example.test".to_owned(),
        listener: "IncomingMail".to_owned(),
        listener_ip: "127.0.0.1".parse().unwrap(),
        settings,
        tls: Some(acceptor),
    });
    Harness {
        inbound: Inbound::new(queue, log),
        policy,
        dir,
    }
}

impl Harness {
    /// A session on one end of an in-memory stream; the client gets the other end.
    fn connect(&self) -> (Client<DuplexStream>, JoinHandle<SessionEnd>) {
        let (client, server) = tokio::io::duplex(256 * 1024);
        let peer: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let session = Session::new(server, peer, self.policy.clone(), self.inbound.clone());
        (Client::new(client), tokio::spawn(session.run()))
    }

    fn mail_log(&self) -> String {
        std::fs::read_to_string(Subscription::MailLogs.current_path(self.dir.path()))
            .unwrap_or_default()
    }

    fn queued_bodies(&self) -> usize {
        self.inbound.queue.stats().messages
    }
}

struct Client<S> {
    stream: S,
    replies: ReplyParser,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    fn new(stream: S) -> Self {
        Self {
            stream,
            replies: ReplyParser::new(),
        }
    }

    async fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).await.unwrap();
    }

    /// The next reply, which must have `code`.
    async fn expect(&mut self, code: u16) -> Reply {
        let reply = self
            .reply()
            .await
            .expect("a reply, not the end of the stream");
        assert_eq!(reply.code(), code, "{reply}");
        reply
    }

    async fn reply(&mut self) -> Option<Reply> {
        loop {
            if let Some(reply) = self.replies.next_reply() {
                return Some(reply.unwrap());
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                self.stream.read(&mut chunk),
            )
            .await
            .expect("the server answers within 10 s")
            .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.replies.push(&chunk[..n]);
        }
    }

    /// Sends a command line and expects its reply code.
    async fn command(&mut self, line: &str, code: u16) -> Reply {
        self.send(&format!("{line}\r\n")).await;
        self.expect(code).await
    }
}

#[tokio::test]
async fn a_message_is_received_queued_and_logged() {
    let h = harness(ListenerTls::Preferred).await;
    let (mut c, session) = h.connect();
    let greeting = c.expect(220).await;
    assert!(
        greeting.to_string().contains("mx.example.test"),
        "{greeting}"
    );
    let ehlo = c.command("EHLO client.example.org", 250).await;
    let caps: Vec<&str> = ehlo.lines().iter().map(String::as_str).collect();
    for cap in [
        "PIPELINING",
        "SIZE 65536",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
        "SMTPUTF8",
    ] {
        assert!(caps.contains(&cap), "{cap} in {caps:?}");
    }
    c.command("MAIL FROM:<a@example.org>", 250).await;
    c.command("RCPT TO:<b@example.test>", 250).await;
    let denied = c.command("RCPT TO:<c@elsewhere.example>", 550).await;
    assert!(denied.to_string().contains("5.7.1"), "{denied}");
    c.command("RCPT TO:<Postmaster>", 250).await;
    c.command("DATA", 354).await;
    c.send("Subject: hi\r\n\r\n..leading dot\r\nbody\r\n.\r\n")
        .await;
    let queued = c.expect(250).await;
    c.command("QUIT", 221).await;
    assert_eq!(session.await.unwrap(), SessionEnd::Quit);

    let mid = h.inbound.queue.due(u64::MAX, 10)[0].envelope.mid;
    assert!(
        queued.to_string().contains(&format!("MID {}", mid.0)),
        "{queued}"
    );
    let body = h.inbound.queue.body(mid).await.unwrap();
    assert_eq!(body, b"Subject: hi\r\n\r\n.leading dot\r\nbody\r\n");
    let message = h.inbound.queue.message(mid).unwrap();
    assert_eq!(message.envelope.sender, "a@example.org");
    assert_eq!(
        message.envelope.recipients,
        ["b@example.test", "postmaster@mx.example.test"]
    );

    let log = h.mail_log();
    let icid = log
        .split("New SMTP ICID ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    for line in [
        format!(
            "Info: New SMTP ICID {icid} interface IncomingMail (127.0.0.1) address 192.0.2.7 reverse dns host unknown verified no"
        ),
        format!("Info: Start MID {} ICID {icid}", mid.0),
        format!("Info: MID {} ICID {icid} From: <a@example.org>", mid.0),
        format!("Info: MID {} ICID {icid} RID 0 To: <b@example.test>", mid.0),
        format!(
            "Info: MID {} ICID {icid} RID 1 To: <postmaster@mx.example.test>",
            mid.0
        ),
        format!("Info: MID {} ready 35 bytes from <a@example.org>", mid.0),
        format!("Info: MID {} queued for delivery", mid.0),
        format!("Info: ICID {icid} close"),
    ] {
        assert!(log.contains(&line), "{line}\nnot in\n{log}");
    }
}

#[tokio::test]
async fn commands_out_of_order_are_refused() {
    let h = harness(ListenerTls::Preferred).await;
    let (mut c, _session) = h.connect();
    c.expect(220).await;
    c.command("MAIL FROM:<a@example.org>", 503).await;
    c.command("HELO client.example.org", 250).await;
    c.command("RCPT TO:<b@example.test>", 503).await;
    c.command("DATA", 503).await;
    c.command("MAIL FROM:<a@example.org>", 250).await;
    c.command("MAIL FROM:<a@example.org>", 503).await;
    c.command("DATA", 503).await;
    c.command("RSET", 250).await;
    c.command("RCPT TO:<b@example.test>", 503).await;
    c.command("VRFY b", 252).await;
    c.command("NOOP", 250).await;
    c.command("FOO", 500).await;
    assert_eq!(h.queued_bodies(), 0);
}

#[tokio::test]
async fn pipelined_commands_get_their_replies_in_order() {
    let h = harness(ListenerTls::Preferred).await;
    let (mut c, _session) = h.connect();
    c.expect(220).await;
    c.send("EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<x@example.test>\r\nRCPT TO:<y@nowhere.example>\r\nDATA\r\n")
        .await;
    for code in [250, 250, 250, 550, 354] {
        c.expect(code).await;
    }
    c.send(
        "hello\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<z@example.test>\r\nDATA\r\nsecond\r\n.\r\nQUIT\r\n",
    )
    .await;
    for code in [250, 250, 250, 354, 250, 221] {
        c.expect(code).await;
    }
    assert_eq!(h.queued_bodies(), 2);
}

#[tokio::test]
async fn limits_have_clear_replies() {
    let h = harness(ListenerTls::Preferred).await;
    let (mut c, _session) = h.connect();
    c.expect(220).await;
    c.command("EHLO c", 250).await;
    let big = c
        .command("MAIL FROM:<a@example.org> SIZE=1000000000", 552)
        .await;
    assert!(big.to_string().contains("5.3.4"), "{big}");
    c.command("MAIL FROM:<a@example.org>", 250).await;
    for r in ["a", "b", "c"] {
        c.command(&format!("RCPT TO:<{r}@example.test>"), 250).await;
    }
    c.command("RCPT TO:<d@example.test>", 452).await;
    c.command("DATA", 354).await;
    let line = "x".repeat(1000);
    for _ in 0..70 {
        c.send(&format!("{line}\r\n")).await;
    }
    c.send(".\r\n").await;
    c.expect(552).await;
    // The session goes on.
    c.command("NOOP", 250).await;
    assert_eq!(h.queued_bodies(), 0);
}

#[tokio::test]
async fn broken_input_gets_replies_and_the_session_goes_on() {
    let h = harness(ListenerTls::Preferred).await;
    let (mut c, _session) = h.connect();
    c.expect(220).await;
    c.send(&format!("{}\r\n", "A".repeat(10_000))).await;
    c.expect(500).await;
    c.send("NOOP\n").await;
    c.expect(500).await;
    c.send("NO\0OP\r\n").await;
    c.expect(500).await;
    c.command("EHLO c", 250).await;
    c.command("MAIL FROM:<a@example.org>", 250).await;
    c.command("RCPT TO:<b@example.test>", 250).await;
    c.command("DATA", 354).await;
    // A bare LF in the body: the smuggling defence refuses the message at its real end.
    c.send("line one\nline two\r\n.\r\n").await;
    let refused = c.expect(554).await;
    assert!(refused.to_string().contains("5.6.11"), "{refused}");
    c.command("NOOP", 250).await;
    assert_eq!(h.queued_bodies(), 0);
}

#[tokio::test]
async fn a_client_that_stops_in_data_loses_its_message() {
    let h = harness(ListenerTls::Preferred).await;
    let (mut c, session) = h.connect();
    c.expect(220).await;
    c.command("EHLO c", 250).await;
    c.command("MAIL FROM:<a@example.org>", 250).await;
    c.command("RCPT TO:<b@example.test>", 250).await;
    c.command("DATA", 354).await;
    c.send("half a message\r\n").await;
    drop(c);
    assert_eq!(session.await.unwrap(), SessionEnd::Closed);
    assert_eq!(h.queued_bodies(), 0);
    assert!(h.mail_log().contains(" lost\n"), "{}", h.mail_log());
}

#[tokio::test]
async fn endless_garbage_is_cut_off() {
    let h = harness(ListenerTls::Preferred).await;
    let (mut c, session) = h.connect();
    c.expect(220).await;
    for _ in 0..19 {
        c.command("GARBAGE", 500).await;
    }
    c.send("GARBAGE\r\n").await;
    c.expect(500).await;
    c.expect(421).await;
    assert_eq!(session.await.unwrap(), SessionEnd::Dropped);
}

#[tokio::test]
async fn tls_required_refuses_mail_in_clear_text() {
    let h = harness(ListenerTls::Required).await;
    let (mut c, _session) = h.connect();
    c.expect(220).await;
    c.command("EHLO c", 250).await;
    let refused = c.command("MAIL FROM:<a@example.org>", 530).await;
    assert!(refused.to_string().contains("5.7.0"), "{refused}");
    assert!(
        h.mail_log()
            .contains("TLS was required but remote host did not initiate it")
    );
}

#[tokio::test]
async fn no_tls_means_no_starttls() {
    let h = harness(ListenerTls::No).await;
    let (mut c, _session) = h.connect();
    c.expect(220).await;
    let ehlo = c.command("EHLO c", 250).await;
    assert!(!ehlo.lines().iter().any(|l| l == "STARTTLS"));
    c.command("STARTTLS", 454).await;
}

#[tokio::test]
async fn starttls_negotiates_and_is_logged() {
    let h = harness(ListenerTls::Required).await;
    let (mut c, session) = h.connect();
    c.expect(220).await;
    c.command("EHLO c", 250).await;
    // Sent in clear text right after STARTTLS: must be thrown away, not run after TLS.
    c.send("STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n")
        .await;
    c.expect(220).await;
    let connector = TlsConnector::new(&tls_policy("1"), &Verification::None).unwrap();
    let (tls, negotiated) = connector
        .connect("mx.example.test", c.stream)
        .await
        .unwrap();
    assert_eq!(negotiated.version, TlsVersion::Tls1_3);
    assert_eq!(negotiated.cipher, "TLS_AES_256_GCM_SHA384");
    let mut c = Client::new(tls);
    // No MAIL from before the handshake is pending: a new EHLO is needed.
    c.command("MAIL FROM:<a@example.org>", 503).await;
    let ehlo = c.command("EHLO c", 250).await;
    assert!(!ehlo.lines().iter().any(|l| l == "STARTTLS"));
    c.command("STARTTLS", 503).await;
    c.command("MAIL FROM:<a@example.org>", 250).await;
    c.command("RCPT TO:<b@example.test>", 250).await;
    c.command("DATA", 354).await;
    c.send("over tls\r\n.\r\n").await;
    c.expect(250).await;
    c.command("QUIT", 221).await;
    assert_eq!(session.await.unwrap(), SessionEnd::Quit);
    let log = h.mail_log();
    assert!(
        log.contains("TLS success protocol TLSv1.3 cipher TLS_AES_256_GCM_SHA384"),
        "{log}"
    );
    assert!(!log.contains("injected"), "{log}");
    assert_eq!(h.queued_bodies(), 1);
}

#[tokio::test]
async fn a_failed_handshake_is_logged_and_ends_the_session() {
    let h = harness(ListenerTls::Preferred).await;
    let (mut c, session) = h.connect();
    c.expect(220).await;
    c.command("EHLO c", 250).await;
    c.command("STARTTLS", 220).await;
    c.send("MAIL FROM:<not-a-client-hello@example.org>\r\n")
        .await;
    assert_eq!(session.await.unwrap(), SessionEnd::Dropped);
    let log = h.mail_log();
    assert!(
        log.contains(
            "TLS failed: (0, 'error:00000000:postern:accept:the peer does not speak TLS')"
        ),
        "{log}"
    );
    assert_eq!(
        c.reply().await.map(|r| r.code()),
        None,
        "nothing is answered in clear text"
    );
}

#[tokio::test]
async fn a_client_limited_below_the_policy_fails_with_the_engines_reason() {
    let h = harness(ListenerTls::Preferred).await;
    let (mut c, session) = h.connect();
    c.expect(220).await;
    c.command("EHLO c", 250).await;
    c.command("STARTTLS", 220).await;
    // The listener's policy is TLS v1.1-1.3; this client speaks TLS v1.0 only.
    let connector = TlsConnector::new(
        &ServiceTls {
            protocols: ProtocolRange::only(TlsVersion::Tls1_0),
            ciphers: CipherString::new("ECDHE+AES").unwrap(),
        },
        &Verification::None,
    )
    .unwrap();
    assert!(
        connector
            .connect("mx.example.test", c.stream)
            .await
            .is_err()
    );
    assert_eq!(session.await.unwrap(), SessionEnd::Dropped);
    let log = h.mail_log();
    let failed = log
        .lines()
        .find(|l| l.contains("TLS failed: ("))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(failed.contains("SSL routines"), "{failed}");
}
