//! Where the CLI reads lines and writes output.

use std::io::{self, BufRead, IsTerminal, Write};

/// The two ends of a CLI session.
pub trait Console {
    /// Shows `prompt` and reads one line without its line ending; `None` at end of input.
    fn read_line(&mut self, prompt: &str) -> io::Result<Option<String>>;
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

    fn out(&mut self) -> &mut dyn Write {
        &mut self.stdout
    }

    fn is_terminal(&self) -> bool {
        !self.echo
    }
}
