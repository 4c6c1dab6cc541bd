//! MAIL FROM: the start of a message, its MID, and the checks that come before any recipient.

use postern_config::ListenerTls;
use postern_logs::MailEvent;
use postern_smtp_proto::{MailParams, Reply, ReversePath};
use tokio::io::{AsyncRead, AsyncWrite};

use super::session::{Next, Session, Transaction};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn mail(&mut self, from: ReversePath, params: MailParams) -> Next {
        if self.helo.is_none() {
            self.reply(&Reply::need_helo());
            return self.count_error();
        }
        if self.transaction.is_some() {
            self.reply(&Reply::nested_mail());
            return self.count_error();
        }
        if self.policy.settings.tls == ListenerTls::Required && self.tls.is_none() {
            self.inbound
                .mail_log
                .info(&MailEvent::InboundTlsRequired { icid: self.icid });
            self.reply(&Reply::starttls_required());
            return self.count_error();
        }
        if params
            .size
            .is_some_and(|size| size > self.policy.settings.limits.max_message_size)
        {
            self.reply(&Reply::message_too_big());
            return Next::Continue;
        }
        let mid = match self.inbound.queue.reserve_mid().await {
            Ok(mid) => mid,
            Err(_) => {
                self.reply(&Reply::insufficient_storage());
                return Next::Continue;
            }
        };
        let sender = from.mailbox().map(ToString::to_string).unwrap_or_default();
        let log = &self.inbound.mail_log;
        log.info(&MailEvent::Start {
            mid: mid.0,
            icid: self.icid,
        });
        log.info(&MailEvent::From {
            mid: mid.0,
            icid: self.icid,
            sender: &sender,
        });
        self.transaction = Some(Transaction {
            mid,
            sender,
            recipients: Vec::new(),
            smtputf8: params.smtputf8,
        });
        self.reply(&Reply::sender_ok());
        Next::Continue
    }
}
