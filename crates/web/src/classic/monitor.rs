//! The Classic UI's Monitor pages: Message Tracking (search mail_logs by MID, sender, recipient
//! and time) and the TLS Connections report (share of TLS versions and ciphers, inbound and
//! outbound, per domain, drawn as bars in SVG).

use std::fmt::Write;

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use postern_logs::tracking::TlsDirection;

use super::Browser;
use crate::html::{escape, page};
use crate::monitor::{self, TRACKING_LIMIT, TrackingQuery};
use crate::state::Shared;

pub(super) async fn tracking(
    State(state): State<Shared>,
    browser: Browser,
    Query(query): Query<TrackingQuery>,
) -> Response {
    let hostname = state.committed().config.system.hostname.to_string();
    let input = |id: &str, label: &str, value: &str, kind: &str| {
        format!(
            r#"<label for="tracking-{id}">{label}</label><input id="tracking-{id}" name="{id}" type="{kind}" value="{}">"#,
            escape(value)
        )
    };
    let mut body = format!(
        r#"<form id="tracking-form" method="get" action="/monitor/tracking">{}{}{}{}{}
<button id="tracking-submit" type="submit">Search</button></form>"#,
        input(
            "sender",
            "Envelope sender (part of it)",
            &query.sender,
            "text"
        ),
        input(
            "recipient",
            "Envelope recipient (part of it)",
            &query.recipient,
            "text"
        ),
        input("mid", "Message ID (MID)", &query.mid, "text"),
        input("since", "Received since", &query.since, "datetime-local"),
        input("until", "Received before", &query.until, "datetime-local"),
    );
    if !query.is_empty() {
        match query.search() {
            Err(refusal) => {
                let _ = write!(
                    body,
                    r#"<p id="form-error" class="error">{}</p>"#,
                    escape(&refusal.0)
                );
            }
            Ok(search) => {
                let found = monitor::track(&state.data, search).await;
                let _ = write!(
                    body,
                    r#"<h2 id="tracking-count">{} message(s){}</h2>"#,
                    found.len(),
                    if found.len() >= TRACKING_LIMIT {
                        " (the newest; narrow the search to see others)"
                    } else {
                        ""
                    }
                );
                body.push_str(r#"<table id="tracking-results"><tr><th>MID</th><th>Received</th><th>Sender</th><th>Recipients</th><th>Status</th></tr>"#);
                for m in &found {
                    let lines: String = m.lines.iter().map(|l| escape(l) + "\n").collect();
                    let _ = write!(
                        body,
                        r#"<tr id="mid-{mid}"><td>{mid}</td><td>{time}</td><td>{from}</td><td>{to}</td><td>{state}</td></tr>
<tr><td colspan="5"><details><summary>Log lines</summary><pre>{lines}</pre></details></td></tr>"#,
                        mid = m.mid,
                        time = m
                            .started
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                            .unwrap_or_default(),
                        from = escape(m.sender.as_deref().unwrap_or("")),
                        to = escape(&m.recipients.join(", ")),
                        state = if m.bounced > 0 {
                            format!("{} ({} bounced)", m.state.label(), m.bounced)
                        } else {
                            m.state.label().to_owned()
                        },
                    );
                }
                body.push_str("</table>");
            }
        }
    }
    Html(page("Message Tracking", &browser.viewer(&hostname), &body)).into_response()
}

/// Horizontal bars, one per row, widths proportional to the counts; SVG attributes only (the
/// pages allow no inline styles).
fn bars(id: &str, rows: &[(String, u64)]) -> String {
    let total: u64 = rows.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return format!(r#"<p id="{id}">No connections yet.</p>"#);
    }
    let height = 22 * rows.len() + 4;
    let mut svg = format!(
        r#"<svg id="{id}" class="chart" width="720" height="{height}" role="img" aria-label="connections by TLS protocol and cipher">"#
    );
    for (i, (label, n)) in rows.iter().enumerate() {
        let y = 22 * i + 2;
        let width = (*n as f64 / total as f64 * 300.0).round().max(1.0);
        let share = *n as f64 * 100.0 / total as f64;
        let _ = write!(
            svg,
            r##"<rect x="0" y="{y}" width="{width}" height="18" fill="#2d6da3"></rect><text x="{tx}" y="{ty}" font-size="12" fill="#1d2329">{label}: {n} ({share:.1}%)</text>"##,
            tx = width + 6.0,
            ty = y + 13,
            label = escape(label),
        );
    }
    svg.push_str("</svg>");
    svg
}

fn direction(key: &str, title: &str, d: &TlsDirection) -> String {
    let mut rows: Vec<(String, u64)> = d
        .shares
        .iter()
        .map(|s| (format!("{} {}", s.protocol, s.cipher), s.connections))
        .collect();
    if d.failed > 0 {
        rows.push(("TLS failed".to_owned(), d.failed));
    }
    if d.clear > 0 {
        rows.push(("No TLS".to_owned(), d.clear));
    }
    let mut domains = String::new();
    for x in d.domains.iter().take(50) {
        let protocols: Vec<String> = x
            .protocols
            .iter()
            .map(|(p, n)| format!("{p}: {n}"))
            .collect();
        let _ = write!(
            domains,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(&x.domain),
            escape(&protocols.join(", "))
        );
    }
    format!(
        r#"<section class="card" id="tls-{key}"><h2>{title}</h2>
<p>{total} connection(s): {tls} with TLS, {failed} failed TLS, {clear} without TLS.</p>
{chart}
<h3>By domain</h3><table id="tls-{key}-domains"><tr><th>Domain</th><th>Connections by protocol</th></tr>{domains}</table></section>"#,
        total = d.connections,
        tls = d.shares.iter().map(|s| s.connections).sum::<u64>(),
        failed = d.failed,
        clear = d.clear,
        chart = bars(&format!("tls-{key}-chart"), &rows),
    )
}

pub(super) async fn tls_report(State(state): State<Shared>, browser: Browser) -> Response {
    let hostname = state.committed().config.system.hostname.to_string();
    let report = monitor::tls_report(&state.data).await;
    let body = format!(
        "{}{}",
        direction("inbound", "Inbound (by sender domain)", &report.inbound),
        direction(
            "outbound",
            "Outbound (by recipient domain)",
            &report.outbound
        )
    );
    Html(page("TLS Connections", &browser.viewer(&hostname), &body)).into_response()
}
