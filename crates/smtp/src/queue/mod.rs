//! The mail queue in `DATA/queue`: every accepted message is on disk, fsynced, before the SMTP
//! server answers `250`, and stays there until each of its recipients is delivered or bounced.
//!
//! # Design: a segment log with group commit
//!
//! The spool is an append-only log cut into segments, `seg-<n>.log`, of checksummed records
//! (`record.rs` has the format): a message (envelope and body); a change of some of its
//! recipients (delivered, bounced, deferred until a time); a message copied by compaction with
//! its recipients' statuses; a reservation of MIDs. All writes go through one writer thread
//! (`writer.rs`): it takes every request waiting in its channel, appends them all with one write,
//! makes them durable with one `fdatasync`, applies them to the in-memory state (`state.rs`) and
//! only then answers each. Requests that arrive while it waits for the disk form the next batch,
//! so one sync serves everyone waiting for it: throughput grows with the number of sessions,
//! and each accept still returns only once its message is durable. Delivery's changes share the
//! same batches. A segment is closed at [`QueueOptions::segment_size`] and a new head started.
//!
//! One file per message with parallel fsyncs was the other choice. It would cost each message a
//! file creation, a data fsync and a share of a directory fsync, and each delivery a rewrite or
//! a second file; the log costs a batch one sequential append and one fdatasync, whatever it
//! carries, and a change is a few bytes in it.
//!
//! Memory holds each queued message's envelope, its recipients' statuses and where its record
//! is, never its body: [`Queue::body`] reads the record back and checks its checksums.
//!
//! # Durability
//!
//! - A request is answered `Ok` only after the fdatasync covering its record has returned. The
//!   head's directory entry was made durable (temporary name, fsync, rename, directory fsync)
//!   before any record went into it, so fdatasync of the file is enough.
//! - Anything a crash interrupts was never acknowledged. [`Queue::open`] reads every segment and
//!   checks every record; a partial record at the end of the last segment is dropped and cut off,
//!   so that later appends follow a whole record. Damage elsewhere is skipped with a
//!   [`QueueWarning`]: a checksum over each record's header lets open find the next whole record,
//!   and each segment's random salt keeps a record-shaped message body from being taken for one.
//!   A segment whose own header is damaged is renamed `seg-<n>.damaged` and left for an expert.
//!   Open never panics and never refuses to start over damage in the files; only a failure of
//!   the directory itself is an error.
//! - A write that fails (a full disk) is cut off before anything is answered, and the batch is
//!   written again record by record, so that only the requests that do not fit fail, with
//!   [`QueueError::StorageFull`], and nothing of them is visible after a restart. A failed
//!   fdatasync fails and cuts off its whole batch; a head that cannot be cut off is abandoned
//!   for a new segment.
//! - Replay at open and the running queue apply records through the same `State::apply`, so
//!   a restart rebuilds what the running queue had. A recipient's final status is final: a later
//!   change of it is ignored, in both.
//! - Duplicates are rare: a recipient marked delivered is never due again, after a restart
//!   either, and an accept whose session went away before the writer took it is not written.
//!   What remains is the window every MTA has: a crash after the fsync and before the `250`
//!   reached the client, or after the next hop's `250` and before [`Queue::mark_delivered`].
//!
//! # Reclaiming space
//!
//! A segment other than the head is deleted once no queued message's record is in it and every
//! older segment it depends on is gone. A segment depends on the older segment of any message
//! that one of its records changed or copied: deleted first, it would let that message come back
//! at the next open without the change. Deletions are made durable with a directory fsync
//! before anything depending on them is deleted. When the segments behind the head hold more
//! dead bytes than the whole queue holds live ones (and more than a segment), compaction copies
//! the live messages of the oldest segment, with their recipients' statuses, to the head, a few
//! MiB per batch of the ordinary group commit, with the copies ahead of any change in the same
//! batch. Emptied and oldest, that segment goes next. A crash between a copy and the deletion
//! leaves two copies, and at open the later one wins.
//!
//! # MIDs
//!
//! [`Queue::reserve_mid`] hands MIDs out of blocks reserved durably in the log, each in a batch
//! that was being written anyway, and each segment's header carries the reservation in force
//! when it was made. After a restart, MIDs start above every MID handed out before, whether its
//! message was accepted or not, even when every older segment has been deleted.

mod envelope;
mod error;
mod record;
mod retry;
mod spool;
mod state;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};

use tokio::sync::{Notify, oneshot};

pub use envelope::{Envelope, MessageId, QueuedMessage, RecipientId, RecipientStatus};
pub use error::{QueueError, QueueWarning};
pub use retry::RetrySchedule;

use error::io_error;
use state::State;
use writer::{Change, Reply, Request};

/// A bounce reason longer than this is cut: it is a reply from a server we do not control.
const MAX_REASON: usize = 2048;

/// Settings of a queue. [`Default`] gives the appliance's.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueOptions {
    /// Bytes after which the head segment is closed and a new one started (64 MiB).
    pub segment_size: u64,
    /// The most messages the queue holds; more fail with [`QueueError::Full`] (500,000, about
    /// 150 MiB of envelopes in memory).
    pub max_messages: usize,
}

/// Counts for the CLI's `status` and the web UI's queue view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct QueueStats {
    /// Messages queued (with at least one pending recipient).
    pub messages: usize,
    pub recipients_pending: usize,
    /// The bodies of the queued messages.
    pub bytes: u64,
    /// The segment files, dead records included.
    pub disk_bytes: u64,
    pub segments: usize,
    /// Batches made durable (one fdatasync each) since open.
    pub commits: u64,
}

/// A queue that was opened, with what was noticed on the way.
#[derive(Debug)]
pub struct Opened {
    pub queue: Queue,
    /// Damage that open worked around; the caller logs each as a Warning.
    pub warnings: Vec<QueueWarning>,
}

/// The mail queue. Cloning gives another handle to the same queue; the writer stops when the
/// queue is closed or the last handle is dropped.
#[derive(Clone)]
pub struct Queue {
    shared: Arc<Shared>,
    requests: mpsc::Sender<Request>,
}

/// What the handles and the writer share.
struct Shared {
    dir: PathBuf,
    state: Mutex<State>,
    /// Told when a batch accepted messages.
    accepted: Notify,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            segment_size: 64 << 20,
            max_messages: 500_000,
        }
    }
}

impl Queue {
    /// Opens the queue in `dir` (created if missing) with the default options. See
    /// [`Queue::open_with`].
    pub async fn open(dir: impl Into<PathBuf>) -> Result<Opened, QueueError> {
        Self::open_with(dir, QueueOptions::default()).await
    }

    /// Opens the queue in `dir`, created if missing: recovers every message that was
    /// acknowledged and is not finished, with its recipients' statuses, and reports damage it
    /// skipped. Fails only when the directory cannot be used, or is still open elsewhere after
    /// two seconds ([`QueueError::Locked`]).
    pub async fn open_with(
        dir: impl Into<PathBuf>,
        options: QueueOptions,
    ) -> Result<Opened, QueueError> {
        let dir = dir.into();
        let path = dir.clone();
        tokio::task::spawn_blocking(move || spool::open(dir, options))
            .await
            .map_err(|e| io_error("open", &path, std::io::Error::other(e)))?
    }

    /// The directory of the spool.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// A new MID for a message the session is starting (at `MAIL FROM`, so that `Start MID`
    /// can be logged). It is never handed out again, after a restart either, whether the
    /// message is accepted or not. Waits for a write only when a new block must be reserved.
    pub async fn reserve_mid(&self) -> Result<MessageId, QueueError> {
        loop {
            {
                let mut state = self.shared.state();
                if state.next_mid < state.mid_limit {
                    let mid = MessageId(state.next_mid);
                    state.next_mid += 1;
                    return Ok(mid);
                }
            }
            self.request(|reply| Request::Reserve { reply }).await?;
        }
    }

    /// Queues a message, whose MID came from [`Queue::reserve_mid`] and whose
    /// [`Envelope::size`] is the body's length. Returns once the message is durable: then, and
    /// only then, the server may answer `250`. Dropping the future before it returns may or may
    /// not queue the message.
    pub async fn accept(&self, envelope: Envelope, body: Vec<u8>) -> Result<MessageId, QueueError> {
        let mid = envelope.mid;
        self.request(|reply| Request::Accept {
            envelope,
            body,
            reply,
        })
        .await?;
        Ok(mid)
    }

    /// Records that the next hop accepted these recipients. Durable when it returns; they are
    /// never due again. Recipients already delivered or bounced are left as they are.
    pub async fn mark_delivered(
        &self,
        mid: MessageId,
        rids: &[RecipientId],
    ) -> Result<(), QueueError> {
        self.change(mid, rids, Change::Delivered).await
    }

    /// Records that these recipients are given up on, with the reason the bounce gives.
    /// Durable when it returns.
    pub async fn mark_bounced(
        &self,
        mid: MessageId,
        rids: &[RecipientId],
        reason: &str,
    ) -> Result<(), QueueError> {
        let mut end = reason.len().min(MAX_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let reason = reason[..end].to_owned();
        self.change(mid, rids, Change::Bounced(reason)).await
    }

    /// Records a failed attempt for these recipients and when to try them again (seconds
    /// since the Unix epoch; see [`RetrySchedule`]). Durable when it returns.
    pub async fn defer(
        &self,
        mid: MessageId,
        rids: &[RecipientId],
        next_attempt: u64,
    ) -> Result<(), QueueError> {
        self.change(mid, rids, Change::Deferred(next_attempt)).await
    }

    /// Up to `limit` messages with a pending recipient due at `now` (seconds since the Unix
    /// epoch), the longest-waiting first. A message stays due until its recipients are marked
    /// or deferred: the delivery scheduler keeps track of the attempts it has started.
    pub fn due(&self, now: u64, limit: usize) -> Vec<QueuedMessage> {
        self.shared.state().due(now, limit)
    }

    /// When the next recipient is due, if any message is queued: how long the delivery
    /// scheduler may sleep, unless [`Queue::accepted`] wakes it.
    pub fn next_due(&self) -> Option<u64> {
        self.shared.state().next_due()
    }

    /// Makes the recipients that wait for a retry due now: those of `domain`, or all
    /// (`delivernow`). Answers how many; the scheduler is woken.
    pub fn deliver_now(&self, domain: Option<&str>) -> usize {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let made_due = self.shared.state().deliver_now(domain, now);
        if made_due > 0 {
            self.shared.accepted.notify_one();
        }
        made_due
    }

    /// Waits until a message has been accepted since the last time this returned (or since
    /// open). Meant for the one delivery scheduler, which waits on this and on
    /// [`Queue::next_due`].
    pub async fn accepted(&self) {
        self.shared.accepted.notified().await;
    }

    /// The queued message with this MID, for `showmessage`-style views.
    pub fn message(&self, mid: MessageId) -> Option<QueuedMessage> {
        self.shared
            .state()
            .messages
            .get(&mid)
            .map(state::Entry::to_message)
    }

    /// Reads the body of a queued message back from its segment, checking its checksums.
    pub async fn body(&self, mid: MessageId) -> Result<Vec<u8>, QueueError> {
        let (file, path, salt, at) = {
            let state = self.shared.state();
            let entry = state
                .messages
                .get(&mid)
                .ok_or(QueueError::UnknownMessage(mid))?;
            let segment = state
                .segments
                .get(&entry.at.segment)
                .ok_or(QueueError::UnknownMessage(mid))?;
            (
                Arc::clone(&segment.file),
                segment.path.clone(),
                segment.salt,
                entry.at,
            )
        };
        let read_path = path.clone();
        tokio::task::spawn_blocking(move || spool::read_body(&file, &read_path, salt, at, mid))
            .await
            .map_err(|e| io_error("read", &path, std::io::Error::other(e)))?
    }

    pub fn stats(&self) -> QueueStats {
        self.shared.state().stats()
    }

    /// Finishes what was asked before, releases the directory, and stops the writer. Other
    /// handles get [`QueueError::Closed`] from then on.
    pub async fn close(self) {
        let (reply, closed) = oneshot::channel();
        if self.requests.send(Request::Close { reply }).is_ok() {
            // An error means the writer has stopped already.
            let _ = closed.await;
        }
    }

    async fn change(
        &self,
        mid: MessageId,
        rids: &[RecipientId],
        change: Change,
    ) -> Result<(), QueueError> {
        let rids = rids.to_vec();
        self.request(|reply| Request::Change {
            mid,
            rids,
            change,
            reply,
        })
        .await
    }

    async fn request(&self, request: impl FnOnce(Reply) -> Request) -> Result<(), QueueError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(request(reply))
            .map_err(|_| QueueError::Closed)?;
        answer.await.map_err(|_| QueueError::Closed)?
    }
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state is changed only between whole records; a panic elsewhere leaves it whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
