//! The SMTP service of Postern: inbound sessions that put every accepted message on disk before
//! answering `250`, the mail queue, and outbound delivery of what the queue holds.
//!
//! # Layout
//!
//! - [`inbound`]: listeners within their connection limits and one [`inbound::Session`] per
//!   connection, generic over its stream: EHLO, MAIL, RCPT (the Recipient Access Table), DATA
//!   and STARTTLS with the Inbound SMTP TLS policy, each verb in its own file, each step in
//!   `mail_logs`.
//! - [`outbound`]: [`outbound::Delivery`], the scheduler that wakes when a message is accepted
//!   or a retry falls due, groups due recipients by domain within each destination's
//!   concurrency, and runs one [`outbound::DeliveryAttempt`] per connection: next hops from the
//!   SMTP routes or MX (`route.rs`), the client conversation generic over its stream
//!   (`session.rs`), STARTTLS by the destination's TLS setting with the Outbound SMTP policy
//!   (`tls.rs`), retries with [`RetrySchedule`] and RFC 3464 bounces (`dsn.rs`).
//! - [`service`]: the `postern smtpd` process: binds the listeners of the committed
//!   configuration, reports ready, delivers what the queue holds, and gives new connections
//!   (in and out) the policy of each new commit.
//! - [`queue`]: [`Queue`], the spool in `DATA/queue`. [`Queue::accept`] returns only once a
//!   message is durable, so the server may answer `250`; concurrent sessions share each
//!   `fdatasync` through a group commit on an append-only log of checksummed records, cut into
//!   segments. Delivery asks [`Queue::due`] what to try, reads a body with [`Queue::body`], and
//!   records the outcome with [`Queue::mark_delivered`], [`Queue::mark_bounced`] or
//!   [`Queue::defer`] (with [`RetrySchedule`] for when), each durable when it returns. After a
//!   crash [`Queue::open`] recovers every acknowledged message with its recipients' statuses,
//!   drops a torn tail and skips damage with a [`QueueWarning`]. Finished segments are deleted,
//!   mostly dead ones compacted. A full disk fails an accept with
//!   [`QueueError::StorageFull`] (`452 4.3.1`) and loses nothing already queued.

mod conn;
pub mod inbound;
pub mod outbound;
pub mod queue;
pub mod service;

pub use queue::{
    Envelope, MessageId, Opened, Queue, QueueError, QueueOptions, QueueStats, QueueWarning,
    QueuedMessage, RecipientId, RecipientStatus, RetrySchedule,
};

/// Connection ids (ICIDs in, DCIDs out) grow across restarts without a store of their own: they
/// start from the time, a hundred a second since 2020, which a service that restarts does not
/// catch up with.
pub(crate) fn first_connection_id() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    now.saturating_sub(1_577_836_800) * 100
}
