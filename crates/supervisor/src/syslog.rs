//! The `system_logs` subscription, shared by the supervisor's tasks.

use std::path::Path;

use postern_logs::{SharedLog, Subscription};

/// A handle on `DATA/logs/system_logs/system.current`; cheap to clone.
#[derive(Debug, Clone)]
pub struct SystemLog(SharedLog);

impl SystemLog {
    pub fn open(data: &Path, echo: bool) -> std::io::Result<Self> {
        SharedLog::open(data, Subscription::SystemLogs, echo).map(Self)
    }

    pub fn info(&self, event: &str) {
        self.0.info(&event);
    }

    pub fn warning(&self, event: &str) {
        self.0.warning(&event);
    }

    pub fn critical(&self, event: &str) {
        self.0.critical(&event);
    }
}
