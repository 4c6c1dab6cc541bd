//! The spool directory's files: recovering the queue from its segments at open, making a new
//! segment, reading a message's record back, and deleting segments that hold nothing live.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::envelope::MessageId;
use super::error::{Failure, QueueError, QueueWarning, io_error};
use super::record::{self, RECORD_HEADER_LEN, Record, SEGMENT_HEADER_LEN, Scanned, Scanner};
use super::state::{Location, Segment, State};
use super::writer::Writer;
use super::{Opened, Queue, QueueOptions, Shared};

/// Held locked (`flock`) by the writer while the queue is open.
const LOCK: &str = "lock";
/// How long open waits for the lock before it reports [`QueueError::Locked`].
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Opens the queue in `dir`: takes the lock, replays every segment, cuts off a torn tail,
/// deletes what is done, and starts the writer.
pub(super) fn open(dir: PathBuf, options: QueueOptions) -> Result<Opened, QueueError> {
    // Queued mail is private: only the SMTP service's user may read it.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| io_error("create", &dir, e))?;
    // The directory's own entry must last too, when it was just made.
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    let lock_path = dir.join(LOCK);
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| io_error("open", &lock_path, e))?;
    // A process that is exiting, or a child forked just as the lock was closed (which holds it
    // until its exec), lets go within moments: give it those before saying the queue is in use.
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(10));
            }
            Err(TryLockError::WouldBlock) => return Err(QueueError::Locked { path: dir }),
            Err(TryLockError::Error(e)) => return Err(io_error("lock", &lock_path, e)),
        }
    }
    remove_leftovers(&dir);
    let (state, warnings) = recover(&dir, &options)?;
    let (requests, receiver) = mpsc::channel();
    let shared = Arc::new(Shared {
        dir,
        state: Mutex::new(state),
        accepted: Notify::new(),
    });
    reclaim(&shared);
    let writer = Writer::new(Arc::clone(&shared), options, receiver, lock);
    thread::Builder::new()
        .name("postern-queue".to_owned())
        .spawn(move || writer.run())
        .map_err(|e| io_error("start the writer of", &shared.dir, e))?;
    Ok(Opened {
        queue: Queue { shared, requests },
        warnings,
    })
}

/// Replays every segment in order into a new [`State`], and makes sure there is a head.
fn recover(dir: &Path, options: &QueueOptions) -> Result<(State, Vec<QueueWarning>), QueueError> {
    let mut state = State::default();
    let mut warnings = Vec::new();
    let numbers = segment_numbers(dir)?;
    let last = numbers.last().copied();
    let mut mid_floor = 1;
    for n in numbers {
        let path = segment_path(dir, n);
        let bytes = fs::read(&path).map_err(|e| io_error("read", &path, e))?;
        let header = record::SegmentHeader::decode(&bytes).and_then(|h| {
            if h.segment == n {
                Ok(h)
            } else {
                Err(format!("its header says it is segment {}", h.segment))
            }
        });
        let header = match header {
            Ok(header) => header,
            Err(reason) => {
                let kept = damaged_path(&path);
                fs::rename(&path, &kept).map_err(|e| io_error("rename", &path, e))?;
                warnings.push(QueueWarning::DamagedSegment { path, kept, reason });
                continue;
            }
        };
        mid_floor = header.mid_floor.max(mid_floor);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_error("open", &path, e))?;
        state.segments.insert(
            n,
            Segment {
                path: path.clone(),
                file: Arc::new(file),
                salt: header.salt,
                len: bytes.len() as u64,
                live_messages: 0,
                live_bytes: 0,
                after: Default::default(),
                stuck: false,
            },
        );
        let mut torn_at = None;
        for scanned in Scanner::new(&bytes, SEGMENT_HEADER_LEN, header.salt) {
            match scanned {
                Scanned::Record {
                    offset,
                    len,
                    payload,
                } => match record::decode(payload) {
                    Ok((record, body_start)) => {
                        let at = Location {
                            segment: n,
                            offset: offset as u64,
                            len,
                            body_start: RECORD_HEADER_LEN + body_start,
                        };
                        state.apply(at, record);
                    }
                    Err(reason) => {
                        warnings.push(QueueWarning::UnreadableRecord {
                            path: path.clone(),
                            offset: offset as u64,
                            reason,
                        });
                    }
                },
                Scanned::Damaged { offset, len } => {
                    warnings.push(QueueWarning::DamagedRecords {
                        path: path.clone(),
                        offset: offset as u64,
                        len: len as u64,
                    });
                }
                Scanned::Torn { offset, len } => {
                    // Only the last segment can be appended to again.
                    if Some(n) == last {
                        torn_at = Some(offset as u64);
                    }
                    warnings.push(QueueWarning::TornTail {
                        path: path.clone(),
                        offset: offset as u64,
                        len: len as u64,
                    });
                }
            }
        }
        if let Some(end) = torn_at
            && let Some(segment) = state.segments.get_mut(&n)
        {
            // Cut the partial record off, so that what is appended next follows a whole one.
            segment
                .file
                .set_len(end)
                .and_then(|()| segment.file.sync_all())
                .map_err(|e| io_error("truncate", &path, e))?;
            segment.len = end;
        }
    }

    // Above every MID handed out before: those in records, those reserved, those before the
    // oldest segment left.
    let start = state.next_mid.max(state.mid_limit).max(mid_floor).max(1);
    state.next_mid = start;
    state.mid_limit = start;

    let reusable = state
        .segments
        .last_key_value()
        .filter(|&(&n, s)| Some(n) == last && s.len < options.segment_size)
        .map(|(&n, _)| n);
    match reusable {
        Some(n) => state.head = n,
        None => {
            let n = last.map_or(1, |l| l + 1);
            let segment = create_segment(dir, n, start)?;
            state.segments.insert(n, segment);
            state.head = n;
        }
    }
    Ok((state, warnings))
}

/// Makes segment `n`: written and fsynced under a temporary name, renamed into place and the
/// directory fsynced, so that a `seg-<n>.log` always starts with a whole header and a record
/// appended and fdatasynced into it is found after a power loss.
pub(super) fn create_segment(dir: &Path, n: u64, mid_floor: u64) -> Result<Segment, Failure> {
    // Truncating a random u64 to 32 bits keeps it random.
    let salt = RandomState::new().hash_one(n) as u32;
    let header = record::SegmentHeader {
        segment: n,
        mid_floor,
        salt,
    }
    .encode();
    let path = segment_path(dir, n);
    let tmp = dir.join(format!(".seg-{n}.tmp"));
    let made = (|| {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all_at(&header, 0)?;
        file.sync_all()?;
        Ok(file)
    })();
    let file = match made {
        Ok(file) => file,
        Err(e) => {
            // Best effort: a full disk must not also keep the partial file.
            let _ = fs::remove_file(&tmp);
            return Err(Failure::new("create", &tmp, e));
        }
    };
    if let Err(e) = fs::rename(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(Failure::new("rename", &path, e));
    }
    sync_dir(dir)?;
    Ok(Segment {
        path,
        file: Arc::new(file),
        salt,
        len: SEGMENT_HEADER_LEN as u64,
        live_messages: 0,
        live_bytes: 0,
        after: Default::default(),
        stuck: false,
    })
}

/// Reads the body of message `mid` from its record at `at`, checking the record's checksums.
pub(super) fn read_body(
    file: &File,
    path: &Path,
    salt: u32,
    at: Location,
    mid: MessageId,
) -> Result<Vec<u8>, QueueError> {
    let mut bytes = vec![0u8; at.len];
    file.read_exact_at(&mut bytes, at.offset)
        .map_err(|e| io_error("read", path, e))?;
    let damaged = |reason: &str| QueueError::Damaged {
        mid,
        reason: reason.to_owned(),
    };
    let payload = record::check(&bytes, salt).ok_or_else(|| damaged("checksum mismatch"))?;
    match record::decode(payload) {
        Ok((Record::Message { envelope } | Record::Relocated { envelope, .. }, body_start))
            if envelope.mid == mid && RECORD_HEADER_LEN + body_start == at.body_start => {}
        Ok(_) => return Err(damaged("another record is where the message was")),
        Err(reason) => return Err(QueueError::Damaged { mid, reason }),
    }
    bytes.drain(..at.body_start);
    Ok(bytes)
}

/// Deletes the segments that hold nothing live and that nothing left depends on, in rounds:
/// a round's deletions are made durable before the next round deletes what depended on them.
pub(super) fn reclaim(shared: &Shared) {
    loop {
        let doomed: Vec<(u64, PathBuf)> = {
            let state = shared.state();
            state
                .reclaimable()
                .into_iter()
                .filter_map(|n| Some((n, state.segments.get(&n)?.path.clone())))
                .collect()
        };
        let gone: Vec<u64> = doomed
            .into_iter()
            .filter(|(_, path)| match fs::remove_file(path) {
                Ok(()) => true,
                // Gone already: a round whose directory fsync failed is done again.
                Err(e) => e.kind() == io::ErrorKind::NotFound,
            })
            .map(|(n, _)| n)
            .collect();
        if gone.is_empty() || sync_dir(&shared.dir).is_err() {
            return;
        }
        let mut state = shared.state();
        for n in gone {
            state.segments.remove(&n);
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), Failure> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Failure::new("sync", dir, e))
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("seg-{n}.log"))
}

fn damaged_path(path: &Path) -> PathBuf {
    path.with_extension("damaged")
}

/// The numbers of the segments in `dir`, oldest first.
fn segment_numbers(dir: &Path) -> Result<Vec<u64>, QueueError> {
    let mut numbers: Vec<u64> = fs::read_dir(dir)
        .map_err(|e| io_error("list", dir, e))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| {
            name.strip_prefix("seg-")?
                .strip_suffix(".log")?
                .parse()
                .ok()
        })
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

/// Removes segments a crash caught before they were renamed into place: they hold no record.
fn remove_leftovers(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for name in entries.filter_map(|e| e.ok()?.file_name().into_string().ok()) {
        if name.starts_with(".seg-") && name.ends_with(".tmp") {
            // Best effort: a leftover is harmless, and the next open tries again.
            let _ = fs::remove_file(dir.join(name));
        }
    }
}
