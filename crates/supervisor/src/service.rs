//! One task per service: run its child process, restart it with backoff when it dies, restart it
//! when a commit changes what it cannot apply live, and stop it with SIGTERM, then SIGKILL.
//!
//! A service's standard error passes through to the supervisor's (the terminal in host mode,
//! the console in the image), and its last line goes into `system_logs` when the service dies:
//! "Service smtpd exited with status 1 (smtpd: cannot listen on 127.0.0.1:2525: Address in
//! use)" tells an administrator why without a terminal.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use postern_config::Config;
use postern_control::ServiceState;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::owner::ConfigOwner;

/// When a service counts as up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// It says so on the control socket ([`postern_control::Request::ServiceReady`]) once its
    /// listeners accept.
    Reported,
    /// As soon as its process has started.
    Started,
}

/// Restart delays after a service dies: `initial`, doubled on each quick death up to `max`,
/// back to `initial` once it has run for `healthy_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub healthy_after: Duration,
}

impl Backoff {
    pub const DEFAULT: Self = Self {
        initial: Duration::from_millis(500),
        max: Duration::from_secs(30),
        healthy_after: Duration::from_secs(30),
    };
}

/// A service the supervisor runs.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Its name in logs and `status` (`smtpd`).
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub readiness: Readiness,
    /// Whether going from the first configuration to the second needs a restart (a GUI HTTPS
    /// protocol change restarts the HTTPS service); other changes the service applies itself.
    pub restart_on: fn(&Config, &Config) -> bool,
    pub backoff: Backoff,
    /// Time between SIGTERM and SIGKILL when stopping.
    pub grace: Duration,
}

/// Runs one service until shutdown.
pub(crate) async fn supervise(
    index: usize,
    spec: ServiceSpec,
    owner: Arc<ConfigOwner>,
    mut shutdown: watch::Receiver<bool>,
) {
    let log = owner.log().clone();
    let mut config = owner.subscribe();
    let mut delay = spec.backoff.initial;
    let mut restarted = false;
    while !*shutdown.borrow() {
        // Taken before the child starts: a commit that lands while it starts is compared.
        let mut seen = config.borrow_and_update().clone();
        let mut child = match spawn(&spec) {
            Ok(child) => child,
            Err(e) => {
                log.critical(&format!("Service {} could not be started: {e}", spec.name));
                owner.set_service_state(index, backoff_state(delay), false);
                if sleep_or_shutdown(delay, &mut shutdown).await {
                    break;
                }
                delay = (delay * 2).min(spec.backoff.max);
                continue;
            }
        };
        let last_words = child.stderr.take().map(pass_on_stderr);
        let pid = child.id().unwrap_or(0);
        let started = Instant::now();
        log.info(&format!("Service {} started, pid {pid}", spec.name));
        let state = match owner.readiness(index) {
            Readiness::Reported => ServiceState::Starting { pid },
            Readiness::Started => ServiceState::Running {
                pid,
                since: crate::owner::unix_now(),
            },
        };
        owner.set_service_state(index, state, restarted);

        let outcome = loop {
            tokio::select! {
                status = child.wait() => break Outcome::Exited(status),
                changed = config.changed() => {
                    if changed.is_err() {
                        break Outcome::Shutdown;
                    }
                    let new = config.borrow_and_update().clone();
                    let restart = (spec.restart_on)(&seen.config, &new.config);
                    seen = new;
                    if restart {
                        break Outcome::NewConfiguration;
                    }
                }
                _ = shutdown.changed() => break Outcome::Shutdown,
            }
        };
        match outcome {
            Outcome::Exited(status) => {
                if started.elapsed() >= spec.backoff.healthy_after {
                    delay = spec.backoff.initial;
                }
                let why = match last_words {
                    Some(reader) => last_line(reader).await,
                    None => None,
                };
                log.warning(&format!(
                    "Service {} {}{}; restarting in {} ms",
                    spec.name,
                    describe(status),
                    why.map(|line| format!(" ({line})")).unwrap_or_default(),
                    delay.as_millis()
                ));
                owner.set_service_state(index, backoff_state(delay), false);
                if sleep_or_shutdown(delay, &mut shutdown).await {
                    break;
                }
                delay = (delay * 2).min(spec.backoff.max);
                restarted = true;
            }
            Outcome::NewConfiguration => {
                log.info(&format!(
                    "Service {} restarting to apply configuration generation {}",
                    spec.name, seen.commit.generation
                ));
                stop(&mut child, spec.grace, &spec.name, &log).await;
                restarted = true;
            }
            Outcome::Shutdown => {
                stop(&mut child, spec.grace, &spec.name, &log).await;
                break;
            }
        }
    }
    owner.set_service_state(index, ServiceState::Stopped, false);
}

enum Outcome {
    Exited(std::io::Result<ExitStatus>),
    NewConfiguration,
    Shutdown,
}

fn spawn(spec: &ServiceSpec) -> std::io::Result<Child> {
    Command::new(&spec.program)
        .args(&spec.args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group: a Ctrl-C on the terminal reaches the supervisor alone, which
        // then stops the services in order.
        .process_group(0)
        .spawn()
}

/// Copies a service's standard error to the supervisor's, line by line; answers its last
/// non-empty line once the service has closed it (by exiting).
fn pass_on_stderr(stderr: ChildStderr) -> JoinHandle<Option<String>> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut last = None;
        while let Ok(Some(line)) = lines.next_line().await {
            // Never `eprintln!`: a closed stderr must not bring the supervisor down.
            let _ = writeln!(std::io::stderr(), "{line}");
            if !line.trim().is_empty() {
                last = Some(line);
            }
        }
        last
    })
}

/// The last line a dead service wrote, if it comes within a moment: a grandchild that kept the
/// pipe open must not hold up the restart.
async fn last_line(reader: JoinHandle<Option<String>>) -> Option<String> {
    const MAX_LEN: usize = 300;
    let line = tokio::time::timeout(Duration::from_millis(500), reader)
        .await
        .ok()?
        .ok()??;
    Some(match line.char_indices().nth(MAX_LEN) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line,
    })
}

/// SIGTERM, then SIGKILL if the service has not exited within `grace`; always reaps it.
async fn stop(child: &mut Child, grace: Duration, name: &str, log: &crate::SystemLog) {
    let Some(pid) = child.id() else {
        return;
    };
    let pid = Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
    let _ = kill(pid, Signal::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => log.info(&format!("Service {name} stopped ({})", describe(status))),
        Err(_) => {
            log.warning(&format!(
                "Service {name} did not stop within {} ms of SIGTERM; sending SIGKILL",
                grace.as_millis()
            ));
            let _ = child.kill().await;
        }
    }
}

/// Sleeps; true when shutdown was asked for meanwhile.
async fn sleep_or_shutdown(delay: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}

fn backoff_state(delay: Duration) -> ServiceState {
    ServiceState::Backoff {
        restart_in_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
    }
}

fn describe(status: std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (_, Some(signal)) => match Signal::try_from(signal) {
                Ok(sig) => format!("was killed by {sig}"),
                Err(_) => format!("was killed by signal {signal}"),
            },
            _ => "exited".to_owned(),
        },
        Err(e) => format!("could not be waited for: {e}"),
    }
}
