//! The service extensions of the EHLO reply (RFC 5321 4.1.1.1): written by the server, read by
//! the client to learn what the server it talks to offers.

use crate::reply::Reply;

/// The extensions a server announces in its EHLO reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `PIPELINING` (RFC 2920).
    pub pipelining: bool,
    /// `SIZE n` (RFC 1870): the largest message accepted, in octets. `Some(0)` means SIZE is
    /// announced without a fixed maximum, as `SIZE 0` or a bare `SIZE` say.
    pub size: Option<u64>,
    /// `8BITMIME` (RFC 6152).
    pub eight_bit_mime: bool,
    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    pub enhanced_status_codes: bool,
    /// `SMTPUTF8` (RFC 6531).
    pub smtputf8: bool,
    /// `STARTTLS` (RFC 3207): announced only before TLS, and only where TLS is offered.
    pub starttls: bool,
    /// Lines of other extensions, as written: `AUTH PLAIN LOGIN`, `CHUNKING`. A parsed reply
    /// keeps here every line not known above; a server writes them after the known ones.
    pub other: Vec<String>,
}

impl Capabilities {
    /// The EHLO reply: `250-hostname`, then a line per extension.
    pub fn ehlo_reply(&self, hostname: &str) -> Reply {
        let mut reply = Reply::fixed(250, None, hostname);
        if self.pipelining {
            reply = reply.with_line("PIPELINING");
        }
        if let Some(size) = self.size {
            reply = reply.with_line(&format!("SIZE {size}"));
        }
        if self.eight_bit_mime {
            reply = reply.with_line("8BITMIME");
        }
        if self.enhanced_status_codes {
            reply = reply.with_line("ENHANCEDSTATUSCODES");
        }
        if self.smtputf8 {
            reply = reply.with_line("SMTPUTF8");
        }
        if self.starttls {
            reply = reply.with_line("STARTTLS");
        }
        for line in &self.other {
            reply = reply.with_line(line);
        }
        reply
    }

    /// Reads the extensions from a server's EHLO reply. The first line is the server's name
    /// and says nothing about extensions; keywords are case-insensitive. A reply other than
    /// 2xx announces nothing (the client then falls back to HELO).
    pub fn from_ehlo_reply(reply: &Reply) -> Self {
        let mut caps = Self::default();
        if !reply.is_positive_completion() {
            return caps;
        }
        for line in reply.lines().iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => caps.pipelining = true,
                "SIZE" => caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => caps.eight_bit_mime = true,
                "ENHANCEDSTATUSCODES" => caps.enhanced_status_codes = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "STARTTLS" => caps.starttls = true,
                _ => caps.other.push(line.clone()),
            }
        }
        caps
    }

    /// The largest message the server accepts, when it announced a fixed maximum.
    pub fn max_message_size(&self) -> Option<u64> {
        self.size.filter(|&n| n > 0)
    }

    /// The parameters of another extension, `Some("")` when it has none: `extension("auth")`
    /// gives `Some("PLAIN LOGIN")` for `AUTH PLAIN LOGIN`.
    pub fn extension(&self, keyword: &str) -> Option<&str> {
        self.other.iter().find_map(|line| {
            let line = line.trim_start();
            let (word, params) = line.split_once(' ').unwrap_or((line, ""));
            word.eq_ignore_ascii_case(keyword).then(|| params.trim())
        })
    }
}

#[cfg(test)]
mod tests;
