//! Where the CLI reads lines and writes output.

use std::io::{self, BufRead, IsTerminal, Write};
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::termios::{self, LocalFlags, SetArg, Termios};

use crate::pager::Pager;

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
    /// Pages long output on a terminal (on by default there), or not (`tail` following a log).
    fn set_paging(&mut self, _on: bool) {}
    /// As `read_line` (or `read_secret` when `secret`), for a terminal where Ctrl-C gives up
    /// the question: after the prompt, while no line is ready, `wait` is called with the
    /// terminal. It returns whether a line is ready (false: interrupted), and then the read
    /// ends in an [`io::ErrorKind::Interrupted`] error.
    fn read_interruptible(
        &mut self,
        prompt: &str,
        secret: bool,
        _wait: &mut WaitForLine<'_>,
    ) -> io::Result<Option<String>> {
        if secret {
            self.read_secret(prompt)
        } else {
            self.read_line(prompt)
        }
    }
}

/// Waits until the terminal has a line to read (true) or Ctrl-C is pressed (false).
pub type WaitForLine<'a> = dyn FnMut(BorrowedFd<'_>) -> io::Result<bool> + 'a;

/// The error of a read that Ctrl-C gave up.
pub fn interrupted() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "interrupted (Ctrl-C)")
}

/// Standard input and output. When input is not a terminal each line read is echoed after its
/// prompt, so the output of a script reads like the session it was.
#[derive(Debug)]
pub struct StdConsole {
    /// Our own buffer, so that a line typed ahead (already read, not yet used) is known: it is
    /// ready without waiting. It is larger than the buffer of `Stdin` itself, which reads of
    /// this size bypass, so no line waits unseen there.
    stdin: io::BufReader<io::Stdin>,
    stdout: Pager,
    echo: bool,
}

impl StdConsole {
    pub fn new() -> Self {
        let stdin = io::stdin();
        let echo = !stdin.is_terminal();
        Self {
            stdin: io::BufReader::with_capacity(64 * 1024, stdin),
            stdout: Pager::new(!echo),
            echo,
        }
    }
}

impl Default for StdConsole {
    fn default() -> Self {
        Self::new()
    }
}

impl StdConsole {
    /// Shows `prompt`; with `wait`, waits for a whole line on the terminal or a Ctrl-C.
    fn prompt_and_wait(
        &mut self,
        prompt: &str,
        wait: Option<&mut WaitForLine<'_>>,
    ) -> io::Result<()> {
        self.stdout.input_begins();
        write!(self.stdout, "{prompt}")?;
        self.stdout.flush()?;
        // A line already read into the buffer (typed ahead) is ready without waiting.
        if let Some(wait) = wait
            && self.stdin.buffer().is_empty()
            && !wait(io::stdin().as_fd())?
        {
            // The terminal dropped what was typed; the next output starts on a new line.
            writeln!(self.stdout)?;
            return Err(interrupted());
        }
        Ok(())
    }

    fn line_after_prompt(&mut self) -> io::Result<Option<String>> {
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

    fn secret(
        &mut self,
        prompt: &str,
        wait: Option<&mut WaitForLine<'_>>,
    ) -> io::Result<Option<String>> {
        // Off before the prompt shows: what is typed as soon as it shows is not echoed either.
        let stdin = io::stdin();
        let _quiet = if self.echo {
            None
        } else {
            Some(EchoOff::new(stdin.as_fd())?)
        };
        self.prompt_and_wait(prompt, wait)?;
        let mut line = String::new();
        let read = self.stdin.read_line(&mut line)?;
        // The Enter that ended the line was not echoed either.
        writeln!(self.stdout)?;
        if read == 0 {
            return Ok(None);
        }
        Ok(Some(line.trim_end_matches(['\n', '\r']).to_owned()))
    }
}

impl Console for StdConsole {
    fn read_line(&mut self, prompt: &str) -> io::Result<Option<String>> {
        self.prompt_and_wait(prompt, None)?;
        self.line_after_prompt()
    }

    fn read_secret(&mut self, prompt: &str) -> io::Result<Option<String>> {
        self.secret(prompt, None)
    }

    fn read_interruptible(
        &mut self,
        prompt: &str,
        secret: bool,
        wait: &mut WaitForLine<'_>,
    ) -> io::Result<Option<String>> {
        if secret {
            self.secret(prompt, Some(wait))
        } else {
            self.prompt_and_wait(prompt, Some(wait))?;
            self.line_after_prompt()
        }
    }

    fn out(&mut self) -> &mut dyn Write {
        &mut self.stdout
    }

    fn is_terminal(&self) -> bool {
        !self.echo
    }

    fn set_paging(&mut self, on: bool) {
        self.stdout.set_paging(on);
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
