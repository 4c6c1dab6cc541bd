//! Envelope addresses of RFC 5321 4.1.2: mailboxes, the reverse-path of MAIL and the
//! forward-path of RCPT, with the SMTPUTF8 extension of RFC 6531.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The longest local part (RFC 5321 4.5.3.1.1), in octets as written.
pub const MAX_LOCAL_PART: usize = 64;
/// The longest domain (RFC 5321 4.5.3.1.2), in octets as written.
pub const MAX_DOMAIN: usize = 255;
/// The longest path, angle brackets included (RFC 5321 4.5.3.1.3).
pub const MAX_PATH: usize = 256;
/// The longest label of a domain (RFC 1035).
const MAX_LABEL: usize = 63;

/// A mailbox: `local-part@domain`.
///
/// The local part is kept exactly as written, quotes included (`"john doe"`), because only the
/// receiving system may interpret it. The domain is compared without regard to case, so its
/// ASCII letters are stored in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox {
    local_part: String,
    host: Host,
}

impl Mailbox {
    /// Parses `user@example.com` (no angle brackets). Non-ASCII characters are allowed only
    /// when `smtputf8` is true, that is when the transaction uses SMTPUTF8.
    pub fn parse(s: &str, smtputf8: bool) -> Result<Self, AddressError> {
        let (mailbox, len) = parse_mailbox(s)?;
        if len != s.len() {
            return Err(AddressError::BadDomain);
        }
        check_ascii(s, smtputf8)?;
        Ok(mailbox)
    }

    /// The local part as written, with any quotes.
    pub fn local_part(&self) -> &str {
        &self.local_part
    }

    /// The domain or address literal after the `@`.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Whether the mailbox can be used without SMTPUTF8.
    pub fn is_ascii(&self) -> bool {
        self.local_part.is_ascii() && self.host.is_ascii()
    }
}

/// `user@example.com`
impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local_part, self.host)
    }
}

/// What follows the `@` of a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name.
    Domain(Domain),
    /// An IPv4 address literal: `[192.0.2.1]`.
    Ipv4(Ipv4Addr),
    /// An IPv6 address literal: `[IPv6:2001:db8::1]`.
    Ipv6(Ipv6Addr),
}

impl Host {
    fn is_ascii(&self) -> bool {
        match self {
            Self::Domain(d) => d.0.is_ascii(),
            Self::Ipv4(_) | Self::Ipv6(_) => true,
        }
    }
}

/// `example.com`, `[192.0.2.1]`, `[IPv6:2001:db8::1]`
impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Domain(d) => f.write_str(d.as_str()),
            Self::Ipv4(ip) => write!(f, "[{ip}]"),
            Self::Ipv6(ip) => write!(f, "[IPv6:{ip}]"),
        }
    }
}

/// A domain name: dot-separated labels of letters, digits and inner hyphens, ASCII letters in
/// lower case. With SMTPUTF8 a label may hold non-ASCII characters (a U-label); they are kept
/// as written, not converted to IDNA.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Domain(String);

impl Domain {
    /// Parses a domain name; non-ASCII labels only when `smtputf8` is true.
    pub fn parse(s: &str, smtputf8: bool) -> Result<Self, AddressError> {
        let domain = parse_domain(s)?;
        check_ascii(s, smtputf8)?;
        Ok(domain)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The sender of MAIL FROM: a mailbox, or the null path `<>` of bounces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReversePath {
    /// `<>`: the message is a notification and must not itself cause one.
    Null,
    Mailbox(Mailbox),
}

impl ReversePath {
    /// Parses a whole path with its angle brackets: `<user@example.com>`, `<>`. A source route
    /// (`<@relay.example:user@example.com>`) is accepted and dropped (RFC 5321 4.1.2).
    pub fn parse(s: &str, smtputf8: bool) -> Result<Self, AddressError> {
        let (path, rest) = Self::parse_prefix(s)?;
        if !rest.is_empty() {
            return Err(AddressError::NotBracketed);
        }
        check_ascii(s, smtputf8)?;
        Ok(path)
    }

    /// Parses the path at the start of `s`, non-ASCII allowed; returns what follows it.
    pub(crate) fn parse_prefix(s: &str) -> Result<(Self, &str), AddressError> {
        let (path, rest) = parse_path(s, false)?;
        Ok((
            match path {
                Path::Null => Self::Null,
                Path::Mailbox(m) => Self::Mailbox(m),
                // parse_path gives Postmaster only when asked to.
                Path::Postmaster => return Err(AddressError::MissingAt),
            },
            rest,
        ))
    }

    pub fn mailbox(&self) -> Option<&Mailbox> {
        match self {
            Self::Null => None,
            Self::Mailbox(m) => Some(m),
        }
    }

    pub fn is_ascii(&self) -> bool {
        self.mailbox().is_none_or(Mailbox::is_ascii)
    }
}

/// `<user@example.com>` or `<>`
impl fmt::Display for ReversePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("<>"),
            Self::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

/// A recipient of RCPT TO: a mailbox, or the bare `<Postmaster>` every server must accept
/// (RFC 5321 4.5.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ForwardPath {
    /// `<Postmaster>` without a domain, in any case: the postmaster of this server.
    Postmaster,
    Mailbox(Mailbox),
}

impl ForwardPath {
    /// Parses a whole path with its angle brackets: `<user@example.com>`, `<Postmaster>`. A
    /// source route is accepted and dropped (RFC 5321 4.1.2).
    pub fn parse(s: &str, smtputf8: bool) -> Result<Self, AddressError> {
        let (path, rest) = Self::parse_prefix(s)?;
        if !rest.is_empty() {
            return Err(AddressError::NotBracketed);
        }
        check_ascii(s, smtputf8)?;
        Ok(path)
    }

    /// Parses the path at the start of `s`, non-ASCII allowed; returns what follows it.
    pub(crate) fn parse_prefix(s: &str) -> Result<(Self, &str), AddressError> {
        let (path, rest) = parse_path(s, true)?;
        Ok((
            match path {
                Path::Null => return Err(AddressError::NullRecipient),
                Path::Postmaster => Self::Postmaster,
                Path::Mailbox(m) => Self::Mailbox(m),
            },
            rest,
        ))
    }

    pub fn mailbox(&self) -> Option<&Mailbox> {
        match self {
            Self::Postmaster => None,
            Self::Mailbox(m) => Some(m),
        }
    }

    pub fn is_ascii(&self) -> bool {
        self.mailbox().is_none_or(Mailbox::is_ascii)
    }
}

/// `<user@example.com>` or `<postmaster>`
impl fmt::Display for ForwardPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Postmaster => f.write_str("<postmaster>"),
            Self::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The path does not start with `<` or does not end with `>`.
    #[error("the address is not enclosed in < and >")]
    NotBracketed,
    /// The null path `<>` where a recipient is needed.
    #[error("<> is not a recipient")]
    NullRecipient,
    /// No `@` between local part and domain.
    #[error("the address has no @domain")]
    MissingAt,
    /// The local part is neither a dot-string nor a quoted string.
    #[error("the local part is not a dot-string or a quoted string")]
    BadLocalPart,
    /// The domain is not made of letter-digit-hyphen labels.
    #[error("the domain is not a valid domain name")]
    BadDomain,
    /// An address literal that is neither `[IPv4]` nor `[IPv6:...]`.
    #[error("the address literal is not [IPv4] or [IPv6:...]")]
    BadAddressLiteral,
    /// The source route before `:` is not a list of `@domain`.
    #[error("the source route is not a list of @domain")]
    BadSourceRoute,
    /// Non-ASCII characters without SMTPUTF8.
    #[error("non-ASCII characters in the address need SMTPUTF8")]
    NonAscii,
    /// The local part is longer than [`MAX_LOCAL_PART`] octets.
    #[error("the local part is {0} octets long; at most 64 are allowed")]
    LocalPartTooLong(usize),
    /// The domain is longer than [`MAX_DOMAIN`] octets.
    #[error("the domain is {0} octets long; at most 255 are allowed")]
    DomainTooLong(usize),
    /// The path is longer than [`MAX_PATH`] octets.
    #[error("the path is {0} octets long; at most 256 are allowed")]
    PathTooLong(usize),
}

fn check_ascii(s: &str, smtputf8: bool) -> Result<(), AddressError> {
    if smtputf8 || s.is_ascii() {
        Ok(())
    } else {
        Err(AddressError::NonAscii)
    }
}

/// What a path holds; ASCII-ness is checked by the callers, who know whether SMTPUTF8 applies.
enum Path {
    Null,
    Postmaster,
    Mailbox(Mailbox),
}

/// Parses `<...>` at the start of `s`: null path, `<Postmaster>` when `postmaster` is true,
/// or an optional source route and a mailbox. Returns the text after `>`.
///
/// Every delimiter is ASCII, and a UTF-8 sequence holds no ASCII byte, so splitting `s` at the
/// byte positions of delimiters always falls on character boundaries.
fn parse_path(s: &str, postmaster: bool) -> Result<(Path, &str), AddressError> {
    let body = s.strip_prefix('<').ok_or(AddressError::NotBracketed)?;
    if let Some(rest) = body.strip_prefix('>') {
        return Ok((Path::Null, rest));
    }
    let mut mailbox_start = body;
    if body.starts_with('@') {
        let end = body.find(['>', ':']).ok_or(AddressError::NotBracketed)?;
        let (route, after) = body.split_at(end);
        mailbox_start = after
            .strip_prefix(':')
            .ok_or(AddressError::BadSourceRoute)?;
        for hop in route.split(',') {
            let domain = hop.strip_prefix('@').ok_or(AddressError::BadSourceRoute)?;
            parse_domain(domain).map_err(|_| AddressError::BadSourceRoute)?;
        }
    }
    let path = if postmaster
        && mailbox_start
            .get(..11)
            .is_some_and(|p| p.eq_ignore_ascii_case("postmaster>"))
    {
        (Path::Postmaster, 10)
    } else {
        let (mailbox, len) = parse_mailbox(mailbox_start)?;
        (Path::Mailbox(mailbox), len)
    };
    let (path, len) = path;
    let rest = mailbox_start
        .get(len..)
        .and_then(|r| r.strip_prefix('>'))
        .ok_or(AddressError::NotBracketed)?;
    let path_len = s.len() - rest.len();
    if path_len > MAX_PATH {
        return Err(AddressError::PathTooLong(path_len));
    }
    Ok((path, rest))
}

/// Parses `local@host` at the start of `s`, up to a `>` or the end; returns the mailbox and the
/// octets it took.
fn parse_mailbox(s: &str) -> Result<(Mailbox, usize), AddressError> {
    let local_len = local_part_len(s)?;
    let (local_part, rest) = s.split_at(local_len);
    if local_part.len() > MAX_LOCAL_PART {
        return Err(AddressError::LocalPartTooLong(local_part.len()));
    }
    if has_unicode_space_or_control(local_part) {
        return Err(AddressError::BadLocalPart);
    }
    let host_text = rest.strip_prefix('@').ok_or(match rest.bytes().next() {
        None | Some(b'>') => AddressError::MissingAt,
        Some(_) => AddressError::BadLocalPart,
    })?;
    let host_len = if host_text.starts_with('[') {
        host_text.find(']').map_or(host_text.len(), |i| i + 1)
    } else {
        host_text.find('>').unwrap_or(host_text.len())
    };
    let host_text = &host_text[..host_len];
    let host = parse_host(host_text)?;
    Ok((
        Mailbox {
            local_part: local_part.to_owned(),
            host,
        },
        local_len + 1 + host_len,
    ))
}

/// The length of the local part at the start of `s`: a quoted string, or a dot-string that
/// ends where a character that cannot be in an atom starts.
fn local_part_len(s: &str) -> Result<usize, AddressError> {
    let bytes = s.as_bytes();
    if bytes.first() == Some(&b'"') {
        let mut i = 1;
        loop {
            match bytes.get(i) {
                Some(b'"') => return Ok(i + 1),
                Some(b'\\') => match bytes.get(i + 1) {
                    Some(32..=126) => i += 2,
                    _ => return Err(AddressError::BadLocalPart),
                },
                Some(32..=126 | 128..) => i += 1,
                _ => return Err(AddressError::BadLocalPart),
            }
        }
    }
    let len = bytes
        .iter()
        .position(|&b| !(is_atext(b) || b == b'.' || b >= 128))
        .unwrap_or(bytes.len());
    let dot_string = &s[..len];
    if dot_string.is_empty() || dot_string.split('.').any(str::is_empty) {
        return Err(AddressError::BadLocalPart);
    }
    Ok(len)
}

/// Non-ASCII spaces and controls (NEL, U+2028 …) are no part of any address, and a log line or
/// a header that shows the address must not break at them.
fn has_unicode_space_or_control(s: &str) -> bool {
    s.chars()
        .any(|c| !c.is_ascii() && (c.is_control() || c.is_whitespace()))
}

/// `atext` of RFC 5322 3.2.3, ASCII part.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

fn parse_host(s: &str) -> Result<Host, AddressError> {
    if s.len() > MAX_DOMAIN {
        return Err(AddressError::DomainTooLong(s.len()));
    }
    let Some(literal) = s.strip_prefix('[') else {
        return parse_domain(s).map(Host::Domain);
    };
    let literal = literal
        .strip_suffix(']')
        .ok_or(AddressError::BadAddressLiteral)?;
    if let Some(v6) = literal
        .get(..5)
        .filter(|tag| tag.eq_ignore_ascii_case("IPv6:"))
        .map(|_| &literal[5..])
    {
        return v6
            .parse()
            .map(Host::Ipv6)
            .map_err(|_| AddressError::BadAddressLiteral);
    }
    parse_ipv4(literal)
        .map(Host::Ipv4)
        .ok_or(AddressError::BadAddressLiteral)
}

/// `Snum 3("." Snum)`: four numbers of one to three digits, each at most 255.
fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    parts.next().is_none().then(|| Ipv4Addr::from(octets))
}

/// A domain name, non-ASCII labels allowed; ASCII letters are lowered.
fn parse_domain(s: &str) -> Result<Domain, AddressError> {
    if s.len() > MAX_DOMAIN {
        return Err(AddressError::DomainTooLong(s.len()));
    }
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_LABEL
            && bytes.first() != Some(&b'-')
            && bytes.last() != Some(&b'-')
            && bytes
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b >= 128)
            && !has_unicode_space_or_control(label)
    };
    if s.split('.').all(label_ok) {
        Ok(Domain(s.to_ascii_lowercase()))
    } else {
        Err(AddressError::BadDomain)
    }
}

#[cfg(test)]
mod tests;
