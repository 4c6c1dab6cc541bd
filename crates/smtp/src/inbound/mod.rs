//! Inbound SMTP: a listener accepts connections within its limits, and a [`Session`] per
//! connection speaks SMTP with STARTTLS. Every message that gets `250` is on disk first.
//!
//! The session is generic over its stream, so tests drive it over an in-memory one; one file per
//! verb holds what that verb does (`ehlo.rs`, `mail.rs`, `rcpt.rs`, `data.rs`, `starttls.rs`).

mod data;
mod ehlo;
mod listener;
mod mail;
mod rcpt;
mod session;
mod starttls;

pub use listener::{ConnectionLimits, InboundListener};
pub use session::{Session, SessionEnd};

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use postern_config::SmtpListener;
use postern_logs::SharedLog;
use postern_tls::TlsAcceptor;

use crate::first_connection_id;
use crate::queue::Queue;

/// What one listener's sessions follow; replaced as a whole on commit, and a session keeps the
/// one it started with.
#[derive(Debug, Clone)]
pub struct InboundPolicy {
    /// The appliance's host name, in the greeting and replies.
    pub hostname: String,
    /// The listener's name, as `New SMTP ICID` lines show it.
    pub listener: String,
    pub listener_ip: IpAddr,
    pub settings: SmtpListener,
    /// The Inbound SMTP TLS policy; `None` when STARTTLS cannot be offered (listener TLS `No`).
    pub tls: Option<TlsAcceptor>,
}

/// What every session of the service shares.
#[derive(Debug)]
pub struct Inbound {
    pub queue: Queue,
    pub mail_log: SharedLog,
    pub counters: InboundCounters,
    icids: AtomicU64,
}

impl Inbound {
    pub fn new(queue: Queue, mail_log: SharedLog) -> Arc<Self> {
        Arc::new(Self {
            queue,
            mail_log,
            counters: InboundCounters::default(),
            icids: AtomicU64::new(first_connection_id()),
        })
    }

    /// A new ICID.
    pub fn next_icid(&self) -> u64 {
        self.icids.fetch_add(1, Ordering::Relaxed)
    }
}

/// The counters of `status`, since the service started.
#[derive(Debug, Default)]
pub struct InboundCounters {
    pub connections: AtomicU64,
    pub messages_received: AtomicU64,
    pub recipients_received: AtomicU64,
    pub recipients_rejected: AtomicU64,
    pub tls_successes: AtomicU64,
    pub tls_failures: AtomicU64,
}

impl InboundCounters {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
