//! SMTP replies: the ones a server sends, written to the wire, and a parser for the ones a client
//! receives from a server it cannot trust.

use std::fmt;
use std::str::FromStr;

use crate::line::{LineBuffer, RawLine};

/// The class of an enhanced status code (RFC 3463): its first number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusClass {
    /// `2.x.x`
    Success,
    /// `4.x.x`: persistent transient failure; trying again later may work.
    TransientFailure,
    /// `5.x.x`: permanent failure.
    PermanentFailure,
}

impl StatusClass {
    /// `2`, `4` or `5`: also the first digit of every reply code of this class.
    pub fn digit(self) -> u8 {
        match self {
            Self::Success => 2,
            Self::TransientFailure => 4,
            Self::PermanentFailure => 5,
        }
    }
}

/// An enhanced mail system status code (RFC 3463, RFC 2034): `5.1.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedStatus {
    class: StatusClass,
    subject: u16,
    detail: u16,
}

impl EnhancedStatus {
    /// The code `class.subject.detail`; subject and detail have at most three digits.
    pub const fn new(class: StatusClass, subject: u16, detail: u16) -> Option<Self> {
        if subject > 999 || detail > 999 {
            None
        } else {
            Some(Self {
                class,
                subject,
                detail,
            })
        }
    }

    /// For the codes of this crate's own replies, all within the limits of [`Self::new`].
    const fn known(class: StatusClass, subject: u16, detail: u16) -> Self {
        Self {
            class,
            subject,
            detail,
        }
    }

    pub fn class(self) -> StatusClass {
        self.class
    }

    pub fn subject(self) -> u16 {
        self.subject
    }

    pub fn detail(self) -> u16 {
        self.detail
    }
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class.digit(), self.subject, self.detail)
    }
}

impl FromStr for EnhancedStatus {
    type Err = InvalidEnhancedStatus;

    /// Parses `class.subject.detail`: `2`, `4` or `5`, then two numbers of one to three digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let number = |part: &str| {
            (!part.is_empty() && part.len() <= 3 && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u16>().ok())
                .flatten()
        };
        let mut parts = s.split('.');
        let (Some(class), Some(subject), Some(detail), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(InvalidEnhancedStatus);
        };
        let class = match class {
            "2" => Some(StatusClass::Success),
            "4" => Some(StatusClass::TransientFailure),
            "5" => Some(StatusClass::PermanentFailure),
            _ => None,
        };
        match (class, number(subject), number(detail)) {
            (Some(class), Some(subject), Some(detail)) => Ok(Self {
                class,
                subject,
                detail,
            }),
            _ => Err(InvalidEnhancedStatus),
        }
    }
}

/// Text that is not an enhanced status code such as `5.1.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an enhanced status code such as 5.1.1")]
pub struct InvalidEnhancedStatus;

const S_2_0_0: EnhancedStatus = EnhancedStatus::known(StatusClass::Success, 0, 0);
const S_2_1_0: EnhancedStatus = EnhancedStatus::known(StatusClass::Success, 1, 0);
const S_2_1_5: EnhancedStatus = EnhancedStatus::known(StatusClass::Success, 1, 5);
const S_4_3_0: EnhancedStatus = EnhancedStatus::known(StatusClass::TransientFailure, 3, 0);
const S_4_3_1: EnhancedStatus = EnhancedStatus::known(StatusClass::TransientFailure, 3, 1);
const S_4_3_2: EnhancedStatus = EnhancedStatus::known(StatusClass::TransientFailure, 3, 2);
const S_4_4_2: EnhancedStatus = EnhancedStatus::known(StatusClass::TransientFailure, 4, 2);
const S_4_5_3: EnhancedStatus = EnhancedStatus::known(StatusClass::TransientFailure, 5, 3);
const S_4_7_0: EnhancedStatus = EnhancedStatus::known(StatusClass::TransientFailure, 7, 0);
pub(crate) const S_5_1_3: EnhancedStatus =
    EnhancedStatus::known(StatusClass::PermanentFailure, 1, 3);
pub(crate) const S_5_1_7: EnhancedStatus =
    EnhancedStatus::known(StatusClass::PermanentFailure, 1, 7);
const S_5_3_4: EnhancedStatus = EnhancedStatus::known(StatusClass::PermanentFailure, 3, 4);
pub(crate) const S_5_5_1: EnhancedStatus =
    EnhancedStatus::known(StatusClass::PermanentFailure, 5, 1);
pub(crate) const S_5_5_2: EnhancedStatus =
    EnhancedStatus::known(StatusClass::PermanentFailure, 5, 2);
pub(crate) const S_5_5_4: EnhancedStatus =
    EnhancedStatus::known(StatusClass::PermanentFailure, 5, 4);
pub(crate) const S_5_6_7: EnhancedStatus =
    EnhancedStatus::known(StatusClass::PermanentFailure, 6, 7);
const S_5_6_11: EnhancedStatus = EnhancedStatus::known(StatusClass::PermanentFailure, 6, 11);
const S_5_7_1: EnhancedStatus = EnhancedStatus::known(StatusClass::PermanentFailure, 7, 1);
pub(crate) const S_5_7_0: EnhancedStatus =
    EnhancedStatus::known(StatusClass::PermanentFailure, 7, 0);

/// One SMTP reply: a code, an optional enhanced status code and one or more lines of text.
///
/// A reply always has a code from 200 to 599, a status whose class matches the code's first
/// digit, at least one line, and no control character in any line, so writing it can never
/// break the framing of the session, whatever text went into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    status: Option<EnhancedStatus>,
    lines: Vec<String>,
}

impl Reply {
    /// A one-line reply. Control characters in `text` become spaces.
    pub fn new(code: u16, status: Option<EnhancedStatus>, text: &str) -> Result<Self, ReplyError> {
        if !(200..=599).contains(&code) {
            return Err(ReplyError::BadCode(code));
        }
        if let Some(status) = status
            && u16::from(status.class.digit()) != code / 100
        {
            return Err(ReplyError::StatusMismatch { code, status });
        }
        Ok(Self {
            code,
            status,
            lines: vec![clean_text(text)],
        })
    }

    /// For this crate's own replies, whose codes and statuses match.
    pub(crate) fn fixed(code: u16, status: Option<EnhancedStatus>, text: &str) -> Self {
        Self {
            code,
            status,
            lines: vec![clean_text(text)],
        }
    }

    /// The same reply with one more line at the end. Control characters become spaces.
    pub fn with_line(mut self, text: &str) -> Self {
        self.lines.push(clean_text(text));
        self
    }

    /// `220 mx.example.com ESMTP`: the greeting. Greetings carry no enhanced status (RFC 2034).
    pub fn greeting(hostname: &str) -> Self {
        Self::fixed(220, None, &format!("{hostname} ESMTP"))
    }

    /// `250 mx.example.com`: the answer to HELO.
    pub fn helo(hostname: &str) -> Self {
        Self::fixed(250, None, hostname)
    }

    /// `250 2.0.0 Ok`: RSET, NOOP and other plain successes.
    pub fn ok() -> Self {
        Self::fixed(250, Some(S_2_0_0), "Ok")
    }

    /// `250 2.1.0 Sender ok`
    pub fn sender_ok() -> Self {
        Self::fixed(250, Some(S_2_1_0), "Sender ok")
    }

    /// `250 2.1.5 Recipient ok`
    pub fn recipient_ok() -> Self {
        Self::fixed(250, Some(S_2_1_5), "Recipient ok")
    }

    /// `354 End data with <CR><LF>.<CR><LF>`: the go-ahead for the message after DATA.
    pub fn start_mail_input() -> Self {
        Self::fixed(354, None, "End data with <CR><LF>.<CR><LF>")
    }

    /// `250 2.0.0 Ok: queued as ID`: the message is on disk.
    pub fn queued(id: &str) -> Self {
        Self::fixed(250, Some(S_2_0_0), &format!("Ok: queued as {id}"))
    }

    /// `221 2.0.0 Bye`: the answer to QUIT.
    pub fn closing() -> Self {
        Self::fixed(221, Some(S_2_0_0), "Bye")
    }

    /// `214 2.0.0 See RFC 5321`: the answer to HELP.
    pub fn help() -> Self {
        Self::fixed(214, Some(S_2_0_0), "See RFC 5321")
    }

    /// `252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery`: VRFY
    /// answered without telling which addresses exist (RFC 5321 3.5.3).
    pub fn cannot_verify() -> Self {
        Self::fixed(
            252,
            Some(S_2_0_0),
            "Cannot VRFY user, but will accept message and attempt delivery",
        )
    }

    /// `220 2.0.0 Ready to start TLS`
    pub fn ready_to_start_tls() -> Self {
        Self::fixed(220, Some(S_2_0_0), "Ready to start TLS")
    }

    /// `454 4.7.0 TLS not available due to temporary reason` (RFC 3207).
    pub fn tls_unavailable() -> Self {
        Self::fixed(
            454,
            Some(S_4_7_0),
            "TLS not available due to temporary reason",
        )
    }

    /// `550 5.7.1 Recipient address rejected: relaying denied`: the Recipient Access Table
    /// accepts no mail for the recipient's domain.
    pub fn relay_denied() -> Self {
        Self::fixed(
            550,
            Some(S_5_7_1),
            "Recipient address rejected: relaying denied",
        )
    }

    /// `421 4.7.0 <host> Too many connections, try again later`: a connection limit is reached.
    pub fn too_many_connections(hostname: &str) -> Self {
        Self::fixed(
            421,
            Some(S_4_7_0),
            &format!("{hostname} Too many connections, try again later"),
        )
    }

    /// `503 5.5.1 TLS already active`
    pub fn tls_already_active() -> Self {
        Self::fixed(503, Some(S_5_5_1), "TLS already active")
    }

    /// `530 5.7.0 Must issue a STARTTLS command first`: the listener requires TLS (RFC 3207).
    pub fn starttls_required() -> Self {
        Self::fixed(530, Some(S_5_7_0), "Must issue a STARTTLS command first")
    }

    /// `421 4.3.2 mx.example.com Service not available, closing transmission channel`
    pub fn service_unavailable(hostname: &str) -> Self {
        Self::fixed(
            421,
            Some(S_4_3_2),
            &format!("{hostname} Service not available, closing transmission channel"),
        )
    }

    /// `421 4.4.2 mx.example.com Timeout exceeded, closing transmission channel`
    pub fn timeout(hostname: &str) -> Self {
        Self::fixed(
            421,
            Some(S_4_4_2),
            &format!("{hostname} Timeout exceeded, closing transmission channel"),
        )
    }

    /// `451 4.3.0 Local error in processing`: the message could not be queued.
    pub fn local_error() -> Self {
        Self::fixed(451, Some(S_4_3_0), "Local error in processing")
    }

    /// `452 4.3.1 Insufficient system storage`
    pub fn insufficient_storage() -> Self {
        Self::fixed(452, Some(S_4_3_1), "Insufficient system storage")
    }

    /// `452 4.5.3 Too many recipients`: the client sends the rest in another transaction.
    pub fn too_many_recipients() -> Self {
        Self::fixed(452, Some(S_4_5_3), "Too many recipients")
    }

    /// `500 5.5.1 Unrecognized command`
    pub fn unrecognized() -> Self {
        Self::fixed(500, Some(S_5_5_1), "Unrecognized command")
    }

    /// `500 5.5.2 Line too long`
    pub fn line_too_long() -> Self {
        Self::fixed(500, Some(S_5_5_2), "Line too long")
    }

    /// `500 5.5.2 TEXT`: a line that is not a command at all.
    pub(crate) fn syntax_error(text: &str) -> Self {
        Self::fixed(500, Some(S_5_5_2), text)
    }

    /// `502 5.5.1 Command not implemented`
    pub fn not_implemented() -> Self {
        Self::fixed(502, Some(S_5_5_1), "Command not implemented")
    }

    /// `503 5.5.1 Bad sequence of commands`
    pub fn bad_sequence() -> Self {
        Self::fixed(503, Some(S_5_5_1), "Bad sequence of commands")
    }

    /// `503 5.5.1 Send HELO or EHLO first`
    pub fn need_helo() -> Self {
        Self::fixed(503, Some(S_5_5_1), "Send HELO or EHLO first")
    }

    /// `503 5.5.1 Need MAIL command`
    pub fn need_mail() -> Self {
        Self::fixed(503, Some(S_5_5_1), "Need MAIL command")
    }

    /// `503 5.5.1 Need RCPT command`
    pub fn need_rcpt() -> Self {
        Self::fixed(503, Some(S_5_5_1), "Need RCPT command")
    }

    /// `503 5.5.1 Nested MAIL command`
    pub fn nested_mail() -> Self {
        Self::fixed(503, Some(S_5_5_1), "Nested MAIL command")
    }

    /// `552 5.3.4 Message size exceeds fixed maximum message size` (RFC 1870).
    pub fn message_too_big() -> Self {
        Self::fixed(
            552,
            Some(S_5_3_4),
            "Message size exceeds fixed maximum message size",
        )
    }

    /// `554 5.6.11 Message contains bare CR or LF`: the message is refused so that nothing
    /// smuggled inside it is ever read as a command or as the end of the message.
    pub fn bare_line_ending() -> Self {
        Self::fixed(554, Some(S_5_6_11), "Message contains bare CR or LF")
    }

    pub fn code(&self) -> u16 {
        self.code
    }

    pub fn status(&self) -> Option<EnhancedStatus> {
        self.status
    }

    /// The text of each line, without code or status.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// 2xx or 3xx: the command was accepted.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// 2xx: the command is done.
    pub fn is_positive_completion(&self) -> bool {
        self.code / 100 == 2
    }

    /// 3xx: the command was accepted and more input is expected (354 after DATA).
    pub fn is_positive_intermediate(&self) -> bool {
        self.code / 100 == 3
    }

    /// 4xx: refused for now; the same command may succeed later.
    pub fn is_transient_failure(&self) -> bool {
        self.code / 100 == 4
    }

    /// 5xx: refused for good.
    pub fn is_permanent_failure(&self) -> bool {
        self.code / 100 == 5
    }

    /// Writes the reply as a server sends it: `250-first` … `250 last`, each line with CRLF and,
    /// when there is one, the enhanced status code after the reply code.
    pub fn write(&self, out: &mut Vec<u8>) {
        let last = self.lines.len().saturating_sub(1);
        for (i, text) in self.lines.iter().enumerate() {
            let separator = if i == last { ' ' } else { '-' };
            let line = match (self.status, text.is_empty()) {
                (Some(status), true) => format!("{}{separator}{status}", self.code),
                (Some(status), false) => format!("{}{separator}{status} {text}", self.code),
                (None, true) if i == last => self.code.to_string(),
                (None, _) => format!("{}{separator}{text}", self.code),
            };
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Reads a status code at the start of every line that has it, as a server that announces
    /// ENHANCEDSTATUSCODES writes it; only one whose class matches the reply code counts.
    fn from_lines(code: u16, mut lines: Vec<String>) -> Self {
        let status = lines.first().and_then(|first| {
            let word = first.split(' ').next()?;
            let status: EnhancedStatus = word.parse().ok()?;
            (u16::from(status.class.digit()) == code / 100).then_some(status)
        });
        if let Some(status) = status {
            let prefix = status.to_string();
            for line in &mut lines {
                if let Some(rest) = line.strip_prefix(&prefix)
                    && (rest.is_empty() || rest.starts_with(' '))
                {
                    *line = rest.strip_prefix(' ').unwrap_or(rest).to_owned();
                }
            }
        }
        Self {
            code,
            status,
            lines,
        }
    }
}

/// `550 5.1.1 first line second line`: the reply on one line, for logs.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(status) = self.status {
            write!(f, " {status}")?;
        }
        for line in self.lines.iter().filter(|l| !l.is_empty()) {
            write!(f, " {line}")?;
        }
        Ok(())
    }
}

/// Replaces every control character by a space: reply text never breaks a line.
pub(crate) fn clean_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Why [`Reply::new`] refused its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The code is not from 200 to 599.
    #[error("{0} is not an SMTP reply code (200 to 599)")]
    BadCode(u16),
    /// The enhanced status class differs from the first digit of the code.
    #[error("enhanced status {status} cannot go with reply code {code}")]
    StatusMismatch { code: u16, status: EnhancedStatus },
}

/// Reads the replies of a server from the bytes it sends, for the outbound client.
///
/// A server may send anything: lines are limited in length and replies in number of lines, so
/// what the parser holds stays below `max_line × max_lines` octets. A reply that breaks a rule
/// ends the parse: the error comes out once, and the parser then ignores all input, because a
/// client that lost track of the replies cannot know which command they answer. It should close
/// the connection.
#[derive(Debug, Clone)]
pub struct ReplyParser {
    lines: LineBuffer,
    /// The code and lines of a multi-line reply not finished yet.
    partial: Option<(u16, Vec<String>)>,
    max_lines: usize,
    failed: bool,
}

impl ReplyParser {
    /// The longest reply line accepted by [`ReplyParser::new`], CRLF included. RFC 5321 says
    /// 512; real servers write longer texts, so the default leaves room.
    pub const MAX_LINE: usize = 2048;
    /// The most lines in one reply accepted by [`ReplyParser::new`]; EHLO replies have a few
    /// dozen at most.
    pub const MAX_LINES: usize = 100;

    pub fn new() -> Self {
        Self::with_limits(Self::MAX_LINE, Self::MAX_LINES)
    }

    /// A parser with other limits: `max_line` octets per line with CRLF, `max_lines` lines per
    /// reply (at least 1).
    pub fn with_limits(max_line: usize, max_lines: usize) -> Self {
        Self {
            lines: LineBuffer::with_max_line(max_line),
            partial: None,
            max_lines: max_lines.max(1),
            failed: false,
        }
    }

    /// Adds bytes received from the server.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.lines.push(bytes);
        }
    }

    /// The next complete reply, or `None` until more bytes arrive (or for ever after an error).
    ///
    /// Lines may end in CRLF or, leniently, in a bare LF. Text that is not UTF-8 is read
    /// lossily; control characters in it become spaces.
    pub fn next_reply(&mut self) -> Option<Result<Reply, ReplyParseError>> {
        if self.failed {
            return None;
        }
        loop {
            let line = match self.lines.next_raw()? {
                RawLine::Complete(line) => line,
                RawLine::TooLong => {
                    return Some(Err(self.fail(ReplyParseError::LineTooLong {
                        limit: self.lines.max_line(),
                    })));
                }
            };
            match self.take_line(&line) {
                Ok(Some(reply)) => return Some(Ok(reply)),
                Ok(None) => {}
                Err(e) => return Some(Err(self.fail(e))),
            }
        }
    }

    /// Adds one line to the reply being read; returns the reply once its last line is in.
    fn take_line(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyParseError> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let code = match line {
            [a @ b'2'..=b'5', b @ b'0'..=b'9', c @ b'0'..=b'9', ..] => {
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
            }
            _ => return Err(ReplyParseError::MissingCode),
        };
        let (last, text) = match line.get(3..).unwrap_or_default() {
            [] => (true, &[][..]),
            [b' ', text @ ..] => (true, text),
            [b'-', text @ ..] => (false, text),
            _ => return Err(ReplyParseError::BadSeparator(code)),
        };
        let (first_code, lines) = self.partial.get_or_insert_with(|| (code, Vec::new()));
        if *first_code != code {
            return Err(ReplyParseError::CodeMismatch {
                expected: *first_code,
                found: code,
            });
        }
        if lines.len() == self.max_lines {
            return Err(ReplyParseError::TooManyLines {
                limit: self.max_lines,
            });
        }
        lines.push(clean_text(&String::from_utf8_lossy(text)));
        if !last {
            return Ok(None);
        }
        Ok(self
            .partial
            .take()
            .map(|(code, lines)| Reply::from_lines(code, lines)))
    }

    fn fail(&mut self, error: ReplyParseError) -> ReplyParseError {
        self.failed = true;
        self.partial = None;
        self.lines.clear();
        error
    }

    /// Whether bytes are held that no reply has taken yet, including lines of an unfinished
    /// reply. After the reply to STARTTLS, such bytes came in plain text and must be dropped.
    pub fn has_pending(&self) -> bool {
        self.lines.has_pending() || self.partial.is_some()
    }

    /// Forgets every byte and partial reply held; an error stays.
    pub fn clear(&mut self) {
        self.lines.clear();
        self.partial = None;
    }

    /// Octets held: unread bytes and the text of an unfinished reply.
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        self.lines.pending_len()
            + self
                .partial
                .as_ref()
                .map_or(0, |(_, lines)| lines.iter().map(String::len).sum())
    }
}

impl Default for ReplyParser {
    fn default() -> Self {
        Self::new()
    }
}

/// Why the bytes from a server are not SMTP replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyParseError {
    /// A reply line longer than the limit, CRLF included.
    #[error("reply line longer than {limit} octets")]
    LineTooLong { limit: usize },
    /// A reply of more lines than the limit.
    #[error("reply of more than {limit} lines")]
    TooManyLines { limit: usize },
    /// A line that does not start with a reply code from 200 to 599.
    #[error("reply line does not start with a reply code")]
    MissingCode,
    /// The code is followed by neither a space, a hyphen nor the end of the line.
    #[error("reply code {0} is followed by neither a space nor a hyphen")]
    BadSeparator(u16),
    /// A line of a multi-line reply with another code than the first line.
    #[error("reply line with code {found} inside a {expected} reply")]
    CodeMismatch { expected: u16, found: u16 },
}

#[cfg(test)]
mod tests;
