//! TLS policy per service: the protocol range rules of the seed article and the cipher strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The TLS 1.3 cipher suites, in server preference order. They are fixed: no setting selects,
/// orders or removes them (seed: "cannot be changed or excluded").
pub const TLS13_CIPHER_SUITES: [&str; 3] = [
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_GCM_SHA256",
];

/// A TLS protocol version an administrator can enable. Ordered oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TlsVersion {
    Tls1_0,
    Tls1_1,
    Tls1_2,
    Tls1_3,
}

impl TlsVersion {
    /// All versions, newest first: the order of the CLI menu.
    pub const MENU: [TlsVersion; 4] = [Self::Tls1_3, Self::Tls1_2, Self::Tls1_1, Self::Tls1_0];

    /// The number of this version in the `sslconfig` menu (1 = TLS v1.3 … 4 = TLS v1.0).
    pub fn menu_number(self) -> u8 {
        match self {
            Self::Tls1_3 => 1,
            Self::Tls1_2 => 2,
            Self::Tls1_1 => 3,
            Self::Tls1_0 => 4,
        }
    }

    /// The version with menu number `n`, if there is one.
    pub fn from_menu_number(n: u8) -> Option<Self> {
        Self::MENU.get(usize::from(n).checked_sub(1)?).copied()
    }

    /// The administrator's name for it, as the UI and CLI print it: `TLS v1.3`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Tls1_0 => "TLS v1.0",
            Self::Tls1_1 => "TLS v1.1",
            Self::Tls1_2 => "TLS v1.2",
            Self::Tls1_3 => "TLS v1.3",
        }
    }

    /// The method token used in `sslconfig` output: `tlsv1_3`.
    pub fn token(self) -> &'static str {
        match self {
            Self::Tls1_0 => "tlsv1_0",
            Self::Tls1_1 => "tlsv1_1",
            Self::Tls1_2 => "tlsv1_2",
            Self::Tls1_3 => "tlsv1_3",
        }
    }

    fn all_between(low: Self, high: Self) -> impl DoubleEndedIterator<Item = Self> {
        Self::MENU
            .into_iter()
            .rev()
            .filter(move |v| low <= *v && *v <= high)
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A contiguous, non-empty range of enabled TLS versions. No other shape can be built: the
/// reference appliance greys out any box that would leave a hole, and so do we.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProtocolRange {
    oldest: TlsVersion,
    newest: TlsVersion,
}

impl ProtocolRange {
    /// The range from `oldest` to `newest`, both enabled. Either order is accepted.
    pub fn new(a: TlsVersion, b: TlsVersion) -> Self {
        Self {
            oldest: a.min(b),
            newest: a.max(b),
        }
    }

    /// One version alone.
    pub fn only(v: TlsVersion) -> Self {
        Self::new(v, v)
    }

    /// Builds a range from an `sslconfig` menu selection: one number (`2`), a range (`1-3`,
    /// either direction) or a comma list (`1,2,3`), spaces allowed. The selected versions must
    /// form a contiguous range.
    pub fn from_selection(input: &str) -> Result<Self, SelectionError> {
        let mut chosen = [false; 4];
        if input.trim().is_empty() {
            return Err(SelectionError::Empty);
        }
        for part in input.split(',') {
            let part = part.trim();
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (menu_number(a)?, menu_number(b)?),
                None => {
                    let n = menu_number(part)?;
                    (n, n)
                }
            };
            for n in a.min(b)..=a.max(b) {
                chosen[usize::from(n) - 1] = true;
            }
        }
        let versions: Vec<TlsVersion> = TlsVersion::MENU
            .into_iter()
            .zip(chosen)
            .filter_map(|(v, on)| on.then_some(v))
            .collect();
        let (newest, oldest) = match (versions.first(), versions.last()) {
            (Some(n), Some(o)) => (*n, *o),
            _ => return Err(SelectionError::Empty),
        };
        let missing: Vec<TlsVersion> = TlsVersion::all_between(oldest, newest)
            .rev()
            .filter(|v| !versions.contains(v))
            .collect();
        if missing.is_empty() {
            Ok(Self { oldest, newest })
        } else {
            Err(SelectionError::NotContiguous {
                newest,
                oldest,
                missing,
            })
        }
    }

    pub fn oldest(self) -> TlsVersion {
        self.oldest
    }

    pub fn newest(self) -> TlsVersion {
        self.newest
    }

    pub fn contains(self, v: TlsVersion) -> bool {
        self.oldest <= v && v <= self.newest
    }

    /// The enabled versions, oldest first.
    pub fn versions(self) -> impl DoubleEndedIterator<Item = TlsVersion> {
        TlsVersion::all_between(self.oldest, self.newest)
    }

    /// The method token of `sslconfig`: `tlsv1_1tlsv1_2`.
    pub fn method_token(self) -> String {
        self.versions().map(TlsVersion::token).collect()
    }

    /// The selection as the CLI offers it for Enter-keeps-it: `2-3`, or `2` for one version.
    pub fn menu_selection(self) -> String {
        let (first, last) = (self.newest.menu_number(), self.oldest.menu_number());
        if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        }
    }

    /// Whether a checkbox for `v` may be ticked or unticked without breaking the range: what the
    /// web UI greys out. Ticking is allowed next to either end; unticking only at an end, and
    /// never for the last enabled version.
    pub fn can_toggle(self, v: TlsVersion) -> bool {
        if self.contains(v) {
            self.oldest != self.newest && (v == self.oldest || v == self.newest)
        } else {
            let next =
                |a: TlsVersion, b: TlsVersion| a.menu_number().abs_diff(b.menu_number()) == 1;
            next(v, self.oldest) || next(v, self.newest)
        }
    }
}

fn menu_number(text: &str) -> Result<u8, SelectionError> {
    let text = text.trim();
    let n: u32 = text
        .parse()
        .map_err(|_| SelectionError::NotANumber(text.to_owned()))?;
    u8::try_from(n)
        .ok()
        .filter(|n| TlsVersion::from_menu_number(*n).is_some())
        .ok_or(SelectionError::OutOfRange(n))
}

impl fmt::Display for ProtocolRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.method_token())
    }
}

impl FromStr for ProtocolRange {
    type Err = MethodTokenError;

    /// Parses a method token (`tlsv1_1tlsv1_2`): versions oldest first, no gaps.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut rest = s;
        let mut versions = Vec::new();
        while !rest.is_empty() {
            let v = TlsVersion::MENU
                .into_iter()
                .find(|v| rest.starts_with(v.token()))
                .ok_or_else(|| MethodTokenError(s.to_owned()))?;
            rest = &rest[v.token().len()..];
            versions.push(v);
        }
        let (Some(&oldest), Some(&newest)) = (versions.first(), versions.last()) else {
            return Err(MethodTokenError(s.to_owned()));
        };
        let range = Self::new(oldest, newest);
        if range.versions().eq(versions.iter().copied()) {
            Ok(range)
        } else {
            Err(MethodTokenError(s.to_owned()))
        }
    }
}

impl TryFrom<String> for ProtocolRange {
    type Error = MethodTokenError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ProtocolRange> for String {
    fn from(r: ProtocolRange) -> String {
        r.method_token()
    }
}

/// Why a menu selection is not a protocol range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectionError {
    /// Nothing was selected.
    #[error("select at least one protocol")]
    Empty,
    /// A part of the selection is not a number.
    #[error(
        "'{0}' is not a menu number; enter a number like 2, a range like 1-3 or a list like 1,2,3"
    )]
    NotANumber(String),
    /// A number outside the menu.
    #[error("{0} is not in the menu; choose from 1 to 4")]
    OutOfRange(u32),
    /// The selection leaves a hole between the newest and the oldest chosen version.
    #[error(
        "{newest} cannot be enabled with {oldest} unless {} also enabled",
        and_list(missing)
    )]
    NotContiguous {
        newest: TlsVersion,
        oldest: TlsVersion,
        missing: Vec<TlsVersion>,
    },
}

fn and_list(versions: &[TlsVersion]) -> String {
    let names: Vec<&str> = versions.iter().map(|v| v.label()).collect();
    match names.as_slice() {
        [one] => format!("{one} is"),
        [init @ .., last] => format!("{} and {last} are", init.join(", ")),
        [] => String::new(),
    }
}

/// A string that is not a method token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a TLS method such as tlsv1_1tlsv1_2")]
pub struct MethodTokenError(pub String);

/// An OpenSSL-syntax cipher string for TLS v1.0–v1.2 (`ECDHE+AESGCM:!aNULL`). This type checks
/// its syntax only; which suites it selects is the TLS engine's business (postern-tls).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CipherString(String);

impl CipherString {
    const MAX_LEN: usize = 1024;

    pub fn new(s: &str) -> Result<Self, CipherStringError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(CipherStringError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(CipherStringError::TooLong(s.len()));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "+-!@:=,._ ".contains(*c)))
        {
            return Err(CipherStringError::BadCharacter(c));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CipherString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CipherString {
    type Error = CipherStringError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<CipherString> for String {
    fn from(c: CipherString) -> String {
        c.0
    }
}

/// Why a cipher string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CipherStringError {
    #[error("the cipher string is empty")]
    Empty,
    #[error("the cipher string is {0} characters long; at most 1024 are allowed")]
    TooLong(usize),
    #[error("'{0}' cannot appear in a cipher string")]
    BadCharacter(char),
}

/// The services whose TLS protocols an administrator sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TlsService {
    GuiHttps,
    InboundSmtp,
    OutboundSmtp,
    OtherClient,
}

impl TlsService {
    pub const ALL: [TlsService; 4] = [
        Self::GuiHttps,
        Self::InboundSmtp,
        Self::OutboundSmtp,
        Self::OtherClient,
    ];

    /// The name the UI and CLI print: `Inbound SMTP`.
    pub fn label(self) -> &'static str {
        match self {
            Self::GuiHttps => "GUI HTTPS",
            Self::InboundSmtp => "Inbound SMTP",
            Self::OutboundSmtp => "Outbound SMTP",
            Self::OtherClient => "Other TLS client services",
        }
    }

    /// The keyword of the one-line `sslconfig` form: `inbound`.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::GuiHttps => "gui",
            Self::InboundSmtp => "inbound",
            Self::OutboundSmtp => "outbound",
            Self::OtherClient => "other",
        }
    }

    pub fn from_keyword(word: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.keyword().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for TlsService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Protocols and TLS ≤ 1.2 ciphers of one service that serves or speaks TLS v1.0–v1.3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTls {
    pub protocols: ProtocolRange,
    pub ciphers: CipherString,
}

/// Other TLS client services (LDAP, alerts, updates …): TLS v1.1 and v1.2, plus TLS v1.0 only
/// when the administrator selects it. TLS v1.3 is not offered for them (seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherClientTls {
    pub tls_v1_0: bool,
}

impl OtherClientTls {
    pub fn protocols(self) -> ProtocolRange {
        let oldest = if self.tls_v1_0 {
            TlsVersion::Tls1_0
        } else {
            TlsVersion::Tls1_1
        };
        ProtocolRange::new(oldest, TlsVersion::Tls1_2)
    }

    /// The setting a protocol range asks for, if the range is one these services can use.
    pub fn from_range(range: ProtocolRange) -> Result<Self, TlsSettingError> {
        let with = ProtocolRange::new(TlsVersion::Tls1_0, TlsVersion::Tls1_2);
        let without = ProtocolRange::new(TlsVersion::Tls1_1, TlsVersion::Tls1_2);
        if range == with || range == without {
            Ok(Self {
                tls_v1_0: range == with,
            })
        } else {
            Err(TlsSettingError::OtherClientFixed(range))
        }
    }
}

/// The extra checks of a peer's certificate when a TLS client verifies it (`sslconfig`
/// `PEER_CERT_FQDN` and `PEER_CERT_X509`). Both are off on a fresh appliance, as on the
/// reference; they change nothing for connections that do not verify the certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerCertificateChecks {
    /// FQDN validation: the host name is matched only against the certificate's
    /// subjectAltName DNS names, by the rules of RFC 6125 (a wildcard is the whole left-most
    /// label); a subject common name is never taken for a host name. rustls always matches so;
    /// without this the legacy engine falls back to the common name of a certificate that has
    /// no DNS names.
    pub fqdn: bool,
    /// X.509 validation: every trust anchor must be a CA certificate (RFC 5280: basic
    /// constraints with cA set, and keyCertSign when it has a key usage); a server certificate
    /// trusted directly, as its own anchor, is not accepted.
    pub x509: bool,
}

/// TLS settings of every service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsSettings {
    pub gui_https: ServiceTls,
    pub inbound_smtp: ServiceTls,
    pub outbound_smtp: ServiceTls,
    pub other_client: OtherClientTls,
    pub peer_certificates: PeerCertificateChecks,
}

impl TlsSettings {
    /// The cipher string of a fresh appliance: forward-secret AEAD first, then the ECDHE CBC
    /// suites that TLS v1.1 clients need; nothing anonymous, no RC4, 3DES or MD5.
    pub const DEFAULT_CIPHERS: &str =
        "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:!aNULL:!eNULL:!MD5:!3DES:!RC4";

    /// Factory defaults (seed): TLS v1.1 and v1.2 on every service, TLS v1.0 off.
    pub fn factory() -> Self {
        let service = || ServiceTls {
            protocols: ProtocolRange::new(TlsVersion::Tls1_1, TlsVersion::Tls1_2),
            ciphers: CipherString(Self::DEFAULT_CIPHERS.to_owned()),
        };
        Self {
            gui_https: service(),
            inbound_smtp: service(),
            outbound_smtp: service(),
            other_client: OtherClientTls { tls_v1_0: false },
            peer_certificates: PeerCertificateChecks::default(),
        }
    }

    /// The enabled protocols of a service.
    pub fn protocols(&self, service: TlsService) -> ProtocolRange {
        match self.service(service) {
            Some(s) => s.protocols,
            None => self.other_client.protocols(),
        }
    }

    /// Sets the protocols of a service, as the `sslconfig` dialog and the SSL page do.
    pub fn set_protocols(
        &mut self,
        service: TlsService,
        range: ProtocolRange,
    ) -> Result<(), TlsSettingError> {
        match self.service_mut(service) {
            Some(s) => s.protocols = range,
            None => self.other_client = OtherClientTls::from_range(range)?,
        }
        Ok(())
    }

    /// The settings of a service with its own cipher string; `None` for other client services.
    pub fn service(&self, service: TlsService) -> Option<&ServiceTls> {
        match service {
            TlsService::GuiHttps => Some(&self.gui_https),
            TlsService::InboundSmtp => Some(&self.inbound_smtp),
            TlsService::OutboundSmtp => Some(&self.outbound_smtp),
            TlsService::OtherClient => None,
        }
    }

    pub fn service_mut(&mut self, service: TlsService) -> Option<&mut ServiceTls> {
        match service {
            TlsService::GuiHttps => Some(&mut self.gui_https),
            TlsService::InboundSmtp => Some(&mut self.inbound_smtp),
            TlsService::OutboundSmtp => Some(&mut self.outbound_smtp),
            TlsService::OtherClient => None,
        }
    }
}

/// Why a TLS setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSettingError {
    /// Other TLS client services always use TLS v1.1 and v1.2; only TLS v1.0 can be added.
    #[error(
        "Other TLS client services use TLS v1.1 and TLS v1.2, with TLS v1.0 only when selected \
         (2-3 or 2-4); {0} is not available for them"
    )]
    OtherClientFixed(ProtocolRange),
    /// The service keeps no cipher string of its own.
    #[error("{0} has no cipher setting of its own")]
    NoCipherSetting(TlsService),
}

#[cfg(test)]
mod tests;
