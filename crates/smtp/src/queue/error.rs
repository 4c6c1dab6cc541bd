//! What can go wrong with the queue, and what opening it can notice and work around.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::envelope::{MessageId, RecipientId};

/// Why the queue could not do what was asked. None of these loses or changes anything the queue
/// had acknowledged before.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The disk or the queue's quota is full. The message or change was not written and nothing
    /// of it stays; the SMTP server answers `452 4.3.1 Insufficient system storage`.
    #[error("insufficient system storage for the queue ({op} {}): {source}", path.display())]
    StorageFull {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Any other failure of the disk or the file system.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The queue holds [`QueueOptions::max_messages`](super::QueueOptions::max_messages)
    /// messages; the SMTP server answers `452 4.3.1` until delivery makes room.
    #[error("the queue holds {limit} messages, its limit")]
    Full { limit: usize },
    /// Another process (or another [`Queue`](super::Queue) of this one) has the directory open.
    #[error("the queue in {} is open in another process", path.display())]
    Locked { path: PathBuf },
    /// The queue was closed; nothing more is written.
    #[error("the queue is closed")]
    Closed,
    /// The envelope's MID was not handed out by [`Queue::reserve_mid`](super::Queue::reserve_mid).
    #[error("MID {0} was not reserved by this queue")]
    NotReserved(MessageId),
    /// A message with this MID is already queued.
    #[error("MID {0} is already queued")]
    AlreadyQueued(MessageId),
    /// A message needs at least one recipient.
    #[error("MID {0} has no recipients")]
    NoRecipients(MessageId),
    /// [`Envelope::size`](super::Envelope::size) is not the length of the body.
    #[error("MID {mid}: the envelope says {envelope} bytes, the body has {body}")]
    SizeMismatch {
        mid: MessageId,
        envelope: u64,
        body: u64,
    },
    /// The message is larger than one queue record can hold.
    #[error("MID {mid} of {size} bytes is larger than the queue's limit of {limit} bytes")]
    TooLarge {
        mid: MessageId,
        size: u64,
        limit: u64,
    },
    /// No queued message has this MID (it may have been finished).
    #[error("MID {0} is not in the queue")]
    UnknownMessage(MessageId),
    /// The message has no recipient with this RID.
    #[error("MID {mid} has no RID {rid}")]
    UnknownRecipient { mid: MessageId, rid: RecipientId },
    /// The message's record on disk no longer matches its checksum: the body cannot be trusted.
    #[error("MID {mid} is damaged on disk: {reason}")]
    Damaged { mid: MessageId, reason: String },
}

/// Something [`Queue::open`](super::Queue::open) noticed and worked around; the caller logs it
/// as a Warning. Opening never fails because of damage inside the queue's files.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueWarning {
    /// A segment's header cannot be read, so none of its records can be trusted. The file was
    /// renamed to `kept` for an expert to look at; the messages in it are not in the queue.
    DamagedSegment {
        path: PathBuf,
        kept: PathBuf,
        reason: String,
    },
    /// Bytes in the middle of a segment fail their checksums and were skipped. Messages among
    /// them are lost; changes among them (a delivery, a bounce) are forgotten.
    DamagedRecords {
        path: PathBuf,
        offset: u64,
        len: u64,
    },
    /// A record passes its checksum but cannot be decoded (written by newer firmware?); skipped.
    UnreadableRecord {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The segment ends in a partial record: a write that a crash interrupted, which had not been
    /// acknowledged. It was dropped.
    TornTail {
        path: PathBuf,
        offset: u64,
        len: u64,
    },
}

impl fmt::Display for QueueWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DamagedSegment { path, kept, reason } => write!(
                f,
                "queue segment {} is damaged ({reason}); its messages are lost, the file is kept \
                 as {}",
                path.display(),
                kept.display()
            ),
            Self::DamagedRecords { path, offset, len } => write!(
                f,
                "queue segment {} has {len} damaged bytes at offset {offset}; messages or \
                 delivery states in them are lost",
                path.display()
            ),
            Self::UnreadableRecord {
                path,
                offset,
                reason,
            } => write!(
                f,
                "queue segment {} has an unreadable record at offset {offset} ({reason}); skipped",
                path.display()
            ),
            Self::TornTail { path, offset, len } => write!(
                f,
                "queue segment {} ended in a partial write of {len} bytes at offset {offset}, \
                 interrupted by a crash before it was acknowledged; dropped",
                path.display()
            ),
        }
    }
}

/// Maps an I/O error to [`QueueError::StorageFull`] when it means the disk is full.
pub(super) fn io_error(op: &'static str, path: &Path, source: io::Error) -> QueueError {
    let path = path.to_owned();
    match source.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge => {
            QueueError::StorageFull { op, path, source }
        }
        _ => QueueError::Io { op, path, source },
    }
}

/// The same error again, for the next of several requests that one failed write answers.
pub(super) fn copy_io(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

/// An I/O failure that several requests share: each gets its own [`QueueError`] from it.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) op: &'static str,
    pub(super) path: PathBuf,
    pub(super) source: io::Error,
}

impl Failure {
    pub(super) fn new(op: &'static str, path: &Path, source: io::Error) -> Self {
        Self {
            op,
            path: path.to_owned(),
            source,
        }
    }

    pub(super) fn error(&self) -> QueueError {
        io_error(self.op, &self.path, copy_io(&self.source))
    }
}

impl From<Failure> for QueueError {
    fn from(f: Failure) -> Self {
        io_error(f.op, &f.path, f.source)
    }
}
