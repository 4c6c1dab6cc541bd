//! EHLO and HELO: the greeting, and the extensions offered.

use postern_config::ListenerTls;
use postern_smtp_proto::{Capabilities, Reply};
use tokio::io::{AsyncRead, AsyncWrite};

use super::session::{Next, Session};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// A new greeting resets the transaction (RFC 5321 4.1.4).
    pub(super) fn ehlo(&mut self, name: String, extended: bool) -> Next {
        self.transaction = None;
        self.helo = Some(name);
        self.esmtp = extended;
        if extended {
            let capabilities = Capabilities {
                pipelining: true,
                size: Some(self.policy.settings.limits.max_message_size),
                eight_bit_mime: true,
                enhanced_status_codes: true,
                smtputf8: true,
                starttls: self.offers_starttls(),
                other: Vec::new(),
            };
            self.reply(&capabilities.ehlo_reply(&self.policy.hostname));
        } else {
            self.reply(&Reply::helo(&self.policy.hostname));
        }
        Next::Continue
    }

    /// STARTTLS is offered before TLS, on a listener whose TLS is not `No`.
    pub(super) fn offers_starttls(&self) -> bool {
        self.tls.is_none()
            && self.policy.tls.is_some()
            && self.policy.settings.tls != ListenerTls::No
    }
}
