//! DATA: the message itself, read within the size limit and the smuggling rules, and queued
//! durably before `250` is answered.

use postern_logs::MailEvent;
use postern_smtp_proto::{DataDecoder, DataStatus, Reply};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::InboundCounters;
use super::session::{Next, Session, SessionEnd};
use crate::queue::{Envelope, QueueError};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn data(&mut self) -> Next {
        match &self.transaction {
            None => {
                self.reply(&Reply::need_mail());
                return self.count_error();
            }
            Some(t) if t.recipients.is_empty() => {
                self.reply(&Reply::need_rcpt());
                return self.count_error();
            }
            Some(_) => {}
        }
        self.reply(&Reply::start_mail_input());
        if self.flush().await.is_err() {
            return Next::Close(SessionEnd::Dropped);
        }
        let mut decoder = DataDecoder::new(self.policy.settings.limits.max_message_size);
        let mut body = Vec::with_capacity(16 * 1024);
        let mut input = self.lines.take_pending();
        let result = loop {
            match decoder.decode(&input, &mut body) {
                DataStatus::Done { consumed, result } => {
                    // Pipelined commands after the message belong to the command loop.
                    self.lines.push(&input[consumed..]);
                    break result;
                }
                DataStatus::NeedMore => {
                    input.resize(64 * 1024, 0);
                    let read =
                        tokio::time::timeout(self.data_timeout(), self.conn.read(&mut input)).await;
                    match read {
                        Ok(Ok(0)) => return Next::Close(SessionEnd::Closed),
                        Ok(Ok(n)) => input.truncate(n),
                        Ok(Err(_)) => return Next::Close(SessionEnd::Dropped),
                        Err(_) => {
                            self.reply(&Reply::timeout(&self.policy.hostname));
                            return Next::Close(SessionEnd::Dropped);
                        }
                    }
                }
            }
        };
        let Some(transaction) = self.transaction.take() else {
            return Next::Continue;
        };
        let size = match result {
            Ok(size) => size,
            Err(refused) => {
                self.reply(&refused.reply());
                return Next::Continue;
            }
        };
        let mid = transaction.mid;
        let envelope = Envelope {
            mid,
            icid: self.icid,
            sender: transaction.sender,
            recipients: transaction.recipients,
            received: unix_now(),
            size: body.len() as u64,
        };
        let sender = envelope.sender.clone();
        match self.inbound.queue.accept(envelope, body).await {
            Ok(_) => {
                InboundCounters::add(&self.inbound.counters.messages_received);
                let log = &self.inbound.mail_log;
                log.info(&MailEvent::Ready {
                    mid: mid.0,
                    bytes: size,
                    sender: &sender,
                });
                log.info(&MailEvent::Queued { mid: mid.0 });
                self.reply(&Reply::queued(&format!("MID {}", mid.0)));
            }
            Err(QueueError::StorageFull { .. }) => self.reply(&Reply::insufficient_storage()),
            Err(_) => self.reply(&Reply::local_error()),
        }
        Next::Continue
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
