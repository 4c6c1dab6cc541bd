//! The REST API under `/api/v1` (port 4431, with the NGUI): JSON in and out, a bearer token from
//! `POST /api/v1/login`, changes staged in the token's session until `POST /api/v1/commit`.
//! Every error is JSON: `{"error": "…"}`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{LoginError, SessionId, SessionInfo, SessionKind};
use crate::mail::{self, DestinationChange};
use crate::serve::Peer;
use crate::ssl::{SslChange, SslSettings};
use crate::state::{CommitOutcome, Refusal, Shared};

pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", post(logout))
        .route("/api/v1/config/ssl", get(get_ssl).put(put_ssl))
        .route("/api/v1/commit", post(commit))
        .route("/api/v1/clear", post(clear))
        .route("/api/v1/confirm", post(confirm))
        .route("/api/v1/status", get(status))
        .route("/api/v1/routes", get(routes))
        .route(
            "/api/v1/routes/{domain}",
            put(put_route).delete(delete_route),
        )
        .route("/api/v1/destinations", get(destinations))
        .route(
            "/api/v1/destinations/{domain}",
            put(put_destination).delete(delete_destination),
        )
        .route("/api/v1/listeners", get(listeners))
        .route("/api/v1/listeners/{name}", put(put_listener))
        .route(
            "/api/v1/listeners/{name}/rat/{domain}",
            put(put_rat).delete(delete_rat),
        )
        .route("/api/v1/certificates", get(certificates))
        .route("/api/v1/tracking", get(tracking))
        .route("/api/v1/reports/tls", get(tls_report))
        .fallback(not_found)
}

/// A JSON error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Bearer".parse().expect("a header value"),
            );
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::new(rejection.status(), rejection.body_text())
    }
}

/// A request with a live API token.
#[derive(Debug)]
pub(crate) struct Token(pub(crate) SessionInfo);

impl FromRequestParts<Shared> for Token {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "log in first: POST /api/v1/login, then send Authorization: Bearer <token>",
                )
            })?;
        let id = header
            .strip_prefix("Bearer ")
            .and_then(|t| SessionId::parse(t.trim()))
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "the token is malformed"))?;
        state
            .sessions
            .touch(&id, SessionKind::Api)
            .map(Token)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "the token is not valid (logged out or idle too long); log in again",
                )
            })
    }
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint; see /api/v1/openapi.json",
    )
}

async fn openapi() -> Json<serde_json::Value> {
    Json(crate::openapi::document())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

async fn login(
    State(state): State<Shared>,
    Extension(peer): Extension<Peer>,
    body: Result<Json<Credentials>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(credentials) = body?;
    let config = state.committed().config.clone();
    match state
        .logins
        .check(
            &config,
            &credentials.username,
            &credentials.password,
            peer.0.ip(),
        )
        .await
    {
        Ok(user) => {
            let session = state.sessions.create(&user, SessionKind::Api);
            state.log.info(&format!(
                "The user {user} successfully logged on from {} using the REST API.",
                peer.0.ip()
            ));
            Ok(Json(json!({ "token": session.id.as_str(), "user": user })))
        }
        Err(e) => {
            state.log.info(&format!(
                "An authentication attempt by the user {} from {} failed: {e}",
                credentials.username.escape_debug(),
                peer.0.ip()
            ));
            let status = match e {
                LoginError::BadCredentials => StatusCode::UNAUTHORIZED,
                LoginError::LockedOut { .. } => StatusCode::FORBIDDEN,
                LoginError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            };
            Err(ApiError::new(status, e.to_string()))
        }
    }
}

async fn logout(State(state): State<Shared>, Token(session): Token) -> StatusCode {
    state.sessions.remove(&session.id);
    state.log.info(&format!(
        "The user {} logged out of the REST API.",
        session.user
    ));
    StatusCode::NO_CONTENT
}

/// The SSL settings as the token's session sees them (its pending changes, if any).
fn ssl_answer(state: &Shared, session: &SessionInfo) -> Json<serde_json::Value> {
    let config = state.view(&session.id);
    let pending = state.sessions.pending(&session.id).is_some();
    Json(json!({
        "settings": SslSettings::of(&config),
        "pending": pending,
        "committed_generation": state.committed().commit.generation,
    }))
}

async fn get_ssl(State(state): State<Shared>, Token(session): Token) -> Json<serde_json::Value> {
    ssl_answer(&state, &session)
}

async fn put_ssl(
    State(state): State<Shared>,
    Token(session): Token,
    body: Result<Json<SslChange>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(change) = body?;
    state
        .stage(&session.id, |config| change.apply(config))
        .map_err(|refusal| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, refusal.0))?;
    state.log.info(&format!(
        "The user {} changed the SSL Configuration through the REST API (pending until committed).",
        session.user
    ));
    Ok(ssl_answer(&state, &session))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitRequest {
    #[serde(default)]
    comment: String,
    /// Roll the commit back unless it is confirmed (`POST /api/v1/confirm`) within this long.
    #[serde(default)]
    confirm_within_minutes: Option<u32>,
}

async fn commit(
    State(state): State<Shared>,
    Token(session): Token,
    body: Option<Json<CommitRequest>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let within = match body.confirm_within_minutes {
        None => None,
        Some(m) if (1..=1440).contains(&m) => Some(m * 60),
        Some(m) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("confirm_within_minutes must be from 1 to 1440, not {m}"),
            ));
        }
    };
    let outcome = state
        .commit(&session.id, &session.user, &body.comment, within)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    match outcome {
        CommitOutcome::Committed {
            generation,
            confirm_by,
        } => Ok(Json(
            json!({ "generation": generation, "confirm_by": confirm_by }),
        )),
        CommitOutcome::NothingPending => Err(ApiError::new(
            StatusCode::CONFLICT,
            "there are no changes to commit",
        )),
        CommitOutcome::Refused(reason) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("the changes were not committed: {reason}; they are still pending"),
        )),
    }
}

async fn confirm(
    State(state): State<Shared>,
    Token(session): Token,
) -> Result<Json<serde_json::Value>, ApiError> {
    match state.confirm(&session.user).await {
        Ok(Some(generation)) => Ok(Json(json!({ "confirmed": generation }))),
        Ok(None) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "no commit is waiting for confirmation",
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            e.to_string(),
        )),
    }
}

async fn clear(State(state): State<Shared>, Token(session): Token) -> Json<serde_json::Value> {
    state.sessions.set_pending(&session.id, None);
    Json(json!({ "pending": false }))
}

async fn status(
    State(state): State<Shared>,
    Token(_session): Token,
) -> Result<Json<serde_json::Value>, ApiError> {
    let status = state
        .control
        .lock()
        .await
        .status()
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    serde_json::to_value(&status)
        .map(Json)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// A view of the session's configuration with whether it has pending changes.
fn answer(
    state: &Shared,
    session: &SessionInfo,
    key: &str,
    view: fn(&postern_config::Config) -> serde_json::Value,
) -> Json<serde_json::Value> {
    let config = state.view(&session.id);
    Json(json!({
        key: view(&config),
        "pending": state.sessions.pending(&session.id).is_some(),
    }))
}

/// Stages `change` in the token's session and answers the changed view, or why not.
fn staged(
    state: &Shared,
    session: &SessionInfo,
    what: &str,
    change: impl FnOnce(&mut postern_config::Config) -> Result<(), Refusal>,
) -> Result<(), ApiError> {
    state
        .stage(&session.id, change)
        .map_err(|refusal| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, refusal.0))?;
    state.log.info(&format!(
        "The user {} changed {what} through the REST API (pending until committed).",
        session.user
    ));
    Ok(())
}

async fn routes(State(state): State<Shared>, Token(session): Token) -> Json<serde_json::Value> {
    answer(&state, &session, "routes", mail::routes)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteBody {
    hosts: Vec<String>,
}

async fn put_route(
    State(state): State<Shared>,
    Token(session): Token,
    Path(domain): Path<String>,
    body: Result<Json<RouteBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body?;
    staged(&state, &session, "an SMTP route", |c| {
        mail::set_route(c, &domain, &body.hosts)
    })?;
    Ok(answer(&state, &session, "routes", mail::routes))
}

async fn delete_route(
    State(state): State<Shared>,
    Token(session): Token,
    Path(domain): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    staged(&state, &session, "an SMTP route", |c| {
        mail::delete_route(c, &domain)
    })?;
    Ok(answer(&state, &session, "routes", mail::routes))
}

async fn destinations(
    State(state): State<Shared>,
    Token(session): Token,
) -> Json<serde_json::Value> {
    answer(&state, &session, "destinations", mail::destinations)
}

async fn put_destination(
    State(state): State<Shared>,
    Token(session): Token,
    Path(domain): Path<String>,
    body: Result<Json<DestinationChange>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(change) = body?;
    staged(&state, &session, "destination controls", |c| {
        mail::set_destination(c, &domain, &change)
    })?;
    Ok(answer(&state, &session, "destinations", mail::destinations))
}

async fn delete_destination(
    State(state): State<Shared>,
    Token(session): Token,
    Path(domain): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    staged(&state, &session, "destination controls", |c| {
        mail::delete_destination(c, &domain)
    })?;
    Ok(answer(&state, &session, "destinations", mail::destinations))
}

async fn listeners(State(state): State<Shared>, Token(session): Token) -> Json<serde_json::Value> {
    answer(&state, &session, "listeners", mail::listeners)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenerBody {
    tls: String,
}

async fn put_listener(
    State(state): State<Shared>,
    Token(session): Token,
    Path(name): Path<String>,
    body: Result<Json<ListenerBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body?;
    staged(&state, &session, "a listener", |c| {
        mail::set_listener_tls(c, &name, &body.tls)
    })?;
    Ok(answer(&state, &session, "listeners", mail::listeners))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RatBody {
    action: String,
}

async fn put_rat(
    State(state): State<Shared>,
    Token(session): Token,
    Path((name, domain)): Path<(String, String)>,
    body: Result<Json<RatBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body?;
    staged(&state, &session, "a Recipient Access Table", |c| {
        mail::set_rat(c, &name, &domain, &body.action)
    })?;
    Ok(answer(&state, &session, "listeners", mail::listeners))
}

async fn delete_rat(
    State(state): State<Shared>,
    Token(session): Token,
    Path((name, domain)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    staged(&state, &session, "a Recipient Access Table", |c| {
        mail::delete_rat(c, &name, &domain)
    })?;
    Ok(answer(&state, &session, "listeners", mail::listeners))
}

async fn certificates(
    State(state): State<Shared>,
    Token(session): Token,
) -> Json<serde_json::Value> {
    answer(&state, &session, "certificates", mail::certificates)
}

async fn tracking(
    State(state): State<Shared>,
    Token(_session): Token,
    query: Result<
        axum::extract::Query<crate::monitor::TrackingQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<Json<serde_json::Value>, ApiError> {
    let axum::extract::Query(query) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let search = query
        .search()
        .map_err(|refusal| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, refusal.0))?;
    let found = crate::monitor::track(&state.data, search).await;
    Ok(Json(json!({
        "messages": found.iter().map(crate::monitor::message_json).collect::<Vec<_>>(),
        "limit": crate::monitor::TRACKING_LIMIT,
    })))
}

async fn tls_report(
    State(state): State<Shared>,
    Token(_session): Token,
) -> Json<serde_json::Value> {
    Json(crate::monitor::report_json(
        &crate::monitor::tls_report(&state.data).await,
    ))
}
