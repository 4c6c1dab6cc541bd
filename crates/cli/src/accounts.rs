//! The machine's accounts from `/etc/passwd`, read directly: the static binary has no NSS
//! modules to ask, and the appliance keeps its accounts in that one file.

use std::path::Path;

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

const PASSWD: &str = "/etc/passwd";

/// The accounts of `passwd` (lines that are not `name:x:uid:gid:...` are passed over).
fn accounts(passwd: &Path) -> Vec<Account> {
    let text = std::fs::read_to_string(passwd).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?.to_owned();
            let _password = fields.next()?;
            let uid = fields.next()?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some(Account { name, uid, gid })
        })
        .collect()
}

/// The account named `name`.
pub fn by_name(name: &str) -> Option<Account> {
    accounts(Path::new(PASSWD))
        .into_iter()
        .find(|a| a.name == name)
}

/// The name of the first account with `uid`.
pub fn name_of(uid: u32) -> Option<String> {
    accounts(Path::new(PASSWD))
        .into_iter()
        .find(|a| a.uid == uid)
        .map(|a| a.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_and_broken_ones_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        std::fs::write(
            &path,
            "root:x:0:0:root:/root:/bin/sh\nbroken\npostern:x:100:100::/nonexistent:/bin/false\nodd:x:notanumber:1::/:/bin/false\n",
        )
        .unwrap();
        let all = accounts(&path);
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[1],
            Account {
                name: "postern".into(),
                uid: 100,
                gid: 100
            }
        );
    }
}
