//! Where the CLI reads lines and writes output.

use std::io::{self, BufRead, IsTerminal, Write};
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::termios::{self, LocalFlags, SetArg, Termios};

/// The two ends of a CLI session.
pub trait Console {
    /// Shows `prompt` and reads one line without its line ending; `None` at end of input.
    fn read_line(&mut self, prompt: &str) -> io::Result<Option<String>>;
    /// As `read_line`, for a secret (a password): a terminal does not echo it, and a script's
    /// line is not echoed either.
    fn read_secret(&mut self, prompt: &str) -> io::Result<Option<String>>;
    /// Where command output goes.
    fn out(&mut self) -> &mut dyn Write;
    /// Whether an administrator types at a terminal (`tail` then follows the log until
    /// Ctrl-C); false for a script.
    fn is_terminal(&self) -> bool {
        false
    }
}

/// Standard input and output. When input is not a terminal each line read is echoed after its
/// prompt, so the output of a script reads like the session it was.
#[derive(Debug)]
pub struct StdConsole {
    stdin: io::StdinLock<'static>,
    stdout: io::Stdout,
    echo: bool,
}

impl StdConsole {
    pub fn new() -> Self {
        let stdin = io::stdin();
        let echo = !stdin.is_terminal();
        Self {
            stdin: stdin.lock(),
            stdout: io::stdout(),
            echo,
        }
    }
}

impl Default for StdConsole {
    fn default() -> Self {
        Self::new()
    }
}

impl Console for StdConsole {
    fn read_line(&mut self, prompt: &str) -> io::Result<Option<String>> {
        write!(self.stdout, "{prompt}")?;
        self.stdout.flush()?;
        let mut line = String::new();
        if self.stdin.read_line(&mut line)? == 0 {
            if self.echo {
                writeln!(self.stdout)?;
            }
            return Ok(None);
        }
        let line = line.trim_end_matches(['\n', '\r']).to_owned();
        if self.echo {
            writeln!(self.stdout, "{line}")?;
        }
        Ok(Some(line))
    }

    fn read_secret(&mut self, prompt: &str) -> io::Result<Option<String>> {
        // Off before the prompt shows: what is typed as soon as it shows is not echoed either.
        let stdin = io::stdin();
        let _quiet = if self.echo {
            None
        } else {
            Some(EchoOff::new(stdin.as_fd())?)
        };
        write!(self.stdout, "{prompt}")?;
        self.stdout.flush()?;
        let mut line = String::new();
        let read = self.stdin.read_line(&mut line)?;
        // The Enter that ended the line was not echoed either.
        writeln!(self.stdout)?;
        if read == 0 {
            return Ok(None);
        }
        Ok(Some(line.trim_end_matches(['\n', '\r']).to_owned()))
    }

    fn out(&mut self) -> &mut dyn Write {
        &mut self.stdout
    }

    fn is_terminal(&self) -> bool {
        !self.echo
    }
}

/// A terminal's echo, off for as long as this lives.
struct EchoOff<'fd> {
    terminal: BorrowedFd<'fd>,
    saved: Termios,
}

impl<'fd> EchoOff<'fd> {
    fn new(terminal: BorrowedFd<'fd>) -> io::Result<Self> {
        let saved = termios::tcgetattr(terminal)?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        termios::tcsetattr(terminal, SetArg::TCSANOW, &quiet)?;
        Ok(Self { terminal, saved })
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        // Nothing better to do if it fails: the session goes on, and the login that ends it
        // resets the terminal.
        let _ = termios::tcsetattr(self.terminal, SetArg::TCSANOW, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_is_off_while_a_secret_is_read_and_back_after() {
        let pty = nix::pty::openpty(None, None).expect("a pseudo-terminal");
        let echoes = |fd| termios::tcgetattr(fd).map(|t| t.local_flags.contains(LocalFlags::ECHO));
        assert!(echoes(pty.slave.as_fd()).unwrap(), "a new terminal echoes");
        {
            let _quiet = EchoOff::new(pty.slave.as_fd()).unwrap();
            assert!(!echoes(pty.slave.as_fd()).unwrap());
        }
        assert!(echoes(pty.slave.as_fd()).unwrap());
        // Not a terminal: an error, not a panic.
        let file = tempfile::tempfile().unwrap();
        assert!(EchoOff::new(file.as_fd()).is_err());
    }
}
