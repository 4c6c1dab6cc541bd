//! The events of `mail_logs`, each written in the reference appliance's words so that existing
//! parsers (SIEM add-ons) read them: connections (ICID in, DCID out), their TLS outcome,
//! messages (MID) and recipients (RID).

use std::fmt;
use std::net::IpAddr;

/// One `mail_logs` event. `Display` gives the event text that follows `Info: ` on a line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MailEvent<'a> {
    /// `New SMTP ICID 5 interface IncomingMail (127.0.0.1) address 127.0.0.1 reverse dns host localhost verified yes`
    NewInbound {
        icid: u64,
        listener: &'a str,
        listener_ip: IpAddr,
        peer: IpAddr,
        /// The peer's reverse DNS name, when it has one.
        reverse_dns: Option<&'a str>,
        /// Whether that name resolves back to the peer's address.
        verified: bool,
    },
    /// `ICID 5 TLS success protocol TLSv1.3 cipher TLS_AES_256_GCM_SHA384`
    InboundTlsSuccess {
        icid: u64,
        protocol: &'a str,
        cipher: &'a str,
    },
    /// `ICID 5 TLS failed: (code, 'reason')`
    InboundTlsFailed { icid: u64, detail: &'a str },
    /// `ICID 5 TLS was required but remote host did not initiate it`
    InboundTlsRequired { icid: u64 },
    /// `ICID 5 close`
    InboundClose { icid: u64 },
    /// `ICID 5 lost`: the peer went away in the middle of a transaction.
    InboundLost { icid: u64 },
    /// `Start MID 6 ICID 5`
    Start { mid: u64, icid: u64 },
    /// `MID 6 ICID 5 From: <a@example.org>`
    From {
        mid: u64,
        icid: u64,
        sender: &'a str,
    },
    /// `MID 6 ICID 5 RID 0 To: <b@example.test>`
    To {
        mid: u64,
        icid: u64,
        rid: u32,
        recipient: &'a str,
    },
    /// `MID 6 ready 100 bytes from <a@example.org>`
    Ready {
        mid: u64,
        bytes: u64,
        sender: &'a str,
    },
    /// `MID 6 queued for delivery`
    Queued { mid: u64 },
    /// `New SMTP DCID 8 interface 127.0.0.1 address 127.0.0.1 port 2526`
    NewDelivery {
        dcid: u64,
        interface: IpAddr,
        peer: IpAddr,
        port: u16,
    },
    /// `DCID 8 TLS success protocol TLSv1.3 cipher TLS_AES_256_GCM_SHA384`
    DeliveryTlsSuccess {
        dcid: u64,
        protocol: &'a str,
        cipher: &'a str,
    },
    /// `DCID 8 TLS deferring: (code, 'reason')` plus, when versions do not overlap,
    /// ` TLS version mismatch could be the failure reason`.
    DeliveryTlsDeferring {
        dcid: u64,
        detail: &'a str,
        version_mismatch: bool,
    },
    /// `DCID 8 TLS failed: <reason>`
    DeliveryTlsFailed { dcid: u64, detail: &'a str },
    /// `Delivery start DCID 8 MID 6 to RID [0, 1]`
    DeliveryStart {
        dcid: u64,
        mid: u64,
        rids: &'a [u32],
    },
    /// `Message done DCID 8 MID 6 to RID [0]`
    MessageDone {
        dcid: u64,
        mid: u64,
        rids: &'a [u32],
    },
    /// `Message finished MID 6 done`
    Finished { mid: u64 },
    /// `Delayed: DCID 8 MID 6 to RID 0 - 4.4.0 - <text> ('451', ['<response>'])`
    Delayed {
        dcid: u64,
        mid: u64,
        rid: u32,
        status: &'a str,
        text: &'a str,
        reply: Option<(u16, &'a str)>,
    },
    /// `Bounced: DCID 8 MID 6 to RID 0 - 5.1.0 - <text> ('550', ['<response>'])`
    Bounced {
        dcid: u64,
        mid: u64,
        rid: u32,
        status: &'a str,
        text: &'a str,
        reply: Option<(u16, &'a str)>,
    },
    /// `Connection Error: DCID 8 domain: example.test IP: 192.0.2.1 port: 25 details: <text> interface: 127.0.0.1 reason: <reason>`
    ConnectionError {
        dcid: u64,
        domain: &'a str,
        peer: IpAddr,
        port: u16,
        details: &'a str,
        interface: IpAddr,
        reason: &'a str,
    },
    /// `DCID 8 close`
    DeliveryClose { dcid: u64 },
}

impl fmt::Display for MailEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NewInbound {
                icid,
                listener,
                listener_ip,
                peer,
                reverse_dns,
                verified,
            } => write!(
                f,
                "New SMTP ICID {icid} interface {listener} ({listener_ip}) address {peer} reverse dns host {} verified {}",
                reverse_dns.unwrap_or("unknown"),
                if *verified { "yes" } else { "no" }
            ),
            Self::InboundTlsSuccess {
                icid,
                protocol,
                cipher,
            } => {
                write!(
                    f,
                    "ICID {icid} TLS success protocol {protocol} cipher {cipher}"
                )
            }
            Self::InboundTlsFailed { icid, detail } => {
                write!(f, "ICID {icid} TLS failed: {detail}")
            }
            Self::InboundTlsRequired { icid } => {
                write!(
                    f,
                    "ICID {icid} TLS was required but remote host did not initiate it"
                )
            }
            Self::InboundClose { icid } => write!(f, "ICID {icid} close"),
            Self::InboundLost { icid } => write!(f, "ICID {icid} lost"),
            Self::Start { mid, icid } => write!(f, "Start MID {mid} ICID {icid}"),
            Self::From { mid, icid, sender } => write!(f, "MID {mid} ICID {icid} From: <{sender}>"),
            Self::To {
                mid,
                icid,
                rid,
                recipient,
            } => {
                write!(f, "MID {mid} ICID {icid} RID {rid} To: <{recipient}>")
            }
            Self::Ready { mid, bytes, sender } => {
                write!(f, "MID {mid} ready {bytes} bytes from <{sender}>")
            }
            Self::Queued { mid } => write!(f, "MID {mid} queued for delivery"),
            Self::NewDelivery {
                dcid,
                interface,
                peer,
                port,
            } => {
                write!(
                    f,
                    "New SMTP DCID {dcid} interface {interface} address {peer} port {port}"
                )
            }
            Self::DeliveryTlsSuccess {
                dcid,
                protocol,
                cipher,
            } => {
                write!(
                    f,
                    "DCID {dcid} TLS success protocol {protocol} cipher {cipher}"
                )
            }
            Self::DeliveryTlsDeferring {
                dcid,
                detail,
                version_mismatch,
            } => {
                write!(f, "DCID {dcid} TLS deferring: {detail}")?;
                if *version_mismatch {
                    f.write_str(" TLS version mismatch could be the failure reason")?;
                }
                Ok(())
            }
            Self::DeliveryTlsFailed { dcid, detail } => {
                write!(f, "DCID {dcid} TLS failed: {detail}")
            }
            Self::DeliveryStart { dcid, mid, rids } => {
                write!(
                    f,
                    "Delivery start DCID {dcid} MID {mid} to RID {}",
                    rid_list(rids)
                )
            }
            Self::MessageDone { dcid, mid, rids } => {
                write!(
                    f,
                    "Message done DCID {dcid} MID {mid} to RID {}",
                    rid_list(rids)
                )
            }
            Self::Finished { mid } => write!(f, "Message finished MID {mid} done"),
            Self::Delayed {
                dcid,
                mid,
                rid,
                status,
                text,
                reply,
            } => {
                write!(
                    f,
                    "Delayed: DCID {dcid} MID {mid} to RID {rid} - {status} - {text}"
                )?;
                write_reply(f, *reply)
            }
            Self::Bounced {
                dcid,
                mid,
                rid,
                status,
                text,
                reply,
            } => {
                write!(
                    f,
                    "Bounced: DCID {dcid} MID {mid} to RID {rid} - {status} - {text}"
                )?;
                write_reply(f, *reply)
            }
            Self::ConnectionError {
                dcid,
                domain,
                peer,
                port,
                details,
                interface,
                reason,
            } => write!(
                f,
                "Connection Error: DCID {dcid} domain: {domain} IP: {peer} port: {port} details: {details} interface: {interface} reason: {reason}"
            ),
            Self::DeliveryClose { dcid } => write!(f, "DCID {dcid} close"),
        }
    }
}

/// `[0, 1, 2]`, as the reference writes RID lists.
fn rid_list(rids: &[u32]) -> String {
    let items: Vec<String> = rids.iter().map(u32::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// ` ('550', ['5.1.1 No such user'])`: the peer's reply, Python-tuple style as the reference.
/// Code 0 is a failure without a reply (DNS, a timeout), which the reference writes `'000'`.
fn write_reply(f: &mut fmt::Formatter<'_>, reply: Option<(u16, &str)>) -> fmt::Result {
    match reply {
        Some((code, text)) => write!(f, " ('{code:03}', ['{}'])", text.replace('\'', "\\'")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed article's and DESIGN.md's lines, event part.
    #[test]
    fn events_read_as_the_reference_writes_them() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let cases: Vec<(MailEvent<'_>, &str)> = vec![
            (
                MailEvent::NewInbound {
                    icid: 1020089,
                    listener: "Management",
                    listener_ip: local,
                    peer: local,
                    reverse_dns: Some("localhost"),
                    verified: true,
                },
                "New SMTP ICID 1020089 interface Management (127.0.0.1) address 127.0.0.1 reverse dns host localhost verified yes",
            ),
            (
                MailEvent::InboundTlsSuccess {
                    icid: 1020089,
                    protocol: "TLSv1.3",
                    cipher: "TLS_AES_256_GCM_SHA384",
                },
                "ICID 1020089 TLS success protocol TLSv1.3 cipher TLS_AES_256_GCM_SHA384",
            ),
            (
                MailEvent::InboundTlsFailed {
                    icid: 1020004,
                    detail: "(337678594, 'error:14209102:SSL routines:tls_early_post_process_client_hello:unsupported protocol')",
                },
                "ICID 1020004 TLS failed: (337678594, 'error:14209102:SSL routines:tls_early_post_process_client_hello:unsupported protocol')",
            ),
            (
                MailEvent::Start {
                    mid: 6,
                    icid: 1020089,
                },
                "Start MID 6 ICID 1020089",
            ),
            (
                MailEvent::From {
                    mid: 6,
                    icid: 1020089,
                    sender: "a@example.org",
                },
                "MID 6 ICID 1020089 From: <a@example.org>",
            ),
            (
                MailEvent::To {
                    mid: 6,
                    icid: 1020089,
                    rid: 0,
                    recipient: "b@example.test",
                },
                "MID 6 ICID 1020089 RID 0 To: <b@example.test>",
            ),
            (
                MailEvent::Ready {
                    mid: 6,
                    bytes: 100,
                    sender: "a@example.org",
                },
                "MID 6 ready 100 bytes from <a@example.org>",
            ),
            (MailEvent::Queued { mid: 6 }, "MID 6 queued for delivery"),
            (
                MailEvent::NewDelivery {
                    dcid: 485206,
                    interface: local,
                    peer: local,
                    port: 2526,
                },
                "New SMTP DCID 485206 interface 127.0.0.1 address 127.0.0.1 port 2526",
            ),
            (
                MailEvent::DeliveryTlsDeferring {
                    dcid: 485171,
                    detail: "(336151598, 'error:1409442E:SSL routines:ssl3_read_bytes:tlsv1 alert protocol version')",
                    version_mismatch: true,
                },
                "DCID 485171 TLS deferring: (336151598, 'error:1409442E:SSL routines:ssl3_read_bytes:tlsv1 alert protocol version') TLS version mismatch could be the failure reason",
            ),
            (
                MailEvent::DeliveryStart {
                    dcid: 485206,
                    mid: 6,
                    rids: &[0],
                },
                "Delivery start DCID 485206 MID 6 to RID [0]",
            ),
            (
                MailEvent::MessageDone {
                    dcid: 485206,
                    mid: 6,
                    rids: &[0, 1],
                },
                "Message done DCID 485206 MID 6 to RID [0, 1]",
            ),
            (
                MailEvent::Finished { mid: 6 },
                "Message finished MID 6 done",
            ),
            (
                MailEvent::Bounced {
                    dcid: 8,
                    mid: 6,
                    rid: 0,
                    status: "5.1.0",
                    text: "Unknown address error",
                    reply: Some((550, "5.1.1 No such user")),
                },
                "Bounced: DCID 8 MID 6 to RID 0 - 5.1.0 - Unknown address error ('550', ['5.1.1 No such user'])",
            ),
            (
                MailEvent::Bounced {
                    dcid: 0,
                    mid: 8,
                    rid: 0,
                    status: "5.1.2",
                    text: "Bad destination host",
                    reply: Some((0, "DNS Hard Error looking up BMQ-WIN.RUN (MX):  NXDomain")),
                },
                "Bounced: DCID 0 MID 8 to RID 0 - 5.1.2 - Bad destination host ('000', ['DNS Hard Error looking up BMQ-WIN.RUN (MX):  NXDomain'])",
            ),
        ];
        for (event, line) in cases {
            assert_eq!(event.to_string(), line);
        }
    }
}
