//! The store of committed configurations in `DATA/config`: one file per generation, written so
//! that a crash or power loss at any moment leaves the previous generation intact, and a journal
//! of who committed what.
//!
//! A generation file is `MAGIC | schema u16 | reserved u16 | length u32 | crc32 u32 | postcard`.
//! It is written to a temporary name, fsynced, renamed into place, and the directory fsynced.
//! The newest generation that reads back whole is the committed configuration; a damaged newer
//! one is reported and skipped. The newest [`KEEP_GENERATIONS`] are kept for rollback.
//!
//! The journal (`journal.bin`) is a sequence of `length u32 | crc32 u32 | postcard` records. Each
//! generation file also carries its own journal entry, so a journal append lost to a crash is
//! written again the next time the store is opened.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::diff::changes;
use crate::model::{Config, ConfigError};

/// How many generations stay on disk for `rollbackconfig`.
pub const KEEP_GENERATIONS: usize = 10;

/// Bumped when the stored model changes shape. postcard is not self-describing, so each older
/// schema this firmware still reads has its shape in [`older`] and is converted on reading; a
/// generation of an unknown (newer) schema is refused with a clear error rather than misread.
///
/// - 1: the first.
/// - 2: `tls.peer_certificates` (sslconfig PEER_CERT_FQDN and PEER_CERT_X509).
/// - 3: `users.*.login_password` (the console and SSH login password).
pub const SCHEMA: u16 = 3;

const MAGIC: &[u8; 8] = b"PSTNCFG\0";
const HEADER_LEN: usize = 8 + 2 + 2 + 4 + 4;
const JOURNAL: &str = "journal.bin";
/// No generation or journal record is anywhere near this; a larger length is damage.
const MAX_RECORD: usize = 16 << 20;

/// The journal entry of one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub generation: u64,
    /// Seconds since the Unix epoch.
    pub time: i64,
    pub user: String,
    pub comment: String,
    /// One line per changed setting (see [`crate::diff::Change`]).
    pub changes: Vec<String>,
}

/// A committed configuration with its journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    pub commit: Commit,
    pub config: Config,
}

/// Something the store noticed and worked around; the caller logs it as a Warning.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreWarning {
    /// A generation file is damaged and was skipped.
    DamagedGeneration { path: PathBuf, reason: String },
    /// The journal ends in a partial record, which was dropped.
    JournalTruncated { kept: usize },
    /// The journal could not be written; the commit itself is durable.
    JournalWrite(String),
}

impl std::fmt::Display for StoreWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DamagedGeneration { path, reason } => write!(
                f,
                "configuration generation {} is damaged ({reason}); using the previous one",
                path.display()
            ),
            Self::JournalTruncated { kept } => write!(
                f,
                "the commit journal ended in a partial record; kept {kept} entries"
            ),
            Self::JournalWrite(e) => write!(f, "could not write the commit journal: {e}"),
        }
    }
}

/// Why the store could not do what was asked. Nothing committed is lost by any of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the configuration was not committed: {0}")]
    Invalid(#[from] ConfigError),
    #[error("there are no changes to commit")]
    NoChanges,
    #[error(
        "no configuration generation in {} can be read ({damaged} damaged); restore one from a \
         backup, or move the directory away to start from factory defaults",
        dir.display()
    )]
    NothingReadable { dir: PathBuf, damaged: usize },
    #[error("generation {0} is not kept; the last {KEEP_GENERATIONS} can be rolled back to")]
    UnknownGeneration(u64),
    #[error("generation {generation} cannot be read: {reason}")]
    Damaged { generation: u64, reason: String },
}

/// The committed configuration and the files behind it. Only one process writes a store: the
/// supervisor, which holds the data directory's lock.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    current: Generation,
    /// The highest generation number on disk, readable or not: a new commit never reuses one.
    highest: u64,
}

/// A store that was opened, with what was noticed on the way.
#[derive(Debug)]
pub struct Opened {
    pub store: Store,
    pub warnings: Vec<StoreWarning>,
    /// True when the directory held no generation and `factory` was committed as the first.
    pub created: bool,
}

impl Store {
    /// Opens the store in `dir`, creating it with `factory()` as generation 1 when it holds no
    /// generation at all.
    pub fn open(dir: &Path, factory: impl FnOnce() -> Config) -> Result<Opened, StoreError> {
        // Generations hold password hashes: only the supervisor's user may read them.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err("create", dir))?;
        let mut warnings = Vec::new();
        let numbers = generation_numbers(dir)?;
        let highest = numbers.first().copied().unwrap_or(0);
        let mut current = None;
        for &n in &numbers {
            match read_generation(&generation_path(dir, n)) {
                Ok(g) => {
                    current = Some(g);
                    break;
                }
                Err(reason) => warnings.push(StoreWarning::DamagedGeneration {
                    path: generation_path(dir, n),
                    reason,
                }),
            }
        }
        let (store, created) = match current {
            Some(current) => (
                Self {
                    dir: dir.to_owned(),
                    current,
                    highest,
                },
                false,
            ),
            None if numbers.is_empty() => {
                let config = factory();
                config.validate()?;
                let first = Generation {
                    commit: Commit {
                        generation: 1,
                        time: now(),
                        user: "system".to_owned(),
                        comment: "factory defaults".to_owned(),
                        changes: Vec::new(),
                    },
                    config,
                };
                write_generation(dir, &first)?;
                let store = Self {
                    dir: dir.to_owned(),
                    current: first,
                    highest: 1,
                };
                (store, true)
            }
            None => {
                return Err(StoreError::NothingReadable {
                    dir: dir.to_owned(),
                    damaged: numbers.len(),
                });
            }
        };
        store.reconcile_journal(&mut warnings);
        Ok(Opened {
            store,
            warnings,
            created,
        })
    }

    /// The committed configuration.
    pub fn current(&self) -> &Generation {
        &self.current
    }

    /// Commits `config` as a new generation. On any error the committed configuration stays
    /// as it was.
    pub fn commit(
        &mut self,
        config: Config,
        user: &str,
        comment: &str,
    ) -> Result<Vec<StoreWarning>, StoreError> {
        config.validate()?;
        let changes: Vec<String> = changes(&self.current.config, &config)
            .iter()
            .map(ToString::to_string)
            .collect();
        if changes.is_empty() {
            return Err(StoreError::NoChanges);
        }
        let generation = Generation {
            commit: Commit {
                generation: self.highest + 1,
                time: now(),
                user: user.to_owned(),
                comment: comment.to_owned(),
                changes,
            },
            config,
        };
        write_generation(&self.dir, &generation)?;
        self.highest = generation.commit.generation;
        self.current = generation;
        let mut warnings = Vec::new();
        if let Err(e) = append_journal(&self.dir, &self.current.commit) {
            warnings.push(StoreWarning::JournalWrite(e.to_string()));
        }
        self.prune(&mut warnings);
        Ok(warnings)
    }

    /// Commits again the configuration of an earlier generation that is still kept.
    pub fn rollback(
        &mut self,
        generation: u64,
        user: &str,
    ) -> Result<Vec<StoreWarning>, StoreError> {
        let old = self.generation(generation)?;
        self.commit(
            old.config,
            user,
            &format!("rollback to generation {generation}"),
        )
    }

    /// A kept generation.
    pub fn generation(&self, generation: u64) -> Result<Generation, StoreError> {
        let path = generation_path(&self.dir, generation);
        if !path.exists() {
            return Err(StoreError::UnknownGeneration(generation));
        }
        read_generation(&path).map_err(|reason| StoreError::Damaged { generation, reason })
    }

    /// The journal entries of the kept, readable generations, newest first: what
    /// `rollbackconfig` offers.
    pub fn kept(&self) -> Result<Vec<Commit>, StoreError> {
        Ok(generation_numbers(&self.dir)?
            .into_iter()
            .filter_map(|n| read_generation(&generation_path(&self.dir, n)).ok())
            .map(|g| g.commit)
            .collect())
    }

    /// Every journal entry, oldest first.
    pub fn journal(&self) -> Result<Vec<Commit>, StoreError> {
        let path = self.dir.join(JOURNAL);
        Ok(read_journal(&path).map_err(io_err("read", &path))?.0)
    }

    fn reconcile_journal(&self, warnings: &mut Vec<StoreWarning>) {
        let path = self.dir.join(JOURNAL);
        let journaled = match read_journal(&path) {
            Ok((entries, torn)) => {
                if torn {
                    warnings.push(StoreWarning::JournalTruncated {
                        kept: entries.len(),
                    });
                }
                entries.last().map_or(0, |c| c.generation)
            }
            Err(e) => {
                warnings.push(StoreWarning::JournalWrite(e.to_string()));
                return;
            }
        };
        let Ok(numbers) = generation_numbers(&self.dir) else {
            return;
        };
        for n in numbers.into_iter().rev().filter(|n| *n > journaled) {
            if let Ok(g) = read_generation(&generation_path(&self.dir, n))
                && let Err(e) = append_journal(&self.dir, &g.commit)
            {
                warnings.push(StoreWarning::JournalWrite(e.to_string()));
                return;
            }
        }
    }

    fn prune(&self, warnings: &mut Vec<StoreWarning>) {
        let Ok(numbers) = generation_numbers(&self.dir) else {
            return;
        };
        for n in numbers.into_iter().skip(KEEP_GENERATIONS) {
            let path = generation_path(&self.dir, n);
            if let Err(e) = fs::remove_file(&path) {
                warnings.push(StoreWarning::DamagedGeneration {
                    path,
                    reason: format!("could not remove an old generation: {e}"),
                });
            }
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io { op, path, source }
}

fn generation_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("gen-{n:010}.cfg"))
}

/// Generation numbers present in `dir`, newest first.
fn generation_numbers(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut numbers: Vec<u64> = fs::read_dir(dir)
        .map_err(io_err("list", dir))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| {
            name.strip_prefix("gen-")?
                .strip_suffix(".cfg")?
                .parse()
                .ok()
        })
        .collect();
    numbers.sort_unstable_by(|a, b| b.cmp(a));
    Ok(numbers)
}

fn write_generation(dir: &Path, generation: &Generation) -> Result<(), StoreError> {
    let payload = postcard::to_stdvec(generation)
        .map_err(|e| StoreError::Invalid(ConfigError::Invalid(format!("cannot encode: {e}"))))?;
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&SCHEMA.to_le_bytes());
    bytes.extend_from_slice(&0u16.to_le_bytes());
    bytes.extend_from_slice(&len_u32(payload.len()).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);

    let path = generation_path(dir, generation.commit.generation);
    replace_file(&path, &bytes).map_err(io_err("write", &path))
}

/// Puts `bytes` at `path` (mode 0600) so that a reader, or a restart after a power cut, finds the
/// old file or the new one and never a part: written to a temporary name in the same directory,
/// fsynced, renamed into place, the directory fsynced. A write that fails (a full disk) leaves
/// no temporary file behind. The store's generations, the supervisor's pending confirmation and
/// the login shadow file are written so.
pub fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a file path", path.display()),
        ));
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

fn read_generation(path: &Path) -> Result<Generation, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let header = bytes
        .get(..HEADER_LEN)
        .ok_or_else(|| format!("{} bytes, shorter than a header", bytes.len()))?;
    if &header[..8] != MAGIC {
        return Err("not a configuration generation".to_owned());
    }
    let schema = u16::from_le_bytes([header[8], header[9]]);
    if !(1..=SCHEMA).contains(&schema) {
        return Err(format!(
            "written with schema {schema}; this firmware reads schemas 1 to {SCHEMA}"
        ));
    }
    let len = u32::from_le_bytes([header[12], header[13], header[14], header[15]]) as usize;
    let crc = u32::from_le_bytes([header[16], header[17], header[18], header[19]]);
    let payload = &bytes[HEADER_LEN..];
    if payload.len() != len {
        return Err(format!(
            "{} payload bytes, header says {len}",
            payload.len()
        ));
    }
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".to_owned());
    }
    let decoded = match schema {
        1 => postcard::from_bytes::<older::GenerationV1>(payload).map(Generation::from),
        2 => postcard::from_bytes::<older::GenerationV2>(payload).map(Generation::from),
        _ => postcard::from_bytes(payload),
    };
    decoded.map_err(|e| format!("cannot decode: {e}"))
}

fn len_u32(len: usize) -> u32 {
    // Generations and journal records are far below 4 GiB (MAX_RECORD).
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn append_journal(dir: &Path, commit: &Commit) -> io::Result<()> {
    let path = dir.join(JOURNAL);
    let payload = postcard::to_stdvec(commit).map_err(io::Error::other)?;
    let (_, good_len) = read_journal_records(&path)?;
    let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
    // A torn record from a crash is dropped before the next one is written after it.
    if file.metadata()?.len() != good_len {
        file.set_len(good_len)?;
    }
    let mut record = Vec::with_capacity(8 + payload.len());
    record.extend_from_slice(&len_u32(payload.len()).to_le_bytes());
    record.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    record.extend_from_slice(&payload);
    file.write_all(&record)?;
    file.sync_all()
}

/// The journal's entries and whether it ended in a damaged record.
fn read_journal(path: &Path) -> io::Result<(Vec<Commit>, bool)> {
    let (entries, good_len) = read_journal_records(path)?;
    let len = match fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    Ok((entries, len != good_len))
}

/// The readable records and the length of the file they span.
fn read_journal_records(path: &Path) -> io::Result<(Vec<Commit>, u64)> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => f.read_to_end(&mut bytes)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let mut entries = Vec::new();
    let mut at = 0;
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let Some(payload) = bytes
            .get(at + 8..at + 8 + len)
            .filter(|_| len <= MAX_RECORD)
        else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Ok(commit) = postcard::from_bytes(payload) else {
            break;
        };
        entries.push(commit);
        at += 8 + len;
    }
    Ok((entries, at as u64))
}

mod older;
#[cfg(test)]
mod tests;
