//! The `postern smtpd` service: binds the SMTP listeners of the committed configuration, serves
//! them with the Inbound SMTP TLS policy, delivers what the queue holds with the Outbound SMTP
//! TLS policy, routes and destination controls, and applies each new commit to new connections
//! in both directions.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use postern_config::{Config, ListenerName, ListenerTls, TlsService};
use postern_control::{Client, ClientError, Event, FactoryCertificate};
use postern_logs::{SharedLog, Subscription};
use postern_tls::{Identity, TlsAcceptor, identities_for};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::inbound::{Inbound, InboundListener, InboundPolicy};
use crate::outbound::{CaRoots, Delivery, DeliveryOptions, DeliveryPolicy};
use crate::queue::{Queue, QueueError};

/// The service's name on the control socket and in `status`.
pub const SERVICE: &str = "smtpd";

/// How long open sessions and deliveries may finish after a stop before they are cut.
const DRAIN: Duration = Duration::from_secs(10);

/// Why the service stopped on its own; the supervisor logs it and starts it again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    #[error(transparent)]
    Control(#[from] ClientError),
    #[error("the mail queue: {0}")]
    Queue(#[from] QueueError),
    #[error("cannot open mail_logs: {0}")]
    Log(std::io::Error),
    #[error("cannot give up root privileges after binding the listeners: {0}")]
    Privileges(std::io::Error),
    #[error("cannot listen on {address} for {listener}: {source}")]
    Bind {
        listener: String,
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Runs the service until `stop` resolves (SIGTERM) or the supervisor goes away.
/// `drop_privileges` is called once the listeners are bound, before anything is served.
pub async fn run(
    data: &Path,
    stop: impl Future<Output = ()>,
    drop_privileges: impl FnOnce() -> std::io::Result<()>,
) -> Result<(), ServiceError> {
    let socket = postern_control::socket_path(data);
    let mut control = Client::connect(&socket, SERVICE).await?;
    let mut configs = Client::connect(&socket, SERVICE).await?.subscribe().await?;
    let (first, factory) = configs.first().await?;
    let mut config = first.config;

    let mail_log =
        SharedLog::open(data, Subscription::MailLogs, false).map_err(ServiceError::Log)?;
    let opened = Queue::open(data.join("queue")).await?;
    for warning in &opened.warnings {
        mail_log.warning(warning);
    }
    let queue = opened.queue;
    let inbound = Inbound::new(queue.clone(), mail_log.clone());
    let mut certs = Certificates::new(&factory, &mail_log);
    let roots = system_roots(&mail_log);

    let mut bound = Vec::new();
    for (name, policy) in certs.policies(&config, &mail_log) {
        let address = policy.settings.address;
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| ServiceError::Bind {
                listener: name.to_string(),
                address,
                source,
            })?;
        bound.push((name, policy, listener));
    }
    // The ports are bound and the files opened: nothing served from here on needs root.
    drop_privileges().map_err(ServiceError::Privileges)?;

    let (shutdown, _) = watch::channel(false);
    let mut listeners = JoinSet::new();
    let mut policies = BTreeMap::new();
    for (name, policy, listener) in bound {
        let (tx, rx) = watch::channel(Arc::new(policy));
        listeners.spawn(
            InboundListener::new(listener, rx, inbound.clone()).serve(shutdown.subscribe(), DRAIN),
        );
        policies.insert(name, tx);
    }
    // Delivery starts once the listeners are bound: a service that cannot bind stops before
    // it has begun anything.
    let (delivery_policy, policy_rx) =
        watch::channel(Arc::new(delivery_policy_of(&config, &roots, &mail_log)));
    let delivery = Delivery::new(queue.clone(), mail_log.clone(), DeliveryOptions::default());
    let delivering = tokio::spawn(delivery.run(policy_rx, shutdown.subscribe(), DRAIN));
    control.ready(SERVICE).await?;

    tokio::pin!(stop);
    let mut report = tokio::time::interval(COUNTER_REPORT);
    let mut reported = Vec::new();
    let result = loop {
        tokio::select! {
            () = &mut stop => break Ok(()),
            _ = report.tick() => {
                let counters = counters(&inbound);
                if counters != reported {
                    if let Err(e) = control.counters(SERVICE, counters.clone()).await {
                        break Err(e.into());
                    }
                    reported = counters;
                }
            }
            next = configs.next_event() => {
                match next {
                    Ok(Event::Config(generation)) => {
                        config = generation.config;
                        // A listener added, removed or moved makes the supervisor restart this
                        // service ([`needs_restart`]); everything else applies to the next
                        // connection. Delivery's policy is replaced first: mail that the new
                        // inbound policy lets in (a RAT entry committed with the route for its
                        // domain) must never be delivered with the old routes, which would
                        // bounce it. The scheduler reads the policy after it has seen the
                        // message.
                        delivery_policy
                            .send_replace(Arc::new(delivery_policy_of(&config, &roots, &mail_log)));
                    }
                    // The factory RSA certificate, made after the start: presented from now on.
                    Ok(Event::FactoryCertificates(factory)) => {
                        certs = Certificates::new(&factory, &mail_log);
                    }
                    Ok(Event::DeliverNow(domain)) => {
                        let made_due = queue.deliver_now(domain.as_deref());
                        mail_log.info(&format!(
                            "Delivery now requested for {}: {made_due} recipient(s) made due",
                            domain.as_deref().unwrap_or("all domains")
                        ));
                        continue;
                    }
                    Ok(Event::Confirmation(_)) => continue,
                    // The supervisor closed the subscription: it is stopping (and sends SIGTERM
                    // to this service at the same time) or gone. Stop serving either way rather
                    // than serve a stale policy; only a broken connection is an error.
                    Err(ClientError::Closed) => break Ok(()),
                    Err(e) => break Err(e.into()),
                }
                for (name, policy) in certs.policies(&config, &mail_log) {
                    if let Some(tx) = policies.get(&name) {
                        tx.send_replace(Arc::new(policy));
                    }
                }
            }
        }
    };
    let _ = shutdown.send(true);
    while listeners.join_next().await.is_some() {}
    let _ = delivering.await;
    result
}

/// How often the counters of `status` are sent to the supervisor (when they changed).
const COUNTER_REPORT: Duration = Duration::from_secs(2);

/// The service's counters, in the words of the reference appliance's `status`.
fn counters(inbound: &Inbound) -> Vec<(String, u64)> {
    let c = &inbound.counters;
    let get = |v: &std::sync::atomic::AtomicU64| v.load(std::sync::atomic::Ordering::Relaxed);
    let queue = inbound.queue.stats();
    vec![
        ("Connections Received".to_owned(), get(&c.connections)),
        ("Messages Received".to_owned(), get(&c.messages_received)),
        (
            "Recipients Received".to_owned(),
            get(&c.recipients_received),
        ),
        (
            "Rejected Recipients".to_owned(),
            get(&c.recipients_rejected),
        ),
        ("Inbound TLS Successes".to_owned(), get(&c.tls_successes)),
        ("Inbound TLS Failures".to_owned(), get(&c.tls_failures)),
        ("Messages In Queue".to_owned(), queue.messages as u64),
        (
            "Recipients Pending".to_owned(),
            queue.recipients_pending as u64,
        ),
    ]
}

/// The delivery policy of `config`. An Outbound SMTP TLS policy the engine refuses (which a
/// commit would not have let through) means no STARTTLS: destinations that require TLS wait.
fn delivery_policy_of(config: &Config, roots: &CaRoots, log: &SharedLog) -> DeliveryPolicy {
    DeliveryPolicy::from_config(config, roots).unwrap_or_else(|e| {
        log.critical(&format!("Outbound SMTP TLS cannot be used: {e}"));
        DeliveryPolicy::without_tls(config.system.hostname.as_str(), &config.delivery)
    })
}

/// The CA certificates `-Verify` destinations are checked against; none, with a warning, when
/// the system bundle is missing (every such check then fails).
fn system_roots(log: &SharedLog) -> CaRoots {
    match CaRoots::system() {
        Ok(roots) if roots.has_pem_certificate() => roots,
        Ok(_) | Err(_) => {
            log.warning(&format!(
                "no CA certificates in {}: deliveries to -Verify destinations cannot verify",
                CaRoots::SYSTEM_BUNDLE
            ));
            CaRoots::default()
        }
    }
}

/// Whether going from `old` to `new` needs the service restarted: its listeners are bound at
/// start.
pub fn needs_restart(old: &Config, new: &Config) -> bool {
    listener_addresses(old) != listener_addresses(new)
}

fn listener_addresses(config: &Config) -> Vec<(ListenerName, std::net::SocketAddr)> {
    config
        .listeners
        .smtp
        .iter()
        .map(|(name, l)| (name.clone(), l.address))
        .collect()
}

/// The identities STARTTLS presents: the certificate assigned to Inbound SMTP, or the factory
/// ECDSA and RSA pair.
struct Certificates {
    factory: Vec<Identity>,
}

impl Certificates {
    /// The factory certificates the supervisor sent; one that cannot be read is left out, and
    /// said so.
    fn new(factory: &[FactoryCertificate], log: &SharedLog) -> Self {
        let factory = factory
            .iter()
            .filter_map(|c| {
                Identity::from_pem(c.chain_pem.as_bytes(), c.key_pem.as_bytes())
                    .inspect_err(|e| {
                        log.critical(&format!("A factory certificate cannot be used: {e}"));
                    })
                    .ok()
            })
            .collect();
        Self { factory }
    }

    /// Each listener's policy under `config`. A TLS policy the engine refuses (which a commit
    /// would not have let through) leaves STARTTLS unoffered, and says so.
    fn policies(&self, config: &Config, log: &SharedLog) -> Vec<(ListenerName, InboundPolicy)> {
        let identities = identities_for(config, TlsService::InboundSmtp, &self.factory)
            .unwrap_or_else(|e| {
                log.critical(&format!(
                    "The certificate assigned to Inbound SMTP cannot be used ({e}); presenting \
                     the factory certificates"
                ));
                self.factory.clone()
            });
        let acceptor = match TlsAcceptor::new(&config.tls.inbound_smtp, &identities) {
            Ok(a) => Some(a),
            Err(e) => {
                log.critical(&format!("Inbound SMTP TLS cannot be offered: {e}"));
                None
            }
        };
        config
            .listeners
            .smtp
            .iter()
            .map(|(name, settings)| {
                let policy = InboundPolicy {
                    hostname: config.system.hostname.to_string(),
                    listener: name.to_string(),
                    listener_ip: settings.address.ip(),
                    settings: settings.clone(),
                    tls: acceptor.clone().filter(|_| settings.tls != ListenerTls::No),
                };
                (name.clone(), policy)
            })
            .collect()
    }
}
