//! What the queue knows about a message besides its body: the envelope the client gave, and
//! where each recipient stands.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A message's MID, as the mail logs write it (`Start MID 6 ICID 1020089`). MIDs only grow,
/// across restarts too: one is never given to two messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageId(pub u64);

/// A recipient's RID: its index in [`Envelope::recipients`], as the mail logs write it
/// (`MID 6 ICID 1020089 RID 0 To: <b@example.test>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecipientId(pub u32);

/// The envelope of a queued message, stored with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Reserved with [`Queue::reserve_mid`](super::Queue::reserve_mid) when the session began
    /// the message.
    pub mid: MessageId,
    /// The inbound connection the message came on.
    pub icid: u64,
    /// The reverse path without its angle brackets; empty for the null sender `<>`.
    pub sender: String,
    /// The forward paths without angle brackets; a recipient's RID is its index here.
    pub recipients: Vec<String>,
    /// When the message was received, in seconds since the Unix epoch.
    pub received: u64,
    /// The body's length in bytes.
    pub size: u64,
}

/// Where one recipient of a queued message stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecipientStatus {
    /// Not delivered yet.
    Pending {
        /// When the next attempt is due, in seconds since the Unix epoch; 0 before the first.
        next_attempt: u64,
        /// Failed attempts so far (each [`Queue::defer`](super::Queue::defer) counts one).
        attempts: u32,
    },
    /// Accepted by the next hop.
    Delivered,
    /// Given up on; the reason is what the bounce says.
    Bounced { reason: String },
}

/// A queued message as the delivery side sees it. The body stays on disk:
/// [`Queue::body`](super::Queue::body) reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub envelope: Arc<Envelope>,
    /// One status per recipient, indexed by RID.
    pub recipients: Vec<RecipientStatus>,
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for RecipientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Envelope {
    /// The recipient with this RID.
    pub fn recipient(&self, rid: RecipientId) -> Option<&str> {
        self.recipients.get(rid.index()).map(String::as_str)
    }

    /// The RIDs of all recipients, in order.
    pub fn rids(&self) -> impl Iterator<Item = RecipientId> + use<> {
        (0u32..).take(self.recipients.len()).map(RecipientId)
    }
}

impl RecipientId {
    pub(super) fn index(self) -> usize {
        // u32 always fits the usize of the 64-bit targets Postern is built for.
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl RecipientStatus {
    /// A recipient that nobody has tried yet.
    pub(super) const NEW: Self = Self::Pending {
        next_attempt: 0,
        attempts: 0,
    };

    pub fn is_pending(&self) -> bool {
        matches!(self, Self::Pending { .. })
    }

    /// When a pending recipient is due.
    pub fn next_attempt(&self) -> Option<u64> {
        match self {
            Self::Pending { next_attempt, .. } => Some(*next_attempt),
            Self::Delivered | Self::Bounced { .. } => None,
        }
    }
}

impl QueuedMessage {
    pub fn mid(&self) -> MessageId {
        self.envelope.mid
    }

    /// The pending recipients whose next attempt is due at `now`: those to try now.
    pub fn due_recipients(&self, now: u64) -> Vec<RecipientId> {
        self.envelope
            .rids()
            .zip(&self.recipients)
            .filter(|(_, s)| s.next_attempt().is_some_and(|t| t <= now))
            .map(|(rid, _)| rid)
            .collect()
    }

    /// The earliest next attempt among the pending recipients; `None` once all are done.
    pub fn next_attempt(&self) -> Option<u64> {
        self.recipients
            .iter()
            .filter_map(RecipientStatus::next_attempt)
            .min()
    }
}
