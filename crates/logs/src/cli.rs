//! The events of `cli_logs`, the CLI audit trail, in the reference appliance's words: every line
//! an administrator enters, with the session's process id, the user and the prompt it answered:
//!
//! ```text
//! Thu Sep  9 14:35:55 2004 Info: PID 16434: User admin entered 'who'; prompt was '\nmail3.example.com> '
//! ```

use std::fmt;

/// One `cli_logs` event. `Display` gives the event text that follows `Info: ` on a line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CliEvent<'a> {
    /// `PID 1234: User admin entered 'status'; prompt was '\nmail.example.com> '`. A secret (a
    /// password, a pasted private key) is `None`, and never written.
    Entered {
        pid: u32,
        user: &'a str,
        entered: Option<&'a str>,
        prompt: &'a str,
    },
}

impl fmt::Display for CliEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Entered {
                pid,
                user,
                entered: Some(entered),
                prompt,
            } => write!(
                f,
                "PID {pid}: User {user} entered '{}'; prompt was '{}'",
                escape(entered),
                escape(prompt)
            ),
            Self::Entered {
                pid,
                user,
                entered: None,
                prompt,
            } => write!(
                f,
                "PID {pid}: User {user} entered a secret, not logged; prompt was '{}'",
                escape(prompt)
            ),
        }
    }
}

/// Line breaks as `\n`, as the reference writes them, so that one entry stays one line.
fn escape(text: &str) -> String {
    text.replace('\n', "\\n").replace('\r', "\\r")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_as_the_reference_writes_them() {
        let typed = CliEvent::Entered {
            pid: 16434,
            user: "admin",
            entered: Some("who"),
            prompt: "\nmail3.example.com> ",
        };
        assert_eq!(
            typed.to_string(),
            "PID 16434: User admin entered 'who'; prompt was '\\nmail3.example.com> '"
        );
        let secret = CliEvent::Entered {
            pid: 7,
            user: "ops",
            entered: None,
            prompt: "Enter the new password:\n> ",
        };
        assert_eq!(
            secret.to_string(),
            "PID 7: User ops entered a secret, not logged; prompt was 'Enter the new password:\\n> '"
        );
    }
}
