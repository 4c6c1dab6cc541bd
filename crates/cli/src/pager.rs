//! Long output one screenful at a time, as the reference appliance shows it: after a terminal's
//! height of lines, `-Press Any Key For More-` waits for a key; `q` stops the listing. Only
//! when both ends are a terminal: a script's output is never held up.

use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsFd;

use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices};

/// What the pager shows when a screenful is full.
pub const MORE: &str = "-Press Any Key For More-";

/// Standard output, paged on a terminal.
#[derive(Debug)]
pub struct Pager {
    stdout: io::Stdout,
    /// Whether output is paged: both ends are a terminal, and no command turned it off.
    paging: bool,
    /// Lines written since the administrator last typed something (and so saw them).
    lines: usize,
    /// The listing was stopped with `q`: the rest of the command's output is refused.
    stopped: bool,
}

/// The error of a write after the administrator stopped a listing with `q`.
#[derive(Debug, thiserror::Error)]
#[error("the listing was stopped")]
pub struct ListingStopped;

impl Pager {
    pub fn new(stdin_is_terminal: bool) -> Self {
        let stdout = io::stdout();
        let paging = stdin_is_terminal && stdout.is_terminal();
        Self {
            stdout,
            paging,
            lines: 0,
            stopped: false,
        }
    }

    /// The administrator is about to type: all output so far was seen, a new listing begins
    /// below the line being typed.
    pub fn input_begins(&mut self) {
        self.lines = 1;
        self.stopped = false;
    }

    /// Turns paging off (`tail` following a log) or back on, where there is a terminal.
    pub fn set_paging(&mut self, on: bool) {
        self.paging = on && self.stdout.is_terminal() && io::stdin().is_terminal();
    }

    /// Lines of output that fit before the pager asks for a key: the terminal's height less
    /// the line the question takes. `None` when the height is not known.
    fn page_lines(&self) -> Option<usize> {
        let size = rustix::termios::tcgetwinsize(self.stdout.as_fd()).ok()?;
        usize::from(size.ws_row).checked_sub(1).filter(|n| *n > 0)
    }

    /// Shows [`MORE`] and waits for one key; false when it was `q` (or Ctrl-C).
    fn more(&mut self) -> io::Result<bool> {
        write!(self.stdout, "{MORE}")?;
        self.stdout.flush()?;
        let key = read_key()?;
        // The question goes, so that the listing reads on as one.
        write!(self.stdout, "\r{}\r", " ".repeat(MORE.len()))?;
        Ok(!matches!(key, Some(b'q' | b'Q' | 0x03) | None))
    }
}

impl Write for Pager {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.stopped {
            return Err(io::Error::other(ListingStopped));
        }
        if !self.paging {
            return self.stdout.write(buf);
        }
        for piece in buf.split_inclusive(|b| *b == b'\n') {
            if let Some(page) = self.page_lines()
                && self.lines >= page
            {
                self.lines = 0;
                if !self.more()? {
                    self.stopped = true;
                    return Err(io::Error::other(ListingStopped));
                }
            }
            self.stdout.write_all(piece)?;
            if piece.ends_with(b"\n") {
                self.lines += 1;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stdout.flush()
    }
}

/// Whether `error` is a write refused after the administrator stopped the listing.
pub fn is_listing_stopped(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<ListingStopped>())
}

/// One key from the terminal, without echo and without waiting for Enter; Ctrl-C is a key
/// here (0x03), not a signal. `None` at the end of input.
fn read_key() -> io::Result<Option<u8>> {
    let stdin = io::stdin();
    let terminal = stdin.as_fd();
    let saved = termios::tcgetattr(terminal)?;
    let mut raw = saved.clone();
    raw.local_flags
        .remove(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG);
    raw.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
    raw.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
    termios::tcsetattr(terminal, SetArg::TCSANOW, &raw)?;
    let mut key = [0u8; 1];
    let read = stdin.lock().read(&mut key);
    // Back to lines whatever happened: the session goes on reading commands.
    let restored = termios::tcsetattr(terminal, SetArg::TCSANOW, &saved);
    let read = read?;
    restored?;
    Ok((read == 1).then_some(key[0]))
}
