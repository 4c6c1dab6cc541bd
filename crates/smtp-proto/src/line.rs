//! Command lines as they arrive from the network: framing at CRLF, with the length, bare-LF and
//! NUL rules that keep a server in step with its client whatever the client sends.

use crate::reply::Reply;

/// The longest command line RFC 5321 4.5.3.1.4 allows, CRLF included.
pub const MAX_COMMAND_LINE: usize = 512;

/// One complete line without its CRLF. It holds no CR, LF or NUL and fits the limit of the
/// [`LineBuffer`] it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line(Vec<u8>);

impl Line {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl AsRef<[u8]> for Line {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Splits the bytes a peer sends into CRLF-terminated lines.
///
/// Feed it whatever a read returned ([`push`](Self::push)), then take lines until
/// [`next_line`](Self::next_line) says `None`. Each line, good or bad, comes out exactly once and
/// in order, so a server answers every line and stays in step with a pipelining client. An
/// over-long line is reported as soon as it passes the limit and the rest of it is dropped as it
/// arrives: once the lines are taken, the buffer holds less than one line limit, whatever the
/// peer sends.
#[derive(Debug, Clone)]
pub struct LineBuffer {
    buf: Vec<u8>,
    /// Where the unconsumed bytes start in `buf`; consumed bytes are dropped at the next push.
    start: usize,
    /// How many unconsumed bytes are known to hold no LF, so that a line fed one byte at a time
    /// is scanned once and not once per byte.
    scanned: usize,
    /// Inside an over-long line that was already reported: bytes are dropped up to and including
    /// the next LF.
    discarding: bool,
    max_line: usize,
}

/// A line as framed, before the strict checks of [`LineBuffer::next_line`].
pub(crate) enum RawLine {
    /// A line with its LF (and CR, if any).
    Complete(Vec<u8>),
    /// A line longer than the limit; its bytes are gone.
    TooLong,
}

impl LineBuffer {
    /// A buffer for SMTP command lines: at most [`MAX_COMMAND_LINE`] octets, CRLF included.
    pub fn new() -> Self {
        Self::with_max_line(MAX_COMMAND_LINE)
    }

    /// A buffer for lines of at most `max_line` octets, line ending included (at least 2).
    pub fn with_max_line(max_line: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            discarding: false,
            max_line: max_line.max(2),
        }
    }

    /// The longest line accepted, line ending included.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Adds bytes received from the peer. Bytes of an over-long line already reported are
    /// dropped here and never stored.
    pub fn push(&mut self, mut bytes: &[u8]) {
        if self.discarding {
            match bytes.iter().position(|&b| b == b'\n') {
                Some(lf) => {
                    self.discarding = false;
                    bytes = bytes.get(lf + 1..).unwrap_or_default();
                }
                None => return,
            }
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line, or `None` until more bytes arrive.
    ///
    /// A line that breaks a rule comes out as an error in its place: [`LineError::TooLong`] as
    /// soon as the limit is passed (the rest of that line is then dropped), [`LineError::Nul`],
    /// [`LineError::BareLf`] and [`LineError::BareCr`] at its end. In that order of precedence.
    pub fn next_line(&mut self) -> Option<Result<Line, LineError>> {
        Some(match self.next_raw()? {
            RawLine::TooLong => Err(LineError::TooLong {
                limit: self.max_line,
            }),
            RawLine::Complete(mut line) => {
                line.pop();
                let crlf = line.last() == Some(&b'\r');
                if crlf {
                    line.pop();
                }
                if line.contains(&0) {
                    Err(LineError::Nul)
                } else if !crlf {
                    Err(LineError::BareLf)
                } else if line.contains(&b'\r') {
                    Err(LineError::BareCr)
                } else {
                    Ok(Line(line))
                }
            }
        })
    }

    /// The next line as framed at its LF, checked for length only.
    pub(crate) fn next_raw(&mut self) -> Option<RawLine> {
        let pending = self.buf.get(self.start..).unwrap_or_default();
        let unscanned = pending.get(self.scanned..).unwrap_or_default();
        match unscanned.iter().position(|&b| b == b'\n') {
            Some(lf) => {
                let len = self.scanned + lf + 1;
                let line = (len <= self.max_line).then(|| pending[..len].to_vec());
                self.start += len;
                self.scanned = 0;
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                Some(line.map_or(RawLine::TooLong, RawLine::Complete))
            }
            None if pending.len() >= self.max_line => {
                // The line has no LF within the limit, so it is too long whatever follows.
                self.clear();
                self.discarding = true;
                Some(RawLine::TooLong)
            }
            None => {
                self.scanned = pending.len();
                None
            }
        }
    }

    /// Whether bytes are held that no line has taken yet: after `STARTTLS`, such bytes were
    /// pipelined in plain text and must be discarded, not read as if they came over TLS.
    pub fn has_pending(&self) -> bool {
        self.pending_len() > 0
    }

    /// How many received bytes no line has taken yet.
    pub fn pending_len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Takes the bytes no line has taken yet, for the DATA decoder after `354`.
    pub fn take_pending(&mut self) -> Vec<u8> {
        let pending = self.buf.split_off(self.start);
        self.clear();
        pending
    }

    /// Forgets every byte held, and any over-long line being dropped.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.scanned = 0;
        self.discarding = false;
    }
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a line was refused. The line is gone; the next one starts after its LF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// The line is longer than the limit, line ending included.
    #[error("line longer than {limit} octets")]
    TooLong { limit: usize },
    /// The line ends in LF without CR: a bare LF is how SMTP smuggling starts.
    #[error("line ends in a bare LF")]
    BareLf,
    /// A CR inside the line that is not part of its CRLF.
    #[error("bare CR inside a line")]
    BareCr,
    /// A NUL octet inside the line.
    #[error("NUL octet in a line")]
    Nul,
}

impl LineError {
    /// The reply a server gives to the line.
    pub fn reply(&self) -> Reply {
        match self {
            Self::TooLong { .. } => Reply::line_too_long(),
            Self::BareLf => Reply::syntax_error("Bare LF received; lines must end with CRLF"),
            Self::BareCr => Reply::syntax_error("Bare CR received; lines must end with CRLF"),
            Self::Nul => Reply::syntax_error("NUL character received"),
        }
    }
}

#[cfg(test)]
mod tests;
