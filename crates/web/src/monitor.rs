//! Reading mail_logs for the web: Message Tracking and the TLS Connections report, shared by the
//! Classic UI pages and the REST API. The files are read on a blocking thread.

use std::path::Path;

use chrono::NaiveDateTime;
use postern_logs::Subscription;
use postern_logs::tracking::{self, Search, TlsDirection, TlsReport, TrackedMessage};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::Refusal;

/// Messages shown at most for one search.
pub(crate) const TRACKING_LIMIT: usize = 100;

/// A tracking search as the page's form and the API's query give it; empty fields are unset.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct TrackingQuery {
    #[serde(default)]
    pub(crate) mid: String,
    #[serde(default)]
    pub(crate) sender: String,
    #[serde(default)]
    pub(crate) recipient: String,
    /// `2026-11-27 10:50`, `2026-11-27T10:50` (a datetime-local field) or with seconds.
    #[serde(default)]
    pub(crate) since: String,
    #[serde(default)]
    pub(crate) until: String,
}

impl TrackingQuery {
    pub(crate) fn is_empty(&self) -> bool {
        [
            &self.mid,
            &self.sender,
            &self.recipient,
            &self.since,
            &self.until,
        ]
        .iter()
        .all(|f| f.trim().is_empty())
    }

    pub(crate) fn search(&self) -> Result<Search, Refusal> {
        let text = |f: &str| Some(f.trim().to_owned()).filter(|t| !t.is_empty());
        let mid = match text(&self.mid) {
            None => None,
            Some(m) => Some(
                m.parse()
                    .map_err(|_| Refusal(format!("The MID must be a number, not '{m}'.")))?,
            ),
        };
        Ok(Search {
            mid,
            sender: text(&self.sender),
            recipient: text(&self.recipient),
            since: text(&self.since).map(|t| time(&t)).transpose()?,
            until: text(&self.until).map(|t| time(&t)).transpose()?,
            limit: TRACKING_LIMIT,
        })
    }
}

fn time(text: &str) -> Result<NaiveDateTime, Refusal> {
    let normal = text.replace('T', " ");
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(&normal, f).ok())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(&normal, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .ok_or_else(|| {
            Refusal(format!(
                "'{text}' is not a time; use YYYY-MM-DD or YYYY-MM-DD HH:MM (the appliance's local time)."
            ))
        })
}

/// Every mail_logs line, oldest first (a log that cannot be read shows as empty).
fn mail_log_lines(data: &Path) -> Vec<String> {
    let files = Subscription::MailLogs.files(data).unwrap_or_default();
    let mut lines = Vec::new();
    let _ = postern_logs::for_each_line(&files, |line| {
        lines.push(line.to_owned());
        Ok(())
    });
    lines
}

pub(crate) async fn track(data: &Path, search: Search) -> Vec<TrackedMessage> {
    let data = data.to_owned();
    tokio::task::spawn_blocking(move || tracking::track(mail_log_lines(&data), &search))
        .await
        .unwrap_or_default()
}

pub(crate) async fn tls_report(data: &Path) -> TlsReport {
    let data = data.to_owned();
    tokio::task::spawn_blocking(move || tracking::tls_report(mail_log_lines(&data)))
        .await
        .unwrap_or_default()
}

pub(crate) fn message_json(m: &TrackedMessage) -> Value {
    json!({
        "mid": m.mid,
        "icid": m.icid,
        "started": m.started.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
        "sender": m.sender,
        "recipients": m.recipients,
        "state": m.state.label(),
        "bounced": m.bounced,
        "lines": m.lines,
    })
}

fn direction_json(d: &TlsDirection) -> Value {
    json!({
        "connections": d.connections,
        "tls": d.shares.iter().map(|s| json!({ "protocol": s.protocol, "cipher": s.cipher, "connections": s.connections })).collect::<Vec<_>>(),
        "failed": d.failed,
        "clear": d.clear,
        "domains": d.domains.iter().map(|x| json!({ "domain": x.domain, "protocols": x.protocols })).collect::<Vec<_>>(),
    })
}

pub(crate) fn report_json(r: &TlsReport) -> Value {
    json!({ "inbound": direction_json(&r.inbound), "outbound": direction_json(&r.outbound) })
}
