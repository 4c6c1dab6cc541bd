//! A client of the control socket, for the CLI, the services and tests.

use std::path::Path;

use postern_config::{Commit, Config, Generation};
use tokio::net::UnixStream;

use crate::frame::{FrameError, read_frame, write_frame};
use crate::message::{
    Confirmation, ControlError, FactoryCertificate, PROTOCOL_VERSION, Request, Response, Status,
};

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("cannot reach the supervisor at {path} (is Postern running?)")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the supervisor closed the connection")]
    Closed,
    #[error(transparent)]
    Refused(#[from] ControlError),
    #[error("unexpected answer from the supervisor: {0}")]
    Unexpected(String),
}

/// A commit that landed, as the supervisor reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub generation: u64,
    /// One line per changed setting.
    pub changes: Vec<String>,
    /// What the store worked around; the commit is durable regardless.
    pub warnings: Vec<String>,
    /// The generation of an outstanding `commit confirmed` that this commit confirmed.
    pub confirmed: Option<u64>,
    /// The `commit confirmed` outstanding now.
    pub confirmation: Option<Confirmation>,
}

/// A connection to the supervisor.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    firmware: String,
}

impl Client {
    /// Connects and says hello; `client` names this process in the supervisor's logs.
    pub async fn connect(socket: &Path, client: &str) -> Result<Self, ClientError> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|source| ClientError::Connect {
                path: socket.display().to_string(),
                source,
            })?;
        let mut this = Self {
            stream,
            firmware: String::new(),
        };
        let hello = Request::Hello {
            version: PROTOCOL_VERSION,
            client: client.to_owned(),
        };
        match this.request(hello).await? {
            Response::Hello { firmware, .. } => this.firmware = firmware,
            other => return Err(unexpected(&other)),
        }
        Ok(this)
    }

    /// The firmware version the supervisor reported.
    pub fn firmware(&self) -> &str {
        &self.firmware
    }

    /// Sends one request and reads its answer; a refusal comes back as `Refused`.
    pub async fn request(&mut self, request: Request) -> Result<Response, ClientError> {
        write_frame(&mut self.stream, &request).await?;
        match read_frame(&mut self.stream).await? {
            Some(Response::Error(e)) => Err(e.into()),
            Some(r) => Ok(r),
            None => Err(ClientError::Closed),
        }
    }

    pub async fn config(&mut self) -> Result<Generation, ClientError> {
        match self.request(Request::GetConfig).await? {
            Response::Config(g) => Ok(*g),
            other => Err(unexpected(&other)),
        }
    }

    /// A kept generation's configuration.
    pub async fn config_of(&mut self, generation: u64) -> Result<Config, ClientError> {
        match self.request(Request::GetGeneration { generation }).await? {
            Response::Config(g) => Ok(g.config),
            other => Err(unexpected(&other)),
        }
    }

    /// Commits a session's configuration; answers the new generation and its change lines.
    pub async fn commit(
        &mut self,
        base: u64,
        config: Config,
        user: &str,
        comment: &str,
    ) -> Result<(u64, Vec<String>), ClientError> {
        let landed = self
            .commit_detailed(base, config, user, comment, None)
            .await?;
        Ok((landed.generation, landed.changes))
    }

    /// Commits as [`Client::commit`] does, and tells whether that confirmed an outstanding
    /// `commit confirmed`. With `confirm_within_secs` the commit is rolled back automatically
    /// unless it is confirmed within that many seconds.
    pub async fn commit_detailed(
        &mut self,
        base: u64,
        config: Config,
        user: &str,
        comment: &str,
        confirm_within_secs: Option<u32>,
    ) -> Result<Committed, ClientError> {
        let request = Request::Commit {
            base,
            config: Box::new(config),
            user: user.to_owned(),
            comment: comment.to_owned(),
            confirm_within_secs,
        };
        self.committed(request).await
    }

    /// Asks the services to retry now the queued mail for `domain` (all when `None`).
    pub async fn deliver_now(
        &mut self,
        domain: Option<&str>,
        user: &str,
    ) -> Result<(), ClientError> {
        let request = Request::DeliverNow {
            domain: domain.map(str::to_owned),
            user: user.to_owned(),
        };
        match self.request(request).await? {
            Response::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Writes a line an administrator entered to `cli_logs` (`None`: a secret, not logged).
    pub async fn cli_entered(
        &mut self,
        pid: u32,
        user: &str,
        entered: Option<&str>,
        prompt: &str,
    ) -> Result<(), ClientError> {
        let request = Request::CliEntered {
            pid,
            user: user.to_owned(),
            entered: entered.map(str::to_owned),
            prompt: prompt.to_owned(),
        };
        match self.request(request).await? {
            Response::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Confirms the outstanding `commit confirmed`; answers its generation.
    pub async fn confirm(&mut self, user: &str) -> Result<u64, ClientError> {
        let request = Request::Confirm {
            user: user.to_owned(),
        };
        match self.request(request).await? {
            Response::Confirmed { generation } => Ok(generation),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn rollback(
        &mut self,
        generation: u64,
        user: &str,
    ) -> Result<(u64, Vec<String>), ClientError> {
        let request = Request::Rollback {
            generation,
            user: user.to_owned(),
        };
        let landed = self.committed(request).await?;
        Ok((landed.generation, landed.changes))
    }

    async fn committed(&mut self, request: Request) -> Result<Committed, ClientError> {
        match self.request(request).await? {
            Response::Committed {
                generation,
                changes,
                warnings,
                confirmed,
                confirmation,
            } => Ok(Committed {
                generation,
                changes,
                warnings,
                confirmed,
                confirmation,
            }),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn journal(&mut self) -> Result<Vec<Commit>, ClientError> {
        match self.request(Request::Journal).await? {
            Response::Journal(j) => Ok(j),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn kept(&mut self) -> Result<Vec<Commit>, ClientError> {
        match self.request(Request::Kept).await? {
            Response::Kept(k) => Ok(k),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn status(&mut self) -> Result<Status, ClientError> {
        match self.request(Request::Status).await? {
            Response::Status(s) => Ok(*s),
            other => Err(unexpected(&other)),
        }
    }

    /// Tells the supervisor this service serves.
    pub async fn ready(&mut self, service: &str) -> Result<(), ClientError> {
        match self
            .request(Request::ServiceReady {
                service: service.to_owned(),
            })
            .await?
        {
            Response::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Reports this service's counters for `status`.
    pub async fn counters(
        &mut self,
        service: &str,
        counters: Vec<(String, u64)>,
    ) -> Result<(), ClientError> {
        let request = Request::ServiceCounters {
            service: service.to_owned(),
            counters,
        };
        match self.request(request).await? {
            Response::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Turns this connection into a stream of committed configurations, starting with the
    /// current one.
    pub async fn subscribe(mut self) -> Result<Subscription, ClientError> {
        write_frame(&mut self.stream, &Request::Subscribe).await?;
        Ok(Subscription {
            stream: self.stream,
        })
    }
}

/// Committed configurations as the supervisor pushes them.
#[derive(Debug)]
pub struct Subscription {
    stream: UnixStream,
}

/// What a subscription brings.
#[derive(Debug, Clone)]
pub enum Event {
    /// A newly committed configuration (the first is the current one).
    Config(Box<Generation>),
    /// `delivernow`: retry the waiting recipients of this domain (all when `None`) now.
    DeliverNow(Option<String>),
    /// The outstanding `commit confirmed` changed (made, confirmed, or rolled back).
    Confirmation(Option<Confirmation>),
    /// The factory certificates made so far (the first set follows the first configuration).
    FactoryCertificates(Vec<FactoryCertificate>),
}

impl Subscription {
    /// The next event.
    pub async fn next_event(&mut self) -> Result<Event, ClientError> {
        match read_frame(&mut self.stream).await? {
            Some(Response::Config(g)) => Ok(Event::Config(g)),
            Some(Response::DeliverNow { domain }) => Ok(Event::DeliverNow(domain)),
            Some(Response::Confirmation(c)) => Ok(Event::Confirmation(c)),
            Some(Response::FactoryCertificates(c)) => Ok(Event::FactoryCertificates(c)),
            Some(other) => Err(unexpected(&other)),
            None => Err(ClientError::Closed),
        }
    }

    /// What a service starts from: the current configuration and the factory certificates,
    /// the first two events of a subscription.
    pub async fn first(&mut self) -> Result<(Generation, Vec<FactoryCertificate>), ClientError> {
        let Event::Config(generation) = self.next_event().await? else {
            return Err(ClientError::Unexpected(
                "a subscription that does not start with the configuration".into(),
            ));
        };
        match self.next_event().await? {
            Event::FactoryCertificates(certificates) => Ok((*generation, certificates)),
            _ => Err(ClientError::Unexpected(
                "no factory certificates after the first configuration".into(),
            )),
        }
    }

    /// The next committed configuration (the first call answers the current one); other
    /// events are passed over.
    pub async fn next(&mut self) -> Result<Generation, ClientError> {
        loop {
            if let Event::Config(g) = self.next_event().await? {
                return Ok(*g);
            }
        }
    }
}

fn unexpected(r: &Response) -> ClientError {
    let text = format!("{r:?}");
    ClientError::Unexpected(text.chars().take(80).collect())
}
