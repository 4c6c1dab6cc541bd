//! System Administration > SSL Configuration: the view page, the Edit Settings form with its
//! TLS v1.0–v1.3 boxes, and the Verify preview of a cipher string.

use std::fmt::Write;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use postern_config::tls::TLS13_CIPHER_SUITES;
use postern_config::{CipherString, Config, TlsService, TlsVersion};
use postern_tls::ciphers::evaluate;
use serde::Deserialize;

use super::{Browser, NoticeQuery, Posted};
use crate::html::{escape, page};
use crate::ssl::{SERVICES, SslChange, box_suffix};
use crate::state::Shared;

/// `TLS v1.1, TLS v1.2`: a service's enabled versions, oldest first.
fn versions(config: &Config, service: TlsService) -> String {
    config
        .tls
        .protocols(service)
        .versions()
        .map(TlsVersion::label)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A service's cipher string for TLS v1.2 and older.
fn ciphers_of(config: &Config, service: TlsService) -> String {
    config
        .tls
        .service(service)
        .map(|s| s.ciphers.as_str().to_owned())
        .unwrap_or_default()
}

pub(super) async fn view(
    State(state): State<Shared>,
    browser: Browser,
    notice: NoticeQuery,
) -> Response {
    let config = state.view(&browser.0.id);
    let mut rows = String::new();
    for service in SERVICES {
        let key = service.keyword();
        let ciphers = ciphers_of(&config, service);
        let _ = write!(
            rows,
            r#"<tr><th>{label}</th><td id="view-{key}-protocols">{protocols}</td><td id="view-{key}-ciphers"><code>{ciphers}</code></td></tr>"#,
            label = escape(service.label()),
            protocols = versions(&config, service),
            ciphers = escape(&ciphers),
        );
    }
    let _ = write!(
        rows,
        r#"<tr><th>Other TLS client services</th><td id="view-other-protocols">{}</td><td>TLS v1.0 {}</td></tr>"#,
        versions(&config, TlsService::OtherClient),
        if config.tls.other_client.tls_v1_0 {
            "enabled"
        } else {
            "disabled"
        }
    );
    let body = format!(
        r#"{notice}<table id="ssl-view"><tr><th>Service</th><th>TLS protocols</th><th>Ciphers for TLS v1.2 and older</th></tr>{rows}</table>
<p>TLS v1.3 ciphers are fixed: {fixed}.</p>
<a id="edit-settings" class="button" href="/system/ssl/edit">Edit Settings</a>"#,
        notice = notice.html(),
        fixed = TLS13_CIPHER_SUITES.join(", "),
    );
    let hostname = config.system.hostname.to_string();
    Html(page("SSL Configuration", &browser.viewer(&hostname), &body)).into_response()
}

pub(super) async fn edit(State(state): State<Shared>, browser: Browser) -> Response {
    let config = state.view(&browser.0.id);
    form_page(&browser, &config, None, StatusCode::OK)
}

fn form_page(
    browser: &Browser,
    config: &Config,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let error = error.map_or(String::new(), |e| {
        format!(r#"<p id="form-error" class="error">{}</p>"#, escape(e))
    });
    let mut fields = String::new();
    for service in SERVICES {
        let key = service.keyword();
        let range = config.tls.protocols(service);
        let mut boxes = String::new();
        for v in TlsVersion::MENU {
            let id = format!("{key}-{}", box_suffix(v));
            let checked = if range.contains(v) { " checked" } else { "" };
            let _ = write!(
                boxes,
                r#"<label class="tls-box"><input type="checkbox" id="{id}" name="{id}" data-version="{n}"{checked}> {label}</label>"#,
                n = v.menu_number(),
                label = v.label(),
            );
            if v == TlsVersion::Tls1_3 {
                let list: String = TLS13_CIPHER_SUITES
                    .iter()
                    .map(|s| format!("<li>{s}</li>"))
                    .collect();
                let _ = write!(
                    boxes,
                    r#"<button type="button" class="help" id="{key}-tls13-help" data-toggle="{key}-tls13-ciphers" title="TLS v1.3 ciphers">?</button><ul id="{key}-tls13-ciphers" class="help-text" hidden><li><strong>TLS v1.3 ciphers are fixed:</strong></li>{list}</ul>"#
                );
            }
        }
        let ciphers = ciphers_of(config, service);
        let _ = write!(
            fields,
            r#"<fieldset class="tls-service" data-service="{key}"><legend>{label}</legend>
<div class="tls-boxes">{boxes}</div>
<label for="{key}-ciphers">Ciphers for TLS v1.2 and older</label>
<input id="{key}-ciphers" name="{key}-ciphers" value="{ciphers}" size="70">
<button type="button" id="{key}-verify" class="verify" data-input="{key}-ciphers" data-output="{key}-verify-result">Verify</button>
<pre id="{key}-verify-result" class="verify-result"></pre></fieldset>"#,
            label = escape(service.label()),
            ciphers = escape(&ciphers),
        );
    }
    let checked = if config.tls.other_client.tls_v1_0 {
        " checked"
    } else {
        ""
    };
    let body = format!(
        r#"{error}<form id="ssl-form" method="post" action="/system/ssl/edit">
<input type="hidden" name="csrf" value="{csrf}">
{fields}
<fieldset><legend>Other TLS client services</legend>
<p>TLS v1.1 and TLS v1.2 are used; TLS v1.0 only when selected.</p>
<label><input type="checkbox" id="other-tls10" name="other-tls10"{checked}> Use TLS v1.0 for other TLS client services</label></fieldset>
<p class="note">Changing the GUI HTTPS protocols restarts the HTTPS service when committed: this page will disconnect briefly.</p>
<button id="ssl-submit" type="submit">Submit</button> <a class="button" href="/system/ssl">Cancel</a>
</form>"#,
        csrf = escape(&browser.0.csrf),
    );
    let hostname = config.system.hostname.to_string();
    (
        status,
        Html(page(
            "Edit SSL Configuration",
            &browser.viewer(&hostname),
            &body,
        )),
    )
        .into_response()
}

pub(super) async fn submit(
    State(state): State<Shared>,
    Posted { browser, fields }: Posted,
) -> Response {
    let change = SslChange::from_form(&fields);
    match state.stage(&browser.0.id, |config| change.apply(config)) {
        Ok(()) => {
            state.log.info(&format!(
                "The user {} changed the SSL Configuration (pending until committed).",
                browser.0.user
            ));
            Redirect::to("/system/ssl").into_response()
        }
        // The settings shown again are the session's, unchanged: a refused selection (a gap
        // in the range) has no form a range can hold.
        Err(refusal) => form_page(
            &browser,
            &state.view(&browser.0.id),
            Some(&refusal.to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct VerifyQuery {
    ciphers: String,
}

/// `GET /system/ssl/verify?ciphers=…`: the suites the string selects, as `openssl ciphers -v`
/// lists them, or why it selects none.
pub(super) async fn verify(_browser: Browser, Query(q): Query<VerifyQuery>) -> Response {
    let result = CipherString::new(&q.ciphers)
        .map_err(|e| e.to_string())
        .and_then(|c| evaluate(&c).map_err(|e| e.to_string()));
    match result {
        Ok(suites) => Json(serde_json::json!({
            "suites": suites.iter().map(|s| s.description.clone()).collect::<Vec<_>>(),
            "tls13": TLS13_CIPHER_SUITES,
        }))
        .into_response(),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({ "error": e })),
        )
            .into_response(),
    }
}
