//! STARTTLS (RFC 3207) with the Inbound SMTP TLS policy, and the log line of its outcome.

use postern_logs::MailEvent;
use postern_smtp_proto::Reply;
use tokio::io::{AsyncRead, AsyncWrite};

use super::InboundCounters;
use super::session::{Next, Session, SessionEnd};
use crate::conn::Conn;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn starttls(&mut self) -> Next {
        if self.tls.is_some() {
            self.reply(&Reply::tls_already_active());
            return self.count_error();
        }
        let acceptor = match &self.policy.tls {
            Some(acceptor) if self.offers_starttls() => acceptor.clone(),
            _ => {
                self.reply(&Reply::tls_unavailable());
                return Next::Continue;
            }
        };
        // Anything the client pipelined after STARTTLS was sent in clear text: it must not be
        // read as if it came over TLS (RFC 3207 section 4.2).
        self.lines.clear();
        self.reply(&Reply::ready_to_start_tls());
        if self.flush().await.is_err() {
            return Next::Close(SessionEnd::Dropped);
        }
        let Conn::Plain(stream) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            return Next::Close(SessionEnd::Dropped);
        };
        let counters = &self.inbound.counters;
        match acceptor.accept(stream).await {
            Ok((tls, negotiated)) => {
                InboundCounters::add(&counters.tls_successes);
                self.inbound.mail_log.info(&MailEvent::InboundTlsSuccess {
                    icid: self.icid,
                    protocol: negotiated.protocol(),
                    cipher: &negotiated.cipher,
                });
                self.conn = Conn::Tls(Box::new(tls));
                self.tls = Some(negotiated);
                // The client starts over with EHLO (RFC 3207 section 4.2).
                self.helo = None;
                self.transaction = None;
                Next::Continue
            }
            Err(failure) => {
                InboundCounters::add(&counters.tls_failures);
                self.inbound.mail_log.info(&MailEvent::InboundTlsFailed {
                    icid: self.icid,
                    detail: &failure.to_string(),
                });
                Next::Close(SessionEnd::Dropped)
            }
        }
    }
}
