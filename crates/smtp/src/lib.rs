//! The SMTP service of Postern: inbound sessions that put every accepted message on disk before
//! answering `250`, and the mail queue. Outbound delivery and routes will sit beside them.
//!
//! # Layout
//!
//! - [`inbound`]: listeners within their connection limits and one [`inbound::Session`] per
//!   connection, generic over its stream: EHLO, MAIL, RCPT (the Recipient Access Table), DATA
//!   and STARTTLS with the Inbound SMTP TLS policy, each verb in its own file, each step in
//!   `mail_logs`.
//! - [`service`]: the `postern smtpd` process: binds the listeners of the committed
//!   configuration, reports ready, and gives new connections the policy of each new commit.
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

pub mod inbound;
pub mod queue;
pub mod service;

pub use queue::{
    Envelope, MessageId, Opened, Queue, QueueError, QueueOptions, QueueStats, QueueWarning,
    QueuedMessage, RecipientId, RecipientStatus, RetrySchedule,
};
