//! The queue in memory: every queued message's envelope, its recipients' statuses and where its
//! record is, the segments and what they hold, and the due index. Replay at open and the writer
//! after each commit change it through the same [`State::apply`], so what a restart rebuilds
//! from the log is what the running queue had.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use super::QueueStats;
use super::envelope::{Envelope, MessageId, QueuedMessage, RecipientId, RecipientStatus};
use super::record::Record;

/// One segment file.
#[derive(Debug)]
pub(super) struct Segment {
    pub(super) path: PathBuf,
    pub(super) file: Arc<File>,
    pub(super) salt: u32,
    /// The end of the last good record: where the next one is written.
    pub(super) len: u64,
    /// Queued messages whose current record is here.
    pub(super) live_messages: usize,
    /// The bytes of those records.
    pub(super) live_bytes: u64,
    /// Older segments holding the record of a message that a record here changed or copied.
    /// This segment is deleted only after them: deleted before, it would let their message come
    /// back after a restart without the change (a delivered recipient delivered again).
    pub(super) after: BTreeSet<u64>,
    /// A record here could not be read back for compaction; compaction leaves it alone.
    pub(super) stuck: bool,
}

/// Where a message's current record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Location {
    pub(super) segment: u64,
    pub(super) offset: u64,
    /// The whole record's length, header included.
    pub(super) len: usize,
    /// Where the body starts, from the record's first byte.
    pub(super) body_start: usize,
}

/// A queued message.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) envelope: Arc<Envelope>,
    pub(super) recipients: Vec<RecipientStatus>,
    pub(super) at: Location,
}

/// What compaction copies: a live message of the oldest segment, as it stands.
#[derive(Debug)]
pub(super) struct Relocation {
    pub(super) envelope: Arc<Envelope>,
    pub(super) recipients: Vec<RecipientStatus>,
    pub(super) at: Location,
    pub(super) path: PathBuf,
    pub(super) file: Arc<File>,
    pub(super) salt: u32,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) messages: HashMap<MessageId, Entry>,
    /// `(earliest next attempt of a pending recipient, MID)` of every queued message.
    due: BTreeSet<(u64, MessageId)>,
    pub(super) segments: BTreeMap<u64, Segment>,
    /// The segment records are appended to; never deleted.
    pub(super) head: u64,
    /// The next MID [`Queue::reserve_mid`](super::Queue::reserve_mid) hands out.
    pub(super) next_mid: u64,
    /// MIDs below this are durably reserved: a restart starts above them.
    pub(super) mid_limit: u64,
    pending_recipients: usize,
    body_bytes: u64,
    pub(super) commits: u64,
}

impl Entry {
    fn earliest(&self) -> Option<u64> {
        self.recipients
            .iter()
            .filter_map(RecipientStatus::next_attempt)
            .min()
    }

    fn pending(&self) -> usize {
        self.recipients.iter().filter(|s| s.is_pending()).count()
    }

    pub(super) fn to_message(&self) -> QueuedMessage {
        QueuedMessage {
            envelope: Arc::clone(&self.envelope),
            recipients: self.recipients.clone(),
        }
    }
}

impl State {
    /// Applies one durable record, found at `at`.
    pub(super) fn apply(&mut self, at: Location, record: Record) {
        match record {
            Record::Message { envelope } => self.insert(at, envelope, None),
            Record::Relocated {
                envelope,
                recipients,
            } => self.insert(at, envelope, Some(recipients)),
            Record::Delivered { mid, rids } => {
                self.change(at.segment, mid, &rids, |s| *s = RecipientStatus::Delivered);
            }
            Record::Bounced { mid, rids, reason } => self.change(at.segment, mid, &rids, |s| {
                *s = RecipientStatus::Bounced {
                    reason: reason.clone(),
                };
            }),
            Record::Deferred {
                mid,
                rids,
                next_attempt,
            } => self.change(at.segment, mid, &rids, |s| {
                if let RecipientStatus::Pending {
                    next_attempt: next,
                    attempts,
                } = s
                {
                    *next = next_attempt;
                    *attempts = attempts.saturating_add(1);
                }
            }),
            Record::Reserved { limit } => self.mid_limit = self.mid_limit.max(limit),
        }
    }

    fn insert(&mut self, at: Location, envelope: Envelope, copied: Option<Vec<RecipientStatus>>) {
        let mid = envelope.mid;
        self.next_mid = self.next_mid.max(mid.0.saturating_add(1));
        let recipients = match copied {
            Some(recipients) => {
                if let Some(old) = self.remove(mid) {
                    self.depends(at.segment, old.at.segment);
                }
                recipients
            }
            // A second original of a queued MID cannot come from the writer, which refuses
            // one: the first stands.
            None if self.messages.contains_key(&mid) => return,
            None => vec![RecipientStatus::NEW; envelope.recipients.len()],
        };
        self.add(
            mid,
            Entry {
                envelope: Arc::new(envelope),
                recipients,
                at,
            },
        );
    }

    fn change(
        &mut self,
        segment: u64,
        mid: MessageId,
        rids: &[RecipientId],
        mut change: impl FnMut(&mut RecipientStatus),
    ) {
        // A change of a message that is gone (finished, or lost to damage) changes nothing.
        let Some(mut entry) = self.remove(mid) else {
            return;
        };
        self.depends(segment, entry.at.segment);
        for rid in rids {
            if let Some(status) = entry.recipients.get_mut(rid.index())
                && status.is_pending()
            {
                change(status);
            }
        }
        self.add(mid, entry);
    }

    /// Makes the pending recipients waiting for a retry due at `now`: those of `domain`
    /// (compared without case), or all. Answers how many. Nothing is written: after a restart
    /// the recorded schedule applies again.
    pub(super) fn deliver_now(&mut self, domain: Option<&str>, now: u64) -> usize {
        let matches = |address: &str| {
            domain.is_none_or(|d| {
                address
                    .rsplit_once('@')
                    .is_some_and(|(_, own)| own.eq_ignore_ascii_case(d))
            })
        };
        // Not only the messages whose earliest recipient waits: one recipient of a message
        // may be due while another waits.
        let waiting: Vec<MessageId> = self
            .messages
            .iter()
            .filter(|(_, e)| {
                e.recipients
                    .iter()
                    .filter_map(RecipientStatus::next_attempt)
                    .any(|t| t > now)
            })
            .map(|(mid, _)| *mid)
            .collect();
        let mut made_due = 0;
        for mid in waiting {
            let Some(mut entry) = self.remove(mid) else {
                continue;
            };
            for (status, address) in entry.recipients.iter_mut().zip(&entry.envelope.recipients) {
                if let RecipientStatus::Pending { next_attempt, .. } = status
                    && *next_attempt > now
                    && matches(address)
                {
                    *next_attempt = now;
                    made_due += 1;
                }
            }
            self.add(mid, entry);
        }
        made_due
    }

    fn depends(&mut self, segment: u64, on: u64) {
        if on < segment
            && let Some(s) = self.segments.get_mut(&segment)
        {
            s.after.insert(on);
        }
    }

    /// Queues `entry`, unless none of its recipients is pending: then the message is finished.
    fn add(&mut self, mid: MessageId, entry: Entry) {
        let Some(earliest) = entry.earliest() else {
            return;
        };
        if let Some(s) = self.segments.get_mut(&entry.at.segment) {
            s.live_messages += 1;
            s.live_bytes += entry.at.len as u64;
        }
        self.pending_recipients += entry.pending();
        self.body_bytes += entry.envelope.size;
        self.due.insert((earliest, mid));
        self.messages.insert(mid, entry);
    }

    fn remove(&mut self, mid: MessageId) -> Option<Entry> {
        let entry = self.messages.remove(&mid)?;
        if let Some(s) = self.segments.get_mut(&entry.at.segment) {
            s.live_messages = s.live_messages.saturating_sub(1);
            s.live_bytes = s.live_bytes.saturating_sub(entry.at.len as u64);
        }
        self.pending_recipients = self.pending_recipients.saturating_sub(entry.pending());
        self.body_bytes = self.body_bytes.saturating_sub(entry.envelope.size);
        if let Some(earliest) = entry.earliest() {
            self.due.remove(&(earliest, mid));
        }
        Some(entry)
    }

    /// Up to `limit` messages with a recipient due at `now`, the longest-waiting first.
    pub(super) fn due(&self, now: u64, limit: usize) -> Vec<QueuedMessage> {
        self.due
            .range(..=(now, MessageId(u64::MAX)))
            .take(limit)
            .filter_map(|(_, mid)| self.messages.get(mid))
            .map(Entry::to_message)
            .collect()
    }

    pub(super) fn next_due(&self) -> Option<u64> {
        self.due.first().map(|&(t, _)| t)
    }

    pub(super) fn stats(&self) -> QueueStats {
        QueueStats {
            messages: self.messages.len(),
            recipients_pending: self.pending_recipients,
            bytes: self.body_bytes,
            disk_bytes: self.segments.values().map(|s| s.len).sum(),
            segments: self.segments.len(),
            commits: self.commits,
        }
    }

    /// Segments that can go: not the head, no queued message in them, and every segment they
    /// must outlive already gone.
    pub(super) fn reclaimable(&self) -> Vec<u64> {
        self.segments
            .iter()
            .filter(|&(&n, s)| {
                n != self.head
                    && s.live_messages == 0
                    && s.after.iter().all(|a| !self.segments.contains_key(a))
            })
            .map(|(&n, _)| n)
            .collect()
    }

    /// The segment compaction should empty now, if any: when the segments behind the head hold
    /// more dead bytes than the whole queue holds live ones (and more than a segment), the
    /// oldest of them. Once its live messages are copied to the head it holds nothing live and,
    /// being the oldest, nothing depends on it: it goes, and so may the dead ones behind it.
    pub(super) fn compaction_source(&self, segment_size: u64) -> Option<u64> {
        let live: u64 = self.segments.values().map(|s| s.live_bytes).sum();
        let dead: u64 = self
            .segments
            .iter()
            .filter(|&(&n, _)| n != self.head)
            .map(|(_, s)| s.len.saturating_sub(s.live_bytes))
            .sum();
        if dead <= live.max(segment_size) {
            return None;
        }
        // The oldest behind the head; one that holds nothing live is waiting to be deleted.
        self.segments
            .iter()
            .find(|&(&n, _)| n != self.head)
            .filter(|(_, s)| s.live_messages > 0 && !s.stuck)
            .map(|(&n, _)| n)
    }

    /// The live messages of `source` in the order they were written, up to about `budget`
    /// bytes of records, as they stand now.
    pub(super) fn relocations(&self, source: u64, budget: u64) -> Vec<Relocation> {
        let Some(segment) = self.segments.get(&source) else {
            return Vec::new();
        };
        let mut entries: Vec<&Entry> = self
            .messages
            .values()
            .filter(|e| e.at.segment == source)
            .collect();
        entries.sort_unstable_by_key(|e| e.at.offset);
        let mut taken = 0u64;
        entries
            .into_iter()
            .take_while(|e| {
                let more = taken < budget;
                taken += e.at.len as u64;
                more
            })
            .map(|e| Relocation {
                envelope: Arc::clone(&e.envelope),
                recipients: e.recipients.clone(),
                at: e.at,
                path: segment.path.clone(),
                file: Arc::clone(&segment.file),
                salt: segment.salt,
            })
            .collect()
    }
}
