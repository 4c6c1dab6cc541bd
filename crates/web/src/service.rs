//! The `postern httpd` service: binds the Classic UI and NGUI ports of the committed
//! configuration and serves them with the GUI HTTPS TLS policy and certificate. A commit that
//! changes any of these makes the supervisor restart the service ([`needs_restart`]), the short
//! disconnect the reference appliance has too; other commits only update what pages show.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Html;
use axum::routing::get;
use postern_config::{Config, TlsService};
use postern_control::{Client, ClientError, Event, FactoryCertificate};
use postern_logs::{SharedLog, Subscription};
use postern_tls::{Identity, TlsAcceptor, identities_for};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;

use crate::auth::{LoginGate, Sessions};
use crate::state::{AppState, Shared};

/// The service's name on the control socket and in `status`.
pub const SERVICE: &str = "httpd";

/// The largest request body accepted (forms, JSON); more is answered 413.
const BODY_LIMIT: usize = 64 * 1024;

/// Why the service stopped on its own; the supervisor logs it and starts it again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    #[error(transparent)]
    Control(#[from] ClientError),
    #[error("the certificates: {0}")]
    Certificate(#[from] postern_tls::CertificateError),
    #[error("GUI HTTPS TLS cannot be used: {0}")]
    Tls(#[from] postern_tls::TlsError),
    #[error("cannot open gui_logs or the sessions directory: {0}")]
    Log(std::io::Error),
    #[error("cannot give up root privileges after binding the ports: {0}")]
    Privileges(std::io::Error),
    #[error("cannot listen on {address} for the {ui}: {source}")]
    Bind {
        ui: &'static str,
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Runs the service until `stop` resolves (SIGTERM) or the supervisor goes away.
/// `drop_privileges` is called once the ports are bound, before anything is served.
pub async fn run(
    data: &Path,
    stop: impl Future<Output = ()>,
    drop_privileges: impl FnOnce() -> std::io::Result<()>,
) -> Result<(), ServiceError> {
    let socket = postern_control::socket_path(data);
    let mut control = Client::connect(&socket, SERVICE).await?;
    let mut configs = Client::connect(&socket, SERVICE).await?.subscribe().await?;
    let (first, factory) = configs.first().await?;
    let config = first.config.clone();
    let log = SharedLog::open(data, Subscription::GuiLogs, false).map_err(ServiceError::Log)?;

    let (acceptor_tx, acceptor) = watch::channel(acceptor_for(&config, &factory)?);

    let classic = bind("Classic UI", config.listeners.classic_ui).await?;
    let ngui = bind("NGUI", config.listeners.ngui).await?;
    // Where sessions are kept over a restart: written by this service once it runs as its
    // own user, so a directory of its own.
    let sessions_dir = data.join("web");
    std::fs::create_dir_all(&sessions_dir).map_err(ServiceError::Log)?;
    // Every connection to the control socket (root's) is made before root is given up.
    let requests = Client::connect(&socket, SERVICE).await?;
    drop_privileges().map_err(ServiceError::Privileges)?;

    let sessions_file = sessions_dir.join("sessions");
    let (committed_tx, committed) = watch::channel(Arc::new(first));
    let state: Shared = Arc::new(AppState {
        control: Mutex::new(requests),
        committed,
        sessions: Sessions::restore(&sessions_file),
        logins: LoginGate::default(),
        log: log.clone(),
        data: data.to_owned(),
        confirmation: std::sync::Mutex::new(None),
    });
    let (shutdown, _) = watch::channel(false);
    let mut servers = JoinSet::new();
    servers.spawn(crate::serve::serve(
        classic,
        acceptor.clone(),
        classic_router(state.clone()),
        shutdown.subscribe(),
        log.clone(),
    ));
    servers.spawn(crate::serve::serve(
        ngui,
        acceptor,
        ngui_router(state.clone()),
        shutdown.subscribe(),
        log.clone(),
    ));
    control.ready(SERVICE).await?;

    tokio::pin!(stop);
    let result = loop {
        tokio::select! {
            () = &mut stop => break Ok(()),
            next = configs.next_event() => match next {
                Ok(Event::Config(generation)) => {
                    committed_tx.send_replace(Arc::new(*generation));
                }
                // The outstanding `commit confirmed`, made or confirmed anywhere, for the
                // pages' banner.
                Ok(Event::Confirmation(confirmation)) => state.set_confirmation(confirmation),
                // The factory RSA certificate, made after the start: presented from now on
                // (the policy and an assigned certificate are taken at start).
                Ok(Event::FactoryCertificates(factory)) => {
                    match acceptor_for(&config, &factory) {
                        Ok(new) => {
                            acceptor_tx.send_replace(new);
                        }
                        Err(e) => log.critical(&format!(
                            "The factory certificates cannot be presented: {e}"
                        )),
                    }
                }
                Ok(Event::DeliverNow(_)) => {}
                // The supervisor is stopping (and sends SIGTERM too) or gone.
                Err(ClientError::Closed) => break Ok(()),
                Err(e) => break Err(e.into()),
            },
        }
    };
    let _ = shutdown.send(true);
    while servers.join_next().await.is_some() {}
    if let Err(e) = state.sessions.save(&sessions_file) {
        log.warning(&format!(
            "The web sessions could not be kept over the restart: {e}"
        ));
    }
    result
}

/// The GUI's acceptor under `config` (its policy, its certificate or the `factory` ones).
fn acceptor_for(
    config: &Config,
    factory: &[FactoryCertificate],
) -> Result<TlsAcceptor, ServiceError> {
    let factory = factory
        .iter()
        .map(|c| Identity::from_pem(c.chain_pem.as_bytes(), c.key_pem.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let identities = identities_for(config, TlsService::GuiHttps, &factory)?;
    Ok(TlsAcceptor::new(&config.tls.gui_https, &identities)?)
}

async fn bind(
    ui: &'static str,
    address: std::net::SocketAddr,
) -> Result<TcpListener, ServiceError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServiceError::Bind {
            ui,
            address,
            source,
        })
}

/// Whether going from `old` to `new` needs the service restarted: its ports, TLS policy and
/// certificate are taken at start.
pub fn needs_restart(old: &Config, new: &Config) -> bool {
    old.listeners.classic_ui != new.listeners.classic_ui
        || old.listeners.ngui != new.listeners.ngui
        || old.tls.gui_https != new.tls.gui_https
        || old.certificates.for_service(TlsService::GuiHttps)
            != new.certificates.for_service(TlsService::GuiHttps)
        || old.system.hostname != new.system.hostname
}

fn common(router: Router<Shared>, state: Shared) -> Router {
    router
        .route("/assets/{name}", get(crate::assets::asset))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(
            crate::serve::security_headers,
        ))
        .with_state(state)
}

fn classic_router(state: Shared) -> Router {
    common(crate::classic::router(), state)
}

fn ngui_router(state: Shared) -> Router {
    common(crate::api::router().route("/", get(ngui_page)), state)
}

/// The NGUI: one page that works over the REST API.
async fn ngui_page() -> Html<&'static str> {
    Html(include_str!("../assets/ngui.html"))
}
