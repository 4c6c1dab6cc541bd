//! The `system_logs` subscription, shared by the supervisor's tasks.

use std::path::Path;
use std::sync::{Arc, Mutex};

use postern_logs::{Level, LogFile, Rotation, Subscription};

/// A handle on `DATA/logs/system_logs/system.current`; cheap to clone.
#[derive(Debug, Clone)]
pub struct SystemLog {
    file: Arc<Mutex<LogFile>>,
    echo: bool,
}

impl SystemLog {
    pub fn open(data: &Path, echo: bool) -> std::io::Result<Self> {
        let file = LogFile::open(data, Subscription::SystemLogs, Rotation::DEFAULT)?;
        Ok(Self {
            file: Arc::new(Mutex::new(file)),
            echo,
        })
    }

    pub fn info(&self, event: &str) {
        self.write(Level::Info, event);
    }

    pub fn warning(&self, event: &str) {
        self.write(Level::Warning, event);
    }

    pub fn critical(&self, event: &str) {
        self.write(Level::Critical, event);
    }

    fn write(&self, level: Level, event: &str) {
        if self.echo {
            eprintln!("postern: {level}: {event}");
        }
        // A poisoned lock only means another thread panicked mid-write; the file is still usable.
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = file.write(level, event) {
            // The log is where failures go; when it fails itself, stderr is what is left.
            eprintln!("postern: cannot write system_logs: {e}: {level}: {event}");
        }
    }
}
