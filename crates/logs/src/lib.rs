//! Log subscriptions (`mail_logs`, `gui_logs`, `cli_logs`, `system_logs`) written in the line
//! format of the reference appliance, which existing log parsers read:
//!
//! ```text
//! Wed Jan 17 21:09:12 2024 Info: ICID 1020089 TLS success protocol TLSv1.3 cipher TLS_AES_256_GCM_SHA384
//! ```
//!
//! # Layout
//!
//! Each subscription is a directory under `DATA/logs` holding `<name>.current` and rotated files
//! `<name>.@<YYYYmmddTHHMMSS>.s`, oldest removed first. [`LogFile`] appends whole lines and
//! rotates by size; [`format_line`] is the one place the line shape is written. [`mail`] holds
//! the events of `mail_logs` in the reference appliance's words, [`cli`] those of `cli_logs`.

pub mod cli;
pub mod mail;
pub mod tracking;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Local};

pub use cli::CliEvent;
pub use mail::MailEvent;

/// The log subscriptions of an appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription {
    MailLogs,
    GuiLogs,
    CliLogs,
    SystemLogs,
}

impl Subscription {
    pub const ALL: [Subscription; 4] = [
        Self::MailLogs,
        Self::GuiLogs,
        Self::CliLogs,
        Self::SystemLogs,
    ];

    /// The name administrators use (`tail mail_logs`), which is also its directory.
    pub fn name(self) -> &'static str {
        match self {
            Self::MailLogs => "mail_logs",
            Self::GuiLogs => "gui_logs",
            Self::CliLogs => "cli_logs",
            Self::SystemLogs => "system_logs",
        }
    }

    /// The file prefix inside the directory: `mail` for `mail.current`.
    pub fn file_prefix(self) -> &'static str {
        match self {
            Self::MailLogs => "mail",
            Self::GuiLogs => "gui",
            Self::CliLogs => "cli",
            Self::SystemLogs => "system",
        }
    }

    /// What the log holds, as the `tail` menu shows it.
    pub fn description(self) -> &'static str {
        match self {
            Self::MailLogs => "Text Mail Logs",
            Self::GuiLogs => "HTTP Logs",
            Self::CliLogs => "CLI Audit Logs",
            Self::SystemLogs => "System Logs",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// `DATA/logs/<name>/<prefix>.current`.
    pub fn current_path(self, data: &Path) -> PathBuf {
        data.join("logs")
            .join(self.name())
            .join(format!("{}.current", self.file_prefix()))
    }

    /// The log's files, oldest first: the rotated ones, then `.current` (when it exists).
    pub fn files(self, data: &Path) -> io::Result<Vec<PathBuf>> {
        let current = self.current_path(data);
        let Some(dir) = current.parent() else {
            return Ok(Vec::new());
        };
        let rotated_prefix = format!("{}.@", self.file_prefix());
        let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&rotated_prefix) && n.ends_with(".s"))
                })
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        files.sort_by_key(|p| rotation_order(p));
        if current.exists() {
            files.push(current);
        }
        Ok(files)
    }
}

/// Calls `each` with every line of the files, oldest first. Bytes that are not UTF-8 are shown
/// replaced rather than stopping the search.
pub fn for_each_line(
    files: &[PathBuf],
    mut each: impl FnMut(&str) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = Vec::new();
    for path in files {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut reader = BufReader::new(file);
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            let line = String::from_utf8_lossy(&buf);
            each(line.trim_end_matches(['\n', '\r']))?;
        }
    }
    Ok(())
}

/// The level word of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Critical,
    Warning,
    Info,
    Debug,
    Trace,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Critical => "Critical",
            Self::Warning => "Warning",
            Self::Info => "Info",
            Self::Debug => "Debug",
            Self::Trace => "Trace",
        })
    }
}

/// One log line, without the newline: `Wed Jan 17 21:09:12 2024 Info: <event>`. The time is
/// C `asctime` form (day of month space-padded: `Mon Feb  5`), as the reference writes it. Line breaks
/// inside `event` are replaced so one event stays one line for parsers.
pub fn format_line(time: DateTime<Local>, level: Level, event: &str) -> String {
    let event = event.replace(['\n', '\r'], " ");
    format!("{} {level}: {event}", format_time(time))
}

/// A time as log lines and the CLI print it: `Wed Jan 17 21:09:12 2024`.
pub fn format_time(time: DateTime<Local>) -> String {
    time.format("%a %b %e %H:%M:%S %Y").to_string()
}

/// [`format_time`] of a time in seconds since the Unix epoch.
pub fn format_unix_time(secs: i64) -> String {
    match DateTime::from_timestamp(secs, 0) {
        Some(t) => format_time(t.with_timezone(&Local)),
        None => format!("@{secs}"),
    }
}

/// Size and count limits of one subscription's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate `.current` once it reaches this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept; older ones are removed.
    pub keep: usize,
}

impl Rotation {
    pub const DEFAULT: Self = Self {
        max_bytes: 10 << 20,
        keep: 10,
    };
}

/// An append-only log file of one subscription, rotated by size.
#[derive(Debug)]
pub struct LogFile {
    dir: PathBuf,
    prefix: &'static str,
    file: File,
    size: u64,
    rotation: Rotation,
}

impl LogFile {
    /// Opens (creating as needed) the subscription's `.current` file in `data`.
    pub fn open(data: &Path, subscription: Subscription, rotation: Rotation) -> io::Result<Self> {
        let dir = data.join("logs").join(subscription.name());
        fs::create_dir_all(&dir)?;
        let prefix = subscription.file_prefix();
        let file = open_append(&dir, prefix)?;
        let size = file.metadata()?.len();
        Ok(Self {
            dir,
            prefix,
            file,
            size,
            rotation,
        })
    }

    /// Appends one event at the current local time.
    pub fn write(&mut self, level: Level, event: &str) -> io::Result<()> {
        let mut line = format_line(Local::now(), level, event);
        line.push('\n');
        if self.size > 0 && self.size + line.len() as u64 > self.rotation.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line.as_bytes())?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let stamp = Local::now().format("%Y%m%dT%H%M%S");
        let mut target = self.dir.join(format!("{}.@{stamp}.s", self.prefix));
        let mut n = 1;
        while target.exists() {
            target = self.dir.join(format!("{}.@{stamp}.{n}.s", self.prefix));
            n += 1;
        }
        fs::rename(self.dir.join(format!("{}.current", self.prefix)), &target)?;
        self.file = open_append(&self.dir, self.prefix)?;
        self.size = 0;
        let mut rotated: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{}.@", self.prefix)))
            })
            .collect();
        rotated.sort_by_key(|p| rotation_order(p));
        let excess = rotated.len().saturating_sub(self.rotation.keep);
        for old in &rotated[..excess] {
            fs::remove_file(old)?;
        }
        Ok(())
    }
}

/// A [`LogFile`] shared by the tasks of a process; cheap to clone. A line that cannot be written
/// goes to stderr instead: the log is where failures go, and losing the line silently would
/// hide one.
#[derive(Debug, Clone)]
pub struct SharedLog {
    file: Arc<Mutex<LogFile>>,
    /// Also print each line on stderr (host mode, where the administrator watches).
    echo: bool,
}

impl SharedLog {
    pub fn open(data: &Path, subscription: Subscription, echo: bool) -> io::Result<Self> {
        let file = LogFile::open(data, subscription, Rotation::DEFAULT)?;
        Ok(Self {
            file: Arc::new(Mutex::new(file)),
            echo,
        })
    }

    pub fn write(&self, level: Level, event: &dyn fmt::Display) {
        let event = event.to_string();
        if self.echo {
            eprintln!("postern: {level}: {event}");
        }
        // A poisoned lock only means another thread panicked mid-write; the file is still usable.
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = file.write(level, &event) {
            eprintln!(
                "postern: cannot write {}: {e}: {level}: {event}",
                file.prefix
            );
        }
    }

    pub fn info(&self, event: &dyn fmt::Display) {
        self.write(Level::Info, event);
    }

    pub fn warning(&self, event: &dyn fmt::Display) {
        self.write(Level::Warning, event);
    }

    pub fn critical(&self, event: &dyn fmt::Display) {
        self.write(Level::Critical, event);
    }
}

/// Where a rotated file `<prefix>.@<stamp>[.<n>].s` stands in time: by its stamp (fixed-width,
/// most significant first), then by `n`, the files rotated within the same second.
fn rotation_order(path: &Path) -> (String, u32) {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let inner = name
        .split_once(".@")
        .map_or("", |(_, rest)| rest.strip_suffix(".s").unwrap_or(rest));
    match inner.split_once('.') {
        Some((stamp, n)) => (stamp.to_owned(), n.parse().unwrap_or(0)),
        None => (inner.to_owned(), 0),
    }
}

fn open_append(dir: &Path, prefix: &str) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{prefix}.current")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn lines_have_the_reference_shape() {
        let t = Local.with_ymd_and_hms(2024, 1, 17, 21, 9, 12).unwrap();
        assert_eq!(
            format_line(
                t,
                Level::Info,
                "ICID 1020089 TLS success protocol TLSv1.3 cipher TLS_AES_256_GCM_SHA384"
            ),
            "Wed Jan 17 21:09:12 2024 Info: ICID 1020089 TLS success protocol TLSv1.3 cipher TLS_AES_256_GCM_SHA384"
        );
        let t = Local.with_ymd_and_hms(2024, 2, 5, 7, 0, 1).unwrap();
        assert_eq!(
            format_line(t, Level::Warning, "two\nlines"),
            "Mon Feb  5 07:00:01 2024 Warning: two lines"
        );
    }

    #[test]
    fn files_rotate_and_old_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let rotation = Rotation {
            max_bytes: 200,
            keep: 2,
        };
        let mut log = LogFile::open(dir.path(), Subscription::SystemLogs, rotation).unwrap();
        for i in 0..40 {
            log.write(Level::Info, &format!("event number {i}"))
                .unwrap();
        }
        let current = Subscription::SystemLogs.current_path(dir.path());
        let text = fs::read_to_string(&current).unwrap();
        assert!(text.ends_with("Info: event number 39\n"), "{text}");
        assert!(text.len() <= 200);
        let files = fs::read_dir(current.parent().unwrap()).unwrap().count();
        assert_eq!(files, 3, "current + 2 rotated");
        let listed = Subscription::SystemLogs.files(dir.path()).unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(listed.last(), Some(&current));
        let first = fs::read_to_string(&listed[0]).unwrap();
        let second = fs::read_to_string(&listed[1]).unwrap();
        let number = |text: &str| -> u32 {
            text.lines()
                .next()
                .unwrap()
                .rsplit(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!(number(&first) < number(&second), "{first}\n{second}");
        assert!(number(&second) < number(&text));
        assert!(Subscription::GuiLogs.files(dir.path()).unwrap().is_empty());
    }
}
