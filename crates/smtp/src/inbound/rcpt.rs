//! RCPT TO: the Recipient Access Table decides; nothing is relayed for a domain it does not
//! accept.

use postern_logs::MailEvent;
use postern_smtp_proto::{ForwardPath, Host, Reply};
use tokio::io::{AsyncRead, AsyncWrite};

use super::InboundCounters;
use super::session::{Next, Session};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) fn rcpt(&mut self, to: ForwardPath) -> Next {
        let max = self.policy.settings.limits.max_recipients as usize;
        let Some(transaction) = self.transaction.as_mut() else {
            self.reply(&Reply::need_mail());
            return self.count_error();
        };
        if transaction.recipients.len() >= max {
            self.reply(&Reply::too_many_recipients());
            return Next::Continue;
        }
        let (recipient, accepted) = match &to {
            // Every server takes mail for its postmaster (RFC 5321 4.5.1).
            ForwardPath::Postmaster => (format!("postmaster@{}", self.policy.hostname), true),
            ForwardPath::Mailbox(mailbox) => {
                let accepted = match mailbox.host() {
                    Host::Domain(domain) => self.policy.settings.accepts(domain.as_str()),
                    Host::Ipv4(_) | Host::Ipv6(_) => false,
                };
                (mailbox.to_string(), accepted)
            }
        };
        let counters = &self.inbound.counters;
        if !accepted {
            InboundCounters::add(&counters.recipients_rejected);
            self.reply(&Reply::relay_denied());
            return Next::Continue;
        }
        let rid = u32::try_from(transaction.recipients.len()).unwrap_or(u32::MAX);
        self.inbound.mail_log.info(&MailEvent::To {
            mid: transaction.mid.0,
            icid: self.icid,
            rid,
            recipient: &recipient,
        });
        transaction.recipients.push(recipient);
        InboundCounters::add(&counters.recipients_received);
        self.reply(&Reply::recipient_ok());
        Next::Continue
    }
}
