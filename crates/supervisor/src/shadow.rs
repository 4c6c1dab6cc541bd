//! `DATA/run/shadow`: the appliance's console and SSH login passwords, as BusyBox login and
//! dropbear read them through `/etc/shadow` (the image links it here). Written from the
//! committed users at start and after every commit that changes them, so that `passwd` and
//! `userconfig` reach the system logins too.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use postern_config::Config;
use postern_config::store::replace_file;
use tokio::sync::watch;

use crate::owner::{ConfigOwner, unix_now};

/// Where the file is, under the data directory.
pub const SHADOW: &str = "run/shadow";

/// The system accounts of the image (`/etc/passwd`): always locked, and never taken from a
/// Postern user of the same name (`root` is a Unix shell, not the CLI).
const SYSTEM_ACCOUNTS: [&str; 3] = ["root", "postern", "nobody"];

/// The shadow file's text for the users of `config`. A user without a login hash (its
/// password was set before Postern kept one) keeps the login it had: for `admin`, the hash
/// the image wrote in `DATA/system/admin.crypt`; otherwise it is locked (`!`).
pub fn shadow_text(config: &Config, data: &Path) -> String {
    // Days since 1970 of the last change, as shadow(5) counts them.
    let today = unix_now() / 86_400;
    let line = |name: &str, hash: &str| format!("{name}:{hash}:{today}:0:99999:7:::\n");
    let mut text: String = SYSTEM_ACCOUNTS.iter().map(|name| line(name, "!")).collect();
    for (name, user) in &config.users {
        if SYSTEM_ACCOUNTS.contains(&name.as_str()) {
            continue;
        }
        let hash = match &user.login_password {
            Some(hash) => hash.as_str().to_owned(),
            None => earlier_login(data, name.as_str()).unwrap_or_else(|| "!".to_owned()),
        };
        text.push_str(&line(name.as_str(), &hash));
    }
    text
}

/// The crypt hash an earlier firmware's image kept for `name`, if it is one.
fn earlier_login(data: &Path, name: &str) -> Option<String> {
    let text = fs::read_to_string(data.join("system").join(format!("{name}.crypt"))).ok()?;
    let hash = text.trim();
    let shaped = hash.starts_with("$6$") && !hash.contains([':', '\n']);
    shaped.then(|| hash.to_owned())
}

/// Writes `text` to `DATA/run/shadow` (0600) so that a reader sees the old file or the new
/// one, never a part.
pub fn write(data: &Path, text: &str) -> io::Result<PathBuf> {
    let path = data.join(SHADOW);
    replace_file(&path, text.as_bytes())?;
    Ok(path)
}

/// Keeps the file in step with the committed users until shutdown; `written` is what start-up
/// wrote.
pub(crate) async fn keep_written(
    owner: Arc<ConfigOwner>,
    data: PathBuf,
    mut written: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut generations = owner.subscribe();
    loop {
        tokio::select! {
            changed = generations.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
        let generation = generations.borrow_and_update().clone();
        let text = shadow_text(&generation.config, &data);
        if text == written {
            continue;
        }
        match write(&data, &text) {
            Ok(path) => {
                owner.log().info(&format!(
                    "System login passwords written to {} for configuration generation {}",
                    path.display(),
                    generation.commit.generation
                ));
                written = text;
            }
            Err(e) => owner.log().warning(&format!(
                "Cannot write the system login passwords ({SHADOW}): {e}; the console and SSH \
                 logins keep the previous ones"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_config::{FactoryListeners, Hostname, LoginHash, PasswordHash, UserName};

    fn config() -> Config {
        let hash = PasswordHash::new("the first password").unwrap();
        Config::factory(
            Hostname::new("mail.example.com").unwrap(),
            FactoryListeners::HOST,
            hash,
        )
    }

    #[test]
    fn users_with_a_login_hash_get_it_and_system_accounts_stay_locked() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config();
        let login = LoginHash::new("the first password").unwrap();
        let admin = UserName::new("admin").unwrap();
        config.users.get_mut(&admin).unwrap().login_password = Some(login.clone());
        // A Postern user named like a system account never unlocks it.
        let mut root = config.users[&admin].clone();
        root.login_password = Some(LoginHash::new("root password").unwrap());
        config.users.insert(UserName::new("root").unwrap(), root);
        let text = shadow_text(&config, dir.path());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        for (line, name) in lines.iter().zip(["root", "postern", "nobody"]) {
            assert!(line.starts_with(&format!("{name}:!:")), "{text}");
            assert!(line.ends_with(":0:99999:7:::"), "{text}");
        }
        assert!(
            lines[3].starts_with(&format!("admin:{}:", login.as_str())),
            "{text}"
        );
    }

    #[test]
    fn a_user_without_a_login_hash_keeps_the_earlier_one_or_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let config = config();
        assert!(shadow_text(&config, dir.path()).contains("\nadmin:!:"));
        fs::create_dir(dir.path().join("system")).unwrap();
        let earlier = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJu";
        fs::write(
            dir.path().join("system/admin.crypt"),
            format!("{earlier}\n"),
        )
        .unwrap();
        assert!(shadow_text(&config, dir.path()).contains(&format!("\nadmin:{earlier}:")));
        fs::write(dir.path().join("system/admin.crypt"), "plain:text\n").unwrap();
        assert!(shadow_text(&config, dir.path()).contains("\nadmin:!:"));
    }

    #[test]
    fn the_file_is_private_and_replaced_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("run")).unwrap();
        let path = write(dir.path(), "one\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "one\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        write(dir.path(), "two\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two\n");
        assert!(!dir.path().join("run/.shadow.tmp").exists());
    }
}
