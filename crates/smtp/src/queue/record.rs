//! The spool's bytes on disk: segment headers, and the checksummed records after them.
//!
//! ```text
//! segment  header | record | record | ...
//! header   "PSTNQSEG" | format u16 | reserved u16 | segment u64 | MID floor u64 | salt u32 | crc32 u32
//! record   length u32 | crc32(payload) u32 | crc32(length, crc) u32 | payload
//! payload  postcard(Record), then for a message its body as it is
//! ```
//!
//! All integers are little-endian. Both record checksums are CRC-32 seeded with the segment's
//! salt, a random number drawn when the segment is made. The second one, over the first eight
//! bytes, lets a reader that met damage find the next record by trying each following offset;
//! the salt makes sure that what it finds there is a record of this segment and not a
//! record-shaped piece of some message's body, which a sender chooses.
//!
//! [`Record`] is encoded with postcard, which numbers enum variants in order: new variants are
//! only ever added at the end.

use serde::{Deserialize, Serialize};

use super::envelope::{Envelope, MessageId, RecipientId, RecipientStatus};

pub(super) const SEGMENT_HEADER_LEN: usize = 36;
pub(super) const RECORD_HEADER_LEN: usize = 12;
/// No record is larger; a length field above it is damage. It bounds what one message can be.
pub(super) const MAX_RECORD: usize = 256 << 20;

const MAGIC: &[u8; 8] = b"PSTNQSEG";
/// Bumped when the format changes shape; a segment of another format is refused, not misread.
const FORMAT: u16 = 1;

/// What a segment says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SegmentHeader {
    /// The number in its name, `seg-<n>.log`.
    pub(super) segment: u64,
    /// Every MID handed out before the segment was made is below this, so MIDs keep growing
    /// when every older segment has been deleted.
    pub(super) mid_floor: u64,
    pub(super) salt: u32,
}

/// One entry of the log. Later entries change what earlier ones said about a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Record {
    /// A message was accepted; its body follows the record's postcard bytes.
    Message { envelope: Envelope },
    /// Compaction copied a message to the head, with every recipient's status at that moment;
    /// its body follows. It supersedes the message's earlier records.
    Relocated {
        envelope: Envelope,
        recipients: Vec<RecipientStatus>,
    },
    Delivered {
        mid: MessageId,
        rids: Vec<RecipientId>,
    },
    Bounced {
        mid: MessageId,
        rids: Vec<RecipientId>,
        reason: String,
    },
    Deferred {
        mid: MessageId,
        rids: Vec<RecipientId>,
        next_attempt: u64,
    },
    /// MIDs below `limit` may have been handed out.
    Reserved { limit: u64 },
}

/// Where a framed record's parts are, relative to its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Framed {
    pub(super) len: usize,
    pub(super) body_start: usize,
}

/// Why a record could not be framed.
#[derive(Debug)]
pub(super) enum FrameError {
    /// It would be longer than [`MAX_RECORD`].
    TooLarge(usize),
    Encode(postcard::Error),
}

/// What a segment's bytes hold, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Scanned<'a> {
    /// A record whose checksums hold.
    Record {
        offset: usize,
        len: usize,
        payload: &'a [u8],
    },
    /// Bytes that are no record, followed by one that is.
    Damaged { offset: usize, len: usize },
    /// Bytes that are no record, up to the end.
    Torn { offset: usize, len: usize },
}

/// Iterates over the records of a segment's bytes (after its header).
#[derive(Debug)]
pub(super) struct Scanner<'a> {
    bytes: &'a [u8],
    salt: u32,
    at: usize,
}

impl SegmentHeader {
    pub(super) fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        out[..8].copy_from_slice(MAGIC);
        out[8..10].copy_from_slice(&FORMAT.to_le_bytes());
        out[12..20].copy_from_slice(&self.segment.to_le_bytes());
        out[20..28].copy_from_slice(&self.mid_floor.to_le_bytes());
        out[28..32].copy_from_slice(&self.salt.to_le_bytes());
        let crc = crc32fast::hash(&out[..32]);
        out[32..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let h = bytes.get(..SEGMENT_HEADER_LEN).ok_or_else(|| {
            format!(
                "{} bytes, shorter than a segment header of {SEGMENT_HEADER_LEN}",
                bytes.len()
            )
        })?;
        if &h[..8] != MAGIC {
            return Err("not a queue segment".to_owned());
        }
        if crc32fast::hash(&h[..32]) != le32(&h[32..36]) {
            return Err("header checksum mismatch".to_owned());
        }
        let format = u16::from_le_bytes([h[8], h[9]]);
        if format != FORMAT {
            return Err(format!(
                "written in format {format}; this firmware reads format {FORMAT}"
            ));
        }
        Ok(Self {
            segment: le64(&h[12..20]),
            mid_floor: le64(&h[20..28]),
            salt: le32(&h[28..32]),
        })
    }
}

/// Appends `record`, followed by `body` (empty unless it is a message), to `out` as one record.
pub(super) fn frame(
    out: &mut Vec<u8>,
    salt: u32,
    record: &Record,
    body: &[u8],
) -> Result<Framed, FrameError> {
    let head = postcard::to_stdvec(record).map_err(FrameError::Encode)?;
    let payload_len = head.len() + body.len();
    let len = RECORD_HEADER_LEN + payload_len;
    let Ok(len_field) = u32::try_from(payload_len) else {
        return Err(FrameError::TooLarge(len));
    };
    if len > MAX_RECORD {
        return Err(FrameError::TooLarge(len));
    }
    let mut crc = crc32fast::Hasher::new_with_initial(salt);
    crc.update(&head);
    crc.update(body);
    let mut header = [0u8; RECORD_HEADER_LEN];
    header[..4].copy_from_slice(&len_field.to_le_bytes());
    header[4..8].copy_from_slice(&crc.finalize().to_le_bytes());
    let header_crc = salted_crc(salt, &header[..8]);
    header[8..].copy_from_slice(&header_crc.to_le_bytes());
    out.reserve(len);
    out.extend_from_slice(&header);
    out.extend_from_slice(&head);
    out.extend_from_slice(body);
    Ok(Framed {
        len,
        body_start: RECORD_HEADER_LEN + head.len(),
    })
}

/// The payload of `bytes` when they are exactly one whole record of a segment salted `salt`.
pub(super) fn check(bytes: &[u8], salt: u32) -> Option<&[u8]> {
    record_at(bytes, 0, salt).filter(|p| RECORD_HEADER_LEN + p.len() == bytes.len())
}

/// Decodes a payload; returns the record and where the body starts within the payload.
pub(super) fn decode(payload: &[u8]) -> Result<(Record, usize), String> {
    let (record, rest) =
        postcard::take_from_bytes::<Record>(payload).map_err(|e| format!("cannot decode: {e}"))?;
    let body_start = payload.len() - rest.len();
    match &record {
        Record::Message { envelope } | Record::Relocated { envelope, .. } => {
            if rest.len() as u64 != envelope.size {
                return Err(format!(
                    "a body of {} bytes where the envelope says {}",
                    rest.len(),
                    envelope.size
                ));
            }
            if envelope.recipients.is_empty() {
                return Err("a message without recipients".to_owned());
            }
            if let Record::Relocated { recipients, .. } = &record
                && recipients.len() != envelope.recipients.len()
            {
                return Err(format!(
                    "{} recipient statuses for {} recipients",
                    recipients.len(),
                    envelope.recipients.len()
                ));
            }
        }
        _ if !rest.is_empty() => {
            return Err(format!("{} stray bytes after the record", rest.len()));
        }
        _ => {}
    }
    Ok((record, body_start))
}

impl<'a> Scanner<'a> {
    /// Scans `bytes` from `start` (the end of the segment header).
    pub(super) fn new(bytes: &'a [u8], start: usize, salt: u32) -> Self {
        Self {
            bytes,
            salt,
            at: start,
        }
    }
}

impl<'a> Iterator for Scanner<'a> {
    type Item = Scanned<'a>;

    fn next(&mut self) -> Option<Scanned<'a>> {
        let at = self.at;
        if at >= self.bytes.len() {
            return None;
        }
        if let Some(payload) = record_at(self.bytes, at, self.salt) {
            let len = RECORD_HEADER_LEN + payload.len();
            self.at += len;
            return Some(Scanned::Record {
                offset: at,
                len,
                payload,
            });
        }
        // Damage, or a write a crash cut short: the next offset where a whole record of this
        // segment starts, if any, is where reading goes on.
        let last = self.bytes.len().saturating_sub(RECORD_HEADER_LEN);
        match (at + 1..=last).find(|&q| record_at(self.bytes, q, self.salt).is_some()) {
            Some(next) => {
                self.at = next;
                Some(Scanned::Damaged {
                    offset: at,
                    len: next - at,
                })
            }
            None => {
                self.at = self.bytes.len();
                Some(Scanned::Torn {
                    offset: at,
                    len: self.bytes.len() - at,
                })
            }
        }
    }
}

/// The payload of the record at `at`, if one whose checksums hold starts there.
fn record_at(bytes: &[u8], at: usize, salt: u32) -> Option<&[u8]> {
    let header = bytes.get(at..at.checked_add(RECORD_HEADER_LEN)?)?;
    if salted_crc(salt, &header[..8]) != le32(&header[8..12]) {
        return None;
    }
    let len = le32(&header[..4]) as usize;
    if len == 0 || RECORD_HEADER_LEN + len > MAX_RECORD {
        return None;
    }
    let start = at + RECORD_HEADER_LEN;
    let payload = bytes.get(start..start + len)?;
    (salted_crc(salt, payload) == le32(&header[4..8])).then_some(payload)
}

fn salted_crc(salt: u32, bytes: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new_with_initial(salt);
    crc.update(bytes);
    crc.finalize()
}

/// Reads a little-endian u32 from a slice of exactly four bytes.
fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Reads a little-endian u64 from a slice of exactly eight bytes.
fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}
