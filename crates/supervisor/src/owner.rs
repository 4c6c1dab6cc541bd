//! The committed configuration: the store behind a lock, the commits that change it, and the
//! channels that tell the rest of the supervisor what changed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use postern_config::diff::{MergeError, merge};
use postern_config::{Commit, Config, Generation, Store, StoreError, TlsService};
use postern_control::{
    Confirmation, ControlError, FactoryCertificate, ServiceState, ServiceStatus, Status,
};
use tokio::sync::watch;

use crate::confirm::{ConfirmFile, describe_within};
use crate::gauges::GaugeSampler;
use crate::service::{Readiness, ServiceSpec};
use crate::syslog::SystemLog;

/// Owns the store; every commit and rollback of the appliance goes through here.
#[derive(Debug)]
pub struct ConfigOwner {
    /// Store operations fsync: they run on the blocking pool, one at a time.
    store: Mutex<Store>,
    current: watch::Sender<Arc<Generation>>,
    services: watch::Sender<Vec<ServiceStatus>>,
    readiness: Vec<Readiness>,
    firmware: String,
    data: PathBuf,
    up_since: i64,
    log: SystemLog,
    commits: AtomicU64,
    restarts: AtomicU64,
    gauges: Mutex<GaugeSampler>,
    /// The counters each service last reported, by service name.
    service_counters: Mutex<std::collections::BTreeMap<String, Vec<(String, u64)>>>,
    /// The `commit confirmed` waiting for confirmation. Changed only while the store's lock is
    /// held, so that a commit, a confirmation and the rollback at the deadline see one order.
    confirmation: watch::Sender<Option<Confirmation>>,
    /// Where `confirmation` is kept across restarts.
    confirm_file: ConfirmFile,
    /// `delivernow` requests, for the subscribed services.
    deliver_now: tokio::sync::broadcast::Sender<Option<String>>,
    /// The factory certificates made so far, for the subscribed services.
    factory: watch::Sender<Arc<Vec<FactoryCertificate>>>,
}

/// A commit that landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    pub generation: u64,
    pub changes: Vec<String>,
    pub warnings: Vec<String>,
    /// The outstanding `commit confirmed` this commit confirmed.
    pub confirmed: Option<u64>,
    /// The `commit confirmed` outstanding after this commit.
    pub confirmation: Option<Confirmation>,
}

impl ConfigOwner {
    pub(crate) fn new(
        store: Store,
        data: PathBuf,
        firmware: String,
        log: SystemLog,
        services: &[ServiceSpec],
        confirmation: Option<Confirmation>,
        factory: Vec<FactoryCertificate>,
    ) -> Self {
        let confirm_file = ConfirmFile::new(&data.join("config"));
        let (current, _) = watch::channel(Arc::new(store.current().clone()));
        let statuses = services
            .iter()
            .map(|s| ServiceStatus {
                name: s.name.clone(),
                state: ServiceState::Stopped,
                restarts: 0,
            })
            .collect();
        let (services_tx, _) = watch::channel(statuses);
        Self {
            store: Mutex::new(store),
            current,
            services: services_tx,
            readiness: services.iter().map(|s| s.readiness).collect(),
            firmware,
            data,
            up_since: unix_now(),
            log,
            commits: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            gauges: Mutex::new(GaugeSampler::new()),
            service_counters: Mutex::default(),
            confirmation: watch::channel(confirmation).0,
            deliver_now: tokio::sync::broadcast::channel(16).0,
            confirm_file,
            factory: watch::channel(Arc::new(factory)).0,
        }
    }

    /// The committed configuration.
    pub fn current(&self) -> Arc<Generation> {
        self.current.borrow().clone()
    }

    /// Sees every newly committed configuration.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Generation>> {
        self.current.subscribe()
    }

    pub fn firmware(&self) -> &str {
        &self.firmware
    }

    pub fn log(&self) -> &SystemLog {
        &self.log
    }

    /// Sees every `delivernow` from now on.
    pub fn deliver_now_requests(&self) -> tokio::sync::broadcast::Receiver<Option<String>> {
        self.deliver_now.subscribe()
    }

    /// Passes a `delivernow` to the subscribed services (the SMTP service acts on it).
    pub fn deliver_now(&self, domain: Option<String>, user: &str) {
        self.log.info(&format!(
            "User {user} asked for the queued mail of {} to be delivered now",
            domain.as_deref().unwrap_or("every domain")
        ));
        let _ = self.deliver_now.send(domain);
    }

    /// Sees the factory certificates, and each one made later.
    pub fn factory_certificates(&self) -> watch::Receiver<Arc<Vec<FactoryCertificate>>> {
        self.factory.subscribe()
    }

    /// A factory certificate made after the start, for the services.
    pub(crate) fn add_factory_certificate(&self, certificate: FactoryCertificate) {
        self.factory
            .send_modify(|all| Arc::make_mut(all).push(certificate));
    }

    /// Sees the outstanding `commit confirmed` change.
    pub fn confirmations(&self) -> watch::Receiver<Option<Confirmation>> {
        self.confirmation.subscribe()
    }

    /// Commits a session's configuration that started from generation `base`, keeping what
    /// others committed since unless they changed the same settings. The commit confirms an
    /// outstanding `commit confirmed`, unless it asks for confirmation itself
    /// (`confirm_within_secs`): then it is rolled back to the configuration before the first
    /// unconfirmed commit unless it is confirmed in time.
    pub async fn commit(
        self: &Arc<Self>,
        base: u64,
        config: Config,
        user: String,
        comment: String,
        confirm_within_secs: Option<u32>,
    ) -> Result<Landed, ControlError> {
        let this = self.clone();
        self.blocking(move || {
            let mut store = this.lock_store();
            let current = store.current().clone();
            let config = if base == current.commit.generation {
                config
            } else {
                let base_config = match store.generation(base) {
                    Ok(g) => g.config,
                    Err(StoreError::UnknownGeneration(_)) => {
                        return Err(ControlError::StaleBase(base));
                    }
                    Err(e) => return Err(ControlError::Store(e.to_string())),
                };
                merge(&base_config, &config, &current.config).map_err(|e| match e {
                    MergeError::Conflict(c) => ControlError::Conflict(c.settings),
                    MergeError::Invalid(e) => ControlError::Invalid(e),
                })?
            };
            check_tls(&config)?;
            let outstanding = this.confirmation.borrow().clone();
            let asked = match confirm_within_secs {
                Some(0) => {
                    return Err(ControlError::BadRequest(
                        "a commit to confirm needs some time to be confirmed in".to_owned(),
                    ));
                }
                Some(secs) => {
                    let previous = outstanding
                        .as_ref()
                        .map_or(current.commit.generation, |c| c.previous);
                    let deadline = unix_now().saturating_add(i64::from(secs));
                    // Before the commit: a crash between the two must not leave it unprotected.
                    this.confirm_file
                        .write_before(previous, &user, deadline, secs)
                        .map_err(|e| {
                            ControlError::Store(format!(
                                "cannot record the confirmation deadline: {e}"
                            ))
                        })?;
                    Some((previous, deadline, secs))
                }
                None => None,
            };
            let warnings = match store.commit(config, &user, &comment) {
                Ok(warnings) => warnings,
                Err(e) => {
                    if asked.is_some() {
                        this.restore_confirm_file(outstanding.as_ref());
                    }
                    return Err(control_error(e));
                }
            };
            let generation = store.current().commit.generation;
            let (confirmed, confirmation) = match asked {
                Some((previous, deadline, within_secs)) => {
                    let confirmation = Confirmation {
                        generation,
                        previous,
                        user: user.clone(),
                        deadline,
                        within_secs,
                    };
                    if let Err(e) = this.confirm_file.write_landed(&confirmation) {
                        // The record written before the commit still protects it.
                        this.log.warning(&format!(
                            "Cannot record the confirmation of commit {generation}: {e}"
                        ));
                    }
                    (None, Some(confirmation))
                }
                None => (outstanding.as_ref().map(|c| c.generation), None),
            };
            // The confirmation first: whoever sees the new generation sees its confirmation.
            if confirmed.is_some() {
                this.forget_confirmation();
            }
            this.confirmation.send_replace(confirmation.clone());
            let mut landed = this.landed(&store, warnings);
            if let Some(c) = &confirmation {
                this.log.info(&format!(
                    "Commit {generation} by {user} is rolled back to generation {} at {} unless \
                     it is confirmed",
                    c.previous,
                    postern_logs::format_unix_time(c.deadline)
                ));
            }
            if let Some(earlier) = confirmed {
                this.log.info(&format!(
                    "Commit {earlier} is confirmed by {user}'s commit {generation}"
                ));
            }
            landed.confirmed = confirmed;
            landed.confirmation = confirmation;
            Ok(landed)
        })
        .await
    }

    /// Confirms the outstanding `commit confirmed`; answers its generation.
    pub async fn confirm(self: &Arc<Self>, user: String) -> Result<u64, ControlError> {
        let this = self.clone();
        self.blocking(move || {
            let _store = this.lock_store();
            let Some(outstanding) = this.confirmation.borrow().clone() else {
                return Err(ControlError::NothingToConfirm);
            };
            this.confirm_file
                .remove()
                .map_err(|e| ControlError::Store(format!("cannot record the confirmation: {e}")))?;
            this.confirmation.send_replace(None);
            this.log.info(&format!(
                "User {user} confirmed commit {}",
                outstanding.generation
            ));
            Ok(outstanding.generation)
        })
        .await
    }

    /// Rolls back the outstanding `commit confirmed` if its deadline has passed. Answers false
    /// when the rollback could not be committed (it is tried again).
    pub(crate) async fn expire(self: &Arc<Self>) -> bool {
        let this = self.clone();
        let done = self
            .blocking(move || {
                let mut store = this.lock_store();
                let Some(c) = this.confirmation.borrow().clone() else {
                    return Ok(true);
                };
                if c.deadline > unix_now() {
                    return Ok(true);
                }
                let within = describe_within(c.within_secs);
                let old = match store.generation(c.previous) {
                    Ok(old) => old.config,
                    Err(e) => {
                        this.log.critical(&format!(
                            "Commit {} was not confirmed within {within}, but generation {} \
                             cannot be read to roll back to ({e}); the configuration stays as it is",
                            c.generation, c.previous
                        ));
                        this.forget_confirmation();
                        this.confirmation.send_replace(None);
                        return Ok(true);
                    }
                };
                let comment = format!(
                    "Automatic rollback: commit {} was not confirmed within {within}",
                    c.generation
                );
                match store.commit(old, "system", &comment) {
                    Ok(warnings) => {
                        this.forget_confirmation();
                        this.confirmation.send_replace(None);
                        let landed = this.landed(&store, warnings);
                        this.log.warning(&format!(
                            "Commit {} by {} was not confirmed within {within}; rolled back to \
                             generation {} as generation {}",
                            c.generation, c.user, c.previous, landed.generation
                        ));
                        Ok(true)
                    }
                    Err(StoreError::NoChanges) => {
                        this.log.warning(&format!(
                            "Commit {} was not confirmed within {within}; the configuration is \
                             already that of generation {}",
                            c.generation, c.previous
                        ));
                        this.forget_confirmation();
                        this.confirmation.send_replace(None);
                        Ok(true)
                    }
                    Err(e) => {
                        this.log.warning(&format!(
                            "Commit {} was not confirmed within {within}, and the rollback to \
                             generation {} failed ({e}); trying again",
                            c.generation, c.previous
                        ));
                        Ok(false)
                    }
                }
            })
            .await;
        done.unwrap_or(false)
    }

    /// Removes the confirmation file; a failure is logged (at the next start the file no
    /// longer matches the committed generation, and is dropped then).
    fn forget_confirmation(&self) {
        if let Err(e) = self.confirm_file.remove() {
            self.log
                .warning(&format!("Cannot remove the confirmation record: {e}"));
        }
    }

    /// After a `commit confirmed` that did not land: the file says again what was outstanding.
    fn restore_confirm_file(&self, outstanding: Option<&Confirmation>) {
        let restored = match outstanding {
            Some(c) => self.confirm_file.write_landed(c),
            None => self.confirm_file.remove(),
        };
        if let Err(e) = restored {
            self.log
                .warning(&format!("Cannot restore the confirmation record: {e}"));
        }
    }

    /// Commits again the configuration of a kept generation.
    pub async fn rollback(
        self: &Arc<Self>,
        generation: u64,
        user: String,
    ) -> Result<Landed, ControlError> {
        let this = self.clone();
        self.blocking(move || {
            let mut store = this.lock_store();
            let warnings = store
                .rollback(generation, &user)
                .map_err(|e| this.refused(&user, e))?;
            // Going back by hand is the administrator in control: it confirms.
            let confirmed = this.confirmation.send_replace(None);
            if confirmed.is_some() {
                this.forget_confirmation();
            }
            let mut landed = this.landed(&store, warnings);
            if let Some(c) = confirmed {
                this.log.info(&format!(
                    "Commit {} is confirmed by {user}'s rollback to generation {generation}",
                    c.generation
                ));
                landed.confirmed = Some(c.generation);
            }
            Ok(landed)
        })
        .await
    }

    pub async fn generation(self: &Arc<Self>, generation: u64) -> Result<Generation, ControlError> {
        let this = self.clone();
        self.blocking(move || {
            this.lock_store()
                .generation(generation)
                .map_err(control_error)
        })
        .await
    }

    pub async fn journal(self: &Arc<Self>) -> Result<Vec<Commit>, ControlError> {
        let this = self.clone();
        self.blocking(move || this.lock_store().journal().map_err(control_error))
            .await
    }

    pub async fn kept(self: &Arc<Self>) -> Result<Vec<Commit>, ControlError> {
        let this = self.clone();
        self.blocking(move || this.lock_store().kept().map_err(control_error))
            .await
    }

    /// After a commit: publish the new generation and log it.
    fn landed(&self, store: &Store, warnings: Vec<postern_config::StoreWarning>) -> Landed {
        let generation = store.current().clone();
        let commit = &generation.commit;
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.log.info(&format!(
            "User {} committed generation {}: {}",
            commit.user, commit.generation, commit.comment
        ));
        for change in &commit.changes {
            self.log.info(&format!(
                "Generation {} changed {change}",
                commit.generation
            ));
        }
        for warning in &warnings {
            self.log.warning(&warning.to_string());
        }
        let landed = Landed {
            generation: commit.generation,
            changes: commit.changes.clone(),
            warnings: warnings.iter().map(ToString::to_string).collect(),
            confirmed: None,
            confirmation: None,
        };
        self.current.send_replace(Arc::new(generation));
        landed
    }

    /// A commit the store refused; a failure to save (not a rule the change broke) is logged.
    fn refused(&self, user: &str, e: StoreError) -> ControlError {
        if !matches!(
            e,
            StoreError::Invalid(_) | StoreError::NoChanges | StoreError::UnknownGeneration(_)
        ) {
            self.log.warning(&format!(
                "Commit by {user} failed, configuration unchanged: {e}"
            ));
        }
        control_error(e)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, ControlError> + Send + 'static,
    ) -> Result<T, ControlError> {
        tokio::task::spawn_blocking(work)
            .await
            .unwrap_or_else(|e| Err(ControlError::Store(format!("store task failed: {e}"))))
    }

    fn lock_store(&self) -> std::sync::MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave the store half-written: every write is
        // a whole-file rename. Carry on with it.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a service's state; `restarted` counts one more restart.
    pub(crate) fn set_service_state(&self, index: usize, state: ServiceState, restarted: bool) {
        if restarted {
            self.restarts.fetch_add(1, Ordering::Relaxed);
        }
        self.services.send_modify(|all| {
            if let Some(s) = all.get_mut(index) {
                s.state = state;
                s.restarts += u32::from(restarted);
            }
        });
    }

    /// A service said it serves: it is Running from now.
    pub fn service_ready(&self, name: &str) -> bool {
        let mut found = false;
        self.services.send_modify(|all| {
            for s in all.iter_mut().filter(|s| s.name == name) {
                if let ServiceState::Starting { pid } = s.state {
                    s.state = ServiceState::Running {
                        pid,
                        since: unix_now(),
                    };
                }
                found = true;
            }
        });
        if found {
            self.log.info(&format!("Service {name} ready"));
        }
        found
    }

    /// Resolves once every service that reports readiness has done so, and every other one has
    /// been started.
    pub(crate) async fn all_ready(&self) {
        let mut rx = self.services.subscribe();
        let readiness = self.readiness.clone();
        let _ = rx
            .wait_for(|all| {
                all.iter().zip(&readiness).all(|(s, r)| {
                    matches!(
                        (r, s.state),
                        (_, ServiceState::Running { .. })
                            | (Readiness::Started, ServiceState::Starting { .. })
                    )
                })
            })
            .await;
    }

    pub(crate) fn readiness(&self, index: usize) -> Readiness {
        self.readiness
            .get(index)
            .copied()
            .unwrap_or(Readiness::Started)
    }

    fn counters(&self) -> Vec<(String, u64)> {
        let mut counters = vec![
            ("Commits".to_owned(), self.commits.load(Ordering::Relaxed)),
            (
                "Service restarts".to_owned(),
                self.restarts.load(Ordering::Relaxed),
            ),
        ];
        let services = self
            .service_counters
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        counters.extend(services.values().flatten().cloned());
        counters
    }

    /// Keeps a service's latest counters for `status`.
    pub fn service_counters(&self, service: String, counters: Vec<(String, u64)>) {
        let mut all = self
            .service_counters
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        all.insert(service, counters);
    }

    /// What `status` shows.
    pub fn status(&self) -> Status {
        let services = self.services.borrow().clone();
        let pids: Vec<u32> = services
            .iter()
            .filter_map(|s| match s.state {
                ServiceState::Starting { pid } | ServiceState::Running { pid, .. } => Some(pid),
                _ => None,
            })
            .collect();
        let gauges = self
            .gauges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sample(&self.data, &pids);
        let current = self.current();
        Status {
            firmware: self.firmware.clone(),
            hostname: current.config.system.hostname.to_string(),
            now: unix_now(),
            up_since: self.up_since,
            generation: current.commit.generation,
            services,
            gauges,
            counters: self.counters(),
            confirmation: self.confirmation.borrow().clone(),
        }
    }
}

/// The TLS rules the model cannot check alone: each service's cipher string must select a
/// cipher for every version below TLS v1.3 it enables (the engine's evaluation decides), and
/// each imported certificate must be usable (its key signs it, its chain is in order, it is in
/// date).
fn check_tls(config: &Config) -> Result<(), ControlError> {
    for (name, cert) in &config.certificates.imported {
        postern_tls::Identity::from_pem(cert.chain_pem.as_bytes(), cert.key_pem.as_bytes())
            .map_err(|e| ControlError::Tls {
                service: format!("Certificate {name}"),
                reason: e.to_string(),
            })?;
    }
    for service in TlsService::ALL {
        if let Some(settings) = config.tls.service(service) {
            postern_tls::ciphers::for_range(&settings.ciphers, settings.protocols).map_err(
                |e| ControlError::Tls {
                    service: service.label().to_owned(),
                    reason: e.to_string(),
                },
            )?;
        }
    }
    Ok(())
}

fn control_error(e: StoreError) -> ControlError {
    match e {
        StoreError::Invalid(e) => ControlError::Invalid(e),
        StoreError::NoChanges => ControlError::NoChanges,
        StoreError::UnknownGeneration(n) => ControlError::UnknownGeneration(n),
        other => ControlError::Store(other.to_string()),
    }
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
