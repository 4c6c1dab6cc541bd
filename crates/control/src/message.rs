//! The messages of the control protocol.

use postern_config::{Commit, Config, ConfigError, Generation};
use serde::{Deserialize, Serialize};

/// Sent in [`Request::Hello`] and [`Response::Hello`]; a server refuses another version.
pub const PROTOCOL_VERSION: u16 = 4;

/// What a client asks the supervisor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Request {
    /// The first message of every connection.
    Hello { version: u16, client: String },
    /// The committed configuration.
    GetConfig,
    /// A kept generation (for a rollback that is staged rather than committed at once).
    GetGeneration { generation: u64 },
    /// Commit the changes a session made: `config` is the session's configuration, `base` the
    /// generation it started from. Changes committed by others since `base` are kept unless
    /// they touched the same settings. Any commit confirms an outstanding `commit confirmed`;
    /// with `confirm_within_secs` this one is rolled back automatically unless it is confirmed
    /// within that many seconds (`commit confirmed <minutes>`).
    Commit {
        base: u64,
        config: Box<Config>,
        user: String,
        comment: String,
        confirm_within_secs: Option<u32>,
    },
    /// A line an administrator entered in a CLI session, for `cli_logs`: the session's process
    /// id, its user, what was entered (`None` for a secret, which is never sent) and the prompt
    /// it answered.
    CliEntered {
        pid: u32,
        user: String,
        entered: Option<String>,
        prompt: String,
    },
    /// Confirm the outstanding `commit confirmed` without committing anything else (`commit`
    /// with no pending changes). Refused with [`ControlError::NothingToConfirm`] when none is.
    Confirm { user: String },
    /// Commit again the configuration of a kept generation.
    Rollback { generation: u64, user: String },
    /// Retry now the queued recipients of `domain` (all when `None`) that wait for a retry
    /// (`delivernow`): pushed to the subscribers as [`Response::DeliverNow`].
    DeliverNow {
        domain: Option<String>,
        user: String,
    },
    /// Every commit, oldest first.
    Journal,
    /// The generations that can be rolled back to, newest first.
    Kept,
    /// Push every new committed configuration on this connection from now on, and the factory
    /// certificates.
    Subscribe,
    /// Uptime, service states, gauges and counters.
    Status,
    /// A service has bound its listeners and serves.
    ServiceReady { service: String },
    /// A service's counters for `status` (messages received, TLS successes …), sent when they
    /// change. They replace that service's previous ones.
    ServiceCounters {
        service: String,
        counters: Vec<(String, u64)>,
    },
}

/// What the supervisor answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Response {
    Hello {
        version: u16,
        firmware: String,
    },
    /// The committed configuration: the answer to `GetConfig` and `Subscribe`, and each push.
    Config(Box<Generation>),
    /// A commit or rollback landed as `generation`. `warnings` are things the store worked
    /// around (the commit is durable regardless). `confirmed` is the generation of an
    /// outstanding `commit confirmed` this commit confirmed; `confirmation` is the one now
    /// outstanding (this commit's, when it asked for one).
    Committed {
        generation: u64,
        changes: Vec<String>,
        warnings: Vec<String>,
        confirmed: Option<u64>,
        confirmation: Option<Confirmation>,
    },
    /// Pushed on a subscription: retry the waiting recipients of `domain` (all when `None`)
    /// now.
    DeliverNow {
        domain: Option<String>,
    },
    /// Pushed on a subscription when the outstanding `commit confirmed` changes (after the
    /// first configuration, when there is one).
    Confirmation(Option<Confirmation>),
    /// Pushed on a subscription after the first configuration, and again when one is made:
    /// the factory certificates the services present when none is assigned. The supervisor
    /// makes them (in `DATA/certs`, which only root reads); the RSA one is made after the
    /// services have started, as it takes seconds on a slow CPU.
    FactoryCertificates(Vec<FactoryCertificate>),
    /// The outstanding `commit confirmed` of this generation is confirmed.
    Confirmed {
        generation: u64,
    },
    Journal(Vec<Commit>),
    Kept(Vec<Commit>),
    Status(Box<Status>),
    Done,
    Error(ControlError),
}

/// A factory certificate as PEM: the certificate and its private key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactoryCertificate {
    pub chain_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for FactoryCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key, should one be logged.
        f.debug_struct("FactoryCertificate")
            .field("chain_pem", &self.chain_pem)
            .finish_non_exhaustive()
    }
}

/// Why the supervisor refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ControlError {
    #[error("{0}")]
    Invalid(ConfigError),
    /// A TLS setting the engine cannot use (a cipher string that selects nothing for a version).
    #[error("{service}: {reason}")]
    Tls { service: String, reason: String },
    #[error("another session changed the same settings since your changes began: {}", .0.join(", "))]
    Conflict(Vec<String>),
    #[error("there are no changes to commit")]
    NoChanges,
    #[error("generation {0} is not kept; choose one of the last 10")]
    UnknownGeneration(u64),
    #[error(
        "your changes began from generation {0}, which is no longer kept; clear them and make \
         them again"
    )]
    StaleBase(u64),
    #[error("the configuration could not be saved: {0}")]
    Store(String),
    #[error("control protocol version {client} is not supported (the supervisor speaks {server})")]
    Version { client: u16, server: u16 },
    #[error("unexpected request: {0}")]
    BadRequest(String),
    #[error("no commit is waiting for confirmation")]
    NothingToConfirm,
}

/// A commit that is rolled back automatically unless it is confirmed by `deadline`
/// (`commit confirmed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The commit waiting for confirmation.
    pub generation: u64,
    /// The generation whose configuration is committed again if it is not confirmed: the one
    /// before the first unconfirmed commit.
    pub previous: u64,
    pub user: String,
    /// Seconds since the Unix epoch.
    pub deadline: i64,
    /// The time allowed, as asked for: the rollback's journal comment names it.
    pub within_secs: u32,
}

/// The answer to [`Request::Status`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub firmware: String,
    pub hostname: String,
    /// Seconds since the Unix epoch.
    pub now: i64,
    pub up_since: i64,
    pub generation: u64,
    pub services: Vec<ServiceStatus>,
    pub gauges: Gauges,
    /// Named counters since start (`Commits`, `Service restarts`, and what services add).
    pub counters: Vec<(String, u64)>,
    /// The `commit confirmed` waiting for confirmation, if any.
    pub confirmation: Option<Confirmation>,
}

/// One supervised service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub state: ServiceState,
    pub restarts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceState {
    /// Started, not yet ready.
    Starting {
        pid: u32,
    },
    /// Ready since the given time.
    Running {
        pid: u32,
        since: i64,
    },
    /// Exited; waiting to be started again.
    Backoff {
        restart_in_ms: u64,
    },
    Stopped,
}

/// Resource gauges of the appliance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gauges {
    pub cpu_percent: f32,
    pub ram_used: u64,
    pub ram_total: u64,
    /// The supervisor and its services together.
    pub postern_rss: u64,
    pub data_disk_used: u64,
    pub data_disk_total: u64,
}
