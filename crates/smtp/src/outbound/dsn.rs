//! Bounces: the delivery status notification (RFC 3464) that tells a sender which recipients
//! of a message were given up on and why: a `multipart/report; report-type=delivery-status`
//! (RFC 6522) with a part for people, the `message/delivery-status` part for programs, and the
//! original message's header (`text/rfc822-headers`), from `MAILER-DAEMON@<hostname>`. It is
//! queued with the null sender `<>`, so that it never causes a bounce itself.

use chrono::{TimeZone, Utc};

use crate::queue::Envelope;

/// The longest line of text taken from a remote reply: the whole line stays below RFC 5322's
/// 998 octets.
const MAX_TEXT: usize = 900;

/// The most header octets of the original message returned with the bounce.
const MAX_HEADER: usize = 64 * 1024;

/// One recipient a bounce reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecipient {
    pub recipient: String,
    /// The RFC 3463 status: the next hop's own (`5.1.1`) or ours (`5.4.7`).
    pub status: String,
    /// The next hop's reply (`550 5.1.1 No such user`), when it gave one.
    pub reply: Option<String>,
    /// Why, when no reply says it: `Delivery expired (message too old)`.
    pub reason: String,
    /// The next hop that refused the recipient, when one did.
    pub remote_mta: Option<String>,
}

/// What a bounce is about.
#[derive(Debug, Clone, Copy)]
pub struct Bounce<'a> {
    /// The appliance's host name: the reporting MTA and the domain of `MAILER-DAEMON`.
    pub hostname: &'a str,
    /// The bounced message's envelope.
    pub envelope: &'a Envelope,
    /// The bounced message, when it can still be read: its header is returned.
    pub original: Option<&'a [u8]>,
    pub failed: &'a [FailedRecipient],
    /// When the bounce is made, in seconds since the Unix epoch.
    pub now: u64,
    /// A number unique to this bounce (its MID), for the Message-ID and the MIME boundary.
    pub unique: u64,
}

impl Bounce<'_> {
    /// The whole notification, header and body, CRLF line endings.
    pub fn to_message(&self) -> Vec<u8> {
        let header = self.original.map(original_header);
        let boundary = self.boundary(header.unwrap_or_default());
        let hostname = self.hostname;
        let mut m = String::with_capacity(4096);
        let mut line = |text: &str| {
            m.push_str(text);
            m.push_str("\r\n");
        };
        line(&format!("Date: {}", rfc5322_date(self.now)));
        line(&format!(
            "From: Mail Delivery System <MAILER-DAEMON@{hostname}>"
        ));
        line(&format!("To: <{}>", self.envelope.sender));
        line("Subject: Undelivered Mail Returned to Sender");
        line(&format!(
            "Message-ID: <{}.{}.dsn@{hostname}>",
            self.now, self.unique
        ));
        line("Auto-Submitted: auto-replied");
        line("MIME-Version: 1.0");
        line(&format!(
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\""
        ));
        line("");
        line("This is a MIME-encapsulated message.");
        line("");
        line(&format!("--{boundary}"));
        line("Content-Type: text/plain; charset=utf-8");
        line("Content-Transfer-Encoding: 8bit");
        line("");
        line(&format!("This is the mail system at host {hostname}."));
        line("");
        line(&format!(
            "Your message of {} could not be delivered to the following recipients.",
            rfc5322_date(self.envelope.received)
        ));
        line("It has been given up on; nothing more will be tried.");
        line("");
        for failed in self.failed {
            let why = failed.reply.as_deref().unwrap_or(&failed.reason);
            line(&format!("<{}>: {}", failed.recipient, clip(why)));
            if let Some(remote) = &failed.remote_mta {
                line(&format!("    (reported by {remote})"));
            }
        }
        line("");
        line(&format!("--{boundary}"));
        line("Content-Type: message/delivery-status");
        line("");
        line(&format!("Reporting-MTA: dns; {hostname}"));
        line(&format!(
            "Arrival-Date: {}",
            rfc5322_date(self.envelope.received)
        ));
        for failed in self.failed {
            line("");
            line(&format!("Final-Recipient: rfc822; {}", failed.recipient));
            line("Action: failed");
            line(&format!("Status: {}", failed.status));
            if let Some(remote) = &failed.remote_mta {
                line(&format!("Remote-MTA: dns; {remote}"));
            }
            match &failed.reply {
                Some(reply) => line(&format!("Diagnostic-Code: smtp; {}", clip(reply))),
                None => line(&format!(
                    "Diagnostic-Code: X-Postern; {}",
                    clip(&failed.reason)
                )),
            }
            line(&format!("Last-Attempt-Date: {}", rfc5322_date(self.now)));
        }
        line("");
        if let Some(header) = header {
            line(&format!("--{boundary}"));
            line("Content-Type: text/rfc822-headers");
            line("");
            let mut bytes = m.into_bytes();
            bytes.extend_from_slice(header);
            if !header.ends_with(b"\r\n") {
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            return bytes;
        }
        line(&format!("--{boundary}--"));
        m.into_bytes()
    }

    /// A MIME boundary that the returned header does not contain.
    fn boundary(&self, header: &[u8]) -> String {
        let mut boundary = format!("={}.{}/{}", self.unique, self.now, self.hostname);
        while contains(header, boundary.as_bytes()) {
            boundary.push_str("=_");
        }
        boundary
    }
}

/// The header of a message: up to and with the CRLF before the empty line (all of it when
/// there is no body), cut at a line end after [`MAX_HEADER`] octets.
fn original_header(message: &[u8]) -> &[u8] {
    let end = find(message, b"\r\n\r\n").map_or(message.len(), |i| i + 2);
    let header = &message[..end];
    if header.len() <= MAX_HEADER {
        return header;
    }
    match header[..MAX_HEADER].windows(2).rposition(|w| w == b"\r\n") {
        Some(i) => &header[..i + 2],
        None => &[],
    }
}

/// `Wed, 17 Jan 2024 21:09:12 +0000`
fn rfc5322_date(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
        .map(|t| t.to_rfc2822())
        .unwrap_or_else(|| "Thu, 1 Jan 1970 00:00:00 +0000".to_owned())
}

/// Text from a remote server, on one line and short enough for one.
fn clip(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut end = one_line.len().min(MAX_TEXT);
    while !one_line.is_char_boundary(end) {
        end -= 1;
    }
    one_line[..end].to_owned()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::MessageId;

    fn envelope() -> Envelope {
        Envelope {
            mid: MessageId(6),
            icid: 1_020_089,
            sender: "a@example.org".to_owned(),
            recipients: vec!["b@example.test".to_owned(), "c@example.test".to_owned()],
            received: 1_705_525_752,
            size: 0,
        }
    }

    fn text(message: &[u8]) -> &str {
        std::str::from_utf8(message).unwrap()
    }

    #[test]
    fn a_bounce_is_a_delivery_status_report() {
        let original = b"Subject: hi\r\nFrom: <a@example.org>\r\n\r\nbody\r\n.secret\r\n";
        let failed = [
            FailedRecipient {
                recipient: "b@example.test".to_owned(),
                status: "5.1.1".to_owned(),
                reply: Some("550 5.1.1 No such user".to_owned()),
                reason: "Unknown address error".to_owned(),
                remote_mta: Some("mx.example.test".to_owned()),
            },
            FailedRecipient {
                recipient: "c@example.test".to_owned(),
                status: "5.4.7".to_owned(),
                reply: None,
                reason: "Delivery expired (message too old)".to_owned(),
                remote_mta: None,
            },
        ];
        let envelope = envelope();
        let message = Bounce {
            hostname: "gw.example.org",
            envelope: &envelope,
            original: Some(original),
            failed: &failed,
            now: 1_705_529_352,
            unique: 7,
        }
        .to_message();
        let m = text(&message);
        assert!(
            !m.replace("\r\n", "").contains('\n') && !m.replace("\r\n", "").contains('\r'),
            "CRLF only"
        );
        let boundary = "=7.1705529352/gw.example.org";
        for expected in [
            "Date: Wed, 17 Jan 2024 22:09:12 +0000\r\n",
            "From: Mail Delivery System <MAILER-DAEMON@gw.example.org>\r\n",
            "To: <a@example.org>\r\n",
            "Auto-Submitted: auto-replied\r\n",
            &format!(
                "Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\r\n"
            ),
            "<b@example.test>: 550 5.1.1 No such user\r\n",
            &format!(
                "--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; gw.example.org\r\nArrival-Date: Wed, 17 Jan 2024 21:09:12 +0000\r\n\r\n"
            ),
            "Final-Recipient: rfc822; b@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.example.test\r\nDiagnostic-Code: smtp; 550 5.1.1 No such user\r\n",
            "Final-Recipient: rfc822; c@example.test\r\nAction: failed\r\nStatus: 5.4.7\r\nDiagnostic-Code: X-Postern; Delivery expired (message too old)\r\n",
            &format!(
                "--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\nSubject: hi\r\nFrom: <a@example.org>\r\n\r\n--{boundary}--\r\n"
            ),
        ] {
            assert!(m.contains(expected), "{expected:?} not in\n{m}");
        }
        assert!(!m.contains("secret"), "the body is not returned");
        assert!(m.ends_with(&format!("--{boundary}--\r\n")));
    }

    #[test]
    fn without_the_original_the_report_has_two_parts() {
        let envelope = envelope();
        let failed = [FailedRecipient {
            recipient: "b@example.test".to_owned(),
            status: "5.3.0".to_owned(),
            reply: None,
            reason: "the message is damaged".to_owned(),
            remote_mta: None,
        }];
        let message = Bounce {
            hostname: "gw.example.org",
            envelope: &envelope,
            original: None,
            failed: &failed,
            now: 1_705_529_352,
            unique: 8,
        }
        .to_message();
        let m = text(&message);
        assert!(!m.contains("text/rfc822-headers"), "{m}");
        assert!(m.ends_with("--=8.1705529352/gw.example.org--\r\n"), "{m}");
    }

    #[test]
    fn the_boundary_is_not_in_the_returned_header() {
        let envelope = envelope();
        let original = b"X-Trap: ==9.1705529352/gw.example.org\r\n\r\n";
        let bounce = Bounce {
            hostname: "gw.example.org",
            envelope: &envelope,
            original: Some(original),
            failed: &[],
            now: 1_705_529_352,
            unique: 9,
        };
        let header = original_header(original);
        assert!(!contains(header, bounce.boundary(header).as_bytes()));
    }

    #[test]
    fn a_huge_header_is_cut_at_a_line_end_and_replies_at_one_line() {
        let mut big = Vec::new();
        for i in 0..10_000 {
            big.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "x".repeat(20)).as_bytes());
        }
        big.extend_from_slice(b"\r\nbody\r\n");
        let header = original_header(&big);
        assert!(header.len() <= MAX_HEADER && header.ends_with(b"\r\n"));
        assert_eq!(original_header(b"no body at all"), b"no body at all");
        let long = format!("550 {}\r\nInjected: yes", "é".repeat(1000));
        let clipped = clip(&long);
        assert!(clipped.len() <= MAX_TEXT && !clipped.contains('\r'));
    }
}
