//! The queue against real files: reopen after every kind of damage a crash or a disk can do.

use std::collections::HashSet;
use std::fs;
use std::future::{Future, poll_fn};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::Command;
use std::task::Poll;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::task::JoinSet;

use super::record::{self, Record, SEGMENT_HEADER_LEN};
use super::spool;
use super::*;

const NOW: u64 = 1_705_525_752;

/// Bytes that differ from message to message and hold what SMTP bodies hold: CRLF, dots, NULs.
fn body(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|i| match i % 97 {
            0 => b'\r',
            1 => b'\n',
            2 => b'.',
            _ => {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            }
        })
        .collect()
}

fn envelope(mid: MessageId, recipients: &[&str], size: usize) -> Envelope {
    Envelope {
        mid,
        icid: 1_020_089,
        sender: "a@example.org".to_owned(),
        recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
        received: NOW,
        size: size as u64,
    }
}

async fn submit(queue: &Queue, recipients: &[&str], body: &[u8]) -> MessageId {
    let mid = queue.reserve_mid().await.unwrap();
    queue
        .accept(envelope(mid, recipients, body.len()), body.to_vec())
        .await
        .unwrap()
}

async fn open(dir: &Path) -> Queue {
    let opened = Queue::open(dir).await.unwrap();
    assert_eq!(opened.warnings, [], "opening {}", dir.display());
    opened.queue
}

fn options(segment_size: u64) -> QueueOptions {
    QueueOptions {
        segment_size,
        ..QueueOptions::default()
    }
}

/// The segment files in `dir`, oldest first.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut numbered: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let n = p
                .file_name()?
                .to_str()?
                .strip_prefix("seg-")?
                .strip_suffix(".log")?
                .parse()
                .ok()?;
            Some((n, p))
        })
        .collect();
    numbered.sort();
    numbered.into_iter().map(|(_, p)| p).collect()
}

fn only_segment(dir: &Path) -> PathBuf {
    let segments = segment_files(dir);
    assert_eq!(segments.len(), 1, "{segments:?}");
    segments[0].clone()
}

fn file_len(path: &Path) -> usize {
    usize::try_from(fs::metadata(path).unwrap().len()).unwrap()
}

async fn assert_body(queue: &Queue, mid: MessageId, expected: &[u8]) {
    let body = queue.body(mid).await.unwrap();
    assert!(body == expected, "MID {mid}: the body read back differs");
}

/// Waits for something the writer does on its own (compaction, deletion).
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn accept_then_reopen_returns_the_same_bytes() {
    let dir = TempDir::new().unwrap();
    let queue = open(dir.path()).await;
    let bodies = [
        body(4096, 1),
        Vec::new(),
        b"Subject: x\r\n\r\n.\r\n..\r\n".to_vec(),
    ];
    let mut sent = Vec::new();
    for (i, b) in bodies.iter().enumerate() {
        let mid = queue.reserve_mid().await.unwrap();
        let mut env = envelope(mid, &["b@example.test", "c@example.test"], b.len());
        if i == 1 {
            env.sender = String::new();
        }
        queue.accept(env.clone(), b.clone()).await.unwrap();
        sent.push((env, b.clone()));
    }
    assert_eq!(queue.stats().messages, 3);
    queue.close().await;

    let queue = open(dir.path()).await;
    for (env, b) in &sent {
        let message = queue.message(env.mid).unwrap();
        assert_eq!(*message.envelope, *env);
        assert_eq!(
            message.recipients,
            [RecipientStatus::NEW, RecipientStatus::NEW]
        );
        assert_body(&queue, env.mid, b).await;
    }
    let due: Vec<MessageId> = queue.due(NOW, 10).iter().map(QueuedMessage::mid).collect();
    let mids: Vec<MessageId> = sent.iter().map(|(e, _)| e.mid).collect();
    assert_eq!(due, mids);
    let stats = queue.stats();
    assert_eq!(
        (stats.messages, stats.recipients_pending, stats.bytes),
        (3, 6, bodies.iter().map(|b| b.len() as u64).sum())
    );
    queue.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_accepts_share_fdatasyncs() {
    let dir = TempDir::new().unwrap();
    let queue = open(dir.path()).await;
    let mut tasks = JoinSet::new();
    for task in 0..50u64 {
        let queue = queue.clone();
        tasks.spawn(async move {
            let mut sent = Vec::new();
            for i in 0..40u64 {
                let b = body(1000 + usize::try_from(i).unwrap(), task * 1000 + i);
                sent.push((submit(&queue, &["b@example.test"], &b).await, b));
            }
            sent
        });
    }
    let sent: Vec<(MessageId, Vec<u8>)> = tasks.join_all().await.into_iter().flatten().collect();
    let distinct: HashSet<MessageId> = sent.iter().map(|(mid, _)| *mid).collect();
    assert_eq!(distinct.len(), 2000);
    let stats = queue.stats();
    assert_eq!(stats.messages, 2000);
    assert!(
        stats.commits < 400,
        "{} fdatasync batches for 2,000 accepts from 50 sessions",
        stats.commits
    );
    queue.close().await;

    let queue = open(dir.path()).await;
    assert_eq!(queue.stats().messages, 2000);
    for (mid, b) in &sent {
        assert_body(&queue, *mid, b).await;
    }
    queue.close().await;
}

#[tokio::test]
async fn a_torn_tail_is_dropped_wherever_the_write_stopped() {
    let dir = TempDir::new().unwrap();
    let queue = open(dir.path()).await;
    let mut kept = Vec::new();
    for i in 0..3 {
        let b = body(300, i);
        kept.push((submit(&queue, &["b@example.test"], &b).await, b));
    }
    let last = queue.reserve_mid().await.unwrap();
    let segment = only_segment(dir.path());
    let before = file_len(&segment);
    let last_body = body(150, 99);
    queue
        .accept(envelope(last, &["b@example.test"], 150), last_body.clone())
        .await
        .unwrap();
    let after = file_len(&segment);
    queue.close().await;
    let full = fs::read(&segment).unwrap();

    for cut in before..=after {
        fs::write(&segment, &full[..cut]).unwrap();
        let opened = Queue::open(dir.path()).await.unwrap();
        let queue = opened.queue;
        for (mid, b) in &kept {
            assert_body(&queue, *mid, b).await;
        }
        let torn = cut != before && cut != after;
        assert_eq!(queue.message(last).is_some(), cut == after, "cut at {cut}");
        if torn {
            assert_eq!(
                opened.warnings,
                [QueueWarning::TornTail {
                    path: segment.clone(),
                    offset: before as u64,
                    len: (cut - before) as u64,
                }]
            );
            assert_eq!(file_len(&segment), before, "the torn record is cut off");
        } else {
            assert_eq!(opened.warnings, [], "cut at {cut}");
        }
        queue.close().await;
    }

    // What is appended after a cut-off torn tail reads back whole.
    fs::write(&segment, &full[..after - 1]).unwrap();
    let queue = Queue::open(dir.path()).await.unwrap().queue;
    let again = body(150, 100);
    let mid = submit(&queue, &["b@example.test"], &again).await;
    queue.close().await;
    let queue = open(dir.path()).await;
    assert_body(&queue, mid, &again).await;
    assert_eq!(queue.stats().messages, 4);
    queue.close().await;
}

#[tokio::test]
async fn a_damaged_record_in_the_middle_is_skipped_with_a_warning() {
    let dir = TempDir::new().unwrap();
    let queue = open(dir.path()).await;
    let mids = [
        queue.reserve_mid().await.unwrap(),
        queue.reserve_mid().await.unwrap(),
        queue.reserve_mid().await.unwrap(),
    ];
    let segment = only_segment(dir.path());
    let mut ends = vec![file_len(&segment)];
    let bodies = [body(500, 1), body(500, 2), body(500, 3)];
    for (mid, b) in mids.iter().zip(&bodies) {
        let env = envelope(*mid, &["b@example.test"], b.len());
        queue.accept(env, b.clone()).await.unwrap();
        ends.push(file_len(&segment));
    }
    queue.close().await;
    let full = fs::read(&segment).unwrap();
    let (start, end) = (ends[1], ends[2]);

    // The length field, the header checksum, the envelope, the last byte of the body.
    for flip in [start + 1, start + 9, start + 14, end - 1] {
        let mut damaged = full.clone();
        damaged[flip] ^= 0x10;
        fs::write(&segment, &damaged).unwrap();
        let opened = Queue::open(dir.path()).await.unwrap();
        assert_eq!(
            opened.warnings,
            [QueueWarning::DamagedRecords {
                path: segment.clone(),
                offset: start as u64,
                len: (end - start) as u64,
            }],
            "bit flipped at {flip}"
        );
        let queue = opened.queue;
        assert_body(&queue, mids[0], &bodies[0]).await;
        assert!(queue.message(mids[1]).is_none());
        assert_body(&queue, mids[2], &bodies[2]).await;
        // Still usable: a new message goes after the damage and reads back.
        let b = body(100, u64::try_from(flip).unwrap());
        let mid = submit(&queue, &["b@example.test"], &b).await;
        assert!(mid > mids[2]);
        assert_body(&queue, mid, &b).await;
        queue.close().await;
    }
}

#[tokio::test]
async fn a_segment_with_a_damaged_header_is_set_aside() {
    let dir = TempDir::new().unwrap();
    let opts = options(4096);
    let queue = Queue::open_with(dir.path(), opts.clone())
        .await
        .unwrap()
        .queue;
    let lost = submit(&queue, &["b@example.test"], &body(5000, 1)).await;
    let kept = submit(&queue, &["b@example.test"], &body(100, 2)).await;
    queue.close().await;
    let first = dir.path().join("seg-1.log");
    let mut bytes = fs::read(&first).unwrap();
    bytes[3] ^= 0x20;
    fs::write(&first, &bytes).unwrap();

    let opened = Queue::open_with(dir.path(), opts.clone()).await.unwrap();
    let kept_as = dir.path().join("seg-1.damaged");
    assert!(
        matches!(
            &opened.warnings[..],
            [QueueWarning::DamagedSegment { path, kept, .. }] if *path == first && *kept == kept_as
        ),
        "{:?}",
        opened.warnings
    );
    let queue = opened.queue;
    assert!(queue.message(lost).is_none());
    assert_body(&queue, kept, &body(100, 2)).await;
    let mid = submit(&queue, &["b@example.test"], b"after").await;
    assert!(mid > kept);
    queue.close().await;
    assert!(kept_as.exists() && !first.exists());

    let queue = Queue::open_with(dir.path(), opts).await.unwrap();
    assert_eq!(queue.warnings, [], "reported once");
    assert_body(&queue.queue, mid, b"after").await;
    queue.queue.close().await;
}

#[tokio::test]
async fn a_record_shaped_body_is_not_taken_for_a_record() {
    let dir = TempDir::new().unwrap();
    let queue = open(dir.path()).await;
    let first = submit(&queue, &["b@example.test"], &body(100, 1)).await;
    // A sender who knows the format puts a whole record in a body, framed for a guessed salt.
    let fake = Record::Message {
        envelope: envelope(MessageId(4242), &["victim@example.test"], 5),
    };
    let mut crafted = b"Subject: hello\r\n\r\n".to_vec();
    record::frame(&mut crafted, 0, &fake, b"hello").unwrap();
    crafted.extend_from_slice(b"\r\n");
    let segment = only_segment(dir.path());
    let start = file_len(&segment);
    let carrier = submit(&queue, &["b@example.test"], &crafted).await;
    let last = submit(&queue, &["b@example.test"], &body(100, 3)).await;
    queue.close().await;

    // Damage the carrier's header, so that open searches for the next record through its body.
    let mut bytes = fs::read(&segment).unwrap();
    bytes[start] ^= 0x01;
    fs::write(&segment, &bytes).unwrap();
    let opened = Queue::open(dir.path()).await.unwrap();
    assert_eq!(opened.warnings.len(), 1, "{:?}", opened.warnings);
    let queue = opened.queue;
    assert!(queue.message(MessageId(4242)).is_none());
    assert!(queue.message(carrier).is_none());
    assert!(queue.message(first).is_some() && queue.message(last).is_some());
    queue.close().await;
}

#[tokio::test]
async fn recipient_statuses_survive_a_restart() {
    let dir = TempDir::new().unwrap();
    let queue = open(dir.path()).await;
    let rcpts = ["b@example.test", "c@example.test", "d@example.test"];
    let mixed = submit(&queue, &rcpts, &body(200, 1)).await;
    let half = submit(&queue, &rcpts[..2], &body(200, 2)).await;
    let (r0, r1, r2) = (RecipientId(0), RecipientId(1), RecipientId(2));
    queue.mark_delivered(mixed, &[r0]).await.unwrap();
    queue
        .mark_bounced(mixed, &[r1], "550 5.1.1 no such user")
        .await
        .unwrap();
    queue.defer(mixed, &[r2], NOW + 100).await.unwrap();
    queue.mark_delivered(half, &[r0]).await.unwrap();
    // A final status is final: these change nothing.
    queue.defer(mixed, &[r0, r1], NOW + 50).await.unwrap();
    queue.mark_bounced(half, &[r0], "too late").await.unwrap();
    queue.close().await;

    let queue = open(dir.path()).await;
    let expected = [
        RecipientStatus::Delivered,
        RecipientStatus::Bounced {
            reason: "550 5.1.1 no such user".to_owned(),
        },
        RecipientStatus::Pending {
            next_attempt: NOW + 100,
            attempts: 1,
        },
    ];
    assert_eq!(queue.message(mixed).unwrap().recipients, expected);
    let due = queue.due(NOW, 10);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].mid(), half);
    assert_eq!(due[0].due_recipients(NOW), [r1]);
    let later = queue.due(NOW + 100, 10);
    assert_eq!(
        later.iter().map(QueuedMessage::mid).collect::<Vec<_>>(),
        [half, mixed]
    );
    assert_eq!(later[1].due_recipients(NOW + 100), [r2]);
    assert_eq!(queue.next_due(), Some(0));
    assert_eq!(queue.stats().recipients_pending, 2);
    queue.close().await;
}

#[tokio::test]
async fn a_finished_message_is_gone_and_its_segment_deleted() {
    let dir = TempDir::new().unwrap();
    let opts = options(4096);
    let queue = Queue::open_with(dir.path(), opts.clone())
        .await
        .unwrap()
        .queue;
    let a = submit(&queue, &["b@example.test"], &body(3000, 1)).await;
    let b = submit(
        &queue,
        &["b@example.test", "c@example.test"],
        &body(3000, 2),
    )
    .await;
    let c = submit(&queue, &["b@example.test"], &body(3000, 3)).await;
    let first = dir.path().join("seg-1.log");
    assert_eq!(
        segment_files(dir.path()).len(),
        2,
        "a and b in one segment, c in the next"
    );

    queue.mark_delivered(a, &[RecipientId(0)]).await.unwrap();
    assert!(first.exists(), "b is still queued in it");
    queue.mark_delivered(b, &[RecipientId(0)]).await.unwrap();
    queue
        .mark_bounced(b, &[RecipientId(1)], "550 5.1.1")
        .await
        .unwrap();
    assert!(!first.exists(), "every message in it is done");
    assert!(queue.message(b).is_none());
    assert!(matches!(queue.body(b).await, Err(QueueError::UnknownMessage(m)) if m == b));
    assert!(matches!(
        queue.mark_delivered(b, &[RecipientId(0)]).await,
        Err(QueueError::UnknownMessage(_))
    ));
    queue.close().await;

    let opened = Queue::open_with(dir.path(), opts).await.unwrap();
    assert_eq!(opened.warnings, []);
    let queue = opened.queue;
    assert!(queue.message(a).is_none() && queue.message(b).is_none());
    assert_body(&queue, c, &body(3000, 3)).await;
    assert_eq!(queue.stats().messages, 1);
    queue.close().await;
}

#[tokio::test]
async fn a_delivery_is_kept_while_its_message_is_queued() {
    let dir = TempDir::new().unwrap();
    // Every batch starts a new segment: the delivery of `a` is recorded in a segment of its
    // own, which holds nothing live but must outlive the segment `a` is in.
    let opts = options(1);
    let queue = Queue::open_with(dir.path(), opts.clone())
        .await
        .unwrap()
        .queue;
    let a = submit(&queue, &["b@example.test", "c@example.test"], &body(100, 1)).await;
    queue.mark_delivered(a, &[RecipientId(0)]).await.unwrap();
    for i in 0..3 {
        let other = submit(&queue, &["b@example.test"], &body(100, 10 + i)).await;
        queue
            .mark_delivered(other, &[RecipientId(0)])
            .await
            .unwrap();
    }
    queue.close().await;

    let queue = Queue::open_with(dir.path(), opts).await.unwrap().queue;
    let message = queue.message(a).unwrap();
    assert_eq!(
        message.recipients,
        [RecipientStatus::Delivered, RecipientStatus::NEW]
    );
    assert_eq!(message.due_recipients(NOW), [RecipientId(1)]);
    assert_eq!(queue.stats().messages, 1);
    queue.close().await;
}

#[tokio::test]
async fn mids_keep_growing_across_restarts() {
    let dir = TempDir::new().unwrap();
    // Every batch starts a new segment, so that old ones are deleted as soon as they can be.
    let opts = options(1);
    let queue = Queue::open_with(dir.path(), opts.clone())
        .await
        .unwrap()
        .queue;
    let first = submit(&queue, &["b@example.test"], &body(10, 1)).await;
    let unused = queue.reserve_mid().await.unwrap();
    assert!(unused > first);
    queue.close().await;

    let queue = Queue::open_with(dir.path(), opts.clone())
        .await
        .unwrap()
        .queue;
    let second = queue.reserve_mid().await.unwrap();
    assert!(
        second > unused,
        "{second} after {unused}: reserved MIDs are not reused"
    );
    queue
        .mark_delivered(first, &[RecipientId(0)])
        .await
        .unwrap();
    assert_eq!(queue.stats().messages, 0);
    assert_eq!(segment_files(dir.path()).len(), 1, "only the head is left");
    queue.close().await;

    let queue = Queue::open_with(dir.path(), opts).await.unwrap().queue;
    let third = queue.reserve_mid().await.unwrap();
    assert!(
        third > second,
        "{third} after {second}, with every old segment deleted"
    );
    queue.close().await;
}

/// A tmpfs mounted for one test and unmounted when it ends.
struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = TempDir::new().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status();
        match status {
            Ok(s) if s.success() => Self { dir },
            other => panic!(
                "this test needs root to mount a tmpfs on {}: {other:?}",
                dir.path().display()
            ),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[tokio::test]
async fn a_full_disk_fails_the_accept_and_keeps_what_was_queued() {
    let tmpfs = Tmpfs::mount("512k");
    let dir = tmpfs.path().join("queue");
    let queue = open(&dir).await;
    let mut kept = Vec::new();
    for i in 0..3 {
        let b = body(10 << 10, i);
        kept.push((submit(&queue, &["b@example.test"], &b).await, b));
    }
    // Something else fills the disk.
    let ballast = tmpfs.path().join("ballast");
    {
        use std::io::Write;
        let mut file = fs::File::create(&ballast).unwrap();
        let chunk = [0u8; 4096];
        while file.write_all(&chunk).is_ok() {}
    }

    let mid = queue.reserve_mid().await.unwrap();
    let big = body(20 << 10, 7);
    let err = queue
        .accept(envelope(mid, &["b@example.test"], big.len()), big.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::StorageFull { .. }), "{err}");
    assert!(queue.message(mid).is_none());
    for (m, b) in &kept {
        assert_body(&queue, *m, b).await;
    }

    fs::remove_file(&ballast).unwrap();
    let after = submit(&queue, &["b@example.test"], &big).await;
    queue.close().await;

    let queue = open(&dir).await;
    assert!(
        queue.message(mid).is_none(),
        "the failed message left nothing"
    );
    for (m, b) in &kept {
        assert_body(&queue, *m, b).await;
    }
    assert_body(&queue, after, &big).await;
    assert_eq!(queue.stats().messages, 4);
    queue.close().await;
}

#[tokio::test]
async fn an_accept_dropped_after_submission_corrupts_nothing() {
    let dir = TempDir::new().unwrap();
    let queue = open(dir.path()).await;
    let before = submit(&queue, &["b@example.test"], &body(1000, 1)).await;
    let mut dropped = Vec::new();
    for i in 0..20 {
        let mid = queue.reserve_mid().await.unwrap();
        let b = body(2000, 100 + i);
        let accept = queue.accept(envelope(mid, &["b@example.test"], b.len()), b.clone());
        poll_once(accept).await;
        dropped.push((mid, b));
    }
    let after = submit(&queue, &["b@example.test"], &body(1000, 2)).await;
    queue.close().await;

    let queue = open(dir.path()).await;
    assert_body(&queue, before, &body(1000, 1)).await;
    assert_body(&queue, after, &body(1000, 2)).await;
    for (mid, b) in &dropped {
        if queue.message(*mid).is_some() {
            assert_body(&queue, *mid, b).await;
        }
    }
    queue.close().await;
}

/// Polls `future` once, which sends its request to the writer, and drops it.
async fn poll_once(future: impl Future) {
    let mut future = pin!(future);
    poll_fn(|cx| {
        let _ = future.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;
}

#[tokio::test]
async fn compaction_moves_a_long_deferred_message_and_frees_the_segments() {
    let dir = TempDir::new().unwrap();
    let opts = options(4096);
    let queue = Queue::open_with(dir.path(), opts.clone())
        .await
        .unwrap()
        .queue;
    let slow = submit(&queue, &["b@slow.test", "c@slow.test"], &body(1000, 1)).await;
    queue
        .defer(slow, &[RecipientId(0)], NOW + 3600)
        .await
        .unwrap();
    for i in 0..40 {
        let mid = submit(&queue, &["b@example.test"], &body(1000, 10 + i)).await;
        queue.mark_delivered(mid, &[RecipientId(0)]).await.unwrap();
    }
    let first = dir.path().join("seg-1.log");
    eventually("compaction of the first segment", || !first.exists()).await;
    eventually("the dead segments to go", || queue.stats().segments <= 3).await;
    let expected = vec![
        RecipientStatus::Pending {
            next_attempt: NOW + 3600,
            attempts: 1,
        },
        RecipientStatus::NEW,
    ];
    assert_eq!(queue.message(slow).unwrap().recipients, expected);
    assert_body(&queue, slow, &body(1000, 1)).await;
    assert_eq!(queue.stats().messages, 1);
    queue.close().await;

    let queue = Queue::open_with(dir.path(), opts).await.unwrap().queue;
    assert_eq!(queue.stats().messages, 1);
    assert_eq!(queue.message(slow).unwrap().recipients, expected);
    assert_body(&queue, slow, &body(1000, 1)).await;
    queue.close().await;
}

/// Writes a segment by hand, as the writer would have.
fn write_segment(dir: &Path, n: u64, records: &[(Record, Vec<u8>)]) {
    let segment = spool::create_segment(dir, n, 1).unwrap();
    let mut bytes = Vec::new();
    for (record, body) in records {
        record::frame(&mut bytes, segment.salt, record, body).unwrap();
    }
    use std::os::unix::fs::FileExt;
    segment
        .file
        .write_all_at(&bytes, SEGMENT_HEADER_LEN as u64)
        .unwrap();
}

#[tokio::test]
async fn a_copy_supersedes_the_original_when_the_deletion_was_lost() {
    // A crash came after compaction copied `a` to segment 2 and before segment 1 was deleted.
    let dir = TempDir::new().unwrap();
    fs::create_dir_all(dir.path()).unwrap();
    let (a, b) = (MessageId(1), MessageId(2));
    let rcpts = ["b@example.test", "c@example.test"];
    let copied = vec![
        RecipientStatus::Delivered,
        RecipientStatus::Pending {
            next_attempt: NOW + 60,
            attempts: 1,
        },
    ];
    write_segment(
        dir.path(),
        1,
        &[
            (Record::Reserved { limit: 1024 }, Vec::new()),
            (
                Record::Message {
                    envelope: envelope(a, &rcpts, 10),
                },
                body(10, 1),
            ),
            (
                Record::Message {
                    envelope: envelope(b, &rcpts[..1], 10),
                },
                body(10, 2),
            ),
        ],
    );
    write_segment(
        dir.path(),
        2,
        &[
            (
                Record::Delivered {
                    mid: b,
                    rids: vec![RecipientId(0)],
                },
                Vec::new(),
            ),
            (
                Record::Delivered {
                    mid: a,
                    rids: vec![RecipientId(0)],
                },
                Vec::new(),
            ),
            (
                Record::Relocated {
                    envelope: envelope(a, &rcpts, 10),
                    recipients: copied.clone(),
                },
                body(10, 1),
            ),
        ],
    );
    let queue = open(dir.path()).await;
    assert_eq!(queue.message(a).unwrap().recipients, copied);
    assert_body(&queue, a, &body(10, 1)).await;
    assert!(queue.message(b).is_none());
    assert_eq!(queue.stats().messages, 1);
    assert!(!dir.path().join("seg-1.log").exists(), "deleted at open");
    assert!(queue.reserve_mid().await.unwrap() >= MessageId(1024));
    queue.close().await;

    let queue = open(dir.path()).await;
    assert_eq!(queue.message(a).unwrap().recipients, copied);
    queue.close().await;
}

#[tokio::test]
async fn a_damaged_body_is_reported_not_delivered() {
    let dir = TempDir::new().unwrap();
    let queue = open(dir.path()).await;
    let mid = submit(&queue, &["b@example.test"], &body(1000, 1)).await;
    let segment = only_segment(dir.path());
    let mut bytes = fs::read(&segment).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0xff;
    fs::write(&segment, &bytes).unwrap();
    let err = queue.body(mid).await.unwrap_err();
    assert!(
        matches!(err, QueueError::Damaged { mid: m, .. } if m == mid),
        "{err}"
    );
    queue.close().await;
}

#[tokio::test]
async fn one_queue_at_a_time_opens_a_directory() {
    let dir = TempDir::new().unwrap();
    let queue = open(dir.path()).await;
    let err = Queue::open(dir.path()).await.unwrap_err();
    assert!(matches!(err, QueueError::Locked { .. }), "{err}");
    let other = queue.clone();
    queue.close().await;
    assert!(matches!(other.reserve_mid().await, Err(QueueError::Closed)));
    open(dir.path()).await.close().await;
}

#[tokio::test]
async fn wrong_requests_are_refused_and_write_nothing() {
    let dir = TempDir::new().unwrap();
    let queue = open(dir.path()).await;
    let unreserved = MessageId(1 << 40);
    let err = queue
        .accept(envelope(unreserved, &["b@example.test"], 1), b"x".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::NotReserved(_)), "{err}");

    let mid = queue.reserve_mid().await.unwrap();
    let err = queue
        .accept(envelope(mid, &[], 1), b"x".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::NoRecipients(_)), "{err}");
    let err = queue
        .accept(envelope(mid, &["b@example.test"], 2), b"x".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::SizeMismatch { .. }), "{err}");
    queue
        .accept(envelope(mid, &["b@example.test"], 1), b"x".to_vec())
        .await
        .unwrap();
    let err = queue
        .accept(envelope(mid, &["b@example.test"], 1), b"y".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::AlreadyQueued(_)), "{err}");
    let err = queue
        .mark_delivered(mid, &[RecipientId(1)])
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::UnknownRecipient { .. }), "{err}");
    let err = queue
        .defer(MessageId(mid.0 + 1), &[RecipientId(0)], NOW)
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::UnknownMessage(_)), "{err}");
    assert_eq!(
        queue.message(mid).unwrap().recipients,
        [RecipientStatus::NEW]
    );
    assert_body(&queue, mid, b"x").await;
    queue.close().await;
}

#[tokio::test]
async fn the_queue_holds_at_most_max_messages() {
    let dir = TempDir::new().unwrap();
    let opts = QueueOptions {
        max_messages: 2,
        ..QueueOptions::default()
    };
    let queue = Queue::open_with(dir.path(), opts).await.unwrap().queue;
    let first = submit(&queue, &["b@example.test"], b"1").await;
    submit(&queue, &["b@example.test"], b"2").await;
    let mid = queue.reserve_mid().await.unwrap();
    let err = queue
        .accept(envelope(mid, &["b@example.test"], 1), b"3".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::Full { limit: 2 }), "{err}");
    queue
        .mark_delivered(first, &[RecipientId(0)])
        .await
        .unwrap();
    queue
        .accept(envelope(mid, &["b@example.test"], 1), b"3".to_vec())
        .await
        .unwrap();
    queue.close().await;
}

#[tokio::test]
async fn the_scheduler_is_woken_by_an_accept() {
    let dir = TempDir::new().unwrap();
    let queue = open(dir.path()).await;
    assert_eq!(queue.next_due(), None);
    let waiter = {
        let queue = queue.clone();
        tokio::spawn(async move { queue.accepted().await })
    };
    submit(&queue, &["b@example.test"], b"hi").await;
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(queue.next_due(), Some(0));
    queue.close().await;
}

#[test]
fn retries_back_off_from_a_minute_to_an_hour_until_five_days() {
    let schedule = RetrySchedule::default();
    let delays: Vec<u64> = (1..=8)
        .map(|failures| schedule.next_attempt(NOW, failures, NOW).unwrap() - NOW)
        .collect();
    assert_eq!(delays, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
    assert_eq!(
        schedule.next_attempt(NOW, u32::MAX, NOW + 60),
        Some(NOW + 60 + 3600)
    );
    let expires = NOW + 5 * 24 * 3600;
    assert_eq!(
        schedule.next_attempt(NOW, 30, expires - 10),
        Some(expires),
        "the last attempt falls at the maximum age"
    );
    assert_eq!(schedule.next_attempt(NOW, 31, expires), None);
    let short = RetrySchedule {
        max_age: 3600,
        ..RetrySchedule::default()
    };
    assert_eq!(short.next_attempt(NOW, 1, NOW + 3600), None);
}

/// Accepts per second for 4 KiB messages from 20 concurrent sessions. Not a test of speed:
/// `cargo test --release -p postern-smtp -- --ignored --nocapture throughput`. Ignored because
/// it asserts nothing about time (a timed assertion flakes on a busy machine) and takes long in a
/// debug build; the speed targets are shown side by side with Postfix by `cargo xtask bench
/// smtp`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run on request"]
async fn throughput_of_4k_accepts_from_20_sessions() {
    let dir = TempDir::new().unwrap();
    let queue = open(dir.path()).await;
    let per_session = 1000;
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for task in 0..20u64 {
        let queue = queue.clone();
        tasks.spawn(async move {
            let b = body(4096, task);
            for _ in 0..per_session {
                submit(&queue, &["b@example.test"], &b).await;
            }
        });
    }
    tasks.join_all().await;
    let elapsed = started.elapsed();
    let stats = queue.stats();
    assert_eq!(stats.messages, 20 * per_session);
    println!(
        "{} accepts of 4 KiB from 20 sessions in {elapsed:.2?}: {:.0} accepts/s, {} fdatasyncs \
         ({:.1} messages each)",
        stats.messages,
        stats.messages as f64 / elapsed.as_secs_f64(),
        stats.commits,
        stats.messages as f64 / stats.commits as f64
    );
    queue.close().await;
}

#[tokio::test]
async fn deliver_now_makes_the_waiting_recipients_of_a_domain_due() {
    let dir = TempDir::new().unwrap();
    let queue = open(dir.path()).await;
    let real_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let later = real_now + 10 * 24 * 3600;
    let mid = submit(&queue, &["b@Example.test", "c@other.test"], &body(100, 3)).await;
    queue
        .defer(mid, &[RecipientId(0), RecipientId(1)], later)
        .await
        .unwrap();
    assert!(queue.due(real_now, 10).is_empty());

    assert_eq!(queue.deliver_now(Some("nowhere.test")), 0);
    assert_eq!(queue.deliver_now(Some("example.TEST")), 1);
    let due = queue.due(real_now + 1, 10);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].due_recipients(real_now + 1), [RecipientId(0)]);
    // ALL: the other domain too; nothing is due twice.
    assert_eq!(queue.deliver_now(None), 1);
    assert_eq!(
        queue.due(real_now + 1, 10)[0].due_recipients(real_now + 1),
        [RecipientId(0), RecipientId(1)]
    );
    assert_eq!(queue.deliver_now(None), 0);
    queue.close().await;
}
