//! What every request handler shares: the committed configuration (kept current by the
//! supervisor's pushes), the control connection commits go through, the sessions with their
//! pending changes, and gui_logs.

use std::sync::Arc;

use postern_config::{Config, Generation};
use postern_control::{Client, ClientError, Confirmation, ControlError};
use postern_logs::SharedLog;
use tokio::sync::{Mutex, watch};

use crate::auth::{LoginGate, SessionId, Sessions};

pub(crate) type Shared = Arc<AppState>;

#[derive(Debug)]
pub(crate) struct AppState {
    /// Requests to the supervisor; one at a time.
    pub(crate) control: Mutex<Client>,
    pub(crate) committed: watch::Receiver<Arc<Generation>>,
    pub(crate) sessions: Sessions,
    pub(crate) logins: LoginGate,
    pub(crate) log: SharedLog,
    /// The data directory (its logs are read for tracking and reports).
    pub(crate) data: std::path::PathBuf,
    /// The `commit confirmed` outstanding, as last heard from the supervisor.
    pub(crate) confirmation: std::sync::Mutex<Option<Confirmation>>,
}

/// Why a change was refused, in the words the page and the API show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Refusal(pub(crate) String);

impl Refusal {
    /// Checks the whole changed configuration, as the supervisor will at commit.
    pub(crate) fn validate(config: &Config) -> Result<(), Refusal> {
        config.validate().map_err(|e| Refusal(format!("{e}.")))
    }
}

/// What a commit of a session's pending changes came to.
#[derive(Debug)]
pub(crate) enum CommitOutcome {
    Committed {
        generation: u64,
        /// The deadline of this commit's confirmation, when one was asked for.
        confirm_by: Option<i64>,
    },
    NothingPending,
    /// The supervisor refused the changes; they stay pending.
    Refused(String),
}

impl AppState {
    pub(crate) fn committed(&self) -> Arc<Generation> {
        self.committed.borrow().clone()
    }

    /// The configuration a session sees: its pending changes, or the committed configuration.
    pub(crate) fn view(&self, id: &SessionId) -> Config {
        self.sessions
            .pending(id)
            .map_or_else(|| self.committed().config.clone(), |(_, config)| config)
    }

    /// Applies `change` to the session's view and keeps the result pending; a change that
    /// leads back to the committed configuration leaves nothing pending.
    pub(crate) fn stage<E>(
        &self,
        id: &SessionId,
        change: impl FnOnce(&mut Config) -> Result<(), E>,
    ) -> Result<(), E> {
        let committed = self.committed();
        let (base, mut config) = self
            .sessions
            .pending(id)
            .unwrap_or_else(|| (committed.commit.generation, committed.config.clone()));
        change(&mut config)?;
        let pending = (config != committed.config || base != committed.commit.generation)
            .then_some((base, config));
        self.sessions.set_pending(id, pending);
        Ok(())
    }

    pub(crate) fn confirmation(&self) -> Option<Confirmation> {
        self.confirmation
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_confirmation(&self, confirmation: Option<Confirmation>) {
        *self.confirmation.lock().unwrap_or_else(|p| p.into_inner()) = confirmation;
    }

    /// Confirms the outstanding `commit confirmed`; `None` when there was none.
    pub(crate) async fn confirm(&self, user: &str) -> Result<Option<u64>, ClientError> {
        let result = self.control.lock().await.confirm(user).await;
        let confirmed = match result {
            Ok(generation) => Some(generation),
            Err(ClientError::Refused(ControlError::NothingToConfirm)) => None,
            Err(e) => return Err(e),
        };
        self.set_confirmation(None);
        if let Some(generation) = confirmed {
            self.log
                .info(&format!("The user {user} confirmed commit {generation}."));
        }
        Ok(confirmed)
    }

    /// Commits the session's pending changes with `comment`; with `confirm_within_secs`, the
    /// supervisor rolls the commit back unless it is confirmed in time.
    pub(crate) async fn commit(
        &self,
        id: &SessionId,
        user: &str,
        comment: &str,
        confirm_within_secs: Option<u32>,
    ) -> Result<CommitOutcome, ClientError> {
        let Some((base, config)) = self.sessions.pending(id) else {
            return Ok(CommitOutcome::NothingPending);
        };
        let result = self
            .control
            .lock()
            .await
            .commit_detailed(base, config, user, comment, confirm_within_secs)
            .await;
        match result {
            Ok(committed) => {
                let (generation, changes) = (committed.generation, committed.changes);
                let confirm_by = confirm_within_secs
                    .and(committed.confirmation.as_ref())
                    .map(|c| c.deadline);
                self.set_confirmation(committed.confirmation);
                self.sessions.set_pending(id, None);
                self.log.info(&format!(
                    "User {user} committed generation {generation} ({} change{}): {comment}",
                    changes.len(),
                    if changes.len() == 1 { "" } else { "s" }
                ));
                Ok(CommitOutcome::Committed {
                    generation,
                    confirm_by,
                })
            }
            Err(ClientError::Refused(ControlError::NoChanges)) => {
                self.sessions.set_pending(id, None);
                Ok(CommitOutcome::NothingPending)
            }
            Err(ClientError::Refused(refusal)) => Ok(CommitOutcome::Refused(refusal.to_string())),
            Err(e) => Err(e),
        }
    }
}
