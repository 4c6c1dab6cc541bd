//! The message of the DATA phase (RFC 5321 4.1.1.4, 4.5.2): dot-unstuffing and the end marker
//! for the server, dot-stuffing for the client.

use crate::reply::Reply;

/// Reads a message after `354`: removes the dot-stuffing and finds the end marker
/// `CRLF . CRLF`.
///
/// Only that exact sequence ends the message. A bare LF or CR anywhere in the message makes it
/// refused, but only once the real end marker is seen, so the server answers exactly once and
/// stays in step with the client; whatever was smuggled behind a bare line ending stays inside
/// the refused message and is never read as a command. Past the size limit nothing more is
/// stored, but the end marker is still looked for.
///
/// The decoder keeps no bytes of its own: what it decodes goes to the caller's buffer, which
/// never grows past the size limit.
#[derive(Debug, Clone)]
pub struct DataDecoder {
    state: State,
    max_size: u64,
    /// Octets of the message so far, counted on past the limit.
    size: u64,
    /// The first problem seen: once there is one, nothing more is stored.
    problem: Option<DataError>,
    /// Set when the end marker has been seen.
    outcome: Option<Result<u64, DataError>>,
}

/// Where the decoder stands in the line it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line: the start of the message or just after a CRLF.
    LineStart,
    /// After a `.` at the start of a line.
    Dot,
    /// After `.` CR at the start of a line: LF ends the message.
    DotCr,
    /// Inside a line.
    Text,
    /// After a CR inside a line.
    Cr,
}

/// What a call to [`DataDecoder::decode`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataStatus {
    /// All the input was read; the end marker has not come yet.
    NeedMore,
    /// The end marker ended at `consumed` octets into this input; what follows belongs to the
    /// next command. `result` is the message size in octets, or why the message is refused.
    Done {
        consumed: usize,
        result: Result<u64, DataError>,
    },
}

impl DataDecoder {
    /// A decoder for a message of at most `max_size` octets (counted as RFC 1870 does: CRLFs
    /// included, without the end marker and the stuffed dots).
    pub fn new(max_size: u64) -> Self {
        Self {
            state: State::LineStart,
            max_size,
            size: 0,
            problem: None,
            outcome: None,
        }
    }

    /// Reads `input`, appending the message octets it holds to `body`: CRLF line endings, dots
    /// unstuffed, the end marker removed but the CRLF of the last line kept. Once the message is
    /// refused nothing more is appended; what was appended before must be discarded.
    ///
    /// After `Done`, further calls read nothing and give the same `Done` with `consumed: 0`.
    pub fn decode(&mut self, input: &[u8], body: &mut Vec<u8>) -> DataStatus {
        if let Some(result) = self.outcome {
            return DataStatus::Done {
                consumed: 0,
                result,
            };
        }
        let mut i = 0;
        while i < input.len() {
            let byte = input[i];
            i += 1;
            match self.state {
                State::LineStart if byte == b'.' => self.state = State::Dot,
                State::LineStart | State::Text => {
                    if self.text_byte(byte, body) {
                        // Copy the rest of the line up to the next CR or LF in one go.
                        let run = input[i..]
                            .iter()
                            .position(|&b| b == b'\r' || b == b'\n')
                            .unwrap_or(input.len() - i);
                        self.store(&input[i..i + run], body);
                        i += run;
                    }
                }
                State::Dot => match byte {
                    b'\r' => self.state = State::DotCr,
                    // A doubled dot: the first was added by the client.
                    b'.' => {
                        self.store(b".", body);
                        self.state = State::Text;
                    }
                    // A line that starts with one dot and goes on: RFC 5321 4.5.2 deletes the
                    // dot.
                    _ => {
                        self.text_byte(byte, body);
                    }
                },
                State::DotCr => {
                    if byte == b'\n' {
                        let result = match self.problem {
                            Some(problem) => Err(problem),
                            None => Ok(self.size),
                        };
                        self.outcome = Some(result);
                        return DataStatus::Done {
                            consumed: i,
                            result,
                        };
                    }
                    self.problem(DataError::BareCr);
                    self.text_byte(byte, body);
                }
                State::Cr => {
                    if byte == b'\n' {
                        self.store(b"\r\n", body);
                        self.state = State::LineStart;
                    } else {
                        self.problem(DataError::BareCr);
                        self.text_byte(byte, body);
                    }
                }
            }
        }
        DataStatus::NeedMore
    }

    /// Reads one octet inside a line; true when it was plain text, so more may follow.
    fn text_byte(&mut self, byte: u8, body: &mut Vec<u8>) -> bool {
        match byte {
            b'\r' => {
                self.state = State::Cr;
                false
            }
            b'\n' => {
                self.problem(DataError::BareLf);
                self.state = State::Text;
                false
            }
            _ => {
                self.store(&[byte], body);
                self.state = State::Text;
                true
            }
        }
    }

    fn store(&mut self, bytes: &[u8], body: &mut Vec<u8>) {
        self.size = self.size.saturating_add(bytes.len() as u64);
        if self.size > self.max_size {
            self.problem(DataError::TooBig {
                limit: self.max_size,
            });
        }
        if self.problem.is_none() {
            body.extend_from_slice(bytes);
        }
    }

    fn problem(&mut self, problem: DataError) {
        self.problem.get_or_insert(problem);
    }

    /// Octets of the message read so far, including those past the size limit.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the end marker has been seen.
    pub fn is_done(&self) -> bool {
        self.outcome.is_some()
    }
}

/// Why a message is refused. The first problem found is the one reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The message is larger than the limit.
    #[error("message larger than {limit} octets")]
    TooBig { limit: u64 },
    /// A LF not preceded by CR.
    #[error("bare LF in message")]
    BareLf,
    /// A CR not followed by LF.
    #[error("bare CR in message")]
    BareCr,
}

impl DataError {
    /// The reply a server gives after the end marker.
    pub fn reply(&self) -> Reply {
        match self {
            Self::TooBig { .. } => Reply::message_too_big(),
            Self::BareLf | Self::BareCr => Reply::bare_line_ending(),
        }
    }
}

/// Writes a message in the form of the DATA phase for the client: CRLF line endings (a bare LF
/// or CR becomes CRLF), a dot doubled at the start of each line, a last CRLF added where the
/// message lacks one, and the end marker `.` CRLF.
///
/// Feed it the message in pieces of any size with [`encode`](Self::encode), then
/// [`finish`](Self::finish).
#[derive(Debug, Clone)]
pub struct DataEncoder {
    at_line_start: bool,
    /// The last octet fed was a CR: its line ends whether a LF follows or not.
    after_cr: bool,
}

impl DataEncoder {
    pub fn new() -> Self {
        Self {
            at_line_start: true,
            after_cr: false,
        }
    }

    /// Appends the wire form of `chunk` to `out`.
    pub fn encode(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < chunk.len() {
            let byte = chunk[i];
            i += 1;
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\r' | b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    self.at_line_start = true;
                    self.after_cr = byte == b'\r';
                }
                _ => {
                    if self.at_line_start && byte == b'.' {
                        out.push(b'.');
                    }
                    self.at_line_start = false;
                    let run = chunk[i..]
                        .iter()
                        .position(|&b| b == b'\r' || b == b'\n')
                        .unwrap_or(chunk.len() - i);
                    out.push(byte);
                    out.extend_from_slice(&chunk[i..i + run]);
                    i += run;
                }
            }
        }
    }

    /// Ends the message: a CRLF if the last line lacks one, then `.` CRLF.
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

impl Default for DataEncoder {
    fn default() -> Self {
        Self::new()
    }
}

/// The whole message in its DATA form, end marker included: see [`DataEncoder`].
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut encoder = DataEncoder::new();
    encoder.encode(message, &mut out);
    encoder.finish(&mut out);
    out
}

#[cfg(test)]
mod tests;
