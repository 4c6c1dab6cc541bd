//! What changed between two configurations, and the three-way merge that lets several
//! administrator sessions hold pending changes at once.
//!
//! Both work on the configuration's serde form, so every setting the model gains is covered
//! without code here: a setting is a path of field names (`tls.inbound_smtp.protocols`), maps
//! are walked key by key, and anything else is one value.

use serde_json::{Map, Value};

use crate::model::{Config, ConfigError};

/// One changed setting, for the commit journal and `commitdetail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub setting: String,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    Added(String),
    Removed,
    Changed {
        from: String,
        to: String,
    },
    /// A secret changed; its values are not shown.
    SecretChanged,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            ChangeKind::Added(v) => write!(f, "{}: added {v}", self.setting),
            ChangeKind::Removed => write!(f, "{}: removed", self.setting),
            ChangeKind::Changed { from, to } => write!(f, "{}: {from} -> {to}", self.setting),
            ChangeKind::SecretChanged => write!(f, "{}: changed", self.setting),
        }
    }
}

/// Field names whose values are secrets and never appear in a summary.
const SECRETS: &[&str] = &["password", "login_password", "key_pem", "chain_pem"];

/// The settings that differ from `old` to `new`, in a stable order.
pub fn changes(old: &Config, new: &Config) -> Vec<Change> {
    let mut out = Vec::new();
    walk_changes("", &to_value(old), &to_value(new), &mut out);
    out
}

fn walk_changes(path: &str, old: &Value, new: &Value, out: &mut Vec<Change>) {
    if old == new {
        return;
    }
    let secret = SECRETS.iter().any(|s| path.rsplit('.').next() == Some(s));
    match (old, new) {
        (Value::Object(a), Value::Object(b)) if !secret => {
            for (key, av) in a {
                match b.get(key) {
                    Some(bv) => walk_changes(&join(path, key), av, bv, out),
                    None => out.push(Change {
                        setting: join(path, key),
                        kind: ChangeKind::Removed,
                    }),
                }
            }
            for (key, bv) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                out.push(Change {
                    setting: join(path, key),
                    kind: ChangeKind::Added(summary(bv)),
                });
            }
        }
        _ if secret => out.push(Change {
            setting: path.to_owned(),
            kind: ChangeKind::SecretChanged,
        }),
        _ => out.push(Change {
            setting: path.to_owned(),
            kind: ChangeKind::Changed {
                from: summary(old),
                to: summary(new),
            },
        }),
    }
}

/// A value as one short line: strings bare, the rest as compact JSON with secrets masked.
fn summary(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(map) => {
            let masked: Map<String, Value> = map
                .iter()
                .map(|(k, v)| match SECRETS.contains(&k.as_str()) {
                    true => (k.clone(), Value::String("(secret)".to_owned())),
                    false => (k.clone(), v.clone()),
                })
                .collect();
            Value::Object(masked).to_string()
        }
        other => other.to_string(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Settings that two sessions changed in different ways since they started from the same base.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("another session changed the same settings since your changes began: {}", settings.join(", "))]
pub struct MergeConflict {
    pub settings: Vec<String>,
}

/// Applies the changes a session made (`base` → `ours`) onto the configuration committed since
/// (`theirs`). Settings changed on one side only take that side; a setting changed on both sides
/// to different values is a conflict. The result is checked by the model's own rules.
pub fn merge(base: &Config, ours: &Config, theirs: &Config) -> Result<Config, MergeError> {
    let mut conflicts = Vec::new();
    let (base, ours, theirs) = (to_value(base), to_value(ours), to_value(theirs));
    let merged = merge_setting("", Some(&base), Some(&ours), Some(&theirs), &mut conflicts);
    if !conflicts.is_empty() {
        return Err(MergeError::Conflict(MergeConflict {
            settings: conflicts,
        }));
    }
    let merged = merged.unwrap_or(Value::Null);
    let config: Config = serde_json::from_value(merged)
        .map_err(|e| MergeError::Invalid(ConfigError::Invalid(e.to_string())))?;
    config.validate().map_err(MergeError::Invalid)?;
    Ok(config)
}

/// Why a session's changes could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error(transparent)]
    Conflict(MergeConflict),
    #[error(transparent)]
    Invalid(ConfigError),
}

/// Merges one setting; `None` is a setting that is absent (a map entry removed or not added).
fn merge_setting(
    path: &str,
    base: Option<&Value>,
    ours: Option<&Value>,
    theirs: Option<&Value>,
    conflicts: &mut Vec<String>,
) -> Option<Value> {
    if ours == base {
        return theirs.cloned();
    }
    if theirs == base || ours == theirs {
        return ours.cloned();
    }
    if let (Some(Value::Object(b)), Some(Value::Object(o)), Some(Value::Object(t))) =
        (base, ours, theirs)
    {
        let mut keys: Vec<&String> = b.keys().chain(o.keys()).chain(t.keys()).collect();
        keys.sort();
        keys.dedup();
        let mut out = Map::new();
        for key in keys {
            let merged = merge_setting(
                &join(path, key),
                b.get(key),
                o.get(key),
                t.get(key),
                conflicts,
            );
            if let Some(v) = merged {
                out.insert(key.clone(), v);
            }
        }
        return Some(Value::Object(out));
    }
    conflicts.push(path.to_owned());
    ours.cloned()
}

fn to_value(config: &Config) -> Value {
    // The model is plain data with string map keys: turning it into a JSON value cannot fail.
    serde_json::to_value(config).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sample;
    use crate::tls::{ProtocolRange, TlsService};
    use crate::users::{PasswordHash, UserName};

    fn with_inbound(c: &Config, selection: &str) -> Config {
        let mut c = c.clone();
        c.tls
            .set_protocols(
                TlsService::InboundSmtp,
                ProtocolRange::from_selection(selection).unwrap(),
            )
            .unwrap();
        c
    }

    #[test]
    fn a_changed_protocol_is_one_line() {
        let a = sample();
        let b = with_inbound(&a, "1-3");
        let lines: Vec<String> = changes(&a, &b).iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            ["tls.inbound_smtp.protocols: tlsv1_1tlsv1_2 -> tlsv1_1tlsv1_2tlsv1_3"]
        );
        assert!(changes(&a, &a).is_empty());
    }

    #[test]
    fn secrets_are_never_shown() {
        let a = sample();
        let mut b = a.clone();
        let admin = UserName::new("admin").unwrap();
        let hash = PasswordHash::try_from(
            "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0c2FsdA$X4hW/0kb6YyM8qX8oaZWmbYQJYTCKwMeLhxLrbWT5rU"
                .to_owned(),
        )
        .unwrap();
        b.users.get_mut(&admin).unwrap().password = hash.clone();
        let mut user = b.users[&admin].clone();
        user.password = hash;
        b.users.insert(UserName::new("ops").unwrap(), user);
        let text: Vec<String> = changes(&a, &b).iter().map(ToString::to_string).collect();
        assert_eq!(text[0], "users.admin.password: changed");
        assert!(text[1].starts_with("users.ops: added "), "{}", text[1]);
        assert!(!text.concat().contains("argon2"), "{text:?}");
    }

    #[test]
    fn sessions_changing_different_settings_both_land() {
        let base = sample();
        let ours = with_inbound(&base, "1-3");
        let mut theirs = base.clone();
        theirs.tls.other_client.tls_v1_0 = true;
        let merged = merge(&base, &ours, &theirs).unwrap();
        assert_eq!(
            merged.tls.inbound_smtp.protocols.method_token(),
            "tlsv1_1tlsv1_2tlsv1_3"
        );
        assert!(merged.tls.other_client.tls_v1_0);
    }

    #[test]
    fn the_same_setting_changed_twice_is_a_conflict() {
        let base = sample();
        let ours = with_inbound(&base, "1-3");
        let theirs = with_inbound(&base, "2");
        let err = merge(&base, &ours, &theirs).unwrap_err();
        assert_eq!(
            err,
            MergeError::Conflict(MergeConflict {
                settings: vec!["tls.inbound_smtp.protocols".to_owned()]
            })
        );
        // The same change made by both is no conflict.
        assert!(merge(&base, &ours, &ours).is_ok());
    }

    #[test]
    fn a_merge_that_breaks_a_rule_is_refused() {
        let base = sample();
        let mut ours = base.clone();
        ours.listeners.ngui = "127.0.0.1:9000".parse().unwrap();
        let mut theirs = base.clone();
        theirs.listeners.classic_ui = "127.0.0.1:9000".parse().unwrap();
        assert!(matches!(
            merge(&base, &ours, &theirs),
            Err(MergeError::Invalid(ConfigError::AddressInUse { .. }))
        ));
    }
}
