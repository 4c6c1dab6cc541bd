//! An SMTP listener: accepts connections within its limits and runs a session for each.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postern_smtp_proto::Reply;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::session::Session;
use super::{Inbound, InboundPolicy};

/// Open connections of one listener, in all and per client address.
#[derive(Debug, Default)]
pub struct ConnectionLimits {
    open: Mutex<(u32, HashMap<IpAddr, u32>)>,
}

impl ConnectionLimits {
    /// Counts a new connection from `ip`, unless a limit is reached.
    fn admit(self: &Arc<Self>, ip: IpAddr, max: u32, max_per_ip: u32) -> Option<Admitted> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let from_ip = open.1.get(&ip).copied().unwrap_or(0);
        if open.0 >= max || from_ip >= max_per_ip {
            return None;
        }
        open.0 += 1;
        open.1.insert(ip, from_ip + 1);
        Some(Admitted {
            limits: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> u32 {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).0
    }
}

/// A counted connection; dropping it uncounts it.
struct Admitted {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

/// One bound SMTP listener.
#[derive(Debug)]
pub struct InboundListener {
    listener: TcpListener,
    /// The policy new sessions take; the service sends a new one on commit.
    policy: watch::Receiver<Arc<InboundPolicy>>,
    inbound: Arc<Inbound>,
    limits: Arc<ConnectionLimits>,
}

impl InboundListener {
    pub fn new(
        listener: TcpListener,
        policy: watch::Receiver<Arc<InboundPolicy>>,
        inbound: Arc<Inbound>,
    ) -> Self {
        Self {
            listener,
            policy,
            inbound,
            limits: Arc::default(),
        }
    }

    pub fn limits(&self) -> Arc<ConnectionLimits> {
        self.limits.clone()
    }

    /// Accepts until `shutdown` turns true; then waits up to `grace` for open sessions.
    pub async fn serve(self, mut shutdown: watch::Receiver<bool>, grace: Duration) {
        let mut sessions = JoinSet::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        // Out of file descriptors and the like: the next accept may work.
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let policy = self.policy.borrow().clone();
                    let limits = &policy.settings.limits;
                    let admitted = self.limits.admit(peer.ip(), limits.max_connections, limits.max_connections_per_ip);
                    let inbound = self.inbound.clone();
                    sessions.spawn(async move {
                        let Some(_admitted) = admitted else {
                            let mut out = Vec::new();
                            Reply::too_many_connections(&policy.hostname).write(&mut out);
                            let mut stream = stream;
                            let _ = stream.write_all(&out).await;
                            let _ = stream.shutdown().await;
                            return;
                        };
                        Session::new(stream, peer, policy, inbound).run().await;
                    });
                }
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                _ = shutdown.changed() => break,
            }
        }
        drop(self.listener);
        let drain = async { while sessions.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, drain).await.is_err() {
            sessions.shutdown().await;
        }
    }
}
