//! The Classic UI (port 443 in the image, 8443 on a host): login, System Status, SSL
//! Configuration and the commit/abandon of pending changes. Every page but the login page needs
//! a session cookie; every form that changes something carries the session's CSRF token.

mod mail;
mod monitor;
mod ssl;

use axum::Router;
use axum::extract::{Extension, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::auth::{SessionId, SessionInfo, SessionKind, same_secret};
use crate::html::{Viewer, bare_page, escape, page};
use crate::serve::Peer;
use crate::state::{CommitOutcome, Shared};

/// The session cookie of the Classic UI.
const COOKIE: &str = "postern_session";

pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/", get(status_page))
        .route("/commit", get(commit_page).post(commit))
        .route("/clear", post(clear))
        .route("/confirm", post(confirm))
        .route("/system/ssl", get(ssl::view))
        .route("/system/ssl/edit", get(ssl::edit).post(ssl::submit))
        .route("/system/ssl/verify", get(ssl::verify))
        .route("/mail/routes", get(mail::routes).post(mail::routes_post))
        .route(
            "/mail/destinations",
            get(mail::destinations).post(mail::destinations_post),
        )
        .route(
            "/mail/listeners",
            get(mail::listeners).post(mail::listeners_post),
        )
        .route("/network/certificates", get(mail::certificates))
        .route("/monitor/tracking", get(monitor::tracking))
        .route("/monitor/tls", get(monitor::tls_report))
}

/// A request from a logged-in browser, with the `commit confirmed` outstanding when it came.
/// Without a live session, a page request is sent to the login page.
#[derive(Debug)]
pub(crate) struct Browser(
    pub(crate) SessionInfo,
    pub(crate) Option<postern_control::Confirmation>,
);

impl FromRequestParts<Shared> for Browser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Response> {
        cookie(&parts.headers)
            .and_then(|id| state.sessions.touch(&id, SessionKind::Browser))
            .map(|session| Browser(session, state.confirmation()))
            .ok_or_else(|| Redirect::to("/login").into_response())
    }
}

impl Browser {
    fn viewer<'a>(&'a self, hostname: &'a str) -> Viewer<'a> {
        Viewer {
            user: &self.0.user,
            hostname,
            csrf: &self.0.csrf,
            has_pending: self.0.has_pending,
            confirmation: self.1.as_ref(),
        }
    }

    /// The refusal of a state-changing form without this session's CSRF token.
    fn csrf_refusal(&self, fields: &[(String, String)]) -> Option<Response> {
        let sent = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v);
        match sent {
            Some(token) if same_secret(token, &self.0.csrf) => None,
            _ => Some((
                StatusCode::FORBIDDEN,
                Html(bare_page(
                    "Request refused",
                    "<p id=\"form-error\" class=\"error\">The form was not sent by this session \
                     (missing or wrong CSRF token). Reload the page and try again.</p>",
                )),
            )
                .into_response()),
        }
    }
}

/// A form posted by a logged-in browser with this session's CSRF token: every handler that
/// changes something takes this, so none can forget the check.
#[derive(Debug)]
pub(crate) struct Posted {
    pub(crate) browser: Browser,
    pub(crate) fields: Vec<(String, String)>,
}

impl axum::extract::FromRequest<Shared> for Posted {
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &Shared,
    ) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let browser = Browser::from_request_parts(&mut parts, state).await?;
        let request = axum::extract::Request::from_parts(parts, body);
        let axum::Form(fields) = axum::Form::<Vec<(String, String)>>::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if let Some(refused) = browser.csrf_refusal(&fields) {
            return Err(refused);
        }
        Ok(Self { browser, fields })
    }
}

/// The session id in the request's `Cookie` header.
fn cookie(headers: &HeaderMap) -> Option<SessionId> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| SessionId::parse(value))
}

fn set_cookie(value: &str, max_age: Option<u64>) -> HeaderValue {
    let age = max_age.map_or(String::new(), |s| format!("; Max-Age={s}"));
    let text = format!("{COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict{age}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn login_form(error: Option<&str>) -> String {
    let error = error.map_or(String::new(), |e| {
        format!(r#"<p id="login-error" class="error">{}</p>"#, escape(e))
    });
    bare_page(
        "Log In",
        &format!(
            r#"{error}<form id="login" method="post" action="/login">
<label for="username">Username</label><input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Passphrase</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="login-submit" type="submit">Login</button></form>"#
        ),
    )
}

async fn login_page() -> Html<String> {
    Html(login_form(None))
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

async fn login(
    State(state): State<Shared>,
    Extension(peer): Extension<Peer>,
    form: Result<axum::Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(form)) = form else {
        return (
            StatusCode::BAD_REQUEST,
            Html(login_form(Some("Enter a user name and a passphrase."))),
        )
            .into_response();
    };
    let config = state.committed().config.clone();
    match state
        .logins
        .check(&config, &form.username, &form.password, peer.0.ip())
        .await
    {
        Ok(user) => {
            let session = state.sessions.create(&user, SessionKind::Browser);
            state.log.info(&format!(
                "The user {user} successfully logged on from {} using an HTTPS connection.",
                peer.0.ip()
            ));
            let mut response = Redirect::to("/").into_response();
            response
                .headers_mut()
                .insert(header::SET_COOKIE, set_cookie(session.id.as_str(), None));
            response
        }
        Err(e) => {
            state.log.info(&format!(
                "An authentication attempt by the user {} from {} failed: {e}",
                form.username.escape_debug(),
                peer.0.ip()
            ));
            (
                StatusCode::UNAUTHORIZED,
                Html(login_form(Some(&e.to_string()))),
            )
                .into_response()
        }
    }
}

async fn logout(State(state): State<Shared>, Posted { browser, .. }: Posted) -> Response {
    state.sessions.remove(&browser.0.id);
    state
        .log
        .info(&format!("The user {} logged out.", browser.0.user));
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie("", Some(0)));
    response
}

/// System Status: uptime, services, gauges and counters, as the CLI's `status`.
async fn status_page(State(state): State<Shared>, browser: Browser) -> Response {
    let committed = state.committed();
    let hostname = committed.config.system.hostname.to_string();
    let status = state.control.lock().await.status().await;
    let body = match status {
        Ok(status) => {
            let mut rows = String::new();
            rows.push_str(&row("Firmware", &status.firmware));
            rows.push_str(&row("Host name", &status.hostname));
            rows.push_str(&row(
                "Up since",
                &postern_logs::format_unix_time(status.up_since),
            ));
            rows.push_str(&row(
                "Configuration generation",
                &status.generation.to_string(),
            ));
            for service in &status.services {
                rows.push_str(&row(
                    &format!("Service {}", service.name),
                    &format!("{:?}, {} restarts", service.state, service.restarts),
                ));
            }
            let g = &status.gauges;
            let mib = |b: u64| format!("{:.1} MiB", b as f64 / 1_048_576.0);
            let mut gauges = String::new();
            gauges.push_str(&gauge(
                0,
                "gauge-cpu",
                "CPU",
                f64::from(g.cpu_percent),
                &format!("{:.0}%", g.cpu_percent),
            ));
            gauges.push_str(&gauge(
                1,
                "gauge-ram",
                "RAM",
                percent(g.ram_used, g.ram_total),
                &format!("{} of {}", mib(g.ram_used), mib(g.ram_total)),
            ));
            gauges.push_str(&gauge(
                2,
                "gauge-disk",
                "Data disk",
                percent(g.data_disk_used, g.data_disk_total),
                &format!("{} of {}", mib(g.data_disk_used), mib(g.data_disk_total)),
            ));
            rows.push_str(&row("Postern memory (RSS)", &mib(g.postern_rss)));
            let mut counters = String::new();
            for (name, value) in &status.counters {
                counters.push_str(&row(name, &value.to_string()));
            }
            format!(
                r#"<h2>Gauges</h2><svg id="gauges" class="chart" width="520" height="84" role="img" aria-label="CPU, RAM and data disk use">{gauges}</svg>
<table id="system-status">{rows}</table><h2>Counters</h2><table id="counters">{counters}</table>"#
            )
        }
        Err(e) => format!(
            r#"<p class="error">The status could not be read: {}</p>"#,
            escape(&e.to_string())
        ),
    };
    Html(page("System Status", &browser.viewer(&hostname), &body)).into_response()
}

fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / total as f64
    }
}

/// The `row`th gauge of System Status: a bar filled to `percent`, in SVG.
fn gauge(row: usize, id: &str, label: &str, percent: f64, text: &str) -> String {
    let y = 2 + 28 * row;
    let fill = percent.clamp(0.0, 100.0) * 2.0;
    let colour = if percent >= 90.0 {
        "#a61b1b"
    } else {
        "#2d6da3"
    };
    format!(
        r##"<g id="{id}"><text x="0" y="{ty}" font-size="12">{label}</text><rect x="80" y="{y}" width="200" height="18" fill="#d5dbe1"></rect><rect x="80" y="{y}" width="{fill:.0}" height="18" fill="{colour}"></rect><text x="290" y="{ty}" font-size="12">{text}</text></g>"##,
        ty = y + 13,
        text = escape(text),
    )
}

fn row(name: &str, value: &str) -> String {
    format!(
        "<tr><th>{}</th><td>{}</td></tr>",
        escape(name),
        escape(value)
    )
}

fn commit_form(error: Option<&str>, csrf: &str) -> String {
    let error = error.map_or(String::new(), |e| {
        format!(r#"<p id="form-error" class="error">{}</p>"#, escape(e))
    });
    format!(
        r#"{error}<form id="commit-form" method="post" action="/commit">
<input type="hidden" name="csrf" value="{csrf}">
<label for="commit-comment">Comment (optional)</label>
<textarea id="commit-comment" name="comment" rows="3"></textarea>
<label><input type="checkbox" id="commit-confirmed" name="confirmed"> Roll back automatically unless confirmed within
<input id="commit-confirm-minutes" name="minutes" value="10" size="4"> minutes (a safety net for a GUI HTTPS change that could lock you out)</label>
<button id="commit-submit" type="submit">Commit Changes</button>
<a href="/system/ssl" class="button">Cancel</a></form>"#,
        csrf = escape(csrf)
    )
}

async fn commit_page(State(state): State<Shared>, browser: Browser) -> Response {
    let hostname = state.committed().config.system.hostname.to_string();
    let body = if browser.0.has_pending {
        commit_form(None, &browser.0.csrf)
    } else {
        r#"<p id="notice">There are no uncommitted changes.</p>"#.to_owned()
    };
    Html(page(
        "Uncommitted Changes",
        &browser.viewer(&hostname),
        &body,
    ))
    .into_response()
}

async fn commit(State(state): State<Shared>, Posted { browser, fields }: Posted) -> Response {
    let value = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    };
    let hostname = state.committed().config.system.hostname.to_string();
    let confirm_within = if value("confirmed").is_empty() {
        Ok(None)
    } else {
        match value("minutes").parse::<u32>() {
            Ok(m) if (1..=1440).contains(&m) => Ok(Some(m * 60)),
            _ => Err(format!(
                "The confirmation time must be from 1 to 1440 minutes, not '{}'.",
                value("minutes")
            )),
        }
    };
    let error = match confirm_within {
        Err(e) => e,
        Ok(within) => {
            let outcome = state
                .commit(&browser.0.id, &browser.0.user, value("comment"), within)
                .await;
            match outcome {
                Ok(CommitOutcome::Committed {
                    generation,
                    confirm_by,
                }) => {
                    let confirm = confirm_by.map_or(String::new(), |t| format!("&confirm_by={t}"));
                    return Redirect::to(&format!("/system/ssl?committed={generation}{confirm}"))
                        .into_response();
                }
                Ok(CommitOutcome::NothingPending) => {
                    return Redirect::to("/system/ssl").into_response();
                }
                Ok(CommitOutcome::Refused(reason)) => {
                    format!("The changes were not committed: {reason}. They are still pending.")
                }
                Err(e) => format!("The changes were not committed: {e}. They are still pending."),
            }
        }
    };
    let body = commit_form(Some(&error), &browser.0.csrf);
    (
        StatusCode::CONFLICT,
        Html(page(
            "Uncommitted Changes",
            &browser.viewer(&hostname),
            &body,
        )),
    )
        .into_response()
}

async fn confirm(State(state): State<Shared>, Posted { browser, .. }: Posted) -> Response {
    match state.confirm(&browser.0.user).await {
        Ok(Some(generation)) => {
            Redirect::to(&format!("/system/ssl?confirmed={generation}")).into_response()
        }
        Ok(None) => Redirect::to("/system/ssl").into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Html(bare_page(
                "Not confirmed",
                &format!(
                    r#"<p id="form-error" class="error">The commit could not be confirmed: {}</p>"#,
                    escape(&e.to_string())
                ),
            )),
        )
            .into_response(),
    }
}

async fn clear(State(state): State<Shared>, Posted { browser, .. }: Posted) -> Response {
    state.sessions.set_pending(&browser.0.id, None);
    Redirect::to("/system/ssl").into_response()
}

/// `?committed=N` on the page a commit leads to.
#[derive(Debug, Deserialize)]
pub(crate) struct Notice {
    committed: Option<u64>,
    confirm_by: Option<i64>,
    confirmed: Option<u64>,
}

impl Notice {
    fn html(&self) -> String {
        let mut text = String::new();
        if let Some(g) = self.committed {
            text.push_str(&format!(
                "Your changes have been committed (configuration generation {g})."
            ));
            if let Some(t) = self.confirm_by {
                text.push_str(&format!(
                    " Confirm them by {}, or they are rolled back.",
                    postern_logs::format_unix_time(t)
                ));
            }
        }
        if let Some(g) = self.confirmed {
            text.push_str(&format!("Commit {g} is confirmed."));
        }
        if text.is_empty() {
            return text;
        }
        format!(r#"<p id="notice" class="notice">{}</p>"#, escape(&text))
    }
}

pub(crate) type NoticeQuery = Query<Notice>;
