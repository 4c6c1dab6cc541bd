//! Reading mail_logs back: message tracking (every line of the messages a search matches, with
//! the lines of their connections) and the TLS Connections report (which protocols and ciphers
//! connections used, in and out, and per domain). Both read lines in log order, oldest first,
//! as they come from the current and rotated files.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDateTime;

/// The IDs a mail_logs event names: `MID 6`, `ICID 5`, `DCID 8`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ids {
    pub mid: Option<u64>,
    pub icid: Option<u64>,
    pub dcid: Option<u64>,
}

/// The IDs `line` names (the first of each kind).
pub fn ids(line: &str) -> Ids {
    let mut found = Ids::default();
    let mut words = line.split_whitespace().peekable();
    while let Some(word) = words.next() {
        let slot = match word {
            "MID" => &mut found.mid,
            "ICID" => &mut found.icid,
            "DCID" => &mut found.dcid,
            _ => continue,
        };
        if slot.is_none()
            && let Some(n) = words.peek().and_then(|w| w.parse().ok())
        {
            *slot = Some(n);
        }
    }
    found
}

/// The time at the start of a line (`Fri Nov 27 10:50:15 2026 Info: ...`).
pub fn line_time(line: &str) -> Option<NaiveDateTime> {
    let stamp = line.get(..24)?;
    NaiveDateTime::parse_from_str(stamp, "%a %b %e %H:%M:%S %Y").ok()
}

/// The address between `<` and `>` after `marker` (`From: `, `To: `).
fn address<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &line[line.find(marker)? + marker.len()..];
    rest.strip_prefix('<')?.split('>').next()
}

/// The domain of an address, lower-cased; `<>` has none.
pub fn domain_of(address: &str) -> Option<String> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

/// What message tracking looks for; every field given must match.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub mid: Option<u64>,
    /// Part of the envelope sender, any case.
    pub sender: Option<String>,
    /// Part of one of the recipients, any case.
    pub recipient: Option<String>,
    /// Messages that started at or after / before this time.
    pub since: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
    /// At most this many messages, the newest.
    pub limit: usize,
}

/// Where a message is, as its lines tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    /// Receiving: no `ready` line yet.
    Receiving,
    /// In the queue, waiting for (another) delivery attempt.
    Queued,
    /// Delivery was delayed; it will be tried again.
    Delayed,
    /// Finished: every recipient delivered or bounced.
    Done,
}

impl MessageState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Receiving => "Receiving",
            Self::Queued => "Queued",
            Self::Delayed => "Delayed",
            Self::Done => "Done",
        }
    }
}

/// One message and everything logged about it.
#[derive(Debug, Clone)]
pub struct TrackedMessage {
    pub mid: u64,
    pub icid: Option<u64>,
    pub started: Option<NaiveDateTime>,
    pub sender: Option<String>,
    pub recipients: Vec<String>,
    pub state: MessageState,
    /// How many recipients bounced.
    pub bounced: usize,
    /// Its lines and those of its connections (the ICID it came in on, the DCIDs that
    /// delivered it), in log order.
    pub lines: Vec<String>,
}

#[derive(Debug, Default)]
struct Message {
    icid: Option<u64>,
    started: Option<NaiveDateTime>,
    sender: Option<String>,
    recipients: Vec<String>,
    state: Option<MessageState>,
    bounced: usize,
    dcids: BTreeSet<u64>,
    lines: Vec<usize>,
}

/// The messages of `lines` that match `search`, newest first.
pub fn track(lines: impl IntoIterator<Item = String>, search: &Search) -> Vec<TrackedMessage> {
    let mut all: Vec<String> = Vec::new();
    let mut messages: BTreeMap<u64, Message> = BTreeMap::new();
    // Lines of a connection that name no message (its opening, TLS, close).
    let mut connection_lines: HashMap<(bool, u64), Vec<usize>> = HashMap::new();
    for line in lines {
        let n = all.len();
        let id = ids(&line);
        match id.mid {
            Some(mid) => {
                let m = messages.entry(mid).or_default();
                m.lines.push(n);
                if line.contains(&format!("Start MID {mid} ")) {
                    m.started = line_time(&line);
                    m.icid = id.icid;
                    m.state = Some(MessageState::Receiving);
                } else if let Some(sender) = address(&line, " From: ") {
                    m.sender = Some(sender.to_owned());
                } else if let Some(rcpt) = address(&line, " To: ") {
                    m.recipients.push(rcpt.to_owned());
                } else if line.contains(" queued for delivery") {
                    m.state = Some(MessageState::Queued);
                } else if line.contains("Delayed: DCID") {
                    m.state = Some(MessageState::Delayed);
                } else if line.contains("Bounced: DCID") {
                    m.bounced += 1;
                } else if line.contains(&format!("Message finished MID {mid} ")) {
                    m.state = Some(MessageState::Done);
                }
                if let Some(dcid) = id.dcid {
                    m.dcids.insert(dcid);
                }
            }
            None => {
                if let Some(icid) = id.icid {
                    connection_lines.entry((true, icid)).or_default().push(n);
                } else if let Some(dcid) = id.dcid {
                    connection_lines.entry((false, dcid)).or_default().push(n);
                }
            }
        }
        all.push(line);
    }
    let matches = |m: &Message, mid: u64| {
        let contains = |hay: &str, needle: &str| {
            hay.to_ascii_lowercase()
                .contains(&needle.to_ascii_lowercase())
        };
        search.mid.is_none_or(|want| want == mid)
            && search
                .sender
                .as_deref()
                .is_none_or(|s| m.sender.as_deref().is_some_and(|from| contains(from, s)))
            && search
                .recipient
                .as_deref()
                .is_none_or(|r| m.recipients.iter().any(|to| contains(to, r)))
            && search
                .since
                .is_none_or(|t| m.started.is_some_and(|s| s >= t))
            && search
                .until
                .is_none_or(|t| m.started.is_some_and(|s| s < t))
    };
    let limit = if search.limit == 0 {
        usize::MAX
    } else {
        search.limit
    };
    messages
        .iter()
        .rev()
        .filter(|(mid, m)| matches(m, **mid))
        .take(limit)
        .map(|(mid, m)| {
            let mut numbers = m.lines.clone();
            if let Some(icid) = m.icid {
                numbers.extend(connection_lines.get(&(true, icid)).into_iter().flatten());
            }
            for dcid in &m.dcids {
                numbers.extend(connection_lines.get(&(false, *dcid)).into_iter().flatten());
            }
            numbers.sort_unstable();
            numbers.dedup();
            TrackedMessage {
                mid: *mid,
                icid: m.icid,
                started: m.started,
                sender: m.sender.clone(),
                recipients: m.recipients.clone(),
                state: m.state.unwrap_or(MessageState::Receiving),
                bounced: m.bounced,
                lines: numbers.into_iter().map(|n| all[n].clone()).collect(),
            }
        })
        .collect()
}

/// Connections that used one protocol and cipher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsShare {
    pub protocol: String,
    pub cipher: String,
    pub connections: u64,
}

/// A domain's connections by protocol (`TLSv1.3`, or `none` for clear text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainTls {
    pub domain: String,
    pub protocols: BTreeMap<String, u64>,
}

/// One direction of the TLS Connections report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsDirection {
    pub connections: u64,
    /// Connections that completed a TLS handshake, by protocol and cipher, most used first.
    pub shares: Vec<TlsShare>,
    /// Handshakes that failed (inbound `TLS failed`, outbound `TLS deferring`/`TLS failed`).
    pub failed: u64,
    /// Connections without TLS.
    pub clear: u64,
    /// By the sender's domain (inbound) or the recipient's (outbound), most connections first.
    pub domains: Vec<DomainTls>,
}

/// The TLS Connections report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsReport {
    pub inbound: TlsDirection,
    pub outbound: TlsDirection,
}

#[derive(Debug, Default)]
struct Connection {
    tls: Option<(String, String)>,
    failed: bool,
    domain: Option<String>,
}

/// The report over `lines`.
pub fn tls_report(lines: impl IntoIterator<Item = String>) -> TlsReport {
    let mut inbound: BTreeMap<u64, Connection> = BTreeMap::new();
    let mut outbound: BTreeMap<u64, Connection> = BTreeMap::new();
    // MID -> RID -> recipient, for the domain of an outbound connection.
    let mut recipients: HashMap<u64, Vec<String>> = HashMap::new();
    for line in lines {
        let id = ids(&line);
        if let Some(icid) = id
            .icid
            .filter(|icid| line.contains(&format!("New SMTP ICID {icid} ")))
        {
            inbound.insert(icid, Connection::default());
        } else if let Some(dcid) = id
            .dcid
            .filter(|dcid| line.contains(&format!("New SMTP DCID {dcid} ")))
        {
            outbound.insert(dcid, Connection::default());
        } else if let Some((protocol, cipher)) = tls_success(&line) {
            let conn = match (id.icid, id.dcid) {
                (Some(icid), None) => inbound.get_mut(&icid),
                (None, Some(dcid)) => outbound.get_mut(&dcid),
                _ => None,
            };
            if let Some(conn) = conn {
                conn.tls = Some((protocol, cipher));
            }
        } else if line.contains(" TLS failed: ") || line.contains(" TLS deferring: ") {
            let conn = match (id.icid, id.dcid) {
                (Some(icid), None) => inbound.get_mut(&icid),
                (None, Some(dcid)) => outbound.get_mut(&dcid),
                _ => None,
            };
            if let Some(conn) = conn {
                conn.failed = true;
            }
        } else if let (Some(mid), Some(icid)) = (id.mid, id.icid) {
            if let Some(sender) = address(&line, " From: ")
                && let Some(conn) = inbound.get_mut(&icid)
                && conn.domain.is_none()
            {
                conn.domain = domain_of(sender);
            } else if let Some(rcpt) = address(&line, " To: ") {
                recipients.entry(mid).or_default().push(rcpt.to_owned());
            }
        } else if let (Some(mid), Some(dcid)) = (id.mid, id.dcid)
            && line.contains("Delivery start DCID")
            && let Some(conn) = outbound.get_mut(&dcid)
            && conn.domain.is_none()
        {
            let first_rid = line
                .rsplit('[')
                .next()
                .and_then(|r| r.split([',', ']']).next())
                .and_then(|r| r.trim().parse::<usize>().ok());
            conn.domain = first_rid
                .and_then(|rid| recipients.get(&mid)?.get(rid).cloned())
                .and_then(|r| domain_of(&r));
        }
    }
    TlsReport {
        inbound: direction(inbound.into_values()),
        outbound: direction(outbound.into_values()),
    }
}

/// `TLS success protocol TLSv1.3 cipher TLS_AES_256_GCM_SHA384` → protocol and cipher.
fn tls_success(line: &str) -> Option<(String, String)> {
    let rest = line.split(" TLS success protocol ").nth(1)?;
    let (protocol, cipher) = rest.split_once(" cipher ")?;
    Some((protocol.trim().to_owned(), cipher.trim().to_owned()))
}

fn direction(connections: impl Iterator<Item = Connection>) -> TlsDirection {
    let mut report = TlsDirection::default();
    let mut shares: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut domains: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for conn in connections {
        report.connections += 1;
        let protocol = match &conn.tls {
            Some((protocol, cipher)) => {
                *shares
                    .entry((protocol.clone(), cipher.clone()))
                    .or_default() += 1;
                protocol.clone()
            }
            None if conn.failed => {
                report.failed += 1;
                "failed".to_owned()
            }
            None => {
                report.clear += 1;
                "none".to_owned()
            }
        };
        if let Some(domain) = conn.domain {
            *domains
                .entry(domain)
                .or_default()
                .entry(protocol)
                .or_default() += 1;
        }
    }
    report.shares = shares
        .into_iter()
        .map(|((protocol, cipher), connections)| TlsShare {
            protocol,
            cipher,
            connections,
        })
        .collect();
    report
        .shares
        .sort_by_key(|s| std::cmp::Reverse(s.connections));
    report.domains = domains
        .into_iter()
        .map(|(domain, protocols)| DomainTls { domain, protocols })
        .collect();
    report
        .domains
        .sort_by_key(|d| std::cmp::Reverse(d.protocols.values().sum::<u64>()));
    report
}

#[cfg(test)]
mod tests;
