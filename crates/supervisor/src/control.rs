//! The control socket server: one task per connection. A connection must open with a hello of
//! our protocol version; a malformed or oversized frame closes that connection and nothing else.

use std::sync::Arc;

use postern_control::frame::{read_frame, write_frame};
use postern_control::{ControlError, FactoryCertificate, PROTOCOL_VERSION, Request, Response};
use postern_logs::{CliEvent, SharedLog};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::owner::{ConfigOwner, Landed};

/// Accepts connections until shutdown. `cli_log` is `cli_logs`, written for every CLI session.
pub(crate) async fn serve(
    listener: UnixListener,
    owner: Arc<ConfigOwner>,
    cli_log: SharedLog,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(
                        stream,
                        owner.clone(),
                        cli_log.clone(),
                        shutdown.clone(),
                    ));
                }
                Err(e) => {
                    owner.log().warning(&format!("Control socket accept failed: {e}"));
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    connections.shutdown().await;
}

async fn connection(
    mut stream: UnixStream,
    owner: Arc<ConfigOwner>,
    cli_log: SharedLog,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = match hello(&mut stream, &owner).await {
        Some(client) => client,
        None => return,
    };
    loop {
        let request = tokio::select! {
            r = read_frame::<Request>(&mut stream) => r,
            _ = shutdown.changed() => return,
        };
        let request = match request {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(e) => {
                owner
                    .log()
                    .warning(&format!("Control connection from {client} closed: {e}"));
                return;
            }
        };
        if let Request::Subscribe = request {
            push_configurations(stream, &owner, shutdown).await;
            return;
        }
        let response = answer(request, &owner, &cli_log).await;
        if write_frame(&mut stream, &response).await.is_err() {
            return;
        }
    }
}

/// Reads the hello; answers it, or refuses another protocol version and closes.
async fn hello(stream: &mut UnixStream, owner: &ConfigOwner) -> Option<String> {
    let first = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        read_frame::<Request>(stream),
    )
    .await;
    let (version, client) = match first {
        Ok(Ok(Some(Request::Hello { version, client }))) => (version, client),
        Ok(Ok(None)) => return None,
        Ok(Ok(Some(_))) => {
            let refusal = ControlError::BadRequest("the first message must be a hello".to_owned());
            let _ = write_frame(stream, &Response::Error(refusal)).await;
            return None;
        }
        Ok(Err(e)) => {
            owner
                .log()
                .warning(&format!("Control connection closed before hello: {e}"));
            return None;
        }
        Err(_) => return None,
    };
    if version != PROTOCOL_VERSION {
        let refusal = ControlError::Version {
            client: version,
            server: PROTOCOL_VERSION,
        };
        let _ = write_frame(stream, &Response::Error(refusal)).await;
        return None;
    }
    let answer = Response::Hello {
        version: PROTOCOL_VERSION,
        firmware: owner.firmware().to_owned(),
    };
    write_frame(stream, &answer).await.ok()?;
    Some(client)
}

async fn answer(request: Request, owner: &Arc<ConfigOwner>, cli_log: &SharedLog) -> Response {
    let result = match request {
        Request::GetConfig => Ok(Response::Config(Box::new((*owner.current()).clone()))),
        Request::Commit {
            base,
            config,
            user,
            comment,
            confirm_within_secs,
        } => owner
            .commit(base, *config, user, comment, confirm_within_secs)
            .await
            .map(committed),
        Request::Confirm { user } => owner
            .confirm(user)
            .await
            .map(|generation| Response::Confirmed { generation }),
        Request::Rollback { generation, user } => {
            owner.rollback(generation, user).await.map(committed)
        }
        Request::GetGeneration { generation } => owner
            .generation(generation)
            .await
            .map(|g| Response::Config(Box::new(g))),
        Request::Journal => owner.journal().await.map(Response::Journal),
        Request::Kept => owner.kept().await.map(Response::Kept),
        Request::Status => Ok(Response::Status(Box::new(owner.status()))),
        Request::ServiceReady { service } => match owner.service_ready(&service) {
            true => Ok(Response::Done),
            false => Err(ControlError::BadRequest(format!(
                "no service named {service}"
            ))),
        },
        Request::CliEntered {
            pid,
            user,
            entered,
            prompt,
        } => {
            cli_log.info(&CliEvent::Entered {
                pid,
                user: &user,
                entered: entered.as_deref(),
                prompt: &prompt,
            });
            Ok(Response::Done)
        }
        Request::DeliverNow { domain, user } => {
            owner.deliver_now(domain, &user);
            Ok(Response::Done)
        }
        Request::ServiceCounters { service, counters } => {
            owner.service_counters(service, counters);
            Ok(Response::Done)
        }
        Request::Hello { .. } | Request::Subscribe => Err(ControlError::BadRequest(
            "hello was already said".to_owned(),
        )),
        other => Err(ControlError::BadRequest(format!("{other:?}"))),
    };
    result.unwrap_or_else(Response::Error)
}

fn committed(landed: Landed) -> Response {
    Response::Committed {
        generation: landed.generation,
        changes: landed.changes,
        warnings: landed.warnings,
        confirmed: landed.confirmed,
        confirmation: landed.confirmation,
    }
}

/// Sends the current configuration, then each new one, until the client goes or we stop.
async fn push_configurations(
    mut stream: UnixStream,
    owner: &ConfigOwner,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut configs = owner.subscribe();
    let mut confirmations = owner.confirmations();
    let mut deliveries = owner.deliver_now_requests();
    let mut factory = owner.factory_certificates();
    let config = |g: &Arc<postern_config::Generation>| Response::Config(Box::new((**g).clone()));
    let certificates =
        |c: &Arc<Vec<FactoryCertificate>>| Response::FactoryCertificates((**c).clone());
    let mut outbox = vec![
        config(&configs.borrow_and_update()),
        certificates(&factory.borrow_and_update()),
    ];
    if let Some(c) = confirmations.borrow_and_update().clone() {
        outbox.push(Response::Confirmation(Some(c)));
    }
    let (mut reader, mut writer) = stream.split();
    loop {
        for response in outbox.drain(..) {
            if write_frame(&mut writer, &response).await.is_err() {
                return;
            }
        }
        tokio::select! {
            changed = configs.changed() => {
                if changed.is_err() {
                    return;
                }
                outbox.push(config(&configs.borrow_and_update()));
            }
            changed = confirmations.changed() => {
                if changed.is_err() {
                    return;
                }
                outbox.push(Response::Confirmation(confirmations.borrow_and_update().clone()));
            }
            changed = factory.changed() => {
                if changed.is_err() {
                    return;
                }
                outbox.push(certificates(&factory.borrow_and_update()));
            }
            request = deliveries.recv() => match request {
                Ok(domain) => outbox.push(Response::DeliverNow { domain }),
                // Missed requests: the newest ones say the same thing; deliver everything.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    outbox.push(Response::DeliverNow { domain: None });
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            // A subscriber sends nothing more; anything (or EOF) ends the subscription.
            _ = read_frame::<Request>(&mut reader) => return,
            _ = shutdown.changed() => return,
        }
    }
}
