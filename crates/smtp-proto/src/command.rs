//! SMTP commands (RFC 5321 4.1.1, with SIZE, 8BITMIME, SMTPUTF8 and STARTTLS): parsed from a
//! command line by the server, written by the client.

use std::fmt;

use crate::address::{AddressError, ForwardPath, ReversePath};
use crate::reply::{self, Reply, clean_text};

/// The verb of a command this crate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Ehlo,
    Helo,
    Mail,
    Rcpt,
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    StartTls,
}

impl Verb {
    pub const ALL: [Verb; 12] = [
        Self::Ehlo,
        Self::Helo,
        Self::Mail,
        Self::Rcpt,
        Self::Data,
        Self::Rset,
        Self::Noop,
        Self::Quit,
        Self::Vrfy,
        Self::Expn,
        Self::Help,
        Self::StartTls,
    ];

    /// The verb as written on the wire: `EHLO`, `STARTTLS`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ehlo => "EHLO",
            Self::Helo => "HELO",
            Self::Mail => "MAIL",
            Self::Rcpt => "RCPT",
            Self::Data => "DATA",
            Self::Rset => "RSET",
            Self::Noop => "NOOP",
            Self::Quit => "QUIT",
            Self::Vrfy => "VRFY",
            Self::Expn => "EXPN",
            Self::Help => "HELP",
            Self::StartTls => "STARTTLS",
        }
    }

    /// How the command is written, for `501 5.5.4 Syntax: ...`.
    fn usage(self) -> &'static str {
        match self {
            Self::Ehlo => "EHLO hostname",
            Self::Helo => "HELO hostname",
            Self::Mail => "MAIL FROM:<address>",
            Self::Rcpt => "RCPT TO:<address>",
            Self::Vrfy => "VRFY address",
            Self::Expn => "EXPN mailing-list",
            Self::Help => "HELP [topic]",
            Self::Noop => "NOOP",
            Self::Data => "DATA",
            Self::Rset => "RSET",
            Self::Quit => "QUIT",
            Self::StartTls => "STARTTLS",
        }
    }

    fn from_word(word: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str().as_bytes().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Verbs of SMTP extensions or of history that this gateway does not offer: `502`, not `500`.
const NOT_IMPLEMENTED: [&str; 9] = [
    "AUTH", "BDAT", "BURL", "ETRN", "TURN", "ATRN", "SEND", "SOML", "SAML",
];

/// Verbs of HTTP and proxies: a web client or a cross-protocol attack talking to the SMTP port.
const FORBIDDEN: [&str; 5] = ["CONNECT", "GET", "POST", "PUT", "HEAD"];

/// One SMTP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO domain`: the client's name as it gave it, judged by the server's policy.
    Ehlo(String),
    /// `HELO domain`
    Helo(String),
    /// `MAIL FROM:<path> params`
    Mail {
        from: ReversePath,
        params: MailParams,
    },
    /// `RCPT TO:<path> params`
    Rcpt {
        to: ForwardPath,
        params: RcptParams,
    },
    Data,
    Rset,
    /// `NOOP`; an argument is allowed and ignored.
    Noop,
    Quit,
    /// `VRFY string`
    Vrfy(String),
    /// `EXPN string`
    Expn(String),
    /// `HELP [topic]`
    Help(Option<String>),
    StartTls,
}

impl Command {
    /// Parses a command line outside a mail transaction that uses SMTPUTF8: see
    /// [`Command::parse_with`].
    pub fn parse(line: &[u8]) -> Result<Self, CommandError> {
        Self::parse_with(line, false)
    }

    /// Parses a command line (without its CRLF; one trailing CRLF is tolerated).
    ///
    /// `smtputf8` tells whether the open transaction began with `MAIL ... SMTPUTF8`: only then may
    /// RCPT name a non-ASCII mailbox. MAIL is judged by its own SMTPUTF8 parameter instead.
    ///
    /// Verbs and parameter keywords are case-insensitive; blanks around the line and a space
    /// after `FROM:` / `TO:` are tolerated, as real clients send them.
    pub fn parse_with(line: &[u8], smtputf8: bool) -> Result<Self, CommandError> {
        let line = trim_blanks(line.strip_suffix(b"\r\n").unwrap_or(line));
        if line.is_empty() {
            return Err(CommandError::Empty);
        }
        let (word, args) = match line.iter().position(|&b| b == b' ') {
            Some(space) => (&line[..space], trim_blanks(&line[space + 1..])),
            None => (line, &[][..]),
        };
        let verb = Verb::from_word(word).ok_or_else(|| unknown_verb(word))?;
        let args = std::str::from_utf8(args).map_err(|_| CommandError::InvalidUtf8)?;
        if args.chars().any(char::is_control) {
            return Err(CommandError::Syntax(verb));
        }
        let no_args = |command: Self| {
            if args.is_empty() {
                Ok(command)
            } else {
                Err(CommandError::Syntax(verb))
            }
        };
        let required = || {
            if args.is_empty() {
                Err(CommandError::Syntax(verb))
            } else {
                Ok(args.to_owned())
            }
        };
        match verb {
            Verb::Ehlo => required().map(Self::Ehlo),
            Verb::Helo => required().map(Self::Helo),
            Verb::Mail => parse_mail(args),
            Verb::Rcpt => parse_rcpt(args, smtputf8),
            Verb::Data => no_args(Self::Data),
            Verb::Rset => no_args(Self::Rset),
            Verb::Noop => Ok(Self::Noop),
            Verb::Quit => no_args(Self::Quit),
            Verb::Vrfy => required().map(Self::Vrfy),
            Verb::Expn => required().map(Self::Expn),
            Verb::Help => Ok(Self::Help((!args.is_empty()).then(|| args.to_owned()))),
            Verb::StartTls => no_args(Self::StartTls),
        }
    }

    pub fn verb(&self) -> Verb {
        match self {
            Self::Ehlo(_) => Verb::Ehlo,
            Self::Helo(_) => Verb::Helo,
            Self::Mail { .. } => Verb::Mail,
            Self::Rcpt { .. } => Verb::Rcpt,
            Self::Data => Verb::Data,
            Self::Rset => Verb::Rset,
            Self::Noop => Verb::Noop,
            Self::Quit => Verb::Quit,
            Self::Vrfy(_) => Verb::Vrfy,
            Self::Expn(_) => Verb::Expn,
            Self::Help(_) => Verb::Help,
            Self::StartTls => Verb::StartTls,
        }
    }

    /// Writes the command as a client sends it, with CRLF. Control characters in string
    /// arguments become spaces, so no argument can end the line early.
    pub fn write(&self, out: &mut Vec<u8>) {
        let verb = self.verb();
        let line = match self {
            Self::Ehlo(arg) | Self::Helo(arg) | Self::Vrfy(arg) | Self::Expn(arg) => {
                format!("{verb} {}", clean_text(arg))
            }
            Self::Help(Some(arg)) => format!("{verb} {}", clean_text(arg)),
            Self::Mail { from, params } => {
                let mut line = format!("MAIL FROM:{from}");
                if let Some(size) = params.size {
                    line.push_str(&format!(" SIZE={size}"));
                }
                if let Some(body) = params.body {
                    line.push_str(&format!(" BODY={body}"));
                }
                if params.smtputf8 {
                    line.push_str(" SMTPUTF8");
                }
                line
            }
            Self::Rcpt { to, params: _ } => format!("RCPT TO:{to}"),
            Self::Help(None)
            | Self::Data
            | Self::Rset
            | Self::Noop
            | Self::Quit
            | Self::StartTls => verb.as_str().to_owned(),
        };
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// The parameters of MAIL FROM this gateway supports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MailParams {
    /// `SIZE=n` (RFC 1870): the client's estimate of the message size in octets.
    pub size: Option<u64>,
    /// `BODY=7BIT|8BITMIME` (RFC 6152).
    pub body: Option<Body>,
    /// `SMTPUTF8` (RFC 6531): addresses and headers may be UTF-8.
    pub smtputf8: bool,
}

/// The body type of `BODY=` (RFC 6152).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Body {
    SevenBit,
    EightBitMime,
}

impl fmt::Display for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SevenBit => "7BIT",
            Self::EightBitMime => "8BITMIME",
        })
    }
}

/// The parameters of RCPT TO this gateway supports: none yet (DSN's NOTIFY and ORCPT would go
/// here). Any parameter is refused with `555`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RcptParams {}

/// Why a command line was refused. [`CommandError::reply`] is the answer to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The line is empty or blank.
    #[error("empty command line")]
    Empty,
    /// The verb is not an SMTP command. `verb` is what was sent, upper-cased, at most 16
    /// characters, anything but printable ASCII shown as `?`.
    #[error("unrecognized command {verb}")]
    Unrecognized { verb: String },
    /// An SMTP command this gateway does not offer (AUTH, BDAT, ETRN, TURN, ...).
    #[error("command {verb} is not implemented")]
    NotImplemented { verb: String },
    /// An HTTP or proxy request (GET, POST, CONNECT, ...): not an SMTP client. The server
    /// should close the connection after the reply.
    #[error("{verb} request on the SMTP port")]
    Forbidden { verb: String },
    /// The arguments are not UTF-8.
    #[error("the arguments are not UTF-8")]
    InvalidUtf8,
    /// The arguments do not fit the command's syntax.
    #[error("syntax: {}", .0.usage())]
    Syntax(Verb),
    /// The MAIL FROM address is not valid.
    #[error("bad sender address: {0}")]
    BadSender(AddressError),
    /// The RCPT TO address is not valid.
    #[error("bad recipient address: {0}")]
    BadRecipient(AddressError),
    /// A MAIL or RCPT parameter that is not `keyword[=value]`.
    #[error("malformed parameter")]
    MalformedParameter,
    /// A parameter given twice (the upper-cased keyword).
    #[error("parameter {0} given twice")]
    DuplicateParameter(String),
    /// A parameter this gateway does not support (the upper-cased keyword).
    #[error("unsupported parameter {0}")]
    UnsupportedParameter(String),
    /// A SIZE value that is not a decimal number that fits in 64 bits.
    #[error("SIZE is not a number of octets")]
    BadSize,
    /// A BODY value other than 7BIT and 8BITMIME.
    #[error("unsupported BODY type {0}")]
    UnsupportedBody(String),
}

impl CommandError {
    /// The reply a server gives to the line.
    pub fn reply(&self) -> Reply {
        use reply::{S_5_1_3, S_5_1_7, S_5_5_1, S_5_5_2, S_5_5_4, S_5_6_7};
        match self {
            Self::Empty => Reply::syntax_error("Empty command"),
            Self::Unrecognized { .. } => Reply::unrecognized(),
            Self::NotImplemented { .. } => Reply::not_implemented(),
            Self::Forbidden { .. } => Reply::fixed(
                554,
                Some(S_5_5_1),
                "Not an SMTP command; closing connection",
            ),
            Self::InvalidUtf8 => Reply::fixed(501, Some(S_5_5_2), "Invalid UTF-8 in arguments"),
            Self::Syntax(verb) => {
                Reply::fixed(501, Some(S_5_5_4), &format!("Syntax: {}", verb.usage()))
            }
            Self::BadSender(AddressError::NonAscii) => Reply::fixed(
                553,
                Some(S_5_6_7),
                "Non-ASCII sender address needs SMTPUTF8",
            ),
            Self::BadSender(_) => Reply::fixed(501, Some(S_5_1_7), "Bad sender address syntax"),
            Self::BadRecipient(AddressError::NonAscii) => Reply::fixed(
                553,
                Some(S_5_6_7),
                "Non-ASCII recipient address needs SMTPUTF8",
            ),
            Self::BadRecipient(_) => {
                Reply::fixed(501, Some(S_5_1_3), "Bad recipient address syntax")
            }
            Self::MalformedParameter => {
                Reply::fixed(501, Some(S_5_5_4), "Syntax error in parameters")
            }
            Self::DuplicateParameter(_) => Reply::fixed(501, Some(S_5_5_4), "Duplicate parameter"),
            Self::UnsupportedParameter(_) => {
                Reply::fixed(555, Some(S_5_5_4), "Unsupported parameter")
            }
            Self::BadSize => Reply::fixed(501, Some(S_5_5_4), "Bad SIZE value"),
            Self::UnsupportedBody(_) => Reply::fixed(555, Some(S_5_5_4), "Unsupported BODY type"),
        }
    }
}

fn parse_mail(args: &str) -> Result<Command, CommandError> {
    let syntax = CommandError::Syntax(Verb::Mail);
    let path = strip_prefix_ignore_case(args, "FROM:")
        .ok_or(syntax.clone())?
        .trim_start_matches(' ');
    if !path.starts_with('<') {
        return Err(syntax);
    }
    let (from, rest) = ReversePath::parse_prefix(path).map_err(CommandError::BadSender)?;
    let mut params = MailParams::default();
    for (keyword, value) in parse_params(rest, Verb::Mail)? {
        match keyword.as_str() {
            "SIZE" => params.size = Some(parse_size(value)?),
            "BODY" => {
                params.body = Some(match value {
                    None => return Err(CommandError::MalformedParameter),
                    Some(v) if v.eq_ignore_ascii_case("7BIT") => Body::SevenBit,
                    Some(v) if v.eq_ignore_ascii_case("8BITMIME") => Body::EightBitMime,
                    Some(v) => return Err(CommandError::UnsupportedBody(v.to_owned())),
                })
            }
            "SMTPUTF8" if value.is_none() => params.smtputf8 = true,
            "SMTPUTF8" => return Err(CommandError::MalformedParameter),
            _ => return Err(CommandError::UnsupportedParameter(keyword)),
        }
    }
    if !params.smtputf8 && !from.is_ascii() {
        return Err(CommandError::BadSender(AddressError::NonAscii));
    }
    Ok(Command::Mail { from, params })
}

fn parse_rcpt(args: &str, smtputf8: bool) -> Result<Command, CommandError> {
    let syntax = CommandError::Syntax(Verb::Rcpt);
    let path = strip_prefix_ignore_case(args, "TO:")
        .ok_or(syntax.clone())?
        .trim_start_matches(' ');
    if !path.starts_with('<') {
        return Err(syntax);
    }
    let (to, rest) = ForwardPath::parse_prefix(path).map_err(CommandError::BadRecipient)?;
    if let Some((keyword, _)) = parse_params(rest, Verb::Rcpt)?.into_iter().next() {
        return Err(CommandError::UnsupportedParameter(keyword));
    }
    if !smtputf8 && !to.is_ascii() {
        return Err(CommandError::BadRecipient(AddressError::NonAscii));
    }
    Ok(Command::Rcpt {
        to,
        params: RcptParams {},
    })
}

/// Splits the text after a path into `keyword[=value]` parameters (RFC 5321 4.1.2
/// `esmtp-param`; values may be UTF-8 as RFC 6531 allows). Keywords come upper-cased.
fn parse_params(text: &str, verb: Verb) -> Result<Vec<(String, Option<&str>)>, CommandError> {
    if !(text.is_empty() || text.starts_with(' ')) {
        return Err(CommandError::Syntax(verb));
    }
    let mut params: Vec<(String, Option<&str>)> = Vec::new();
    for param in text.split(' ').filter(|p| !p.is_empty()) {
        let (keyword, value) = match param.split_once('=') {
            Some((keyword, value)) => (keyword, Some(value)),
            None => (param, None),
        };
        let keyword_ok = keyword.starts_with(|c: char| c.is_ascii_alphanumeric())
            && keyword
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let value_ok = value.is_none_or(|v| !v.is_empty() && !v.contains('='));
        if !(keyword_ok && value_ok) {
            return Err(CommandError::MalformedParameter);
        }
        let keyword = keyword.to_ascii_uppercase();
        if params.iter().any(|(k, _)| *k == keyword) {
            return Err(CommandError::DuplicateParameter(keyword));
        }
        params.push((keyword, value));
    }
    Ok(params)
}

fn parse_size(value: Option<&str>) -> Result<u64, CommandError> {
    value
        .filter(|v| v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
        .ok_or(CommandError::BadSize)
}

fn unknown_verb(word: &[u8]) -> CommandError {
    let verb: String = word
        .iter()
        .take(16)
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b.to_ascii_uppercase())
            } else {
                '?'
            }
        })
        .collect();
    if NOT_IMPLEMENTED.contains(&verb.as_str()) {
        CommandError::NotImplemented { verb }
    } else if FORBIDDEN.contains(&verb.as_str()) {
        CommandError::Forbidden { verb }
    } else {
        CommandError::Unrecognized { verb }
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn trim_blanks(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests;
