//! Who may do what: password checks with lockout and a bound on concurrent hashing, the
//! sessions of browsers (cookie + CSRF token) and API clients (bearer token), idle expiry.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use postern_config::{Config, PasswordHash, UserName};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

/// A session ends after this long without a request (the reference appliance's default).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Failed logins in a row after which a user is locked out for [`LOCKOUT`].
pub(crate) const MAX_FAILURES: u32 = 5;
pub(crate) const LOCKOUT: Duration = Duration::from_secs(10 * 60);
/// Password hashes computed at once: argon2 is deliberately slow and memory-hungry.
const HASHING: usize = 2;
/// Logins that may wait for a hashing slot; more at once are told to try again.
const MAX_WAITING: usize = 64;
/// Sessions kept at most; the one idle longest is dropped for a new one.
const MAX_SESSIONS: usize = 1024;

/// The secret naming a session: 32 random bytes, hex.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct SessionId(String);

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(..)")
    }
}

impl SessionId {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(text.to_ascii_lowercase()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a session authenticates its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum SessionKind {
    /// The Classic UI: a cookie, and a CSRF token in every form that changes something.
    Browser,
    /// The REST API (and the NGUI over it): `Authorization: Bearer <token>`.
    Api,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionData {
    user: String,
    kind: SessionKind,
    csrf: String,
    #[serde(skip, default = "Instant::now")]
    last_seen: Instant,
    /// Pending changes: the generation they began from and the changed configuration.
    pending: Option<(u64, Config)>,
}

/// A live session as a request sees it.
#[derive(Debug, Clone)]
pub(crate) struct SessionInfo {
    pub(crate) id: SessionId,
    pub(crate) user: String,
    pub(crate) csrf: String,
    pub(crate) has_pending: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Sessions {
    inner: Mutex<HashMap<SessionId, SessionData>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, SessionData>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn create(&self, user: &str, kind: SessionKind) -> SessionInfo {
        let id = SessionId(random_hex());
        let csrf = random_hex();
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, s| now.duration_since(s.last_seen) < IDLE_TIMEOUT);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(id, _)| id.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            id.clone(),
            SessionData {
                user: user.to_owned(),
                kind,
                csrf: csrf.clone(),
                last_seen: now,
                pending: None,
            },
        );
        SessionInfo {
            id,
            user: user.to_owned(),
            csrf,
            has_pending: false,
        }
    }

    /// The session `id` of `kind`, if it is live; the request counts as activity.
    pub(crate) fn touch(&self, id: &SessionId, kind: SessionKind) -> Option<SessionInfo> {
        let now = Instant::now();
        let mut sessions = self.lock();
        let live = sessions
            .get(id)
            .is_some_and(|s| s.kind == kind && now.duration_since(s.last_seen) < IDLE_TIMEOUT);
        if !live {
            if sessions.get(id).is_some_and(|s| s.kind == kind) {
                sessions.remove(id);
            }
            return None;
        }
        let s = sessions.get_mut(id)?;
        s.last_seen = now;
        Some(SessionInfo {
            id: id.clone(),
            user: s.user.clone(),
            csrf: s.csrf.clone(),
            has_pending: s.pending.is_some(),
        })
    }

    /// Writes the live sessions to `path` (0600) when the service stops, so that the restart a
    /// GUI HTTPS commit causes does not log everyone out or drop their pending changes.
    pub(crate) fn save(&self, path: &Path) -> std::io::Result<()> {
        let now = Instant::now();
        let saved: Vec<SavedSession> = self
            .lock()
            .iter()
            .filter_map(|(id, s)| {
                let idle = now.duration_since(s.last_seen);
                (idle < IDLE_TIMEOUT).then(|| SavedSession {
                    id: id.clone(),
                    idle_secs: idle.as_secs(),
                    saved_at: unix_now(),
                    data: s.clone(),
                })
            })
            .collect();
        let bytes = postcard::to_stdvec(&saved).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(tmp, path)
    }

    /// The sessions [`Sessions::save`] left at `path`, which is removed: a file that cannot be
    /// read only means everyone logs in again.
    pub(crate) fn restore(path: &Path) -> Self {
        let sessions = Self::default();
        let Ok(bytes) = std::fs::read(path) else {
            return sessions;
        };
        let _ = std::fs::remove_file(path);
        let saved: Vec<SavedSession> = postcard::from_bytes(&bytes).unwrap_or_default();
        let now = Instant::now();
        let mut map = sessions.lock();
        for s in saved {
            let away = u64::try_from(unix_now().saturating_sub(s.saved_at)).unwrap_or(u64::MAX);
            let idle = Duration::from_secs(s.idle_secs.saturating_add(away));
            if idle >= IDLE_TIMEOUT {
                continue;
            }
            let mut data = s.data;
            data.last_seen = now.checked_sub(idle).unwrap_or(now);
            map.insert(s.id, data);
        }
        drop(map);
        sessions
    }

    pub(crate) fn remove(&self, id: &SessionId) -> Option<String> {
        self.lock().remove(id).map(|s| s.user)
    }

    pub(crate) fn pending(&self, id: &SessionId) -> Option<(u64, Config)> {
        self.lock().get(id).and_then(|s| s.pending.clone())
    }

    pub(crate) fn set_pending(&self, id: &SessionId, pending: Option<(u64, Config)>) {
        if let Some(s) = self.lock().get_mut(id) {
            s.pending = pending;
        }
    }
}

/// A session as [`Sessions::save`] writes it: how long it had been idle, and when it was saved.
#[derive(Debug, Serialize, Deserialize)]
struct SavedSession {
    id: SessionId,
    idle_secs: u64,
    saved_at: i64,
    data: SessionData,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LoginError {
    #[error("The user name or password is incorrect.")]
    BadCredentials,
    #[error(
        "This account is locked for {minutes} more minute(s) after {MAX_FAILURES} failed logins."
    )]
    LockedOut { minutes: u64 },
    #[error("Too many logins at once; try again in a moment.")]
    Busy,
}

#[derive(Debug, Default)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

/// Checks passwords: at most [`HASHING`] at a time on blocking threads, lockout after
/// [`MAX_FAILURES`] failures in a row, and the same work for unknown users as for known ones.
#[derive(Debug)]
pub(crate) struct LoginGate {
    hashing: Arc<Semaphore>,
    waiting: AtomicUsize,
    failures: Mutex<HashMap<String, Failures>>,
}

impl Default for LoginGate {
    fn default() -> Self {
        Self {
            hashing: Arc::new(Semaphore::new(HASHING)),
            waiting: AtomicUsize::new(0),
            failures: Mutex::new(HashMap::new()),
        }
    }
}

impl LoginGate {
    /// Checks `user`'s `password` against `config`; answers the user name as configured.
    pub(crate) async fn check(
        &self,
        config: &Config,
        user: &str,
        password: &str,
        _from: IpAddr,
    ) -> Result<String, LoginError> {
        let key = user.to_ascii_lowercase();
        if let Some(minutes) = self.locked_minutes(&key) {
            return Err(LoginError::LockedOut { minutes });
        }
        let hash = UserName::new(user)
            .ok()
            .and_then(|name| config.users.get(&name))
            .map(|u| u.password.clone());
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| dummy_hash().clone());
        let password = password.to_owned();

        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(LoginError::Busy);
        }
        let permit = self.hashing.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let Ok(permit) = permit else {
            return Err(LoginError::Busy);
        };
        let matches = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash.verify(&password)
        })
        .await
        .unwrap_or(false);

        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if matches && known {
            failures.remove(&key);
            return Ok(user.to_owned());
        }
        let entry = failures.entry(key).or_default();
        entry.count += 1;
        if entry.count >= MAX_FAILURES {
            entry.count = 0;
            entry.locked_until = Some(Instant::now() + LOCKOUT);
        }
        Err(LoginError::BadCredentials)
    }

    fn locked_minutes(&self, key: &str) -> Option<u64> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let entry = failures.get_mut(key)?;
        let until = entry.locked_until?;
        let now = Instant::now();
        if until <= now {
            entry.locked_until = None;
            return None;
        }
        Some(until.duration_since(now).as_secs().div_ceil(60))
    }
}

/// A hash no password matches in practice, checked for unknown users so that a login for a
/// user who does not exist takes as long as one for a user who does.
fn dummy_hash() -> &'static PasswordHash {
    static DUMMY: OnceLock<PasswordHash> = OnceLock::new();
    DUMMY.get_or_init(|| {
        PasswordHash::new(&random_hex()).expect("hashing a random password of 64 characters")
    })
}

/// 32 random bytes from AWS-LC's generator, as 64 hex digits.
pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    // The system's random source failing is not something a web request can recover from;
    // a predictable session id would be far worse than a failed request.
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets in constant time.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_idle_too_long_ends_and_one_of_the_other_kind_is_not_accepted() {
        let sessions = Sessions::default();
        let browser = sessions.create("admin", SessionKind::Browser);
        let api = sessions.create("admin", SessionKind::Api);
        assert!(sessions.touch(&browser.id, SessionKind::Browser).is_some());
        // A browser cookie is no bearer token, and the other way round.
        assert!(sessions.touch(&browser.id, SessionKind::Api).is_none());
        assert!(sessions.touch(&api.id, SessionKind::Browser).is_none());

        let long_ago = Instant::now()
            .checked_sub(IDLE_TIMEOUT + Duration::from_secs(1))
            .expect("a machine up longer than the idle timeout");
        sessions
            .lock()
            .get_mut(&browser.id)
            .expect("the session")
            .last_seen = long_ago;
        assert!(sessions.touch(&browser.id, SessionKind::Browser).is_none());
        assert!(
            sessions.lock().get(&browser.id).is_none(),
            "an idle session is dropped"
        );
        assert!(sessions.touch(&api.id, SessionKind::Api).is_some());
    }

    #[test]
    fn sessions_survive_a_save_and_restore_and_idle_ones_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sessions");
        let sessions = Sessions::default();
        let kept = sessions.create("admin", SessionKind::Browser);
        let idle = sessions.create("oper", SessionKind::Api);
        if let Some(s) = sessions.lock().get_mut(&idle.id) {
            s.last_seen = Instant::now()
                .checked_sub(IDLE_TIMEOUT)
                .expect("a machine up longer than the idle timeout");
        }
        sessions.save(&path).expect("save");
        let restored = Sessions::restore(&path);
        assert!(!path.exists(), "the file is read once");
        let back = restored
            .touch(&kept.id, SessionKind::Browser)
            .expect("the live session");
        assert_eq!(
            (back.user.as_str(), back.csrf.as_str()),
            ("admin", kept.csrf.as_str())
        );
        assert!(restored.touch(&idle.id, SessionKind::Api).is_none());
        assert!(Sessions::restore(&path).lock().is_empty());
    }

    #[test]
    fn only_well_formed_ids_are_looked_up() {
        assert!(SessionId::parse(&"a".repeat(64)).is_some());
        for bad in ["", "short", &"g".repeat(64), &"a".repeat(65)] {
            assert!(SessionId::parse(bad).is_none(), "{bad}");
        }
    }
}
