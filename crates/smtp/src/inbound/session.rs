//! One inbound connection: the command loop, the replies, and the state of the transaction.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postern_logs::MailEvent;
use postern_smtp_proto::{Command, LineBuffer, Reply};
use postern_tls::{Negotiated, ServerStream};

use crate::conn::Conn;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Inbound, InboundCounters, InboundPolicy};
use crate::queue::MessageId;

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The client said QUIT.
    Quit,
    /// The client closed the connection.
    Closed,
    /// We closed it: a timeout, too many errors, a failed TLS handshake, an I/O error.
    Dropped,
}

/// Bad commands in a row before the session is closed with `421`.
const MAX_ERRORS: u32 = 20;

/// The message being received: from `MAIL` to the end of `DATA`.
#[derive(Debug)]
pub(super) struct Transaction {
    pub(super) mid: MessageId,
    pub(super) sender: String,
    pub(super) recipients: Vec<String>,
    pub(super) smtputf8: bool,
}

/// An SMTP session on `S` (a TCP stream, or an in-memory one in tests).
pub struct Session<S> {
    pub(super) conn: Conn<S, ServerStream<S>>,
    pub(super) lines: LineBuffer,
    pub(super) out: Vec<u8>,
    pub(super) policy: Arc<InboundPolicy>,
    pub(super) inbound: Arc<Inbound>,
    pub(super) icid: u64,
    pub(super) peer: SocketAddr,
    /// The EHLO/HELO name; `None` before the greeting and after STARTTLS.
    pub(super) helo: Option<String>,
    pub(super) esmtp: bool,
    pub(super) tls: Option<Negotiated>,
    pub(super) transaction: Option<Transaction>,
    errors: u32,
}

impl<S> std::fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("icid", &self.icid)
            .field("peer", &self.peer)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// What a command asks the loop to do next.
pub(super) enum Next {
    Continue,
    /// Send what is pending and close.
    Close(SessionEnd),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub fn new(
        stream: S,
        peer: SocketAddr,
        policy: Arc<InboundPolicy>,
        inbound: Arc<Inbound>,
    ) -> Self {
        let icid = inbound.next_icid();
        Self {
            conn: Conn::Plain(stream),
            lines: LineBuffer::new(),
            out: Vec::with_capacity(512),
            policy,
            inbound,
            icid,
            peer,
            helo: None,
            esmtp: false,
            tls: None,
            transaction: None,
            errors: 0,
        }
    }

    pub fn icid(&self) -> u64 {
        self.icid
    }

    /// Speaks SMTP until the client quits or the session is dropped.
    pub async fn run(mut self) -> SessionEnd {
        InboundCounters::add(&self.inbound.counters.connections);
        self.inbound.mail_log.info(&MailEvent::NewInbound {
            icid: self.icid,
            listener: &self.policy.listener,
            listener_ip: self.policy.listener_ip,
            peer: self.peer.ip(),
            reverse_dns: None,
            verified: false,
        });
        self.reply(&Reply::greeting(&self.policy.hostname));
        let end = self.serve().await;
        if self.transaction.is_some() && end != SessionEnd::Quit {
            self.inbound
                .mail_log
                .info(&MailEvent::InboundLost { icid: self.icid });
        }
        self.inbound
            .mail_log
            .info(&MailEvent::InboundClose { icid: self.icid });
        let _ = self.conn.shutdown().await;
        end
    }

    async fn serve(&mut self) -> SessionEnd {
        loop {
            // Answer every complete line already here before sending: pipelined commands get
            // their replies in one write.
            while let Some(line) = self.lines.next_line() {
                let next = match line {
                    Ok(line) => self.command(line.as_bytes()).await,
                    Err(e) => {
                        self.reply(&e.reply());
                        self.count_error()
                    }
                };
                if let Next::Close(end) = next {
                    let _ = self.flush().await;
                    return end;
                }
            }
            if self.flush().await.is_err() {
                return SessionEnd::Dropped;
            }
            match self.read_more(self.command_timeout()).await {
                Ok(true) => {}
                Ok(false) => return SessionEnd::Closed,
                Err(ReadError::Timeout) => {
                    self.reply(&Reply::timeout(&self.policy.hostname));
                    let _ = self.flush().await;
                    return SessionEnd::Dropped;
                }
                Err(ReadError::Io) => return SessionEnd::Dropped,
            }
        }
    }

    async fn command(&mut self, line: &[u8]) -> Next {
        let smtputf8 = self.transaction.as_ref().is_some_and(|t| t.smtputf8);
        let command = match Command::parse_with(line, smtputf8) {
            Ok(c) => c,
            Err(e) => {
                let forbidden = matches!(e, postern_smtp_proto::CommandError::Forbidden { .. });
                self.reply(&e.reply());
                if forbidden {
                    return Next::Close(SessionEnd::Dropped);
                }
                return self.count_error();
            }
        };
        let next = match command {
            Command::Ehlo(name) => self.ehlo(name, true),
            Command::Helo(name) => self.ehlo(name, false),
            Command::StartTls => self.starttls().await,
            Command::Mail { from, params } => self.mail(from, params).await,
            Command::Rcpt { to, .. } => self.rcpt(to),
            Command::Data => self.data().await,
            Command::Rset => {
                self.transaction = None;
                self.reply(&Reply::ok());
                Next::Continue
            }
            Command::Noop => {
                self.reply(&Reply::ok());
                Next::Continue
            }
            Command::Quit => {
                self.reply(&Reply::closing());
                Next::Close(SessionEnd::Quit)
            }
            Command::Vrfy(_) => {
                self.reply(&Reply::cannot_verify());
                Next::Continue
            }
            Command::Expn(_) => {
                self.reply(&Reply::not_implemented());
                Next::Continue
            }
            Command::Help(_) => {
                self.reply(&Reply::help());
                Next::Continue
            }
        };
        if matches!(next, Next::Continue) {
            self.errors = 0;
        }
        next
    }

    /// Counts a bad command; too many in a row close the session.
    pub(super) fn count_error(&mut self) -> Next {
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            self.reply(&Reply::service_unavailable(&self.policy.hostname));
            return Next::Close(SessionEnd::Dropped);
        }
        Next::Continue
    }

    /// Queues a reply; it is sent with the next flush.
    pub(super) fn reply(&mut self, reply: &Reply) {
        reply.write(&mut self.out);
    }

    pub(super) async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let result = self.conn.write_all(&self.out).await;
        self.out.clear();
        result?;
        self.conn.flush().await
    }

    /// Reads what the client sent next into the line buffer; false at end of stream.
    pub(super) async fn read_more(&mut self, timeout: Duration) -> Result<bool, ReadError> {
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout(timeout, self.conn.read(&mut chunk)).await {
            Err(_) => Err(ReadError::Timeout),
            Ok(Err(_)) => Err(ReadError::Io),
            Ok(Ok(0)) => Ok(false),
            Ok(Ok(n)) => {
                self.lines.push(&chunk[..n]);
                Ok(true)
            }
        }
    }

    pub(super) fn command_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.policy.settings.limits.command_timeout))
    }

    pub(super) fn data_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.policy.settings.limits.data_timeout))
    }
}

pub(super) enum ReadError {
    Timeout,
    Io,
}
