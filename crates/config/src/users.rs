//! Administrator accounts: names, roles, argon2 password hashes (Postern's own logins) and
//! SHA-512 crypt hashes (the appliance's console and SSH logins).

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{self, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};

/// A user account of the CLI, web UI and API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminUser {
    pub full_name: String,
    pub role: Role,
    pub password: PasswordHash,
    /// The same password for the console and SSH logins of the appliance, which check crypt
    /// hashes, not argon2. `None` for an account whose password was set before Postern kept
    /// this (its system login stays as it was until the password is set again).
    pub login_password: Option<LoginHash>,
}

impl AdminUser {
    /// Sets a new password: both hashes, from the same password.
    pub fn set_password(&mut self, password: &str) -> Result<(), UserError> {
        self.password = PasswordHash::new(password)?;
        self.login_password = Some(LoginHash::new(password)?);
        Ok(())
    }
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

/// A SHA-512 crypt(3) hash, `$6$<salt>$<hash>`, as `/etc/shadow` holds it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LoginHash(String);

impl LoginHash {
    /// The characters of a crypt salt.
    const SALT_ALPHABET: &[u8; 64] =
        b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    /// Hashes a password with a fresh random 16-character salt and the default 5000 rounds.
    pub fn new(password: &str) -> Result<Self, UserError> {
        if password.chars().count() < PasswordHash::MIN_PASSWORD_LEN {
            return Err(UserError::WeakPassword);
        }
        let mut random = [0u8; 16];
        OsRng.fill_bytes(&mut random);
        // 256 is a multiple of 64: every character of the alphabet is as likely.
        let salt: String = random
            .iter()
            .map(|b| char::from(Self::SALT_ALPHABET[usize::from(b % 64)]))
            .collect();
        let params = sha_crypt::Sha512Params::new(sha_crypt::ROUNDS_DEFAULT)
            .map_err(|e| UserError::Hash(format!("{e:?}")))?;
        let hash = sha_crypt::sha512_crypt_b64(password.as_bytes(), salt.as_bytes(), &params)
            .map_err(|e| UserError::Hash(format!("{e:?}")))?;
        Ok(Self(format!("$6${salt}${hash}")))
    }

    /// The hash as `/etc/shadow` holds it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The hash is a secret too: debug output never shows it.
impl fmt::Debug for LoginHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoginHash(..)")
    }
}

impl TryFrom<String> for LoginHash {
    type Error = UserError;
    /// Only the shape this type writes: a line of `/etc/shadow` is made of it.
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let parts: Vec<&str> = s.split('$').collect();
        let crypt_chars = |t: &str| t.bytes().all(|b| Self::SALT_ALPHABET.contains(&b));
        match parts.as_slice() {
            ["", "6", salt, hash]
                if (1..=16).contains(&salt.len())
                    && hash.len() == 86
                    && crypt_chars(salt)
                    && crypt_chars(hash) =>
            {
                Ok(Self(s))
            }
            _ => Err(UserError::BadHash),
        }
    }
}

impl From<LoginHash> for String {
    fn from(h: LoginHash) -> String {
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
    #[error("the stored password hash is not an argon2 or SHA-512 crypt hash")]
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

    /// The example of the SHA-crypt specification (and of glibc's crypt and `openssl passwd
    /// -6`), so that BusyBox login and dropbear take what is written.
    #[test]
    fn login_hashes_are_sha512_crypt() {
        let params = sha_crypt::Sha512Params::new(sha_crypt::ROUNDS_DEFAULT).unwrap();
        let crypt = |password: &str, salt: &str| {
            let hash = sha_crypt::sha512_crypt_b64(password.as_bytes(), salt.as_bytes(), &params);
            format!("$6${salt}${}", hash.unwrap())
        };
        let known = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJu\
                     esI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
        assert_eq!(crypt("Hello world!", "saltstring"), known);
        assert_eq!(
            LoginHash::try_from(known.to_owned()).unwrap().as_str(),
            known
        );

        let a = LoginHash::new("correct horse").unwrap();
        let b = LoginHash::new("correct horse").unwrap();
        assert_ne!(a, b, "each hash has its own salt");
        let salt = &a.as_str()[3..19];
        assert_eq!(a.as_str().len(), 3 + 16 + 1 + 86);
        assert_eq!(crypt("correct horse", salt), a.as_str());
        assert_ne!(crypt("correct horsE", salt), a.as_str());
        assert_eq!(LoginHash::new("short"), Err(UserError::WeakPassword));
        assert_eq!(format!("{a:?}"), "LoginHash(..)");
        for bad in ["", "$1$salt$hash", "$6$salt$short", "$6$sa:t$", "x:$6$"] {
            assert_eq!(
                LoginHash::try_from(bad.to_owned()),
                Err(UserError::BadHash),
                "{bad}"
            );
        }
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
