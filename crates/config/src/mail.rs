//! Mail flow settings: how a listener treats TLS, which recipient domains it accepts (the
//! Recipient Access Table), its limits, where mail for a domain goes (SMTP routes) and how it is
//! delivered there (destination controls).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::is_dns_name;

/// TLS on an SMTP listener, as on the reference appliance's mail flow policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ListenerTls {
    /// STARTTLS is not offered.
    No,
    /// STARTTLS is offered; clients may send in clear text.
    #[default]
    Preferred,
    /// STARTTLS is offered and MAIL is refused (`530 5.7.0`) until it is done.
    Required,
}

impl ListenerTls {
    pub const ALL: [ListenerTls; 3] = [Self::No, Self::Preferred, Self::Required];

    pub fn keyword(self) -> &'static str {
        match self {
            Self::No => "no",
            Self::Preferred => "preferred",
            Self::Required => "required",
        }
    }
}

impl fmt::Display for ListenerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::No => "No",
            Self::Preferred => "Preferred",
            Self::Required => "Required",
        })
    }
}

impl FromStr for ListenerTls {
    type Err = MailSettingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.keyword().eq_ignore_ascii_case(s))
            .ok_or_else(|| MailSettingError::Keyword(s.to_owned(), "no, preferred or required"))
    }
}

/// What the Recipient Access Table does with a recipient domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecipientAction {
    Accept,
    Reject,
}

impl fmt::Display for RecipientAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Accept => "ACCEPT",
            Self::Reject => "REJECT",
        })
    }
}

impl FromStr for RecipientAction {
    type Err = MailSettingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "accept" => Ok(Self::Accept),
            "reject" => Ok(Self::Reject),
            _ => Err(MailSettingError::Keyword(s.to_owned(), "accept or reject")),
        }
    }
}

/// Limits of one listener, each answered with a clear reply when reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerLimits {
    /// Open connections at once; more are answered `421 4.3.2`.
    pub max_connections: u32,
    /// Open connections from one IP address; more are answered `421 4.7.0`.
    pub max_connections_per_ip: u32,
    /// Bytes of one message (advertised in EHLO SIZE); more is refused `552 5.3.4`.
    pub max_message_size: u64,
    /// Recipients of one message; more are answered `452 4.5.3`.
    pub max_recipients: u32,
    /// Seconds to wait for a command.
    pub command_timeout: u32,
    /// Seconds to wait for message data.
    pub data_timeout: u32,
}

impl ListenerLimits {
    /// Checks each limit against the range an appliance can honour.
    pub fn check(&self) -> Result<(), MailSettingError> {
        let within = |name: &'static str, value: u64, low: u64, high: u64| {
            if (low..=high).contains(&value) {
                Ok(())
            } else {
                Err(MailSettingError::OutOfRange {
                    name,
                    value,
                    low,
                    high,
                })
            }
        };
        within("max-connections", self.max_connections.into(), 1, 100_000)?;
        within(
            "max-connections-per-ip",
            self.max_connections_per_ip.into(),
            1,
            self.max_connections.into(),
        )?;
        // RFC 5321 4.5.3.1.7: at least 64k must be accepted.
        within(
            "max-message-size",
            self.max_message_size,
            64 * 1024,
            1 << 30,
        )?;
        within("max-recipients", self.max_recipients.into(), 1, 100_000)?;
        within("command-timeout", self.command_timeout.into(), 1, 3600)?;
        within("data-timeout", self.data_timeout.into(), 1, 3600)
    }
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            max_connections: 300,
            max_connections_per_ip: 20,
            max_message_size: 20 * 1024 * 1024,
            max_recipients: 1000,
            command_timeout: 300,
            data_timeout: 600,
        }
    }
}

/// A mail domain as the RAT and the routes name it: `example.com` matches that domain only,
/// `.example.com` its subdomains, `ALL` everything. Lower-case, without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainPattern(String);

impl DomainPattern {
    pub const ALL: &str = "ALL";

    pub fn new(pattern: &str) -> Result<Self, MailSettingError> {
        if pattern.eq_ignore_ascii_case(Self::ALL) {
            return Ok(Self(Self::ALL.to_owned()));
        }
        let lower = pattern.trim_end_matches('.').to_ascii_lowercase();
        let name = lower.strip_prefix('.').unwrap_or(&lower);
        if is_dns_name(name) {
            Ok(Self(lower))
        } else {
            Err(MailSettingError::Domain(pattern.to_owned()))
        }
    }

    pub fn is_all(&self) -> bool {
        self.0 == Self::ALL
    }

    /// Whether `domain` (any case) is matched by this pattern.
    pub fn matches(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        match self.0.strip_prefix('.') {
            _ if self.is_all() => true,
            Some(parent) => domain.ends_with(&self.0) && domain.len() > parent.len() + 1,
            None => domain == self.0,
        }
    }

    /// How specific the pattern is: an exact domain beats a subdomain pattern, which beats a
    /// shorter one, which beats `ALL`.
    fn specificity(&self) -> (u8, usize) {
        match self.0.strip_prefix('.') {
            _ if self.is_all() => (0, 0),
            Some(parent) => (1, parent.len()),
            None => (2, self.0.len()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for DomainPattern {
    type Error = MailSettingError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<DomainPattern> for String {
    fn from(p: DomainPattern) -> String {
        p.0
    }
}

/// The entry of a domain table that applies to `domain`: the most specific matching pattern.
pub fn lookup<'a, T>(
    table: &'a BTreeMap<DomainPattern, T>,
    domain: &str,
) -> Option<(&'a DomainPattern, &'a T)> {
    table
        .iter()
        .filter(|(p, _)| p.matches(domain))
        .max_by_key(|(p, _)| p.specificity())
}

/// A next hop of an SMTP route: a host name or address literal, and a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RouteHost {
    host: String,
    port: u16,
}

impl RouteHost {
    pub fn new(text: &str) -> Result<Self, MailSettingError> {
        let bad = || MailSettingError::RouteHost(text.to_owned());
        let (host, port) = match text.rsplit_once(':') {
            // `[::1]:25` or `[::1]`: an IPv6 literal in brackets.
            _ if text.starts_with('[') => match text.split_once(']') {
                Some((h, "")) => (h.trim_start_matches('['), 25),
                Some((h, rest)) => (
                    h.trim_start_matches('['),
                    rest.strip_prefix(':')
                        .and_then(|p| p.parse().ok())
                        .ok_or_else(bad)?,
                ),
                None => return Err(bad()),
            },
            Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
            None => (text, 25),
        };
        if port == 0 {
            return Err(bad());
        }
        let is_ip = host.parse::<std::net::IpAddr>().is_ok();
        if !is_ip && DomainPattern::new(host).map_or(true, |p| p.is_all() || p.0.starts_with('.')) {
            return Err(bad());
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for RouteHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl TryFrom<String> for RouteHost {
    type Error = MailSettingError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<RouteHost> for String {
    fn from(h: RouteHost) -> String {
        h.to_string()
    }
}

/// TLS for deliveries to a destination (the reference appliance's destination controls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DestinationTls {
    /// Never STARTTLS.
    No,
    /// STARTTLS when offered; clear text if it is not offered or fails before the handshake.
    #[default]
    Preferred,
    /// No delivery without TLS.
    Required,
    /// As Preferred, and the certificate must verify; if it does not, delivery goes on in TLS.
    PreferredVerify,
    /// No delivery without TLS and a certificate that verifies for the domain.
    RequiredVerify,
}

impl DestinationTls {
    pub const ALL: [DestinationTls; 5] = [
        Self::No,
        Self::Preferred,
        Self::Required,
        Self::PreferredVerify,
        Self::RequiredVerify,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            Self::No => "no",
            Self::Preferred => "preferred",
            Self::Required => "required",
            Self::PreferredVerify => "preferred-verify",
            Self::RequiredVerify => "required-verify",
        }
    }
}

impl fmt::Display for DestinationTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::No => "No",
            Self::Preferred => "Preferred",
            Self::Required => "Required",
            Self::PreferredVerify => "Preferred - Verify",
            Self::RequiredVerify => "Required - Verify",
        })
    }
}

impl FromStr for DestinationTls {
    type Err = MailSettingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.keyword().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                MailSettingError::Keyword(
                    s.to_owned(),
                    "no, preferred, required, preferred-verify or required-verify",
                )
            })
    }
}

/// How mail to one destination domain is delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationControl {
    pub tls: DestinationTls,
    /// Connections at once to the destination.
    pub max_concurrency: u32,
}

impl Default for DestinationControl {
    fn default() -> Self {
        Self {
            tls: DestinationTls::Preferred,
            max_concurrency: 20,
        }
    }
}

/// Everything about where mail goes and how.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeliverySettings {
    /// SMTP routes: a domain (or `ALL`) to the hosts tried in order; domains without a route
    /// are delivered to their MX hosts.
    pub routes: BTreeMap<DomainPattern, Vec<RouteHost>>,
    /// Destination controls by domain; `ALL` is the default for the rest.
    pub destinations: BTreeMap<DomainPattern, DestinationControl>,
    /// How long a message is retried before it bounces, in seconds.
    pub max_queue_age: u64,
}

impl DeliverySettings {
    pub const DEFAULT_MAX_QUEUE_AGE: u64 = 5 * 24 * 3600;

    pub fn factory() -> Self {
        Self {
            routes: BTreeMap::new(),
            destinations: BTreeMap::from([(
                DomainPattern(DomainPattern::ALL.to_owned()),
                DestinationControl::default(),
            )]),
            max_queue_age: Self::DEFAULT_MAX_QUEUE_AGE,
        }
    }

    /// The destination control that applies to `domain`.
    pub fn destination(&self, domain: &str) -> DestinationControl {
        lookup(&self.destinations, domain)
            .map(|(_, d)| d.clone())
            .unwrap_or_default()
    }

    /// The route of `domain`, if one applies (otherwise MX).
    pub fn route(&self, domain: &str) -> Option<&[RouteHost]> {
        lookup(&self.routes, domain).map(|(_, hosts)| hosts.as_slice())
    }
}

/// Why a mail setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MailSettingError {
    #[error(
        "'{0}' is not a domain: use a name like example.com, .example.com for its subdomains, or ALL"
    )]
    Domain(String),
    #[error(
        "'{0}' is not a host: use a name or address with an optional port, like mx.example.com:2525 or [2001:db8::1]:25"
    )]
    RouteHost(String),
    #[error("'{0}' is not one of {1}")]
    Keyword(String, &'static str),
    #[error("{name} must be from {low} to {high}, not {value}")]
    OutOfRange {
        name: &'static str,
        value: u64,
        low: u64,
        high: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_patterns_match_as_the_reference() {
        let exact = DomainPattern::new("Example.COM.").unwrap();
        let subs = DomainPattern::new(".example.com").unwrap();
        let all = DomainPattern::new("all").unwrap();
        assert!(exact.matches("example.com") && exact.matches("EXAMPLE.com"));
        assert!(!exact.matches("mx.example.com"));
        assert!(subs.matches("mx.example.com") && !subs.matches("example.com"));
        assert!(!subs.matches("badexample.com"));
        assert!(all.matches("anything.test"));
        for bad in ["", "a..b", "-a.com", "a_b.com", "*.example.com"] {
            assert!(DomainPattern::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_most_specific_entry_applies() {
        let table = BTreeMap::from([
            (DomainPattern::new("ALL").unwrap(), 0),
            (DomainPattern::new(".example.com").unwrap(), 1),
            (DomainPattern::new("mx.example.com").unwrap(), 2),
        ]);
        assert_eq!(lookup(&table, "mx.example.com").map(|e| *e.1), Some(2));
        assert_eq!(lookup(&table, "a.example.com").map(|e| *e.1), Some(1));
        assert_eq!(lookup(&table, "other.test").map(|e| *e.1), Some(0));
    }

    #[test]
    fn route_hosts() {
        assert_eq!(
            RouteHost::new("mx.example.com").unwrap().to_string(),
            "mx.example.com:25"
        );
        assert_eq!(RouteHost::new("127.0.0.1:2526").unwrap().port(), 2526);
        assert_eq!(
            RouteHost::new("[::1]:2526").unwrap().to_string(),
            "[::1]:2526"
        );
        assert_eq!(RouteHost::new("[::1]").unwrap().host(), "::1");
        for bad in [
            "",
            "ALL",
            "mx:0",
            "mx:99999",
            "mx.example.com:x",
            "[::1",
            "a b",
        ] {
            assert!(RouteHost::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_outside_their_range_are_refused() {
        assert_eq!(ListenerLimits::default().check(), Ok(()));
        let l = ListenerLimits {
            max_message_size: 1000,
            ..ListenerLimits::default()
        };
        assert!(matches!(
            l.check(),
            Err(MailSettingError::OutOfRange {
                name: "max-message-size",
                ..
            })
        ));
        let l = ListenerLimits {
            max_connections_per_ip: ListenerLimits::default().max_connections + 1,
            ..ListenerLimits::default()
        };
        assert!(l.check().is_err());
    }

    #[test]
    fn keywords_parse() {
        assert_eq!("ACCEPT".parse(), Ok(RecipientAction::Accept));
        assert!("maybe".parse::<RecipientAction>().is_err());
        assert_eq!("Required".parse(), Ok(ListenerTls::Required));
        assert_eq!(
            "preferred-verify".parse(),
            Ok(DestinationTls::PreferredVerify)
        );
        assert!("maybe".parse::<DestinationTls>().is_err());
        assert_eq!(
            DestinationTls::RequiredVerify.to_string(),
            "Required - Verify"
        );
    }
}
