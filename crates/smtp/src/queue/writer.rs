//! The queue's one writer, and its group commit.
//!
//! Every change to the spool goes through one thread. It takes every request waiting in its
//! channel, frames them all into one buffer, writes that at the head's end in one call, makes it
//! durable with one `fdatasync`, applies it to the in-memory state, and only then answers each
//! request. Requests that arrive while it waits for the disk form the next batch: the more
//! sessions wait for an fsync, the more one fsync carries. A thread of its own keeps these
//! blocking calls off the async runtime.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, MutexGuard};

use tokio::sync::oneshot;

use super::envelope::{Envelope, MessageId, RecipientId};
use super::error::{Failure, QueueError};
use super::record::{self, FrameError, Framed, MAX_RECORD, Record, SEGMENT_HEADER_LEN};
use super::state::{Location, State};
use super::{QueueOptions, Shared, spool};

/// A batch stops growing at this many bytes of bodies, so that the first sessions of a large
/// burst do not wait for the write of the last.
const MAX_BATCH_BYTES: usize = 16 << 20;
/// Compaction copies about this many bytes per batch, so that sessions never wait long behind it.
const COMPACTION_STEP: u64 = 4 << 20;
/// MIDs are reserved on disk this many at a time.
const MID_BLOCK: u64 = 1024;

/// What the writer is asked to do.
pub(super) enum Request {
    Accept {
        envelope: Envelope,
        body: Vec<u8>,
        reply: Reply,
    },
    Change {
        mid: MessageId,
        rids: Vec<RecipientId>,
        change: Change,
        reply: Reply,
    },
    /// Reserve another block of MIDs.
    Reserve { reply: Reply },
    /// Finish the batch, release the lock and stop.
    Close { reply: oneshot::Sender<()> },
}

/// Answered once the request is durable (or has failed).
pub(super) type Reply = oneshot::Sender<Result<(), QueueError>>;

/// A change of recipients' statuses.
pub(super) enum Change {
    Delivered,
    Bounced(String),
    Deferred(u64),
}

pub(super) struct Writer {
    shared: Arc<Shared>,
    options: QueueOptions,
    requests: Receiver<Request>,
    /// The directory's lock, released when the writer stops.
    _lock: File,
    /// A failed write could not be cut off: the next batch goes to a new segment.
    roll: bool,
    /// The last compaction step failed to write: no other is tried until a request succeeds.
    compaction_failed: bool,
}

/// A record on its way to disk.
struct Item {
    record: Record,
    body: Vec<u8>,
    replies: Vec<Reply>,
}

/// A record framed into the batch's buffer.
struct Pending {
    record: Record,
    replies: Vec<Reply>,
    start: usize,
    framed: Framed,
}

/// What a batch made durable, to be answered once reclaiming is done.
#[derive(Default)]
struct Committed {
    replies: Vec<Reply>,
    accepted: bool,
    closers: Vec<oneshot::Sender<()>>,
}

/// The segment a batch goes to.
struct Head {
    segment: u64,
    file: Arc<File>,
    path: PathBuf,
    salt: u32,
    end: u64,
}

impl Request {
    /// The bytes it adds to a batch, roughly.
    fn weight(&self) -> usize {
        match self {
            Self::Accept { body, .. } => body.len(),
            Self::Change { .. } | Self::Reserve { .. } | Self::Close { .. } => 64,
        }
    }
}

impl Change {
    fn record(self, mid: MessageId, rids: Vec<RecipientId>) -> Record {
        match self {
            Self::Delivered => Record::Delivered { mid, rids },
            Self::Bounced(reason) => Record::Bounced { mid, rids, reason },
            Self::Deferred(next_attempt) => Record::Deferred {
                mid,
                rids,
                next_attempt,
            },
        }
    }
}

impl Item {
    fn new(record: Record, body: Vec<u8>, reply: Option<Reply>) -> Self {
        Self {
            record,
            body,
            replies: reply.into_iter().collect(),
        }
    }
}

impl Pending {
    fn fail(self, error: impl Fn() -> QueueError) {
        for reply in self.replies {
            let _ = reply.send(Err(error()));
        }
    }
}

impl Writer {
    pub(super) fn new(
        shared: Arc<Shared>,
        options: QueueOptions,
        requests: Receiver<Request>,
        lock: File,
    ) -> Self {
        Self {
            shared,
            options,
            requests,
            _lock: lock,
            roll: false,
            compaction_failed: false,
        }
    }

    /// Runs until the queue is closed or every [`Queue`](super::Queue) handle is dropped.
    pub(super) fn run(mut self) {
        let mut closers = Vec::new();
        loop {
            let compact = self.compaction_source();
            // With compaction to do, an idle queue does it; otherwise wait for a request.
            let first = if compact.is_some() {
                match self.requests.try_recv() {
                    Ok(request) => Some(request),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match self.requests.recv() {
                    Ok(request) => Some(request),
                    Err(_) => break,
                }
            };
            let mut batch: Vec<Request> = first.into_iter().collect();
            let mut bytes: usize = batch.iter().map(Request::weight).sum();
            while bytes < MAX_BATCH_BYTES
                && let Ok(request) = self.requests.try_recv()
            {
                bytes += request.weight();
                batch.push(request);
            }
            let done = self.commit(batch, compact);
            // Space goes before the answers: when a change returns, a segment it emptied is gone.
            spool::reclaim(&self.shared);
            for reply in done.replies {
                let _ = reply.send(Ok(()));
            }
            if done.accepted {
                self.shared.accepted.notify_one();
            }
            closers = done.closers;
            if !closers.is_empty() {
                break;
            }
        }
        // The lock goes before the closers hear back, so that they may open the queue again.
        drop(self);
        for closer in closers {
            let _ = closer.send(());
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state()
    }

    fn compaction_source(&self) -> Option<u64> {
        if self.compaction_failed {
            return None;
        }
        self.state().compaction_source(self.options.segment_size)
    }

    /// Writes one batch: compaction's copies first, then the requests in the order they came.
    /// Failures are answered at once, successes are returned.
    fn commit(&mut self, batch: Vec<Request>, compact: Option<u64>) -> Committed {
        // Copies go before any change in the same batch: a copy carries the statuses as they
        // were before this batch, and replay applies what follows it on top.
        let mut items = match compact {
            Some(source) => self.relocations(source),
            None => Vec::new(),
        };
        if compact.is_some() && items.is_empty() {
            // Nothing could be copied: wait for a request before trying again.
            self.compaction_failed = true;
        }
        let mut closers = Vec::new();
        {
            let state = self.state();
            let mut accepting = HashSet::new();
            let mut reserving = Vec::new();
            for request in batch {
                match request {
                    Request::Accept {
                        envelope,
                        body,
                        reply,
                    } => {
                        // A session that went away before its message was written never said
                        // 250: writing it would only make a duplicate when the client retries.
                        if reply.is_closed() {
                            continue;
                        }
                        match self.check_accept(&state, &envelope, &body, &accepting) {
                            Ok(()) => {
                                accepting.insert(envelope.mid);
                                items.push(Item::new(
                                    Record::Message { envelope },
                                    body,
                                    Some(reply),
                                ));
                            }
                            Err(e) => {
                                let _ = reply.send(Err(e));
                            }
                        }
                    }
                    Request::Change {
                        mid,
                        rids,
                        change,
                        reply,
                    } => match check_change(&state, mid, rids) {
                        Ok(rids) if rids.is_empty() => {
                            let _ = reply.send(Ok(()));
                        }
                        Ok(rids) => {
                            items.push(Item::new(
                                change.record(mid, rids),
                                Vec::new(),
                                Some(reply),
                            ));
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    },
                    Request::Reserve { reply } => reserving.push(reply),
                    Request::Close { reply } => closers.push(reply),
                }
            }
            // Reserve the next block while half of this one is left, in a batch that is being
            // written anyway, so that reserve_mid rarely waits for a write of its own.
            let low = state.mid_limit.saturating_sub(state.next_mid) < MID_BLOCK / 2;
            if !reserving.is_empty() || (low && !items.is_empty()) {
                let limit = state
                    .next_mid
                    .max(state.mid_limit)
                    .saturating_add(MID_BLOCK);
                items.push(Item {
                    record: Record::Reserved { limit },
                    body: Vec::new(),
                    replies: reserving,
                });
            }
        }
        let mut done = if items.is_empty() {
            Committed::default()
        } else {
            self.write(items)
        };
        done.closers = closers;
        done
    }

    fn check_accept(
        &self,
        state: &State,
        envelope: &Envelope,
        body: &[u8],
        accepting: &HashSet<MessageId>,
    ) -> Result<(), QueueError> {
        let mid = envelope.mid;
        if mid.0 == 0 || mid.0 >= state.next_mid {
            return Err(QueueError::NotReserved(mid));
        }
        if state.messages.contains_key(&mid) || accepting.contains(&mid) {
            return Err(QueueError::AlreadyQueued(mid));
        }
        if envelope.recipients.is_empty() {
            return Err(QueueError::NoRecipients(mid));
        }
        if envelope.size != body.len() as u64 {
            return Err(QueueError::SizeMismatch {
                mid,
                envelope: envelope.size,
                body: body.len() as u64,
            });
        }
        if state.messages.len() + accepting.len() >= self.options.max_messages {
            return Err(QueueError::Full {
                limit: self.options.max_messages,
            });
        }
        Ok(())
    }

    /// Compaction's next copies from `source`, bodies read back and checked.
    fn relocations(&mut self, source: u64) -> Vec<Item> {
        let plan = self.state().relocations(source, COMPACTION_STEP);
        let mut items = Vec::with_capacity(plan.len());
        for r in plan {
            match spool::read_body(&r.file, &r.path, r.salt, r.at, r.envelope.mid) {
                Ok(body) => items.push(Item::new(
                    Record::Relocated {
                        envelope: Envelope::clone(&r.envelope),
                        recipients: r.recipients,
                    },
                    body,
                    None,
                )),
                Err(_) => {
                    // The delivery side meets the same damage through Queue::body and bounces
                    // the message; until it is gone, compaction leaves this segment alone.
                    if let Some(s) = self.state().segments.get_mut(&source) {
                        s.stuck = true;
                    }
                    break;
                }
            }
        }
        items
    }

    /// Appends `items` to the head, fdatasyncs once and applies what was written. Failures are
    /// answered; the replies of what is now durable are returned.
    fn write(&mut self, items: Vec<Item>) -> Committed {
        let head = match self.head() {
            Ok(head) => head,
            Err(failure) => {
                for item in items {
                    for reply in item.replies {
                        let _ = reply.send(Err(failure.error()));
                    }
                }
                self.compaction_failed = true;
                return Committed::default();
            }
        };
        let mut buf = Vec::with_capacity(items.iter().map(|i| i.body.len() + 256).sum());
        let mut pending = Vec::with_capacity(items.len());
        for item in items {
            let start = buf.len();
            match record::frame(&mut buf, head.salt, &item.record, &item.body) {
                Ok(framed) => pending.push(Pending {
                    record: item.record,
                    replies: item.replies,
                    start,
                    framed,
                }),
                Err(e) => {
                    buf.truncate(start);
                    let error = frame_error(&item.record, e, &head.path);
                    for reply in item.replies {
                        let _ = reply.send(Err(error()));
                    }
                }
            }
        }

        let base = head.end;
        let mut written = Vec::with_capacity(pending.len());
        let mut end = base;
        if head.file.write_all_at(&buf, base).is_ok() {
            for p in pending {
                let offset = base + p.start as u64;
                end = offset + p.framed.len as u64;
                written.push((p, offset));
            }
        } else {
            // Something did not fit, or the disk failed: cut the partial write off and write
            // the records one by one, so that only what cannot be written fails.
            let mut cut = head.file.set_len(base).is_ok();
            for p in pending {
                if !cut {
                    let failure = Failure::new(
                        "truncate",
                        &head.path,
                        io::Error::other("a failed write could not be cut off"),
                    );
                    p.fail(|| failure.error());
                    continue;
                }
                let bytes = &buf[p.start..p.start + p.framed.len];
                match head.file.write_all_at(bytes, end) {
                    Ok(()) => {
                        written.push((p, end));
                        end += bytes.len() as u64;
                    }
                    Err(e) => {
                        cut = head.file.set_len(end).is_ok();
                        let failure = Failure::new("write", &head.path, e);
                        p.fail(|| failure.error());
                    }
                }
            }
            if !cut {
                self.roll = true;
            }
        }
        drop(buf);
        if written.is_empty() {
            self.compaction_failed = true;
            return Committed::default();
        }

        if let Err(e) = head.file.sync_data() {
            // Nothing of this batch is known to be on disk, and after a failed fsync the kernel
            // may have dropped its pages: take it all back, or leave the head for a new one.
            if head
                .file
                .set_len(base)
                .and_then(|()| head.file.sync_data())
                .is_err()
            {
                self.roll = true;
            }
            let failure = Failure::new("sync", &head.path, e);
            for (p, _) in written {
                p.fail(|| failure.error());
            }
            self.compaction_failed = true;
            return Committed::default();
        }

        let mut done = Committed::default();
        {
            let mut state = self.state();
            state.commits += 1;
            if let Some(segment) = state.segments.get_mut(&head.segment) {
                segment.len = end;
            }
            for (p, offset) in written {
                done.accepted |= matches!(p.record, Record::Message { .. });
                let at = Location {
                    segment: head.segment,
                    offset,
                    len: p.framed.len,
                    body_start: p.framed.body_start,
                };
                state.apply(at, p.record);
                done.replies.extend(p.replies);
            }
        }
        if !done.replies.is_empty() {
            self.compaction_failed = false;
        }
        done
    }

    /// The head to append to: the current one, or a new one once it is full (or suspect).
    fn head(&mut self) -> Result<Head, Failure> {
        let (next, mid_floor) = {
            let state = self.state();
            if let Some(s) = state.segments.get(&state.head) {
                let full = s.len >= self.options.segment_size && s.len > SEGMENT_HEADER_LEN as u64;
                if !self.roll && !full {
                    return Ok(Head {
                        segment: state.head,
                        file: Arc::clone(&s.file),
                        path: s.path.clone(),
                        salt: s.salt,
                        end: s.len,
                    });
                }
            }
            let newest = state.segments.last_key_value().map_or(0, |(&n, _)| n);
            (newest.max(state.head) + 1, state.mid_limit)
        };
        let segment = spool::create_segment(&self.shared.dir, next, mid_floor)?;
        let head = Head {
            segment: next,
            file: Arc::clone(&segment.file),
            path: segment.path.clone(),
            salt: segment.salt,
            end: segment.len,
        };
        self.roll = false;
        let mut state = self.state();
        state.segments.insert(next, segment);
        state.head = next;
        Ok(head)
    }
}

/// The recipients of `rids` that a change still concerns: pending ones, each once.
fn check_change(
    state: &State,
    mid: MessageId,
    mut rids: Vec<RecipientId>,
) -> Result<Vec<RecipientId>, QueueError> {
    let entry = state
        .messages
        .get(&mid)
        .ok_or(QueueError::UnknownMessage(mid))?;
    if let Some(&rid) = rids.iter().find(|r| r.index() >= entry.recipients.len()) {
        return Err(QueueError::UnknownRecipient { mid, rid });
    }
    rids.sort_unstable();
    rids.dedup();
    rids.retain(|r| {
        entry
            .recipients
            .get(r.index())
            .is_some_and(|s| s.is_pending())
    });
    Ok(rids)
}

fn frame_error(record: &Record, e: FrameError, path: &Path) -> impl Fn() -> QueueError {
    let message = match record {
        Record::Message { envelope } | Record::Relocated { envelope, .. } => {
            Some((envelope.mid, envelope.size))
        }
        _ => None,
    };
    let reason = match &e {
        FrameError::TooLarge(len) => format!("a record of {len} bytes, above {MAX_RECORD}"),
        FrameError::Encode(e) => format!("cannot encode: {e}"),
    };
    let failure = Failure::new("encode", path, io::Error::other(reason));
    move || match (&e, message) {
        (FrameError::TooLarge(_), Some((mid, size))) => QueueError::TooLarge {
            mid,
            size,
            limit: MAX_RECORD as u64,
        },
        _ => failure.error(),
    }
}
