//! One administrator session: its connection to the supervisor, its pending changes, and the
//! command loop. Every line read is written to `cli_logs` (by the supervisor) with the prompt
//! it answered; secrets only as having been entered.

use std::io::{self, Write};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use postern_config::{Config, Generation, Role, UserName};
use postern_control::{Client, ClientError};
use tokio::runtime::Runtime;

use crate::commands::{self, CommandError};
use crate::console::Console;
use crate::pager::is_listing_stopped;

/// Why a session could not begin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error(transparent)]
    Control(#[from] ClientError),
    #[error("cannot start the CLI runtime: {0}")]
    Runtime(io::Error),
    #[error("there is no user '{0}' on this appliance")]
    UnknownUser(String),
}

/// An administrator's session. Changes made by commands stay pending here, invisible to
/// everyone else, until `commit`; `clear` or the end of the session discards them.
#[derive(Debug)]
pub struct Session<C: Console> {
    pub(crate) console: C,
    /// Runs control requests to completion: `self.runtime.block_on(self.client.status())`.
    pub(crate) runtime: Runtime,
    pub(crate) client: Client,
    pub(crate) user: String,
    /// The data directory: `tail`, `grep` and `findevent` read its logs.
    pub(crate) data: PathBuf,
    /// The committed generation the pending changes started from (the merge base at commit).
    pub(crate) base: Generation,
    pub(crate) pending: Option<Config>,
    /// On a terminal, Ctrl-C (SIGINT): it stops `tail` following a log, leaves a dialog
    /// without the changes made in it, gives a new prompt at the command prompt, and nowhere
    /// ends the session.
    pub(crate) interrupt: Option<tokio::signal::unix::Signal>,
}

impl<C: Console> Session<C> {
    /// Connects to the supervisor of the data directory `data` as `user`.
    pub fn connect(data: &Path, user: &str, console: C) -> Result<Self, SessionError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(SessionError::Runtime)?;
        let socket = postern_control::socket_path(data);
        let mut client = runtime.block_on(Client::connect(&socket, &format!("cli:{user}")))?;
        let base = runtime.block_on(client.config())?;
        let known = UserName::new(user).is_ok_and(|u| base.config.users.contains_key(&u));
        if !known {
            return Err(SessionError::UnknownUser(user.to_owned()));
        }
        let interrupt = if console.is_terminal() {
            let interrupt = runtime.block_on(async {
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            });
            Some(interrupt.map_err(SessionError::Runtime)?)
        } else {
            None
        };
        Ok(Self {
            console,
            runtime,
            client,
            user: user.to_owned(),
            data: data.to_owned(),
            base,
            pending: None,
            interrupt,
        })
    }

    /// Reads and runs commands until `quit` or the end of input. Returns whether every command
    /// succeeded. Pending changes left at the end are discarded, with a warning.
    pub fn run(&mut self) -> io::Result<bool> {
        let mut all_ok = true;
        loop {
            let prompt = self.prompt();
            let line = match self.read_line(None, &prompt) {
                Ok(Some(line)) => line,
                Ok(None) => break,
                // Ctrl-C at the prompt: a new prompt, as a shell gives.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if matches!(line, "quit" | "exit" | "q") {
                break;
            }
            all_ok &= self.execute(line)?;
        }
        self.discard_on_exit()?;
        Ok(all_ok)
    }

    /// Runs one command line (`-c`); returns whether it succeeded.
    pub fn run_one(&mut self, line: &str) -> io::Result<bool> {
        let prompt = self.prompt();
        self.audit(Some(line), &prompt);
        let line = line.trim();
        if matches!(line, "quit" | "exit" | "q") {
            return Ok(true);
        }
        let ok = self.execute(line)?;
        self.discard_on_exit()?;
        Ok(ok)
    }

    fn execute(&mut self, line: &str) -> io::Result<bool> {
        let (name, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        // What was pending before the command: a dialog left with Ctrl-C keeps none of its
        // changes, including those it had staged before the question it was left at.
        let before = self.pending.clone();
        match commands::dispatch(self, name, rest.trim()) {
            Ok(()) => Ok(true),
            // `q` at the pager: the rest of the output is not wanted, and a dialog whose
            // output it was is left as with Ctrl-C, quietly.
            Err(CommandError::Io(e)) if is_listing_stopped(&e) => {
                self.pending = before;
                Ok(true)
            }
            Err(CommandError::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {
                let dropped = self.pending != before;
                self.pending = before;
                let what = if dropped {
                    "the changes made in it were dropped"
                } else {
                    "nothing was changed"
                };
                writeln!(self.out(), "Interrupted: {name} was left; {what}.")?;
                Ok(false)
            }
            Err(CommandError::Io(e)) => Err(e),
            Err(e) => {
                writeln!(self.out(), "{e}")?;
                Ok(false)
            }
        }
    }

    fn discard_on_exit(&mut self) -> io::Result<()> {
        if self.pending.take().is_some() {
            writeln!(
                self.out(),
                "Warning: uncommitted changes were discarded at the end of the session."
            )?;
        }
        Ok(())
    }

    /// `host> `, or `host (uncommitted changes)> ` while changes are pending.
    fn prompt(&self) -> String {
        let host = &self.view().system.hostname;
        match self.pending {
            Some(_) => format!("{host} (uncommitted changes)> "),
            None => format!("{host}> "),
        }
    }

    pub(crate) fn out(&mut self) -> &mut dyn Write {
        self.console.out()
    }

    /// The configuration as this session sees it: its pending changes, or the committed one.
    pub(crate) fn view(&self) -> &Config {
        self.pending.as_ref().unwrap_or(&self.base.config)
    }

    /// The committed configuration, fresh from the supervisor when nothing is pending (so that a
    /// new change starts from what others committed meanwhile).
    pub(crate) fn refresh(&mut self) -> Result<(), CommandError> {
        if self.pending.is_none() {
            self.base = self.runtime.block_on(self.client.config())?;
        }
        Ok(())
    }

    /// Refuses a change to an operator, who looks at the configuration and changes nothing.
    pub(crate) fn may_change(&self) -> Result<(), CommandError> {
        let role = UserName::new(&self.user)
            .ok()
            .and_then(|name| self.base.config.users.get(&name))
            .map(|user| user.role);
        match role {
            Some(Role::Operator) => Err(CommandError::Refused(format!(
                "{} is an operator: operators can look at the configuration and the logs, not \
                 change them.",
                self.user
            ))),
            _ => Ok(()),
        }
    }

    /// Applies a change to this session's configuration; it stays pending until `commit`.
    pub(crate) fn stage(
        &mut self,
        change: impl FnOnce(&mut Config) -> Result<(), CommandError>,
    ) -> Result<(), CommandError> {
        self.may_change()?;
        self.refresh()?;
        let mut config = self.view().clone();
        change(&mut config)?;
        self.pending = (config != self.base.config).then_some(config);
        Ok(())
    }

    /// Asks a question whose answer defaults to `default` on Enter. The question's text is
    /// printed first, then `[default]> ` as the prompt.
    pub(crate) fn ask(&mut self, question: &str, default: &str) -> Result<String, CommandError> {
        writeln!(self.out(), "{question}")?;
        let answer = self
            .read_line(Some(question), &format!("[{default}]> "))?
            .ok_or(CommandError::InputEnded)?;
        let answer = answer.trim();
        Ok(if answer.is_empty() {
            default.to_owned()
        } else {
            answer.to_owned()
        })
    }

    /// Reads one line after `prompt`; `None` at the end of input. The line goes to `cli_logs`
    /// with the prompt, after `question` when the prompt answers one printed just before it.
    pub(crate) fn read_line(
        &mut self,
        question: Option<&str>,
        prompt: &str,
    ) -> io::Result<Option<String>> {
        let line = self.read_from_console(prompt, false)?;
        if let Some(line) = &line {
            match question {
                Some(question) => self.audit(Some(line), &format!("{question}\n{prompt}")),
                None => self.audit(Some(line), prompt),
            }
        }
        Ok(line)
    }

    /// Reads a secret (a password) after `prompt`: not echoed, and in `cli_logs` only as a
    /// secret that was entered.
    pub(crate) fn read_secret(&mut self, prompt: &str) -> io::Result<Option<String>> {
        let secret = self.read_from_console(prompt, true)?;
        if secret.is_some() {
            self.audit(None, prompt);
        }
        Ok(secret)
    }

    /// A line from the console; on a terminal Ctrl-C gives up the read with an
    /// [`io::ErrorKind::Interrupted`] error.
    fn read_from_console(&mut self, prompt: &str, secret: bool) -> io::Result<Option<String>> {
        let Some(interrupt) = self.interrupt.as_mut() else {
            return if secret {
                self.console.read_secret(prompt)
            } else {
                self.console.read_line(prompt)
            };
        };
        let runtime = &self.runtime;
        // A Ctrl-C pressed while a command ran, before this question shows, is not an answer
        // to it.
        runtime.block_on(async {
            while tokio::time::timeout(Duration::ZERO, interrupt.recv())
                .await
                .is_ok()
            {}
        });
        self.console
            .read_interruptible(prompt, secret, &mut |terminal| {
                line_or_interrupt(runtime, interrupt, terminal)
            })
    }

    /// Writes to `cli_logs` that the user entered `entered` (`None`: a secret, logged only as
    /// entered) at `prompt`. A line that cannot be written is not the command's failure: the
    /// supervisor that would write it is gone, and the command itself says so.
    pub(crate) fn audit(&mut self, entered: Option<&str>, prompt: &str) {
        let pid = std::process::id();
        let _ = self
            .runtime
            .block_on(self.client.cli_entered(pid, &self.user, entered, prompt));
    }

    /// A yes/no question.
    pub(crate) fn confirm(&mut self, question: &str, default: bool) -> Result<bool, CommandError> {
        loop {
            let answer = self.ask(question, if default { "Y" } else { "N" })?;
            match answer.to_ascii_lowercase().as_str() {
                "y" | "yes" => return Ok(true),
                "n" | "no" => return Ok(false),
                _ => writeln!(self.out(), "Please answer Y or N.")?,
            }
        }
    }
}

/// How often a terminal is looked at for a line while Ctrl-C is awaited too.
const INPUT_TICK: Duration = Duration::from_millis(50);

/// Waits until `terminal` has a whole line to read (true) or Ctrl-C is pressed (false).
fn line_or_interrupt(
    runtime: &Runtime,
    interrupt: &mut tokio::signal::unix::Signal,
    terminal: BorrowedFd<'_>,
) -> io::Result<bool> {
    runtime.block_on(async {
        // A terminal in canonical mode is readable once a whole line (or the end) is typed.
        // Looked at every tick rather than waited on: a wait would need the terminal
        // registered with the runtime, which takes unsafe code.
        loop {
            let mut fds = [PollFd::new(terminal, PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::ZERO) {
                Ok(0) => {}
                Ok(_) => return Ok(true),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(io::Error::from(e)),
            }
            tokio::select! {
                _ = interrupt.recv() => return Ok(false),
                () = tokio::time::sleep(INPUT_TICK) => {}
            }
        }
    })
}
