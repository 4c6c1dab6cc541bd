//! Outbound delivery: what the queue holds goes to its next hops.
//!
//! [`Delivery`] is the scheduler. It wakes when the queue accepts a message, when the next
//! retry falls due and when a delivery ends; it takes the due recipients that no delivery is
//! working on, groups them by recipient domain, and starts a [`DeliveryAttempt`] per connection,
//! within the destination's `max_concurrency` and the service's total. One attempt carries
//! several messages for its domain when they are due at once, all recipients of a message for
//! the domain in one transaction, over one connection.
//!
//! An attempt finds the next hops (`route.rs`: SMTP route or MX), speaks SMTP with
//! [`ClientSession`] (`session.rs`), does STARTTLS as the destination's TLS setting asks with
//! the Outbound SMTP TLS policy (`tls.rs`), and records each recipient's outcome in the queue:
//! delivered only after the next hop's `250` to the end of DATA, deferred with the
//! [`RetrySchedule`] until the maximum queue age, then bounced, with an
//! RFC 3464 notification to the sender (`dsn.rs`) unless the sender is `<>`.
//!
//! Each step is a `mail_logs` line in the reference appliance's words: `New SMTP DCID`,
//! `DCID .. TLS success`, `DCID .. TLS deferring`, `Delivery start`, `Message done`,
//! `Message finished`, `Delayed:`, `Bounced:`, `Connection Error:`, `DCID .. close`.

mod attempt;
pub mod dsn;
pub mod route;
pub mod session;
pub mod tls;
pub mod verify;

pub use attempt::DeliveryAttempt;
pub use route::{Dns, NextHop, NextHops, RouteError};
pub use session::{ClientSession, SessionError, Timeouts};
pub use tls::{CaRoots, OutboundTls};

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postern_config::{Config, DeliverySettings, PeerCertificateChecks, ServiceTls};
use postern_logs::{MailEvent, SharedLog};
use postern_tls::TlsError;
use tokio::sync::watch;
use tokio::task::{self, JoinSet};

use crate::first_connection_id;
use crate::queue::{MessageId, Queue, QueuedMessage, RecipientId, RetrySchedule};

/// Settings of delivery that are not in the configuration. [`Default`] gives the appliance's.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// The first and longest retry delays; the maximum age comes from the committed
    /// configuration's `max_queue_age`.
    pub retry: RetrySchedule,
    pub timeouts: Timeouts,
    /// Connections open at once, over all destinations.
    pub max_connections: usize,
    /// Messages one connection carries at most.
    pub max_messages_per_connection: usize,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            retry: RetrySchedule::default(),
            timeouts: Timeouts::default(),
            max_connections: 200,
            max_messages_per_connection: 50,
        }
    }
}

/// What deliveries follow: replaced as a whole on each commit; an attempt keeps the one it
/// started with.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// The appliance's host name: EHLO, and the domain of `MAILER-DAEMON` in bounces.
    pub hostname: String,
    /// SMTP routes, destination controls, the maximum queue age.
    pub settings: DeliverySettings,
    /// The connectors of the Outbound SMTP TLS policy.
    pub tls: OutboundTls,
}

impl DeliveryPolicy {
    /// The policy of a committed configuration. An Outbound SMTP TLS policy that the engine
    /// refuses is an error; see [`Self::without_tls`].
    pub fn from_config(config: &Config, roots: &CaRoots) -> Result<Self, TlsError> {
        Ok(Self {
            tls: OutboundTls::new(
                &config.tls.outbound_smtp,
                roots,
                config.tls.peer_certificates,
            )?,
            ..Self::without_tls(config.system.hostname.as_str(), &config.delivery)
        })
    }

    /// A policy without the extra peer certificate checks.
    pub fn new(
        hostname: &str,
        settings: &DeliverySettings,
        outbound: &ServiceTls,
        roots: &CaRoots,
    ) -> Result<Self, TlsError> {
        Ok(Self {
            tls: OutboundTls::new(outbound, roots, PeerCertificateChecks::default())?,
            ..Self::without_tls(hostname, settings)
        })
    }

    /// A policy that offers no TLS: destinations that require it are deferred.
    pub fn without_tls(hostname: &str, settings: &DeliverySettings) -> Self {
        Self {
            hostname: hostname.to_owned(),
            settings: settings.clone(),
            tls: OutboundTls::default(),
        }
    }
}

/// The delivery scheduler, and what its attempts share.
pub struct Delivery {
    queue: Queue,
    log: SharedLog,
    options: DeliveryOptions,
    dns: Dns,
    dcids: AtomicU64,
    /// The recipients attempts are working on: not due for the scheduler while they are.
    in_flight: Mutex<InFlight>,
}

/// The running attempts, and how many go to each domain.
#[derive(Debug, Default)]
struct Attempts {
    tasks: JoinSet<()>,
    domains: HashMap<task::Id, String>,
    per_domain: HashMap<String, u32>,
}

impl Attempts {
    fn running(&self, domain: &str) -> u32 {
        self.per_domain.get(domain).copied().unwrap_or(0)
    }

    fn started(&mut self, id: task::Id, domain: &str) {
        self.domains.insert(id, domain.to_owned());
        *self.per_domain.entry(domain.to_owned()).or_default() += 1;
    }

    fn ended(&mut self, id: task::Id) {
        let Some(domain) = self.domains.remove(&id) else {
            return;
        };
        if let Some(n) = self.per_domain.get_mut(&domain) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_domain.remove(&domain);
            }
        }
    }
}

/// Recipients taken by attempts, and how many attempts hold each message.
#[derive(Debug, Default)]
struct InFlight {
    recipients: HashSet<(MessageId, RecipientId)>,
    claims: HashMap<MessageId, usize>,
}

impl InFlight {
    /// Marks the recipients of `batch` as taken by an attempt.
    fn take(&mut self, batch: &Batch) {
        for (message, rids) in batch {
            let mid = message.mid();
            for &rid in rids {
                self.recipients.insert((mid, rid));
            }
            *self.claims.entry(mid).or_default() += 1;
        }
    }
}

/// The due recipients of one message for one domain, taken by one attempt. Dropping it (an
/// attempt that ends early, or is cut at shutdown) gives them back to the scheduler.
struct Claim {
    delivery: Arc<Delivery>,
    message: QueuedMessage,
    rids: Vec<RecipientId>,
    released: bool,
}

/// Messages due at once for one domain.
type Batch = Vec<(QueuedMessage, Vec<RecipientId>)>;

/// How many more messages than those in flight the scheduler looks at each time.
const SCAN: usize = 1000;

/// Messages a connection takes before another connection to the same domain is opened.
const MIN_PER_CONNECTION: usize = 10;

/// How often the scheduler looks again while due recipients wait for a connection slot.
const BUSY_POLL: Duration = Duration::from_secs(1);

impl Delivery {
    pub fn new(queue: Queue, log: SharedLog, options: DeliveryOptions) -> Arc<Self> {
        Arc::new(Self {
            queue,
            log,
            options,
            dns: Dns::default(),
            dcids: AtomicU64::new(first_connection_id()),
            in_flight: Mutex::default(),
        })
    }

    /// Delivers until `shutdown` turns true (or its sender goes away); then gives open
    /// deliveries `grace` to finish and cuts the rest. A cut delivery has recorded nothing for
    /// the message it was on, which stays queued and is tried again after the restart.
    pub async fn run(
        self: Arc<Self>,
        mut policy: watch::Receiver<Arc<DeliveryPolicy>>,
        mut shutdown: watch::Receiver<bool>,
        grace: Duration,
    ) {
        let mut attempts = Attempts::default();
        let mut policy_open = true;
        while !*shutdown.borrow() {
            self.dispatch(&mut policy, &mut attempts);
            let now = unix_now();
            let wake = match self.queue.next_due() {
                Some(at) if at > now => Duration::from_secs(at - now),
                // Due recipients are in flight or wait for a slot: an attempt that ends wakes
                // the scheduler, but one that goes on long must not hold up other retries.
                Some(_) => BUSY_POLL,
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                changed = shutdown.changed() => if changed.is_err() { break },
                () = self.queue.accepted() => {}
                () = tokio::time::sleep(wake) => {}
                Some(ended) = attempts.tasks.join_next_with_id(), if !attempts.tasks.is_empty() => {
                    // A panicked attempt frees its slot too; its claims were dropped with it.
                    let id = match ended {
                        Ok((id, ())) => id,
                        Err(e) => e.id(),
                    };
                    attempts.ended(id);
                }
                changed = policy.changed(), if policy_open => policy_open = changed.is_ok(),
            }
        }
        let drain = async { while attempts.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, drain).await.is_err() {
            attempts.tasks.shutdown().await;
        }
    }

    /// Starts attempts for the due recipients no attempt holds, within the limits, with the
    /// current policy.
    fn dispatch(
        self: &Arc<Self>,
        policy: &mut watch::Receiver<Arc<DeliveryPolicy>>,
        attempts: &mut Attempts,
    ) {
        let max = self.options.max_connections;
        if attempts.tasks.len() >= max {
            // Seen, so that the scheduler does not wake for it again.
            drop(policy.borrow_and_update());
            return;
        }
        let now = unix_now();
        let mut starts: Vec<(String, Batch)> = Vec::new();
        let policy = {
            // Held from the scan to the claims: an attempt records its outcomes before it
            // releases its recipients, so no recipient is seen here with a status gone stale
            // (a delivered one as still pending).
            let mut in_flight = self.in_flight();
            let due = self.queue.due(now, in_flight.claims.len() + SCAN);
            // The policy is read after the scan: a message accepted under a new commit (the
            // service replaces the delivery policy before the inbound one) is never sent with
            // the routes of an older one.
            let policy = policy.borrow_and_update().clone();
            for (domain, mut batch) in group_by_domain(due, now, &in_flight.recipients) {
                let limit = policy.settings.destination(&domain).max_concurrency.max(1);
                let running = |starts: &[(String, Batch)]| {
                    let new = starts.iter().filter(|(d, _)| *d == domain).count();
                    attempts.running(&domain) + u32::try_from(new).unwrap_or(u32::MAX)
                };
                let free = |starts: &[(String, Batch)]| {
                    max.saturating_sub(attempts.tasks.len() + starts.len())
                };
                let slots = usize::try_from(limit.saturating_sub(running(&starts)))
                    .unwrap_or(usize::MAX)
                    .min(free(&starts));
                if slots == 0 {
                    continue;
                }
                // Spread the batch over the free slots, but open a connection (and a TLS
                // handshake) only for a fair number of messages: a few go over one connection.
                let per_connection = batch
                    .len()
                    .div_ceil(slots)
                    .max(MIN_PER_CONNECTION)
                    .clamp(1, self.options.max_messages_per_connection.max(1));
                while !batch.is_empty() && free(&starts) > 0 && running(&starts) < limit {
                    let rest = batch.split_off(per_connection.min(batch.len()));
                    let taken = std::mem::replace(&mut batch, rest);
                    in_flight.take(&taken);
                    starts.push((domain.clone(), taken));
                }
                if free(&starts) == 0 {
                    break;
                }
            }
            policy
        };
        for (domain, batch) in starts {
            let claims = batch
                .into_iter()
                .map(|(message, rids)| Claim {
                    delivery: self.clone(),
                    message,
                    rids,
                    released: false,
                })
                .collect();
            let attempt =
                DeliveryAttempt::new(self.clone(), policy.clone(), domain.clone(), claims);
            let task = attempts.tasks.spawn(attempt.run());
            attempts.started(task.id(), &domain);
        }
    }

    fn in_flight(&self) -> MutexGuard<'_, InFlight> {
        // The sets are changed only whole; a panic elsewhere leaves them usable.
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn next_dcid(&self) -> u64 {
        self.dcids.fetch_add(1, Ordering::Relaxed)
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("queue", &self.queue)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Claim {
    fn mid(&self) -> MessageId {
        self.message.mid()
    }

    /// Gives the recipients back once the attempt has recorded their outcomes, and logs
    /// `Message finished` when that left the message without a pending recipient. The last
    /// claim of a message to be released does the check, so the line is written once.
    fn finish(mut self) {
        let mid = self.mid();
        let mut in_flight = self.delivery.in_flight();
        if Self::release_from(&mut in_flight, mid, &self.rids)
            && self.delivery.queue.message(mid).is_none()
        {
            self.delivery.log.info(&MailEvent::Finished { mid: mid.0 });
        }
        self.released = true;
    }

    /// True when no other claim holds the message.
    fn release_from(in_flight: &mut InFlight, mid: MessageId, rids: &[RecipientId]) -> bool {
        for &rid in rids {
            in_flight.recipients.remove(&(mid, rid));
        }
        match in_flight.claims.get_mut(&mid) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                in_flight.claims.remove(&mid);
                true
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.released {
            let mid = self.mid();
            Self::release_from(&mut self.delivery.in_flight(), mid, &self.rids);
        }
    }
}

impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claim")
            .field("mid", &self.mid())
            .field("rids", &self.rids)
            .finish()
    }
}

/// The due recipients not in flight, by domain (lower case; empty for an address without one),
/// domains in the order of their longest-waiting message.
fn group_by_domain(
    due: Vec<QueuedMessage>,
    now: u64,
    in_flight: &HashSet<(MessageId, RecipientId)>,
) -> Vec<(String, Batch)> {
    let mut order: Vec<(String, Batch)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for message in due {
        let mid = message.mid();
        let mut by_domain: Vec<(String, Vec<RecipientId>)> = Vec::new();
        for rid in message.due_recipients(now) {
            if in_flight.contains(&(mid, rid)) {
                continue;
            }
            let domain = message
                .envelope
                .recipient(rid)
                .map(recipient_domain)
                .unwrap_or_default();
            match by_domain.iter_mut().find(|(d, _)| *d == domain) {
                Some((_, rids)) => rids.push(rid),
                None => by_domain.push((domain, vec![rid])),
            }
        }
        for (domain, rids) in by_domain {
            let at = *index.entry(domain.clone()).or_insert_with(|| {
                order.push((domain, Vec::new()));
                order.len() - 1
            });
            order[at].1.push((message.clone(), rids));
        }
    }
    order
}

/// The domain of `local@domain` in lower case; empty when there is no `@`.
fn recipient_domain(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, domain)| domain.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
