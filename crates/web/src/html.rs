//! HTML for the Classic UI: escaping and the page frame (header, navigation, the Uncommitted
//! Changes banner). Pages are rendered on the server; the only script is `assets/classic.js`.

use std::fmt::Write;

/// Text made safe to put in an element or a quoted attribute.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Who is looking at a page, for its header.
#[derive(Debug)]
pub(crate) struct Viewer<'a> {
    pub(crate) user: &'a str,
    pub(crate) hostname: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) has_pending: bool,
    /// The `commit confirmed` outstanding on the appliance.
    pub(crate) confirmation: Option<&'a postern_control::Confirmation>,
}

/// The navigation entries: id, path, label.
const NAV: &[(&str, &str, &str)] = &[
    ("nav-status", "/", "System Status"),
    ("nav-tracking", "/monitor/tracking", "Message Tracking"),
    ("nav-tls", "/monitor/tls", "TLS Connections"),
    ("nav-ssl", "/system/ssl", "SSL Configuration"),
    ("nav-routes", "/mail/routes", "SMTP Routes"),
    (
        "nav-destinations",
        "/mail/destinations",
        "Destination Controls",
    ),
    ("nav-listeners", "/mail/listeners", "Listeners"),
    ("nav-certificates", "/network/certificates", "Certificates"),
];

/// A whole page of a logged-in user: `body` inside the frame.
pub(crate) fn page(title: &str, viewer: &Viewer<'_>, body: &str) -> String {
    let mut nav = String::new();
    for (id, path, label) in NAV {
        let _ = write!(nav, r#"<a id="{id}" href="{path}">{label}</a>"#);
    }
    let banner = if viewer.has_pending {
        format!(
            r#"<div id="uncommitted" class="banner">Uncommitted Changes: you have uncommitted changes.
<a id="commit-changes" class="button" href="/commit">Commit Changes</a>
<form method="post" action="/clear" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button id="abandon-changes" type="submit">Abandon Changes</button></form>
</div>"#,
            csrf = escape(viewer.csrf)
        )
    } else {
        String::new()
    };
    let confirm = viewer.confirmation.map_or(String::new(), |c| {
        format!(
            r#"<div id="awaiting-confirmation" class="banner">Commit {generation} by {user} is rolled back to generation {previous} at {deadline} unless it is confirmed.
<form method="post" action="/confirm" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button id="confirm-commit" type="submit">Confirm Commit</button></form>
</div>"#,
            generation = c.generation,
            user = escape(&c.user),
            previous = c.previous,
            deadline = escape(&postern_logs::format_unix_time(c.deadline)),
            csrf = escape(viewer.csrf)
        )
    });
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} — Postern</title>
<link rel="stylesheet" href="/assets/style.css"><script src="/assets/classic.js" defer></script></head>
<body><header><span class="product">Postern</span><span class="host">{host}</span>
<span class="user">Logged in as: {user}</span>
<form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button id="logout" type="submit">Log Out</button></form>
<nav>{nav}</nav></header>
{confirm}{banner}<main><h1>{title}</h1>
{body}</main></body></html>
"#,
        title = escape(title),
        host = escape(viewer.hostname),
        user = escape(viewer.user),
        csrf = escape(viewer.csrf),
    )
}

/// A page without the frame (the login page).
pub(crate) fn bare_page(title: &str, body: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} — Postern</title>
<link rel="stylesheet" href="/assets/style.css"></head>
<body class="bare"><main><h1>{title}</h1>
{body}</main></body></html>
"#,
        title = escape(title)
    )
}
