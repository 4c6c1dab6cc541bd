//! `commit confirmed`: the outstanding confirmation, kept in `DATA/config/confirm-pending` so that
//! a supervisor restarted during the window still rolls back at the deadline (or at once when it
//! has passed), and the task that rolls back when the deadline comes.
//!
//! The file is written before the commit it protects (without its generation, which the store
//! has not chosen yet) and again after it (with the generation). On start:
//! - a file without a generation whose `previous` is still the committed generation is a
//!   commit that never landed: it is dropped;
//! - a file without a generation, after a commit landed: the committed generation is the one
//!   waiting;
//! - a file whose generation is no longer the committed one was confirmed (by a later commit)
//!   just before a crash: it is dropped.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use postern_config::store::replace_file;
use postern_control::Confirmation;
use tokio::sync::watch;

use crate::owner::{ConfigOwner, unix_now};
use crate::syslog::SystemLog;

const FILE: &str = "confirm-pending";
/// After a rollback that could not be committed (a full disk), the next attempt.
const RETRY: Duration = Duration::from_secs(5);

/// The confirmation file of the configuration directory `dir`.
#[derive(Debug, Clone)]
pub(crate) struct ConfirmFile {
    dir: PathBuf,
}

/// What the file holds: a [`Confirmation`] whose generation may not be known yet.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    previous: u64,
    generation: Option<u64>,
    user: String,
    deadline: i64,
    within_secs: u32,
}

impl ConfirmFile {
    pub(crate) fn new(config_dir: &Path) -> Self {
        Self {
            dir: config_dir.to_owned(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// The confirmation outstanding at start, given the committed generation; a file that no
    /// longer applies is removed and said so in `log`.
    pub(crate) fn load(&self, current: u64, log: &SystemLog) -> Option<Confirmation> {
        let path = self.path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                log.warning(&format!(
                    "Cannot read {}: {e}; no commit is waiting for confirmation",
                    path.display()
                ));
                return None;
            }
        };
        let record = match Record::parse(&text) {
            Some(record) => record,
            None => {
                log.warning(&format!(
                    "{} is damaged; no commit is waiting for confirmation",
                    path.display()
                ));
                self.remove_logged(log);
                return None;
            }
        };
        let generation = match record.generation {
            Some(g) if g == current => g,
            None if current != record.previous => current,
            _ => {
                // The commit never landed, or a later commit confirmed it.
                self.remove_logged(log);
                return None;
            }
        };
        let confirmation = Confirmation {
            generation,
            previous: record.previous,
            user: record.user,
            deadline: record.deadline,
            within_secs: record.within_secs,
        };
        log.info(&format!(
            "Commit {generation} by {} is waiting for confirmation; it is rolled back to \
             generation {} {}",
            confirmation.user,
            confirmation.previous,
            if confirmation.deadline <= unix_now() {
                "now: its deadline passed while the supervisor was stopped".to_owned()
            } else {
                format!(
                    "at {} unless confirmed",
                    postern_logs::format_unix_time(confirmation.deadline)
                )
            }
        ));
        Some(confirmation)
    }

    /// Records a confirmation before its commit lands (`generation` not yet known).
    pub(crate) fn write_before(
        &self,
        previous: u64,
        user: &str,
        deadline: i64,
        within_secs: u32,
    ) -> io::Result<()> {
        self.write(&Record {
            previous,
            generation: None,
            user: user.to_owned(),
            deadline,
            within_secs,
        })
    }

    /// Records an outstanding confirmation whose commit landed.
    pub(crate) fn write_landed(&self, c: &Confirmation) -> io::Result<()> {
        self.write(&Record {
            previous: c.previous,
            generation: Some(c.generation),
            user: c.user.clone(),
            deadline: c.deadline,
            within_secs: c.within_secs,
        })
    }

    /// Written to a temporary name, fsynced, renamed into place, the directory fsynced.
    fn write(&self, record: &Record) -> io::Result<()> {
        replace_file(&self.path(), record.to_text().as_bytes())
    }

    pub(crate) fn remove(&self) -> io::Result<()> {
        match fs::remove_file(self.path()) {
            Ok(()) => File::open(&self.dir)?.sync_all(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn remove_logged(&self, log: &SystemLog) {
        if let Err(e) = self.remove() {
            log.warning(&format!("Cannot remove {}: {e}", self.path().display()));
        }
    }
}

impl Record {
    fn to_text(&self) -> String {
        let mut text = format!("previous {}\n", self.previous);
        if let Some(g) = self.generation {
            text.push_str(&format!("generation {g}\n"));
        }
        // One line per field: a line break in the name would make the file unreadable.
        text.push_str(&format!(
            "user {}\ndeadline {}\nwithin {}\n",
            self.user.replace(['\n', '\r'], " "),
            self.deadline,
            self.within_secs
        ));
        text
    }

    fn parse(text: &str) -> Option<Self> {
        let mut previous = None;
        let mut generation = None;
        let mut user = None;
        let mut deadline = None;
        let mut within = None;
        for line in text.lines() {
            let (key, value) = line.split_once(' ')?;
            match key {
                "previous" => previous = Some(value.parse().ok()?),
                "generation" => generation = Some(value.parse().ok()?),
                "user" => user = Some(value.to_owned()),
                "deadline" => deadline = Some(value.parse().ok()?),
                "within" => within = Some(value.parse().ok()?),
                _ => return None,
            }
        }
        Some(Self {
            previous: previous?,
            generation,
            user: user?,
            deadline: deadline?,
            within_secs: within?,
        })
    }
}

/// "1 minute", "5 minutes", "30 seconds": the time a `commit confirmed` allowed.
pub(crate) fn describe_within(secs: u32) -> String {
    let (n, unit) = if secs.is_multiple_of(60) && secs > 0 {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Rolls back the outstanding `commit confirmed` when its deadline comes, until shutdown.
pub(crate) async fn roll_back_when_due(
    owner: Arc<ConfigOwner>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut outstanding = owner.confirmations();
    loop {
        let deadline = outstanding.borrow_and_update().as_ref().map(|c| c.deadline);
        let due = async {
            match deadline {
                Some(deadline) => {
                    let left = u64::try_from(deadline.saturating_sub(unix_now())).unwrap_or(0);
                    tokio::time::sleep(Duration::from_secs(left)).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = outstanding.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = shutdown.changed() => return,
            () = due => {
                if !owner.expire().await {
                    tokio::select! {
                        () = tokio::time::sleep(RETRY) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_none() {
        let record = Record {
            previous: 4,
            generation: Some(5),
            user: "admin".to_owned(),
            deadline: 1_764_240_000,
            within_secs: 60,
        };
        assert_eq!(Record::parse(&record.to_text()), Some(record.clone()));
        let before = Record {
            generation: None,
            ..record
        };
        assert_eq!(Record::parse(&before.to_text()), Some(before));
        assert_eq!(Record::parse("previous 4\nuser admin\n"), None);
        assert_eq!(Record::parse("previous x\n"), None);
        assert_eq!(Record::parse("garbage"), None);
    }

    /// What start makes of each state a crash can leave the file in.
    #[test]
    fn a_file_left_by_a_crash_applies_only_to_the_commit_it_protects() {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().join("config");
        fs::create_dir_all(&dir).unwrap();
        let log = SystemLog::open(data.path(), false).unwrap();
        let file = ConfirmFile::new(&dir);
        let deadline = unix_now() + 60;

        // Written before a commit that never landed: generation 4 is still the current one.
        file.write_before(4, "admin", deadline, 60).unwrap();
        assert_eq!(file.load(4, &log), None);
        assert!(!file.path().exists());

        // Written before a commit that landed as 5, the second write lost.
        file.write_before(4, "admin", deadline, 60).unwrap();
        let waiting = file.load(5, &log).expect("commit 5 is waiting");
        assert_eq!((waiting.generation, waiting.previous), (5, 4));
        assert_eq!((waiting.deadline, waiting.within_secs), (deadline, 60));
        assert_eq!(waiting.user, "admin");

        // Both writes done: it applies while 5 is current, and not after a later commit.
        file.write_landed(&waiting).unwrap();
        assert_eq!(file.load(5, &log), Some(waiting));
        assert_eq!(file.load(6, &log), None);
        assert!(!file.path().exists());

        // Damage is reported and the file goes.
        fs::write(file.path(), "previous four\n").unwrap();
        assert_eq!(file.load(5, &log), None);
        assert!(!file.path().exists());
        let logged =
            fs::read_to_string(postern_logs::Subscription::SystemLogs.current_path(data.path()))
                .unwrap();
        assert!(
            logged.contains("Warning: ") && logged.contains("is damaged"),
            "{logged}"
        );
    }

    #[test]
    fn the_time_allowed_reads_as_words() {
        assert_eq!(describe_within(60), "1 minute");
        assert_eq!(describe_within(600), "10 minutes");
        assert_eq!(describe_within(1), "1 second");
        assert_eq!(describe_within(90), "90 seconds");
    }
}
