//! One delivery attempt: the messages an attempt took for one domain, over one connection to
//! the first next hop that takes them, and the outcome of each recipient recorded in the queue
//! and in `mail_logs`.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use postern_config::DestinationTls;
use postern_logs::MailEvent;
use postern_smtp_proto::{ForwardPath, Reply, ReversePath};
use postern_tls::FailureKind;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::dsn::{Bounce, FailedRecipient};
use super::route::{self, NextHop, NextHops, RouteError};
use super::session::{ClientSession, DataOutcome, SessionError, StartTls, mail_params};
use super::tls::{attempts_tls, requires_tls, unverified_fallback, verifies};
use super::{Claim, Delivery, DeliveryPolicy, unix_now};
use crate::queue::{Envelope, QueueError, RecipientId, RecipientStatus, RetrySchedule};

/// One connection's worth of deliveries to one domain.
pub struct DeliveryAttempt {
    delivery: Arc<Delivery>,
    policy: Arc<DeliveryPolicy>,
    /// The recipient domain, lower case.
    domain: String,
    /// The destination control's TLS setting for the domain.
    tls: DestinationTls,
    /// Messages not dealt with yet, first first.
    pending: VecDeque<Claim>,
}

/// Why a recipient was not delivered, in the words of the log line and the bounce.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    /// The class of failure the log line gives: `5.1.0`, `4.4.1`.
    logged_status: String,
    /// The exact status a bounce reports: the next hop's own (`5.1.1`), or ours.
    status: String,
    /// `Unknown address error`, `Delivery expired (message too old)`.
    text: String,
    /// The next hop's reply (code, then text without it); or, with code 0, the detail of a
    /// failure of ours, as the reference logs `('000', ['...'])`.
    detail: Option<(u16, String)>,
    /// The next hop the reply came from.
    remote: Option<String>,
}

/// A recipient's outcome in one transaction.
#[derive(Debug)]
enum Outcome {
    Delivered,
    Failed(Failure),
}

/// How the conversation with one next hop ended.
enum HostResult {
    /// Every pending message was dealt with.
    Done,
    /// Nothing was sent: try the next host.
    NextHost(Failure),
    /// Preferred - Verify: the certificate did not verify; connect again without the check.
    Unverified,
}

impl DeliveryAttempt {
    pub(super) fn new(
        delivery: Arc<Delivery>,
        policy: Arc<DeliveryPolicy>,
        domain: String,
        claims: Vec<Claim>,
    ) -> Self {
        let tls = policy.settings.destination(&domain).tls;
        Self {
            delivery,
            policy,
            domain,
            tls,
            pending: claims.into(),
        }
    }

    /// Runs the attempt to its end; every recipient taken has an outcome recorded, unless the
    /// queue could not record it (then it is due again).
    pub async fn run(mut self) {
        if self.domain.is_empty() {
            let failure = Failure::ours("5.1.3", "Bad destination mailbox address syntax");
            return self.fail_pending(0, &failure).await;
        }
        let hops = route::next_hops(&self.policy.settings, &self.delivery.dns, &self.domain).await;
        match hops {
            Ok(NextHops::Hosts(hops)) => self.deliver(hops).await,
            Ok(NextHops::NullMx) => {
                let failure = Failure::ours("5.1.10", "Recipient address has null MX").with_detail(
                    format!("{} publishes a null MX: it accepts no mail", self.domain),
                );
                self.fail_pending(0, &failure).await;
            }
            Err(RouteError::NoSuchDomain(detail)) => {
                let failure = Failure::ours("5.1.2", "Bad destination host").with_detail(detail);
                self.fail_pending(0, &failure).await;
            }
            Err(RouteError::Temporary(detail)) => {
                let failure = Failure::ours("4.4.3", "DNS temporary failure").with_detail(detail);
                self.fail_pending(0, &failure).await;
            }
        }
    }

    /// Tries the next hops in order until one has taken the pending messages.
    async fn deliver(&mut self, hops: Vec<NextHop>) {
        let mut last = Failure::ours("4.4.1", "No answer from host");
        let mut last_dcid = 0;
        for hop in &hops {
            let mut verify = verifies(self.tls);
            loop {
                let dcid = self.delivery.next_dcid();
                last_dcid = dcid;
                match self.connect(hop, dcid, verify).await {
                    HostResult::Done => return,
                    HostResult::NextHost(failure) => {
                        last = failure;
                        break;
                    }
                    HostResult::Unverified => verify = false,
                }
            }
        }
        self.fail_pending(last_dcid, &last).await;
    }

    /// One TCP connection to `hop`, with its `New SMTP DCID` and `DCID close` lines.
    async fn connect(&mut self, hop: &NextHop, dcid: u64, verify: bool) -> HostResult {
        let timeouts = self.delivery.options.timeouts;
        let connected = tokio::time::timeout(timeouts.connect, TcpStream::connect(hop.address));
        let (details, reason) = match connected.await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                let interface = stream
                    .local_addr()
                    .map_or(unspecified(hop.address.ip()), |a| a.ip());
                self.delivery.log.info(&MailEvent::NewDelivery {
                    dcid,
                    interface,
                    peer: hop.address.ip(),
                    port: hop.address.port(),
                });
                let session = ClientSession::new(stream, timeouts);
                let result = self.converse(session, hop, dcid, verify).await;
                self.delivery.log.info(&MailEvent::DeliveryClose { dcid });
                return result;
            }
            Ok(Err(e)) => (e.to_string(), "network error"),
            Err(_) => ("connection timed out".to_owned(), "timeout"),
        };
        self.delivery.log.info(&MailEvent::ConnectionError {
            dcid,
            domain: &self.domain,
            peer: hop.address.ip(),
            port: hop.address.port(),
            details: &details,
            interface: unspecified(hop.address.ip()),
            reason,
        });
        HostResult::NextHost(Failure::ours("4.4.1", "No answer from host").with_detail(details))
    }

    /// The SMTP conversation: greeting, EHLO, STARTTLS as the destination asks, then one
    /// transaction per pending message.
    async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        mut session: ClientSession<S>,
        hop: &NextHop,
        dcid: u64,
        verify: bool,
    ) -> HostResult {
        let greeting = match session.greeting().await {
            Ok(reply) => reply,
            Err(e) => return HostResult::NextHost(Failure::connection(&e)),
        };
        // A host that will not talk to us (`554` greeting, refused EHLO and HELO) is skipped
        // for the next one; when none will, the mail waits: another day the host may.
        if greeting.code() != 220 {
            session.quit().await;
            return HostResult::NextHost(Failure::reply(&greeting, &hop.name).into_transient());
        }
        if let Err(failure) = self.hello(&mut session, hop).await {
            return HostResult::NextHost(failure.into_transient());
        }
        match self.starttls(&mut session, hop, dcid, verify).await {
            Ok(()) => {}
            Err(Some(failure)) => {
                self.fail_pending(dcid, &failure).await;
                return HostResult::Done;
            }
            Err(None) => return HostResult::Unverified,
        }
        while let Some(claim) = self.pending.pop_front() {
            if let Err(failure) = self.transaction(&mut session, hop, dcid, claim).await {
                self.fail_pending(dcid, &failure).await;
                return HostResult::Done;
            }
        }
        session.quit().await;
        HostResult::Done
    }

    async fn hello<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        session: &mut ClientSession<S>,
        hop: &NextHop,
    ) -> Result<(), Failure> {
        match session.hello(&self.policy.hostname).await {
            Ok(reply) if reply.is_positive_completion() => Ok(()),
            Ok(reply) => Err(Failure::reply(&reply, &hop.name)),
            Err(e) => Err(Failure::connection(&e)),
        }
    }

    /// STARTTLS as the destination's setting asks. `Err(Some(failure))`: the pending messages
    /// are deferred with it and the connection is done; `Err(None)`: connect again without
    /// verification.
    async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        session: &mut ClientSession<S>,
        hop: &NextHop,
        dcid: u64,
        verify: bool,
    ) -> Result<(), Option<Failure>> {
        if !attempts_tls(self.tls) {
            return Ok(());
        }
        let required = requires_tls(self.tls);
        let connector = match self.policy.tls.connector(verify) {
            Some(c) if session.capabilities().starttls => c,
            Some(_) if required => {
                return Err(Some(Failure::ours(
                    "4.7.0",
                    "TLS was required but the destination does not offer STARTTLS",
                )));
            }
            None if required => {
                return Err(Some(Failure::ours(
                    "4.7.0",
                    "TLS was required but the Outbound SMTP TLS policy cannot be used",
                )));
            }
            _ => return Ok(()),
        };
        // A -Verify destination's certificate must name the domain mail is for.
        let name = if verify { &self.domain } else { &hop.name };
        let log = &self.delivery.log;
        match session.starttls(connector, name).await {
            Ok(StartTls::Done(negotiated)) => {
                log.info(&MailEvent::DeliveryTlsSuccess {
                    dcid,
                    protocol: negotiated.protocol(),
                    cipher: &negotiated.cipher,
                });
                self.hello(session, hop).await.map_err(Some)
            }
            // Refused before the handshake began: Preferred goes on in clear text.
            Ok(StartTls::Refused(reply)) if required => Err(Some(Failure {
                text: "TLS was required but STARTTLS was refused".to_owned(),
                ..Failure::reply(&reply, &hop.name).into_transient()
            })),
            Ok(StartTls::Refused(_)) => Ok(()),
            Ok(StartTls::Failed(failure))
                if verify
                    && unverified_fallback(self.tls)
                    && failure.kind == FailureKind::CertificateRejected =>
            {
                log.info(&MailEvent::DeliveryTlsFailed {
                    dcid,
                    detail: &format!(
                        "{failure} certificate not verified for {}; delivering over TLS without verification",
                        self.domain
                    ),
                });
                Err(None)
            }
            Ok(StartTls::Failed(failure)) => {
                log.info(&MailEvent::DeliveryTlsDeferring {
                    dcid,
                    detail: &failure.to_string(),
                    version_mismatch: failure.kind == FailureKind::VersionMismatch,
                });
                Err(Some(Failure::ours("4.7.0", "TLS negotiation failed")))
            }
            Err(e) => Err(Some(Failure::connection(&e))),
        }
    }

    /// One message: MAIL, RCPT for its recipients, DATA, and the outcomes recorded. `Err` when
    /// the connection cannot carry another message.
    async fn transaction<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        session: &mut ClientSession<S>,
        hop: &NextHop,
        dcid: u64,
        claim: Claim,
    ) -> Result<(), Failure> {
        let mid = claim.mid();
        let body = match self.delivery.queue.body(mid).await {
            Ok(body) => body,
            Err(QueueError::Damaged { reason, .. }) => {
                let failure =
                    Failure::ours("5.3.0", "Message damaged in the queue").with_detail(reason);
                self.record_all(dcid, claim, &failure, None).await;
                return Ok(());
            }
            Err(e) => {
                let failure =
                    Failure::ours("4.3.0", "Mail system error").with_detail(e.to_string());
                self.record_all(dcid, claim, &failure, None).await;
                return Ok(());
            }
        };
        let envelope = Arc::clone(&claim.message.envelope);
        let Ok(sender) = ReversePath::parse(&format!("<{}>", envelope.sender), true) else {
            let failure = Failure::ours("5.1.7", "Bad sender mailbox address syntax");
            self.record_all(dcid, claim, &failure, Some(&body)).await;
            return Ok(());
        };
        let mut outcomes = Vec::with_capacity(claim.rids.len());
        let mut sendable = Vec::with_capacity(claim.rids.len());
        for &rid in &claim.rids {
            let address = envelope.recipient(rid).unwrap_or_default();
            match ForwardPath::parse(&format!("<{address}>"), true) {
                Ok(path) => sendable.push((rid, path)),
                Err(_) => outcomes.push((
                    rid,
                    Outcome::Failed(Failure::ours(
                        "5.1.3",
                        "Bad destination mailbox address syntax",
                    )),
                )),
            }
        }
        let capabilities = session.capabilities();
        let smtputf8 = !sender.is_ascii() || sendable.iter().any(|(_, p)| !p.is_ascii());
        let refusal =
            if smtputf8 && !capabilities.smtputf8 {
                Some(Failure::ours(
                    "5.6.7",
                    "Non-ASCII addresses need SMTPUTF8, which the destination does not offer",
                ))
            } else if let Some(max) = capabilities.max_message_size()
                && body.len() as u64 > max
            {
                Some(
                    Failure::ours("5.3.4", "Message too big for the destination").with_detail(
                        format!("{} bytes; {} takes at most {max}", body.len(), hop.name),
                    ),
                )
            } else {
                None
            };
        if let Some(failure) = refusal {
            for (rid, _) in sendable.drain(..) {
                outcomes.push((rid, Outcome::Failed(failure.clone())));
            }
        }
        if sendable.is_empty() {
            self.record(dcid, claim, outcomes, Some(&body)).await;
            return Ok(());
        }
        let rids: Vec<u32> = sendable.iter().map(|(rid, _)| rid.0).collect();
        self.delivery.log.info(&MailEvent::DeliveryStart {
            dcid,
            mid: mid.0,
            rids: &rids,
        });
        let params = mail_params(capabilities, &body, smtputf8);
        let paths: Vec<ForwardPath> = sendable.iter().map(|(_, p)| p.clone()).collect();
        let result = self
            .send(session, hop, &sender, params, &paths, &body)
            .await;
        let (per_recipient, broken) = match result {
            Ok(sent) => sent,
            Err(e) => (Vec::new(), Some(Failure::connection(&e))),
        };
        let mut per_recipient = per_recipient.into_iter();
        for (rid, _) in sendable {
            let outcome = match (per_recipient.next(), &broken) {
                (Some(outcome), _) => outcome,
                (None, Some(failure)) => Outcome::Failed(failure.clone()),
                (None, None) => Outcome::Failed(Failure::ours("4.5.0", "Protocol error")),
            };
            outcomes.push((rid, outcome));
        }
        self.record(dcid, claim, outcomes, Some(&body)).await;
        broken.map_or(Ok(()), Err)
    }

    /// The SMTP part of a transaction: an outcome per recipient in order, and the failure that
    /// ended the connection when one did (`421`, or an error after the envelope).
    async fn send<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        session: &mut ClientSession<S>,
        hop: &NextHop,
        sender: &ReversePath,
        params: postern_smtp_proto::MailParams,
        paths: &[ForwardPath],
        body: &[u8],
    ) -> Result<(Vec<Outcome>, Option<Failure>), SessionError> {
        let closing =
            |reply: &Reply| (reply.code() == 421).then(|| Failure::reply(reply, &hop.name));
        let (mail, rcpts) = session.envelope(sender, params, paths).await?;
        if !mail.is_positive_completion() {
            let failure = Failure::reply(&mail, &hop.name);
            let all = paths
                .iter()
                .map(|_| Outcome::Failed(failure.clone()))
                .collect();
            return Ok((all, closing(&mail)));
        }
        let mut outcomes: Vec<Outcome> = rcpts
            .iter()
            .map(|reply| {
                if reply.is_positive_completion() {
                    Outcome::Delivered
                } else {
                    Outcome::Failed(Failure::reply(reply, &hop.name))
                }
            })
            .collect();
        if let Some(failure) = rcpts.iter().find_map(closing) {
            return Ok((outcomes, Some(failure)));
        }
        if !outcomes.iter().any(|o| matches!(o, Outcome::Delivered)) {
            // The refusals stand even when the connection fails now.
            let broken = session.rset().await.err().map(|e| Failure::connection(&e));
            return Ok((outcomes, broken));
        }
        // Only a 250 to the end of the message delivers; until then an accepted recipient is
        // only accepted.
        let (failure, broken) = match session.data(body).await {
            Ok(DataOutcome::Sent(reply)) if reply.is_positive_completion() => {
                return Ok((outcomes, None));
            }
            Ok(DataOutcome::Sent(reply)) => (Failure::reply(&reply, &hop.name), closing(&reply)),
            Ok(DataOutcome::Refused(reply)) => {
                let broken = match closing(&reply) {
                    Some(closed) => Some(closed),
                    None => session.rset().await.err().map(|e| Failure::connection(&e)),
                };
                (Failure::reply(&reply, &hop.name), broken)
            }
            Err(e) => {
                let failure = Failure::connection(&e);
                (failure.clone(), Some(failure))
            }
        };
        for outcome in &mut outcomes {
            if matches!(outcome, Outcome::Delivered) {
                *outcome = Outcome::Failed(failure.clone());
            }
        }
        Ok((outcomes, broken))
    }

    /// Gives every pending message's recipients the same failure.
    async fn fail_pending(&mut self, dcid: u64, failure: &Failure) {
        while let Some(claim) = self.pending.pop_front() {
            let body = if failure.is_permanent() {
                self.delivery.queue.body(claim.mid()).await.ok()
            } else {
                None
            };
            self.record_all(dcid, claim, failure, body.as_deref()).await;
        }
    }

    async fn record_all(&self, dcid: u64, claim: Claim, failure: &Failure, body: Option<&[u8]>) {
        let outcomes = claim
            .rids
            .iter()
            .map(|&rid| (rid, Outcome::Failed(failure.clone())))
            .collect();
        self.record(dcid, claim, outcomes, body).await;
    }

    /// Records the outcomes of one message's recipients in the queue, each durable before its
    /// log line: delivered; deferred until the next retry; bounced (the notification queued
    /// first, so that a crash between the two sends it twice rather than never).
    async fn record(
        &self,
        dcid: u64,
        claim: Claim,
        outcomes: Vec<(RecipientId, Outcome)>,
        body: Option<&[u8]>,
    ) {
        let queue = &self.delivery.queue;
        let log = &self.delivery.log;
        let message = &claim.message;
        let envelope = &message.envelope;
        let mid = message.mid();
        let now = unix_now();
        let retry = RetrySchedule {
            max_age: self.policy.settings.max_queue_age,
            ..self.delivery.options.retry
        };
        let mut delivered = Vec::new();
        let mut deferred: BTreeMap<u64, Vec<(RecipientId, Failure)>> = BTreeMap::new();
        let mut bounced = Vec::new();
        for (rid, outcome) in outcomes {
            let failure = match outcome {
                Outcome::Delivered => {
                    delivered.push(rid);
                    continue;
                }
                Outcome::Failed(f) if f.is_permanent() => {
                    bounced.push((rid, f));
                    continue;
                }
                Outcome::Failed(f) => f,
            };
            let failures = match message.recipients.get(rid.0 as usize) {
                Some(RecipientStatus::Pending { attempts, .. }) => attempts.saturating_add(1),
                _ => 1,
            };
            match retry.next_attempt(envelope.received, failures, now) {
                Some(at) => deferred.entry(at).or_default().push((rid, failure)),
                None => bounced.push((rid, failure.expired())),
            }
        }
        if !delivered.is_empty() {
            match queue.mark_delivered(mid, &delivered).await {
                Ok(()) => {
                    let rids: Vec<u32> = delivered.iter().map(|r| r.0).collect();
                    log.info(&MailEvent::MessageDone {
                        dcid,
                        mid: mid.0,
                        rids: &rids,
                    });
                }
                // The next hop has the message; trying again may deliver it twice, which is
                // better than losing it.
                Err(e) => log.critical(&format!(
                    "MID {mid} was delivered by DCID {dcid} but the queue could not record it ({e}); it will be delivered again"
                )),
            }
        }
        for (at, failed) in deferred {
            let rids: Vec<RecipientId> = failed.iter().map(|(rid, _)| *rid).collect();
            match queue.defer(mid, &rids, at).await {
                Ok(()) => {
                    for (rid, failure) in &failed {
                        log.info(&failure.delayed(dcid, mid.0, rid.0));
                    }
                }
                Err(e) => log.warning(&format!(
                    "MID {mid}: cannot record the deferral of DCID {dcid} ({e}); it will be tried again"
                )),
            }
        }
        if !bounced.is_empty() {
            self.bounce(dcid, envelope, &bounced, body, &retry, now)
                .await;
        }
        claim.finish();
    }

    /// Queues the notification to the sender (none for `<>`), then marks the recipients
    /// bounced.
    async fn bounce(
        &self,
        dcid: u64,
        envelope: &Envelope,
        bounced: &[(RecipientId, Failure)],
        body: Option<&[u8]>,
        retry: &RetrySchedule,
        now: u64,
    ) {
        let queue = &self.delivery.queue;
        let log = &self.delivery.log;
        let mid = envelope.mid;
        if !envelope.sender.is_empty()
            && let Err(e) = self.queue_notification(envelope, bounced, body, now).await
        {
            // Without the notification the bounce would go unnoticed: try again later.
            log.warning(&format!(
                "MID {mid}: cannot queue the bounce notification ({e}); the recipients stay queued"
            ));
            let rids: Vec<RecipientId> = bounced.iter().map(|(rid, _)| *rid).collect();
            let _ = queue
                .defer(mid, &rids, now.saturating_add(retry.first_delay))
                .await;
            return;
        }
        for (rid, failure) in bounced {
            match queue.mark_bounced(mid, &[*rid], &failure.reason()).await {
                Ok(()) => log.info(&failure.bounced(dcid, mid.0, rid.0)),
                Err(e) => log.warning(&format!(
                    "MID {mid}: cannot record the bounce of RID {rid} ({e}); it will be tried again"
                )),
            }
        }
    }

    /// Queues the RFC 3464 notification of `bounced` to the sender, from `<>`.
    async fn queue_notification(
        &self,
        envelope: &Envelope,
        bounced: &[(RecipientId, Failure)],
        body: Option<&[u8]>,
        now: u64,
    ) -> Result<(), QueueError> {
        let queue = &self.delivery.queue;
        let failed: Vec<FailedRecipient> = bounced
            .iter()
            .map(|(rid, failure)| failure.for_bounce(envelope.recipient(*rid).unwrap_or_default()))
            .collect();
        let dsn_mid = queue.reserve_mid().await?;
        let message = Bounce {
            hostname: &self.policy.hostname,
            envelope,
            original: body,
            failed: &failed,
            now,
            unique: dsn_mid.0,
        }
        .to_message();
        let dsn = Envelope {
            mid: dsn_mid,
            icid: 0,
            sender: String::new(),
            recipients: vec![envelope.sender.clone()],
            received: now,
            size: message.len() as u64,
        };
        let bytes = dsn.size;
        queue.accept(dsn, message).await?;
        let log = &self.delivery.log;
        let mid = dsn_mid.0;
        log.info(&MailEvent::Start { mid, icid: 0 });
        log.info(&MailEvent::From {
            mid,
            icid: 0,
            sender: "",
        });
        log.info(&MailEvent::To {
            mid,
            icid: 0,
            rid: 0,
            recipient: &envelope.sender,
        });
        log.info(&MailEvent::Ready {
            mid,
            bytes,
            sender: "",
        });
        log.info(&MailEvent::Queued { mid });
        Ok(())
    }
}

impl std::fmt::Debug for DeliveryAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryAttempt")
            .field("domain", &self.domain)
            .field("tls", &self.tls)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl Failure {
    /// A failure of ours, with its exact RFC 3463 status.
    fn ours(status: &str, text: &str) -> Self {
        Self {
            logged_status: status.to_owned(),
            status: status.to_owned(),
            text: text.to_owned(),
            detail: None,
            remote: None,
        }
    }

    fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some((0, detail.into()));
        self
    }

    /// The connection broke or timed out.
    fn connection(e: &SessionError) -> Self {
        Self::ours("4.4.2", "Bad connection").with_detail(e.to_string())
    }

    /// A refusal by the next hop. The log gives its class (`5.1.0` for `550 5.1.1`), the
    /// bounce its exact status.
    fn reply(reply: &Reply, remote: &str) -> Self {
        // A positive reply where a refusal was met (a 250 to DATA): the server is confused;
        // try again later.
        let class = match reply.code() / 100 {
            5 => 5,
            _ => 4,
        };
        let (status, subject) = match reply.status() {
            Some(s) if u16::from(s.class().digit()) == class => (s.to_string(), s.subject()),
            _ => (format!("{class}.0.0"), 0),
        };
        let mut text = reply.status().map(|s| s.to_string()).unwrap_or_default();
        for line in reply.lines().iter().filter(|l| !l.is_empty()) {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(line);
        }
        Self {
            logged_status: format!("{class}.{subject}.0"),
            status,
            text: subject_text(subject).to_owned(),
            detail: Some((reply.code(), text)),
            remote: Some(remote.to_owned()),
        }
    }

    /// The same refusal taken as temporary.
    fn into_transient(self) -> Self {
        let transient = |s: String| match s.strip_prefix('5') {
            Some(rest) => format!("4{rest}"),
            None => s,
        };
        Self {
            logged_status: transient(self.logged_status),
            status: transient(self.status),
            ..self
        }
    }

    /// The failure of a last attempt, at the maximum queue age.
    fn expired(self) -> Self {
        Self {
            logged_status: "5.4.7".to_owned(),
            status: "5.4.7".to_owned(),
            text: "Delivery expired (message too old)".to_owned(),
            ..self
        }
    }

    fn is_permanent(&self) -> bool {
        self.status.starts_with('5')
    }

    /// `Delayed: DCID 8 MID 6 to RID 0 - 4.2.0 - Mailbox error ('452', ['4.2.2 Mailbox full'])`
    fn delayed(&self, dcid: u64, mid: u64, rid: u32) -> MailEvent<'_> {
        MailEvent::Delayed {
            dcid,
            mid,
            rid,
            status: &self.logged_status,
            text: &self.text,
            reply: self
                .detail
                .as_ref()
                .map(|(code, text)| (*code, text.as_str())),
        }
    }

    /// `Bounced: DCID 8 MID 6 to RID 0 - 5.1.0 - Unknown address error ('550', ['5.1.1 ...'])`
    fn bounced(&self, dcid: u64, mid: u64, rid: u32) -> MailEvent<'_> {
        MailEvent::Bounced {
            dcid,
            mid,
            rid,
            status: &self.logged_status,
            text: &self.text,
            reply: self
                .detail
                .as_ref()
                .map(|(code, text)| (*code, text.as_str())),
        }
    }

    /// What the queue keeps as the reason of the bounce.
    fn reason(&self) -> String {
        match &self.detail {
            Some((0, detail)) => format!("{} {}: {detail}", self.status, self.text),
            Some((code, text)) => format!("{} {}: {code} {text}", self.status, self.text),
            None => format!("{} {}", self.status, self.text),
        }
    }

    fn for_bounce(&self, recipient: &str) -> FailedRecipient {
        let (reply, reason) = match &self.detail {
            Some((0, detail)) => (None, format!("{}: {detail}", self.text)),
            Some((code, text)) => (Some(format!("{code} {text}")), self.text.clone()),
            None => (None, self.text.clone()),
        };
        FailedRecipient {
            recipient: recipient.to_owned(),
            status: self.status.clone(),
            reply,
            reason,
            remote_mta: self.remote.clone(),
        }
    }
}

/// The words of the reference appliance's log lines for the subject of a status (RFC 3463).
fn subject_text(subject: u16) -> &'static str {
    match subject {
        1 => "Unknown address error",
        2 => "Mailbox error",
        3 => "Mail system error",
        4 => "Other network problem",
        5 => "Protocol error",
        6 => "Message content error",
        7 => "Security or policy error",
        _ => "Other or undefined status",
    }
}

/// The unspecified address of the family of `peer`: the interface of a connection that was
/// never made.
fn unspecified(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests {
    use postern_smtp_proto::{EnhancedStatus, StatusClass};

    use super::*;

    fn refusal(code: u16, status: Option<(StatusClass, u16, u16)>, text: &str) -> Reply {
        let status = status.and_then(|(c, s, d)| EnhancedStatus::new(c, s, d));
        Reply::new(code, status, text).unwrap()
    }

    #[test]
    fn a_refusal_is_logged_by_its_class_and_bounced_with_its_exact_status() {
        let reply = refusal(
            550,
            Some((StatusClass::PermanentFailure, 1, 1)),
            "No such user",
        );
        let failure = Failure::reply(&reply, "mx.example.test");
        assert!(failure.is_permanent());
        assert_eq!(
            failure.bounced(8, 6, 0).to_string(),
            "Bounced: DCID 8 MID 6 to RID 0 - 5.1.0 - Unknown address error ('550', ['5.1.1 No such user'])"
        );
        let bounce = failure.for_bounce("b@example.test");
        assert_eq!(bounce.status, "5.1.1");
        assert_eq!(bounce.reply.as_deref(), Some("550 5.1.1 No such user"));
        assert_eq!(bounce.remote_mta.as_deref(), Some("mx.example.test"));

        // Without an enhanced status: the class of the code, subject 0.
        let plain = Failure::reply(&refusal(451, None, "busy"), "mx");
        assert!(!plain.is_permanent());
        assert_eq!(
            plain.delayed(8, 6, 1).to_string(),
            "Delayed: DCID 8 MID 6 to RID 1 - 4.0.0 - Other or undefined status ('451', ['busy'])"
        );
    }

    #[test]
    fn transient_and_expired_failures() {
        let greeting = refusal(554, Some((StatusClass::PermanentFailure, 7, 1)), "go away");
        let skipped = Failure::reply(&greeting, "mx").into_transient();
        assert_eq!(
            (skipped.logged_status.as_str(), skipped.status.as_str()),
            ("4.7.0", "4.7.1")
        );
        let already = Failure::ours("4.5.0", "Protocol error").into_transient();
        assert_eq!(already.status, "4.5.0", "only the class changes");

        let expired = Failure::reply(&refusal(452, None, "full"), "mx").expired();
        assert!(expired.is_permanent());
        assert_eq!(
            expired.bounced(8, 6, 0).to_string(),
            "Bounced: DCID 8 MID 6 to RID 0 - 5.4.7 - Delivery expired (message too old) ('452', ['full'])"
        );
        let dns = Failure::ours("5.1.2", "Bad destination host")
            .with_detail("DNS Hard Error looking up x.test (MX):  NXDomain");
        assert_eq!(
            dns.bounced(0, 6, 0).to_string(),
            "Bounced: DCID 0 MID 6 to RID 0 - 5.1.2 - Bad destination host ('000', ['DNS Hard Error looking up x.test (MX):  NXDomain'])"
        );
        assert_eq!(
            dns.reason(),
            "5.1.2 Bad destination host: DNS Hard Error looking up x.test (MX):  NXDomain"
        );
    }
}
