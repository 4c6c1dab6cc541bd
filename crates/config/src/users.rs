//! Administrator accounts: names, roles and argon2 password hashes.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{self, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};

/// A user account of the CLI, web UI and API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminUser {
    pub full_name: String,
    pub role: Role,
    pub password: PasswordHash,
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Everything, including users and commits.
    Administrator,
    /// Reads configuration and logs, changes nothing.
    Operator,
}

/// A login name: 1–32 characters of lower-case letters, digits, `.`, `_` and `-`, starting with
/// a letter (what fits a Unix login on the appliance).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserName(pub(crate) String);

impl UserName {
    pub fn new(name: &str) -> Result<Self, UserError> {
        let ok = (1..=32).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(UserError::BadName(name.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for UserName {
    type Error = UserError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<UserName> for String {
    fn from(n: UserName) -> String {
        n.0
    }
}

/// An argon2id password hash in PHC string form. The password itself is never stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PasswordHash(String);

impl PasswordHash {
    /// The shortest password accepted for an administrator.
    pub const MIN_PASSWORD_LEN: usize = 8;

    /// Hashes a new password with a fresh random salt.
    pub fn new(password: &str) -> Result<Self, UserError> {
        if password.chars().count() < Self::MIN_PASSWORD_LEN {
            return Err(UserError::WeakPassword);
        }
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| UserError::Hash(e.to_string()))?;
        Ok(Self(hash.to_string()))
    }

    /// Whether `password` is the one this hash was made from.
    pub fn verify(&self, password: &str) -> bool {
        password_hash::PasswordHash::new(&self.0).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    }
}

/// The hash is a secret too: debug output never shows it.
impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

impl TryFrom<String> for PasswordHash {
    type Error = UserError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        match password_hash::PasswordHash::new(&s) {
            Ok(h) if h.algorithm.as_str().starts_with("argon2") => Ok(Self(s)),
            _ => Err(UserError::BadHash),
        }
    }
}

impl From<PasswordHash> for String {
    fn from(h: PasswordHash) -> String {
        h.0
    }
}

/// Why a user setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UserError {
    #[error(
        "'{0}' is not a valid user name: use 1 to 32 lower-case letters, digits, '.', '_' or '-', \
         starting with a letter"
    )]
    BadName(String),
    #[error("the password must have at least 8 characters")]
    WeakPassword,
    #[error("the stored password hash is not an argon2 hash")]
    BadHash,
    #[error("could not hash the password: {0}")]
    Hash(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_are_salted() {
        let a = PasswordHash::new("correct horse").unwrap();
        let b = PasswordHash::new("correct horse").unwrap();
        assert!(a.verify("correct horse"));
        assert!(!a.verify("correct horsE"));
        assert_ne!(a, b, "each hash has its own salt");
        assert_eq!(PasswordHash::new("short"), Err(UserError::WeakPassword));
        assert_eq!(format!("{a:?}"), "PasswordHash(..)");
    }

    #[test]
    fn stored_hashes_are_parsed() {
        let h = PasswordHash::new("correct horse").unwrap();
        let back = PasswordHash::try_from(String::from(h.clone())).unwrap();
        assert!(back.verify("correct horse"));
        assert_eq!(
            PasswordHash::try_from("plain".to_owned()),
            Err(UserError::BadHash)
        );
    }

    #[test]
    fn user_names() {
        assert!(UserName::new("admin").is_ok());
        assert!(UserName::new("ops-2.x_y").is_ok());
        for bad in ["", "Admin", "1admin", "a b", "root;", &"a".repeat(33)] {
            assert!(UserName::new(bad).is_err(), "{bad}");
        }
    }
}
