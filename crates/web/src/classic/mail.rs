//! The Classic UI's mail-flow pages: Mail Policies > SMTP Routes, Destination Controls and
//! Listeners (TLS and Recipient Access Table), and Network > Certificates (read-only; import and
//! assignment are in the CLI's `certconfig`). Changes are staged like those of SSL
//! Configuration.

use std::fmt::Write;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use postern_config::{Config, DestinationTls, ListenerTls};

use super::{Browser, Posted};
use crate::html::{escape, page};
use crate::mail::{self, DestinationChange};
use crate::state::{Refusal, Shared};

type Fields = Vec<(String, String)>;

fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// A small form posting `action` and hidden fields to `path`, with one submit button.
fn button_form(path: &str, csrf: &str, hidden: &[(&str, &str)], id: &str, label: &str) -> String {
    let mut inputs = String::new();
    for (name, value) in hidden {
        let _ = write!(
            inputs,
            r#"<input type="hidden" name="{}" value="{}">"#,
            escape(name),
            escape(value)
        );
    }
    format!(
        r#"<form method="post" action="{path}" class="inline"><input type="hidden" name="csrf" value="{csrf}">{inputs}<button id="{id}" type="submit">{label}</button></form>"#,
        csrf = escape(csrf),
        id = escape(id),
    )
}

fn options<T: Copy + PartialEq + std::fmt::Display>(
    all: &[T],
    current: T,
    keyword: fn(T) -> &'static str,
) -> String {
    all.iter()
        .map(|t| {
            let selected = if *t == current { " selected" } else { "" };
            format!(
                r#"<option value="{}"{selected}>{}</option>"#,
                keyword(*t),
                escape(&t.to_string())
            )
        })
        .collect()
}

/// A page of this module: the body for `config`, or the same with the refusal on top.
fn render(
    browser: &Browser,
    config: &Config,
    title: &str,
    body: &str,
    error: Option<&Refusal>,
) -> Response {
    let error = error.map_or(String::new(), |e| {
        format!(r#"<p id="form-error" class="error">{}</p>"#, escape(&e.0))
    });
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let hostname = config.system.hostname.to_string();
    (
        status,
        Html(page(
            title,
            &browser.viewer(&hostname),
            &format!("{error}{body}"),
        )),
    )
        .into_response()
}

/// Stages a form's change; back to `path` on success, the page with the reason otherwise.
fn submit(
    state: &Shared,
    browser: &Browser,
    path: &str,
    what: &str,
    change: impl FnOnce(&mut Config) -> Result<(), Refusal>,
    redraw: fn(&Browser, &Config, Option<&Refusal>) -> Response,
) -> Response {
    match state.stage(&browser.0.id, change) {
        Ok(()) => {
            state.log.info(&format!(
                "The user {} changed {what} (pending until committed).",
                browser.0.user
            ));
            Redirect::to(path).into_response()
        }
        Err(refusal) => redraw(browser, &state.view(&browser.0.id), Some(&refusal)),
    }
}

// --- SMTP Routes ---

fn routes_page(browser: &Browser, config: &Config, error: Option<&Refusal>) -> Response {
    let csrf = &browser.0.csrf;
    let mut rows = String::new();
    for (i, (domain, hosts)) in config.delivery.routes.iter().enumerate() {
        let hosts: Vec<String> = hosts.iter().map(ToString::to_string).collect();
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(domain.as_str()),
            escape(&hosts.join(", ")),
            button_form(
                "/mail/routes",
                csrf,
                &[("action", "delete"), ("domain", domain.as_str())],
                &format!("route-delete-{i}"),
                "Delete"
            )
        );
    }
    if rows.is_empty() {
        rows = r#"<tr><td colspan="3">No routes: mail goes to each domain's MX hosts.</td></tr>"#
            .to_owned();
    }
    let body = format!(
        r#"<table id="routes"><tr><th>Receiving domain</th><th>Destination hosts (in order)</th><th></th></tr>{rows}</table>
<h2>Add or replace a route</h2>
<form id="route-form" method="post" action="/mail/routes"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="action" value="set">
<label for="route-domain">Receiving domain (example.com, .example.com, or ALL)</label><input id="route-domain" name="domain" required>
<label for="route-hosts">Destination hosts, comma-separated (host or host:port)</label><input id="route-hosts" name="hosts" size="60" required>
<button id="route-submit" type="submit">Submit</button></form>"#,
        csrf = escape(csrf)
    );
    render(browser, config, "SMTP Routes", &body, error)
}

pub(super) async fn routes(State(state): State<Shared>, browser: Browser) -> Response {
    routes_page(&browser, &state.view(&browser.0.id), None)
}

pub(super) async fn routes_post(
    State(state): State<Shared>,
    Posted { browser, fields }: Posted,
) -> Response {
    let domain = field(&fields, "domain").to_owned();
    let hosts = vec![field(&fields, "hosts").to_owned()];
    let delete = field(&fields, "action") == "delete";
    submit(
        &state,
        &browser,
        "/mail/routes",
        "SMTP routes",
        |c| {
            if delete {
                mail::delete_route(c, &domain)
            } else {
                mail::set_route(c, &domain, &hosts)
            }
        },
        routes_page,
    )
}

// --- Destination Controls ---

fn destinations_page(browser: &Browser, config: &Config, error: Option<&Refusal>) -> Response {
    let csrf = &browser.0.csrf;
    let mut rows = String::new();
    for (i, (domain, control)) in config.delivery.destinations.iter().enumerate() {
        let delete = if domain.is_all() {
            "(default)".to_owned()
        } else {
            button_form(
                "/mail/destinations",
                csrf,
                &[("action", "delete"), ("domain", domain.as_str())],
                &format!("destination-delete-{i}"),
                "Delete",
            )
        };
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{delete}</td></tr>",
            escape(domain.as_str()),
            escape(&control.tls.to_string()),
            control.max_concurrency
        );
    }
    let tls = options(
        &DestinationTls::ALL,
        DestinationTls::Preferred,
        DestinationTls::keyword,
    );
    let body = format!(
        r#"<table id="destinations"><tr><th>Destination</th><th>TLS support</th><th>Maximum concurrent connections</th><th></th></tr>{rows}</table>
<h2>Add or edit a destination</h2>
<form id="destination-form" method="post" action="/mail/destinations"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="action" value="set">
<label for="destination-domain">Destination (example.com, .example.com, or ALL)</label><input id="destination-domain" name="domain" required>
<label for="destination-tls">TLS support</label><select id="destination-tls" name="tls">{tls}</select>
<label for="destination-concurrency">Maximum concurrent connections (1–1000)</label><input id="destination-concurrency" name="max_concurrency" value="20">
<button id="destination-submit" type="submit">Submit</button></form>"#,
        csrf = escape(csrf)
    );
    render(browser, config, "Destination Controls", &body, error)
}

pub(super) async fn destinations(State(state): State<Shared>, browser: Browser) -> Response {
    destinations_page(&browser, &state.view(&browser.0.id), None)
}

pub(super) async fn destinations_post(
    State(state): State<Shared>,
    Posted { browser, fields }: Posted,
) -> Response {
    let domain = field(&fields, "domain").to_owned();
    let delete = field(&fields, "action") == "delete";
    let concurrency = field(&fields, "max_concurrency").trim().to_owned();
    let change = DestinationChange {
        tls: Some(field(&fields, "tls").to_owned()).filter(|t| !t.is_empty()),
        max_concurrency: None,
    };
    submit(
        &state,
        &browser,
        "/mail/destinations",
        "destination controls",
        |c| {
            if delete {
                return mail::delete_destination(c, &domain);
            }
            let max_concurrency = if concurrency.is_empty() {
                None
            } else {
                Some(concurrency.parse().map_err(|_| {
                    Refusal(format!(
                        "The concurrency must be a number from 1 to 1000, not '{concurrency}'."
                    ))
                })?)
            };
            mail::set_destination(
                c,
                &domain,
                &DestinationChange {
                    max_concurrency,
                    ..change
                },
            )
        },
        destinations_page,
    )
}

// --- Listeners ---

fn listeners_page(browser: &Browser, config: &Config, error: Option<&Refusal>) -> Response {
    let csrf = &browser.0.csrf;
    let mut body = String::new();
    for (n, (name, listener)) in config.listeners.smtp.iter().enumerate() {
        let mut rat = String::new();
        for (i, (domain, action)) in listener.recipient_access.iter().enumerate() {
            let _ = write!(
                rat,
                "<tr><td>{}</td><td>{action}</td><td>{}</td></tr>",
                escape(domain.as_str()),
                button_form(
                    "/mail/listeners",
                    csrf,
                    &[
                        ("action", "rat-delete"),
                        ("listener", name.as_str()),
                        ("domain", domain.as_str())
                    ],
                    &format!("rat-delete-{n}-{i}"),
                    "Delete"
                )
            );
        }
        if rat.is_empty() {
            rat = r#"<tr><td colspan="3">Empty: no recipient is accepted (the listener relays for nobody).</td></tr>"#.to_owned();
        }
        let tls = options(&ListenerTls::ALL, listener.tls, ListenerTls::keyword);
        let _ = write!(
            body,
            r#"<section class="card" id="listener-{n}"><h2>{name} ({address})</h2>
<form method="post" action="/mail/listeners"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="action" value="tls"><input type="hidden" name="listener" value="{name}">
<label for="listener-{n}-tls">TLS</label><select id="listener-{n}-tls" name="tls">{tls}</select> <button id="listener-{n}-tls-submit" type="submit">Submit</button></form>
<h3>Recipient Access Table</h3><table id="listener-{n}-rat"><tr><th>Recipient domain</th><th>Action</th><th></th></tr>{rat}</table>
<form method="post" action="/mail/listeners"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="action" value="rat"><input type="hidden" name="listener" value="{name}">
<label for="listener-{n}-rat-domain">Recipient domain</label><input id="listener-{n}-rat-domain" name="domain" required>
<label for="listener-{n}-rat-action">Action</label><select id="listener-{n}-rat-action" name="rat_action"><option value="accept">ACCEPT</option><option value="reject">REJECT</option></select>
<button id="listener-{n}-rat-submit" type="submit">Add</button></form></section>"#,
            name = escape(name.as_str()),
            address = listener.address,
            csrf = escape(csrf),
        );
    }
    render(browser, config, "Listeners", &body, error)
}

pub(super) async fn listeners(State(state): State<Shared>, browser: Browser) -> Response {
    listeners_page(&browser, &state.view(&browser.0.id), None)
}

pub(super) async fn listeners_post(
    State(state): State<Shared>,
    Posted { browser, fields }: Posted,
) -> Response {
    let listener = field(&fields, "listener").to_owned();
    let domain = field(&fields, "domain").to_owned();
    let action = field(&fields, "action").to_owned();
    let tls = field(&fields, "tls").to_owned();
    let rat_action = field(&fields, "rat_action").to_owned();
    submit(
        &state,
        &browser,
        "/mail/listeners",
        "a listener",
        |c| match action.as_str() {
            "tls" => mail::set_listener_tls(c, &listener, &tls),
            "rat" => mail::set_rat(c, &listener, &domain, &rat_action),
            "rat-delete" => mail::delete_rat(c, &listener, &domain),
            other => Err(Refusal(format!("Unknown action '{other}'."))),
        },
        listeners_page,
    )
}

// --- Certificates ---

pub(super) async fn certificates(State(state): State<Shared>, browser: Browser) -> Response {
    let config = state.view(&browser.0.id);
    let view = mail::certificates(&config);
    let mut rows = String::new();
    for cert in view["imported"].as_array().into_iter().flatten() {
        let text = |k: &str| escape(cert[k].as_str().unwrap_or_default());
        let used: Vec<&str> = cert["assigned_to"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            text("name"),
            text("subject"),
            text("not_after"),
            escape(&used.join(", "))
        );
    }
    if rows.is_empty() {
        rows = r#"<tr><td colspan="4">None imported.</td></tr>"#.to_owned();
    }
    let factory: Vec<&str> = view["factory_used_by"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect();
    let body = format!(
        r#"<table id="certificates"><tr><th>Name</th><th>Subject</th><th>Expires</th><th>Used by</th></tr>{rows}</table>
<p id="factory-certificates">The factory self-signed ECDSA and RSA certificates are presented by: {}.</p>
<p>Import a certificate and assign it to a service with the CLI's <code>certconfig</code>.</p>"#,
        if factory.is_empty() {
            "no service".to_owned()
        } else {
            escape(&factory.join(", "))
        }
    );
    render(&browser, &config, "Certificates", &body, None)
}
