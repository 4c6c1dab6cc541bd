//! The SMTP client conversation (RFC 5321) on one connection, generic over its stream so that
//! tests drive it over an in-memory one: the greeting, EHLO with the fall-back to HELO, STARTTLS,
//! MAIL and RCPT (pipelined when the server offers PIPELINING), DATA with dot-stuffing, RSET and
//! QUIT. Every read and write has a timeout; whatever the server sends, the replies are read
//! within [`ReplyParser`]'s limits, and a server that breaks the protocol ends the session with
//! a [`SessionError`], never a panic.

use std::fmt;
use std::io;
use std::time::Duration;

use postern_smtp_proto::{
    Body, Capabilities, Command, DataEncoder, ForwardPath, MailParams, Reply, ReplyParseError,
    ReplyParser, ReversePath,
};
use postern_tls::{ClientStream, HandshakeFailure, Negotiated, TlsConnector};

use crate::conn::Conn;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long each step may take. [`Default`] gives the minimums of RFC 5321 4.5.3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// The TCP connection to a next hop.
    pub connect: Duration,
    /// The `220` greeting (5 minutes).
    pub greeting: Duration,
    /// The reply to EHLO, MAIL, RCPT, RSET, STARTTLS (5 minutes).
    pub command: Duration,
    /// The `354` to DATA (2 minutes).
    pub data_start: Duration,
    /// Each write of the message (3 minutes).
    pub data_block: Duration,
    /// The reply after the final dot (10 minutes).
    pub data_end: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(30),
            greeting: Duration::from_secs(300),
            command: Duration::from_secs(300),
            data_start: Duration::from_secs(120),
            data_block: Duration::from_secs(180),
            data_end: Duration::from_secs(600),
        }
    }
}

/// The step of the conversation an error happened in, for the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Greeting,
    Ehlo,
    StartTls,
    Mail,
    Rcpt,
    Data,
    Message,
    Rset,
    Quit,
}

/// Why the conversation cannot go on. The connection is no longer usable after any of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The server did not answer, or take what was sent, in time.
    #[error("timeout during {0}")]
    Timeout(Step),
    /// Reading or writing failed.
    #[error("network error during {step}: {source}")]
    Io {
        step: Step,
        #[source]
        source: io::Error,
    },
    /// The server closed the connection.
    #[error("connection closed by the server during {0}")]
    Closed(Step),
    /// The server's bytes are not SMTP replies.
    #[error("bad reply during {step}: {source}")]
    Protocol {
        step: Step,
        #[source]
        source: ReplyParseError,
    },
    /// The server sent bytes after its `220` to STARTTLS, in clear text: they could be an
    /// injection (RFC 3207 section 6), so the connection is not used.
    #[error("data after the reply to STARTTLS")]
    DataAfterStartTls,
    /// The session was used after it ended (a TLS handshake failed on it).
    #[error("the connection is gone")]
    Gone,
}

/// What came of STARTTLS.
#[derive(Debug)]
pub enum StartTls {
    /// TLS is up; the client must say EHLO again.
    Done(Negotiated),
    /// The server answered something other than `220`: still in clear text, usable.
    Refused(Reply),
    /// The handshake failed after the server's `220`: the connection is gone.
    Failed(HandshakeFailure),
}

/// What came of DATA.
#[derive(Debug)]
pub enum DataOutcome {
    /// The server refused DATA itself; no message was sent.
    Refused(Reply),
    /// The message was sent; this is the server's reply to the final dot.
    Sent(Reply),
}

/// An SMTP client session on `S` (a TCP stream, or an in-memory one in tests).
pub struct ClientSession<S> {
    conn: Conn<S, ClientStream<S>>,
    replies: ReplyParser,
    out: Vec<u8>,
    timeouts: Timeouts,
    capabilities: Capabilities,
    tls: Option<Negotiated>,
}

impl<S> fmt::Debug for ClientSession<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSession")
            .field("capabilities", &self.capabilities)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ClientSession<S> {
    pub fn new(stream: S, timeouts: Timeouts) -> Self {
        Self {
            conn: Conn::Plain(stream),
            replies: ReplyParser::new(),
            out: Vec::with_capacity(512),
            timeouts,
            capabilities: Capabilities::default(),
            tls: None,
        }
    }

    /// What the server announced in its last EHLO reply (nothing after HELO).
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// The TLS of the session, once STARTTLS succeeded.
    pub fn tls(&self) -> Option<&Negotiated> {
        self.tls.as_ref()
    }

    /// Reads the server's greeting.
    pub async fn greeting(&mut self) -> Result<Reply, SessionError> {
        self.read_reply(Step::Greeting, self.timeouts.greeting)
            .await
    }

    /// EHLO, and HELO when the server refuses EHLO with a permanent error (an old server that
    /// does not know it). Sets [`Self::capabilities`].
    pub async fn hello(&mut self, name: &str) -> Result<Reply, SessionError> {
        let reply = self
            .command(&Command::Ehlo(name.to_owned()), Step::Ehlo)
            .await?;
        if reply.is_permanent_failure() {
            self.capabilities = Capabilities::default();
            return self
                .command(&Command::Helo(name.to_owned()), Step::Ehlo)
                .await;
        }
        self.capabilities = Capabilities::from_ehlo_reply(&reply);
        Ok(reply)
    }

    /// STARTTLS and the handshake, presenting `server_name` (SNI, and the name a verifying
    /// connector checks). After [`StartTls::Done`] the caller says EHLO again (RFC 3207 4.2).
    pub async fn starttls(
        &mut self,
        connector: &TlsConnector,
        server_name: &str,
    ) -> Result<StartTls, SessionError> {
        let reply = self.command(&Command::StartTls, Step::StartTls).await?;
        if reply.code() != 220 {
            return Ok(StartTls::Refused(reply));
        }
        if self.replies.has_pending() {
            return Err(SessionError::DataAfterStartTls);
        }
        let Conn::Plain(stream) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            return Err(SessionError::Gone);
        };
        match connector.connect(server_name, stream).await {
            Ok((tls, negotiated)) => {
                self.conn = Conn::Tls(Box::new(tls));
                self.capabilities = Capabilities::default();
                self.tls = Some(negotiated.clone());
                Ok(StartTls::Done(negotiated))
            }
            Err(failure) => Ok(StartTls::Failed(failure)),
        }
    }

    /// MAIL FROM and one RCPT TO per recipient, all in one write when the server offers
    /// PIPELINING (RFC 2920), each waiting for its reply otherwise. Returns the reply to MAIL
    /// and one reply per recipient, in order; when MAIL is refused without PIPELINING no RCPT is
    /// sent and the list is empty.
    pub async fn envelope(
        &mut self,
        sender: &ReversePath,
        params: MailParams,
        recipients: &[ForwardPath],
    ) -> Result<(Reply, Vec<Reply>), SessionError> {
        let mail = Command::Mail {
            from: sender.clone(),
            params,
        };
        let rcpt = |to: &ForwardPath| Command::Rcpt {
            to: to.clone(),
            params: Default::default(),
        };
        if self.capabilities.pipelining {
            mail.write(&mut self.out);
            for to in recipients {
                rcpt(to).write(&mut self.out);
            }
            self.flush(Step::Mail).await?;
            let mail_reply = self.read_reply(Step::Mail, self.timeouts.command).await?;
            let mut replies = Vec::with_capacity(recipients.len());
            for _ in recipients {
                replies.push(self.read_reply(Step::Rcpt, self.timeouts.command).await?);
            }
            return Ok((mail_reply, replies));
        }
        let mail_reply = self.command(&mail, Step::Mail).await?;
        if !mail_reply.is_positive_completion() {
            return Ok((mail_reply, Vec::new()));
        }
        let mut replies = Vec::with_capacity(recipients.len());
        for to in recipients {
            replies.push(self.command(&rcpt(to), Step::Rcpt).await?);
        }
        Ok((mail_reply, replies))
    }

    /// DATA, then the message dot-stuffed with its end marker, written in blocks.
    pub async fn data(&mut self, message: &[u8]) -> Result<DataOutcome, SessionError> {
        Command::Data.write(&mut self.out);
        self.flush(Step::Data).await?;
        let reply = self
            .read_reply(Step::Data, self.timeouts.data_start)
            .await?;
        if reply.code() != 354 {
            return Ok(DataOutcome::Refused(reply));
        }
        const BLOCK: usize = 64 * 1024;
        let mut encoder = DataEncoder::new();
        for chunk in message.chunks(BLOCK) {
            encoder.encode(chunk, &mut self.out);
            self.flush_within(Step::Message, self.timeouts.data_block)
                .await?;
        }
        encoder.finish(&mut self.out);
        self.flush_within(Step::Message, self.timeouts.data_block)
            .await?;
        let reply = self
            .read_reply(Step::Message, self.timeouts.data_end)
            .await?;
        Ok(DataOutcome::Sent(reply))
    }

    /// RSET: ends a transaction that did not reach the end of DATA.
    pub async fn rset(&mut self) -> Result<Reply, SessionError> {
        self.command(&Command::Rset, Step::Rset).await
    }

    /// QUIT, a short wait for the `221`, and the end of the connection. Errors do not matter
    /// any more: everything that counted was recorded before.
    pub async fn quit(mut self) {
        Command::Quit.write(&mut self.out);
        if self.flush(Step::Quit).await.is_ok() {
            let _ = self.read_reply(Step::Quit, Duration::from_secs(5)).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.conn.shutdown()).await;
    }

    /// Sends one command and reads its reply.
    async fn command(&mut self, command: &Command, step: Step) -> Result<Reply, SessionError> {
        command.write(&mut self.out);
        self.flush(step).await?;
        self.read_reply(step, self.timeouts.command).await
    }

    async fn flush(&mut self, step: Step) -> Result<(), SessionError> {
        self.flush_within(step, self.timeouts.command).await
    }

    async fn flush_within(&mut self, step: Step, timeout: Duration) -> Result<(), SessionError> {
        let write = async {
            self.conn.write_all(&self.out).await?;
            self.conn.flush().await
        };
        let result = tokio::time::timeout(timeout, write).await;
        self.out.clear();
        match result {
            Err(_) => Err(SessionError::Timeout(step)),
            Ok(Err(source)) => Err(SessionError::Io { step, source }),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// The next whole reply, read within `timeout` in all.
    async fn read_reply(&mut self, step: Step, timeout: Duration) -> Result<Reply, SessionError> {
        let read = async {
            loop {
                match self.replies.next_reply() {
                    Some(Ok(reply)) => return Ok(reply),
                    Some(Err(source)) => return Err(SessionError::Protocol { step, source }),
                    None => {}
                }
                let mut chunk = [0u8; 4096];
                match self.conn.read(&mut chunk).await {
                    Ok(0) => return Err(SessionError::Closed(step)),
                    Ok(n) => self.replies.push(&chunk[..n]),
                    Err(source) => return Err(SessionError::Io { step, source }),
                }
            }
        };
        tokio::time::timeout(timeout, read)
            .await
            .unwrap_or(Err(SessionError::Timeout(step)))
    }
}

/// The MAIL parameters for a message: SIZE when the server announced it, BODY=8BITMIME for
/// 8-bit content when it announced 8BITMIME, SMTPUTF8 when an address needs it.
pub fn mail_params(capabilities: &Capabilities, message: &[u8], smtputf8: bool) -> MailParams {
    let mut params = MailParams::default();
    if capabilities.size.is_some() {
        params.size = Some(message.len() as u64);
    }
    if capabilities.eight_bit_mime && !message.is_ascii() {
        params.body = Some(Body::EightBitMime);
    }
    params.smtputf8 = smtputf8;
    params
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Greeting => "the greeting",
            Self::Ehlo => "EHLO",
            Self::StartTls => "STARTTLS",
            Self::Mail => "MAIL FROM",
            Self::Rcpt => "RCPT TO",
            Self::Data => "DATA",
            Self::Message => "the message",
            Self::Rset => "RSET",
            Self::Quit => "QUIT",
        })
    }
}
