#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::net::SocketAddr;
use std::process::Command;

use tempfile::TempDir;

use super::*;
use crate::model::{Hostname, ListenerName, SmtpListener, sample};
use crate::tls::{ProtocolRange, TlsService};
use crate::users::UserName;

/// Opens the store in `dir` with [`sample`] as the factory configuration, expecting no warnings.
fn open(dir: &Path) -> Store {
    let opened = Store::open(dir, sample).unwrap();
    assert_eq!(
        opened.warnings,
        [],
        "unexpected warnings opening {}",
        dir.display()
    );
    opened.store
}

/// `config` with another host name, so that every call with a different `i` is a change.
fn renamed(config: &Config, i: usize) -> Config {
    let mut config = config.clone();
    config.system.hostname = Hostname::new(&format!("mail{i}.example.com")).unwrap();
    config
}

/// A store in `dir` with the factory generation and `commits` more (generations 1..=commits+1).
fn store_with_commits(dir: &Path, commits: usize) -> Store {
    let mut store = open(dir);
    for i in 1..=commits {
        let config = renamed(&store.current().config, i);
        store
            .commit(config, "admin", &format!("commit {i}"))
            .unwrap();
    }
    store
}

/// The generation files in `dir`, sorted by name (which is by number).
fn generation_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("gen-") && n.ends_with(".cfg"))
        .collect();
    names.sort();
    names
}

fn generations(commits: &[Commit]) -> Vec<u64> {
    commits.iter().map(|c| c.generation).collect()
}

#[test]
fn open_creates_the_factory_generation_once() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Cell::new(0);
    let factory = || {
        calls.set(calls.get() + 1);
        sample()
    };

    let opened = Store::open(dir.path(), factory).unwrap();
    assert!(opened.created);
    assert_eq!(opened.warnings, []);
    assert_eq!(calls.get(), 1);
    let first = opened.store.current().clone();
    assert_eq!(first.commit.generation, 1);
    assert_eq!(first.commit.user, "system");
    assert_eq!(first.commit.comment, "factory defaults");
    assert_eq!(first.config, sample());
    assert_eq!(generation_files(dir.path()), ["gen-0000000001.cfg"]);
    assert_eq!(
        opened.store.journal().unwrap(),
        std::slice::from_ref(&first.commit)
    );
    drop(opened);

    let reopened = Store::open(dir.path(), factory).unwrap();
    assert!(!reopened.created);
    assert_eq!(reopened.warnings, []);
    assert_eq!(calls.get(), 1, "the factory was called again on reopening");
    assert_eq!(reopened.store.current(), &first);
}

#[test]
fn commit_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let mut config = store.current().config.clone();
    config
        .tls
        .set_protocols(
            TlsService::InboundSmtp,
            ProtocolRange::from_selection("1-3").unwrap(),
        )
        .unwrap();
    let warnings = store
        .commit(config.clone(), "admin", "enable TLS v1.3 inbound")
        .unwrap();
    assert_eq!(warnings, []);
    drop(store);

    let store = open(dir.path());
    let current = store.current();
    assert_eq!(current.commit.generation, 2);
    assert_eq!(current.config, config);
    assert_ne!(current.config, sample());

    let journal = store.journal().unwrap();
    assert_eq!(generations(&journal), [1, 2]);
    assert_eq!(journal[0].user, "system");
    assert_eq!(journal[0].comment, "factory defaults");
    assert_eq!(journal[0].changes, Vec::<String>::new());
    assert_eq!(journal[1].user, "admin");
    assert_eq!(journal[1].comment, "enable TLS v1.3 inbound");
    assert_eq!(
        journal[1].changes,
        ["tls.inbound_smtp.protocols: tlsv1_1tlsv1_2 -> tlsv1_1tlsv1_2tlsv1_3"]
    );
    assert_eq!(journal[1], current.commit);
}

#[test]
fn an_identical_config_is_not_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let same = store.current().config.clone();
    assert!(matches!(
        store.commit(same, "admin", "nothing"),
        Err(StoreError::NoChanges)
    ));
    assert_eq!(store.current().commit.generation, 1);
    assert_eq!(generation_files(dir.path()), ["gen-0000000001.cfg"]);
    assert_eq!(generations(&store.journal().unwrap()), [1]);
}

#[test]
fn an_invalid_config_is_not_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let before = store.current().clone();
    let mut config = before.config.clone();
    config.users.clear();
    assert!(matches!(
        store.commit(config, "admin", "remove everyone"),
        Err(StoreError::Invalid(ConfigError::NoAdministrator))
    ));
    assert_eq!(store.current(), &before);
    assert_eq!(generation_files(dir.path()), ["gen-0000000001.cfg"]);

    // The refused commit used up no generation number.
    let next = renamed(&before.config, 1);
    store.commit(next, "admin", "valid").unwrap();
    assert_eq!(store.current().commit.generation, 2);
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.current().commit.generation, 2);
    assert!(
        store
            .current()
            .config
            .users
            .contains_key(&UserName::new(Config::FIRST_ADMIN).unwrap())
    );
}

/// Three commits (generations 1–4), `damage` applied to the file of generation 4, then the
/// store must fall back to generation 3, name the damaged file, and never reuse number 4.
fn newest_damaged_falls_back(damage: impl FnOnce(&Path), reason_contains: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_commits(dir.path(), 3);
    assert_eq!(store.current().commit.generation, 4);
    let third = store.generation(3).unwrap();
    drop(store);
    let damaged = generation_path(dir.path(), 4);
    damage(&damaged);

    let opened = Store::open(dir.path(), || panic!("factory called")).unwrap();
    assert!(!opened.created);
    match &opened.warnings[..] {
        [StoreWarning::DamagedGeneration { path, reason }] => {
            assert_eq!(path, &damaged);
            assert!(
                reason.contains(reason_contains),
                "reason {reason:?} does not mention {reason_contains:?}"
            );
        }
        other => panic!("expected one DamagedGeneration warning, got {other:?}"),
    }
    let mut store = opened.store;
    assert_eq!(store.current(), &third);
    assert!(matches!(
        store.generation(4),
        Err(StoreError::Damaged { generation: 4, .. })
    ));
    assert_eq!(generations(&store.kept().unwrap()), [3, 2, 1]);

    let next = renamed(&third.config, 99);
    store.commit(next.clone(), "admin", "after damage").unwrap();
    assert_eq!(store.current().commit.generation, 5);
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.current().commit.generation, 5);
    assert_eq!(store.current().config, next);
}

#[test]
fn truncated_newest_generation_falls_back() {
    newest_damaged_falls_back(
        |path| {
            let len = fs::metadata(path).unwrap().len();
            OpenOptions::new()
                .write(true)
                .open(path)
                .unwrap()
                .set_len(len / 2)
                .unwrap();
        },
        "payload bytes",
    );
}

#[test]
fn a_flipped_bit_in_the_newest_generation_falls_back() {
    newest_damaged_falls_back(
        |path| {
            let mut bytes = fs::read(path).unwrap();
            let at = HEADER_LEN + (bytes.len() - HEADER_LEN) / 2;
            bytes[at] ^= 0x10;
            fs::write(path, bytes).unwrap();
        },
        "checksum mismatch",
    );
}

#[test]
fn an_overwritten_magic_in_the_newest_generation_falls_back() {
    newest_damaged_falls_back(
        |path| {
            let mut bytes = fs::read(path).unwrap();
            bytes[..8].copy_from_slice(b"GARBAGE!");
            fs::write(path, bytes).unwrap();
        },
        "not a configuration generation",
    );
}

#[test]
fn all_generations_damaged_is_an_error_not_factory_defaults() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with_commits(dir.path(), 2));
    let before = generation_files(dir.path());
    for name in &before {
        let path = dir.path().join(name);
        let mut bytes = fs::read(&path).unwrap();
        bytes[0] ^= 0xff;
        fs::write(&path, bytes).unwrap();
    }

    let called = Cell::new(false);
    let result = Store::open(dir.path(), || {
        called.set(true);
        sample()
    });
    match result {
        Err(StoreError::NothingReadable { dir: d, damaged }) => {
            assert_eq!(d, dir.path());
            assert_eq!(damaged, 3);
        }
        other => panic!("expected NothingReadable, got {other:?}"),
    }
    assert!(!called.get(), "the factory was called");
    assert_eq!(generation_files(dir.path()), before);
}

#[test]
fn pruning_and_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with_commits(dir.path(), 15);
    assert_eq!(store.current().commit.generation, 16);

    let expected: Vec<String> = (7..=16).map(|n| format!("gen-{n:010}.cfg")).collect();
    assert_eq!(generation_files(dir.path()), expected);
    let kept = store.kept().unwrap();
    assert_eq!(kept.len(), KEEP_GENERATIONS);
    assert_eq!(generations(&kept), (7..=16).rev().collect::<Vec<u64>>());
    assert_eq!(kept[0], store.current().commit);
    // The journal keeps every commit, pruned or not.
    assert_eq!(
        generations(&store.journal().unwrap()),
        (1..=16).collect::<Vec<u64>>()
    );

    let tenth = store.generation(10).unwrap();
    assert_ne!(tenth.config, store.current().config);
    store.rollback(10, "operator").unwrap();
    let current = store.current().clone();
    assert_eq!(current.commit.generation, 17);
    assert_eq!(current.config, tenth.config);
    assert_eq!(current.commit.comment, "rollback to generation 10");
    assert_eq!(current.commit.user, "operator");
    assert_eq!(
        current.commit.changes,
        ["system.hostname: mail15.example.com -> mail9.example.com"]
    );
    let expected: Vec<String> = (8..=17).map(|n| format!("gen-{n:010}.cfg")).collect();
    assert_eq!(generation_files(dir.path()), expected);

    assert!(matches!(
        store.rollback(3, "operator"),
        Err(StoreError::UnknownGeneration(3))
    ));
    assert!(matches!(
        store.rollback(7, "operator"),
        Err(StoreError::UnknownGeneration(7))
    ));
    assert_eq!(store.current(), &current);
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.current(), &current);
}

#[test]
fn a_torn_journal_tail_is_reported_and_dropped() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with_commits(dir.path(), 1));
    let journal = dir.path().join(JOURNAL);
    let mut file = OpenOptions::new().append(true).open(&journal).unwrap();
    file.write_all(&[0x2a, 0x00, 0x00, 0x00, 0xde, 0xad])
        .unwrap();
    drop(file);

    let opened = Store::open(dir.path(), sample).unwrap();
    assert_eq!(
        opened.warnings,
        [StoreWarning::JournalTruncated { kept: 2 }]
    );
    let mut store = opened.store;
    assert_eq!(store.current().commit.generation, 2);
    assert_eq!(generations(&store.journal().unwrap()), [1, 2]);

    let next = renamed(&store.current().config, 7);
    assert_eq!(store.commit(next, "admin", "after the tear").unwrap(), []);
    let entries = store.journal().unwrap();
    assert_eq!(generations(&entries), [1, 2, 3]);
    assert_eq!(entries[2].comment, "after the tear");
    drop(store);

    // The torn bytes are gone: no warning any more.
    let store = open(dir.path());
    assert_eq!(generations(&store.journal().unwrap()), [1, 2, 3]);
}

#[test]
fn a_lost_journal_is_written_again_from_the_generations() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_commits(dir.path(), 2);
    let current = store.current().commit.clone();
    drop(store);
    fs::remove_file(dir.path().join(JOURNAL)).unwrap();

    let store = open(dir.path());
    let entries = store.journal().unwrap();
    assert_eq!(entries.last(), Some(&current));
    assert_eq!(generations(&entries), [1, 2, 3]);
    assert_eq!(entries[2].comment, "commit 2");
    drop(store);

    // Reconciled once: reopening does not append the entries again.
    let store = open(dir.path());
    assert_eq!(generations(&store.journal().unwrap()), [1, 2, 3]);
}

#[test]
fn a_lost_journal_append_is_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with_commits(dir.path(), 1);
    let journal = dir.path().join(JOURNAL);
    let before_commit = fs::read(&journal).unwrap();
    let next = renamed(&store.current().config, 2);
    store.commit(next, "admin", "journal lost").unwrap();
    let current = store.current().commit.clone();
    drop(store);
    // As if the power failed after generation 3 was renamed into place but before its journal
    // record was appended.
    fs::write(&journal, before_commit).unwrap();

    let store = open(dir.path());
    let entries = store.journal().unwrap();
    assert_eq!(generations(&entries), [1, 2, 3]);
    assert_eq!(entries[2], current);
}

#[test]
fn a_leftover_temporary_file_does_not_confuse_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_commits(dir.path(), 1);
    let current = store.current().clone();
    drop(store);
    // A crash while writing generation 3.
    let tmp = dir.path().join(".gen-0000000003.cfg.tmp");
    fs::write(&tmp, b"PSTNCFG\0half a generation").unwrap();

    let mut store = open(dir.path());
    assert_eq!(store.current(), &current);
    assert_eq!(generations(&store.kept().unwrap()), [2, 1]);

    let next = renamed(&current.config, 3);
    store
        .commit(next.clone(), "admin", "over the leftover")
        .unwrap();
    assert_eq!(store.current().commit.generation, 3);
    assert!(!tmp.exists());
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.current().config, next);
}

/// A small tmpfs mounted on a temporary directory for as long as this lives.
struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status();
        match status {
            Ok(s) if s.success() => Self { dir },
            other => panic!(
                "this test mounts a tmpfs to fill the disk and needs root \
                 (mount -t tmpfs on {} failed: {other:?})",
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
        // Runs before `dir` is removed.
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Writes `path` until the filesystem is full.
fn fill(path: &Path) -> File {
    let mut file = File::create(path).unwrap();
    let chunk = [0u8; 4096];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    file
}

#[test]
fn a_full_disk_leaves_the_committed_generation_alone() {
    let fs_ = Tmpfs::mount("128k");
    let dir = fs_.path().join("config");
    let mut store = open(&dir);
    let before = store.current().clone();

    let mut big = before.config.clone();
    for i in 0..150u16 {
        big.listeners.smtp.insert(
            ListenerName::new(&format!("L{i}")).unwrap(),
            SmtpListener::new(SocketAddr::from(([127, 0, 0, 1], 10_000 + i))),
        );
    }
    big.validate().unwrap();

    let filler_path = fs_.path().join("filler");
    let filler = fill(&filler_path);
    // Leave a little room, less than the generation needs, so that its write is partial.
    let filled = filler.metadata().unwrap().len();
    filler.set_len(filled - 8192).unwrap();

    match store.commit(big.clone(), "admin", "many listeners") {
        Err(StoreError::Io { source, .. }) => {
            assert_eq!(source.kind(), io::ErrorKind::StorageFull, "{source}");
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert_eq!(store.current(), &before);
    let leftovers: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new());
    assert_eq!(generation_files(&dir), ["gen-0000000001.cfg"]);
    drop(store);

    drop(filler);
    fs::remove_file(&filler_path).unwrap();
    let mut store = open(&dir);
    assert_eq!(store.current(), &before);
    assert_eq!(generations(&store.journal().unwrap()), [1]);

    // With room again the same commit goes through, as generation 2: the failure used up no
    // generation number.
    store
        .commit(big.clone(), "admin", "many listeners")
        .unwrap();
    assert_eq!(store.current().commit.generation, 2);
    assert_eq!(store.current().config, big);
    let size = fs::metadata(generation_path(&dir, 2)).unwrap().len();
    assert!(
        size > 2 * 8192,
        "the generation ({size} bytes) would have fitted in the space left"
    );
    drop(store);
    let store = open(&dir);
    assert_eq!(store.current().config, big);
}

/// A copy of the committed files of an older schema's store, in a new directory.
fn fixture(schema: u16) -> TempDir {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("src/store/testdata/schema-{schema}"));
    let dir = tempfile::tempdir().unwrap();
    for name in ["gen-0000000001.cfg", "gen-0000000002.cfg", "journal.bin"] {
        fs::copy(fixture.join(name), dir.path().join(name)).unwrap();
    }
    dir
}

/// Generations written by schema 1 (before `tls.peer_certificates`), kept as committed files:
/// a firmware update must still read the configuration already on disk, and commit after it.
#[test]
fn generations_of_schema_1_are_read_and_converted() {
    let dir = fixture(1);
    let header = fs::read(dir.path().join("gen-0000000002.cfg")).unwrap();
    assert_eq!(
        u16::from_le_bytes([header[8], header[9]]),
        1,
        "a schema 1 file"
    );

    let mut store = open(dir.path());
    let current = store.current().clone();
    assert_eq!(current.commit.generation, 2);
    assert_eq!(current.commit.comment, "schema 1 fixture");
    // What schema 1 stored is kept; the new checks are off, as schema 1 behaved.
    let mut expected = sample();
    expected
        .tls
        .set_protocols(
            TlsService::InboundSmtp,
            ProtocolRange::from_selection("1-3").unwrap(),
        )
        .unwrap();
    expected.tls.other_client.tls_v1_0 = true;
    assert_eq!(current.config, expected);
    assert_eq!(
        current.config.tls.peer_certificates,
        crate::tls::PeerCertificateChecks::default()
    );
    assert_eq!(store.generation(1).unwrap().config, sample());

    // The next commit is written in today's schema and reads back, as does a rollback.
    let mut changed = current.config.clone();
    changed.tls.peer_certificates.fqdn = true;
    store.commit(changed.clone(), "admin", "fqdn").unwrap();
    let header = fs::read(dir.path().join("gen-0000000003.cfg")).unwrap();
    assert_eq!(u16::from_le_bytes([header[8], header[9]]), SCHEMA);
    assert_eq!(
        store.journal().unwrap().last().unwrap().changes,
        ["tls.peer_certificates.fqdn: false -> true"]
    );
    store.rollback(1, "admin").unwrap();
    let reopened = open(dir.path());
    assert_eq!(reopened.current().config, sample());
    assert_eq!(reopened.generation(3).unwrap().config, changed);
}

/// Generations written by schema 2 (before `users.*.login_password`): the users keep their
/// argon2 hashes and have no login hash until their password is set again.
#[test]
fn generations_of_schema_2_are_read_and_converted() {
    let dir = fixture(2);
    let header = fs::read(dir.path().join("gen-0000000002.cfg")).unwrap();
    assert_eq!(u16::from_le_bytes([header[8], header[9]]), 2);
    let mut store = open(dir.path());
    let current = store.current().clone();
    assert_eq!(current.commit.comment, "schema 2 fixture");
    let mut expected = sample();
    expected.tls.peer_certificates.x509 = true;
    assert_eq!(current.config, expected);
    let admin = UserName::new("admin").unwrap();
    assert_eq!(current.config.users[&admin].login_password, None);

    let mut changed = current.config.clone();
    let user = changed.users.get_mut(&admin).unwrap();
    user.set_password("a new password").unwrap();
    assert!(user.password.verify("a new password"));
    store.commit(changed.clone(), "admin", "password").unwrap();
    assert_eq!(
        store.journal().unwrap().last().unwrap().changes,
        [
            "users.admin.login_password: changed",
            "users.admin.password: changed"
        ]
    );
    assert_eq!(open(dir.path()).current().config, changed);
}

#[test]
fn a_generation_of_a_newer_schema_is_refused_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_commits(dir.path(), 1);
    let path = dir.path().join("gen-0000000002.cfg");
    let mut bytes = fs::read(&path).unwrap();
    bytes[8..10].copy_from_slice(&(SCHEMA + 1).to_le_bytes());
    fs::write(&path, bytes).unwrap();
    drop(store);
    let opened = Store::open(dir.path(), sample).unwrap();
    assert_eq!(opened.store.current().commit.generation, 1);
    assert!(
        matches!(&opened.warnings[..], [StoreWarning::DamagedGeneration { reason, .. }]
            if reason.contains(&format!("schema {}", SCHEMA + 1))),
        "{:?}",
        opened.warnings
    );
}
