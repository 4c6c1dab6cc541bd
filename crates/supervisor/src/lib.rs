//! The supervisor: the one process that owns the committed configuration and runs every
//! service as a child process of the same binary.
//!
//! # Layout
//!
//! - [`Supervisor`] (this file): start-up in order — take the data directory's lock, open the
//!   store (creating the factory configuration on first start), bind the control socket, start
//!   the services — and the orderly shutdown that stops them.
//! - [`owner`]: the committed configuration: the store behind a lock, commits and rollbacks
//!   (merging a session's changes onto what others committed since), and the watch channel that
//!   tells everyone of a new generation.
//! - [`confirm`]: `commit confirmed`: the outstanding confirmation kept on disk across
//!   restarts, and the task that rolls back when its deadline passes.
//! - [`control`]: the control socket server; one task per connection, and a bad frame closes
//!   that connection and nothing else.
//! - [`service`]: one task per service: start the child, restart it with backoff when it dies,
//!   restart it when a commit changes what it cannot apply live, stop it with SIGTERM then
//!   SIGKILL.
//! - `factory`: the factory certificates, made in `DATA/certs` (the RSA one after the services
//!   have started) and handed to the services over their subscriptions.
//! - [`shadow`]: `DATA/run/shadow`, the console and SSH login passwords, written from the
//!   committed users at start and after each commit that changes them.
//! - [`gauges`]: CPU, memory and disk gauges for `status`.
//! - [`syslog`]: the `system_logs` subscription.

pub mod confirm;
pub mod control;
mod factory;
pub mod gauges;
pub mod owner;
pub mod service;
pub mod shadow;
pub mod syslog;

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use postern_config::{Config, Store};
use postern_logs::{SharedLog, Subscription};
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use owner::ConfigOwner;
pub use service::{Backoff, Readiness, ServiceSpec};
pub use syslog::SystemLog;

/// What the supervisor is started with.
pub struct SupervisorOptions {
    /// The data directory (`/data` in the image).
    pub data: PathBuf,
    /// The configuration committed as generation 1 when the store is empty; not called otherwise.
    pub factory: Box<dyn FnOnce() -> Config + Send>,
    /// The services to run, in start order.
    pub services: Vec<ServiceSpec>,
    /// The firmware version reported to clients.
    pub firmware: String,
    /// Also print system_logs lines on stderr (host mode, where the administrator watches).
    pub echo_logs: bool,
}

impl std::fmt::Debug for SupervisorOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorOptions")
            .field("data", &self.data)
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

/// Why the supervisor could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another Postern supervisor is running on {}", .0.display())]
    AlreadyRunning(PathBuf),
    #[error(transparent)]
    Store(#[from] postern_config::StoreError),
    #[error("the factory certificate: {0}")]
    Certificate(#[from] postern_tls::CertificateError),
}

/// A running supervisor. Dropping it without [`Supervisor::shutdown`] leaves the children to
/// notice their parent is gone.
#[derive(Debug)]
pub struct Supervisor {
    owner: Arc<ConfigOwner>,
    log: SystemLog,
    /// Set to true to stop every task; services stop their child first.
    shutdown: watch::Sender<bool>,
    /// The control server and the service tasks; joined on shutdown.
    tasks: JoinSet<()>,
    socket: PathBuf,
    /// Held for the supervisor's life: a second supervisor on the same data directory fails.
    _lock: Flock<fs::File>,
}

impl Supervisor {
    /// Starts the supervisor and its services; returns once the control socket accepts.
    pub async fn start(options: SupervisorOptions) -> Result<Self, SupervisorError> {
        let data = &options.data;
        let run = data.join("run");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&run)
            .map_err(io("create", &run))?;
        let lock = take_lock(&run.join("supervisor.lock"), data)?;
        let log =
            SystemLog::open(data, options.echo_logs).map_err(io("open", &data.join("logs")))?;
        let cli_log = SharedLog::open(data, Subscription::CliLogs, false)
            .map_err(io("open", &data.join("logs")))?;

        let opened = Store::open(&data.join("config"), options.factory)?;
        for warning in &opened.warnings {
            log.warning(&warning.to_string());
        }
        let generation = opened.store.current().commit.generation;
        if opened.created {
            log.info("Factory configuration committed as generation 1");
        }
        log.info(&format!(
            "Postern {} starting with configuration generation {generation}",
            options.firmware
        ));

        log.info(&format!(
            "CPU AES acceleration (AES-NI and carry-less multiply): {}",
            if postern_tls::cpu_has_aes_acceleration() {
                "available; AES-GCM runs in hardware"
            } else {
                "not available; AES-GCM runs in software, ChaCha20-Poly1305 may be faster"
            }
        ));
        let hostname = opened.store.current().config.system.hostname.to_string();
        let certs = data.join("certs");
        let (factory, rsa_missing) = factory::load(&certs, &hostname, &log)?;

        // Before any service: the console and SSH logins take the committed passwords. A
        // failure leaves them as they were, which is no reason not to serve mail.
        let shadow_text = shadow::shadow_text(&opened.store.current().config, data);
        match shadow::write(data, &shadow_text) {
            Ok(path) => log.info(&format!(
                "System login passwords written to {}",
                path.display()
            )),
            Err(e) => log.warning(&format!(
                "Cannot write the system login passwords ({}): {e}",
                shadow::SHADOW
            )),
        }

        let confirmation = confirm::ConfirmFile::new(&data.join("config")).load(generation, &log);
        let owner = Arc::new(ConfigOwner::new(
            opened.store,
            data.clone(),
            options.firmware,
            log.clone(),
            &options.services,
            confirmation,
            factory,
        ));
        if rsa_missing {
            factory::make_rsa(owner.clone(), certs, hostname);
        }
        let (shutdown, _) = watch::channel(false);
        let mut tasks = JoinSet::new();

        let socket = postern_control::socket_path(data);
        // A socket file left by a supervisor that was killed: the lock proves nobody serves it.
        let _ = fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).map_err(io("bind", &socket))?;
        fs::set_permissions(&socket, fs::Permissions::from_mode(0o600))
            .map_err(io("chmod", &socket))?;
        tasks.spawn(control::serve(
            listener,
            owner.clone(),
            cli_log,
            shutdown.subscribe(),
        ));

        tasks.spawn(shadow::keep_written(
            owner.clone(),
            data.clone(),
            shadow_text,
            shutdown.subscribe(),
        ));
        tasks.spawn(confirm::roll_back_when_due(
            owner.clone(),
            shutdown.subscribe(),
        ));
        for (index, spec) in options.services.into_iter().enumerate() {
            tasks.spawn(service::supervise(
                index,
                spec,
                owner.clone(),
                shutdown.subscribe(),
            ));
        }
        Ok(Self {
            owner,
            log,
            shutdown,
            tasks,
            socket,
            _lock: lock,
        })
    }

    /// The committed configuration and everything that changes it.
    pub fn owner(&self) -> &Arc<ConfigOwner> {
        &self.owner
    }

    /// Resolves once every service has reported ready at least once since start.
    pub async fn ready(&self) {
        self.owner.all_ready().await;
    }

    /// Stops every service (SIGTERM, then SIGKILL after their grace period) and the control
    /// server, then removes the socket.
    pub async fn shutdown(mut self) {
        self.log.info("Postern supervisor shutting down");
        let _ = self.shutdown.send(true);
        let all_done = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(30), all_done)
            .await
            .is_err()
        {
            self.log
                .warning("Shutdown did not finish in 30 seconds; leaving anyway");
        }
        let _ = fs::remove_file(&self.socket);
        self.log.info("Postern supervisor stopped");
    }
}

fn take_lock(path: &Path, data: &Path) -> Result<Flock<fs::File>, SupervisorError> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io("open", path))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock)
        .map_err(|_| SupervisorError::AlreadyRunning(data.to_owned()))
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SupervisorError {
    let path = path.to_owned();
    move |source| SupervisorError::Io { what, path, source }
}
