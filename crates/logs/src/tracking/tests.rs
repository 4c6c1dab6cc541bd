use super::*;

/// Two messages: MID 6 in over TLS v1.3 and delivered over TLS v1.2 to example.test; MID 7 in
/// clear text from another sender, deferred by a version mismatch.
const LOG: &str = "\
Wed Jan 17 21:09:12 2024 Info: New SMTP ICID 100 interface IncomingMail (127.0.0.1) address 127.0.0.1 reverse dns host unknown verified no
Wed Jan 17 21:09:12 2024 Info: ICID 100 TLS success protocol TLSv1.3 cipher TLS_AES_256_GCM_SHA384
Wed Jan 17 21:09:12 2024 Info: Start MID 6 ICID 100
Wed Jan 17 21:09:12 2024 Info: MID 6 ICID 100 From: <a@Example.org>
Wed Jan 17 21:09:12 2024 Info: MID 6 ICID 100 RID 0 To: <b@example.test>
Wed Jan 17 21:09:12 2024 Info: MID 6 ready 100 bytes from <a@Example.org>
Wed Jan 17 21:09:12 2024 Info: MID 6 queued for delivery
Wed Jan 17 21:09:13 2024 Info: ICID 100 close
Wed Jan 17 21:10:00 2024 Info: New SMTP ICID 101 interface IncomingMail (127.0.0.1) address 127.0.0.2 reverse dns host unknown verified no
Wed Jan 17 21:10:00 2024 Info: Start MID 7 ICID 101
Wed Jan 17 21:10:00 2024 Info: MID 7 ICID 101 From: <c@other.org>
Wed Jan 17 21:10:00 2024 Info: MID 7 ICID 101 RID 0 To: <d@far.test>
Wed Jan 17 21:10:00 2024 Info: MID 7 ready 50 bytes from <c@other.org>
Wed Jan 17 21:10:00 2024 Info: MID 7 queued for delivery
Wed Jan 17 21:10:01 2024 Info: New SMTP DCID 200 interface 127.0.0.1 address 127.0.0.1 port 2526
Wed Jan 17 21:10:01 2024 Info: DCID 200 TLS success protocol TLSv1.2 cipher ECDHE-RSA-AES256-GCM-SHA384
Wed Jan 17 21:10:01 2024 Info: Delivery start DCID 200 MID 6 to RID [0]
Wed Jan 17 21:10:01 2024 Info: Message done DCID 200 MID 6 to RID [0]
Wed Jan 17 21:10:01 2024 Info: Message finished MID 6 done
Wed Jan 17 21:10:01 2024 Info: DCID 200 close
Wed Jan 17 21:10:02 2024 Info: New SMTP DCID 201 interface 127.0.0.1 address 127.0.0.1 port 2527
Wed Jan 17 21:10:02 2024 Info: DCID 201 TLS deferring: (336151598, 'error:1409442E:SSL routines:ssl3_read_bytes:tlsv1 alert protocol version') TLS version mismatch could be the failure reason
Wed Jan 17 21:10:02 2024 Info: Delayed: DCID 201 MID 7 to RID 0 - 4.7.5 - TLS deferring
Wed Jan 17 21:10:02 2024 Info: DCID 201 close
";

fn lines() -> Vec<String> {
    LOG.lines().map(str::to_owned).collect()
}

#[test]
fn ids_are_read_from_any_event() {
    let i = ids("Wed Jan 17 21:10:01 2024 Info: Delivery start DCID 200 MID 6 to RID [0]");
    assert_eq!((i.mid, i.icid, i.dcid), (Some(6), None, Some(200)));
    assert_eq!(ids("Info: ICID x close"), Ids::default());
}

#[test]
fn a_message_is_found_by_sender_recipient_mid_and_time_with_its_connections() {
    let by_sender = track(
        lines(),
        &Search {
            sender: Some("EXAMPLE.ORG".into()),
            ..Search::default()
        },
    );
    assert_eq!(by_sender.len(), 1);
    let m = &by_sender[0];
    assert_eq!(m.mid, 6);
    assert_eq!(m.state, MessageState::Done);
    assert_eq!(m.recipients, ["b@example.test"]);
    // Its own lines, its ICID's TLS and close, its DCID's opening, TLS and close; no other's.
    assert_eq!(m.lines.len(), 14, "{:#?}", m.lines);
    assert!(m.lines.iter().any(|l| l.contains("ICID 100 TLS success")));
    assert!(m.lines.iter().any(|l| l.contains("DCID 200 close")));
    assert!(!m.lines.iter().any(|l| l.contains("MID 7")));

    let by_rcpt = track(
        lines(),
        &Search {
            recipient: Some("far.test".into()),
            ..Search::default()
        },
    );
    assert_eq!(by_rcpt.len(), 1);
    assert_eq!(by_rcpt[0].state, MessageState::Delayed);
    assert!(by_rcpt[0].lines.iter().any(|l| l.contains("TLS deferring")));

    let all = track(lines(), &Search::default());
    assert_eq!(all.iter().map(|m| m.mid).collect::<Vec<_>>(), [7, 6]);
    let since = line_time("Wed Jan 17 21:10:00 2024 x");
    let later = track(
        lines(),
        &Search {
            since,
            ..Search::default()
        },
    );
    assert_eq!(later.iter().map(|m| m.mid).collect::<Vec<_>>(), [7]);
    assert!(
        track(
            lines(),
            &Search {
                mid: Some(99),
                ..Search::default()
            }
        )
        .is_empty()
    );
}

#[test]
fn the_tls_report_counts_protocols_ciphers_and_domains_both_ways() {
    let report = tls_report(lines());
    assert_eq!(report.inbound.connections, 2);
    assert_eq!(report.inbound.clear, 1);
    assert_eq!(
        report.inbound.shares,
        [TlsShare {
            protocol: "TLSv1.3".into(),
            cipher: "TLS_AES_256_GCM_SHA384".into(),
            connections: 1
        }]
    );
    let domains: Vec<(&str, Vec<(&str, u64)>)> = report
        .inbound
        .domains
        .iter()
        .map(|d| {
            (
                d.domain.as_str(),
                d.protocols.iter().map(|(p, n)| (p.as_str(), *n)).collect(),
            )
        })
        .collect();
    assert!(
        domains.contains(&("example.org", vec![("TLSv1.3", 1)])),
        "{domains:?}"
    );
    assert!(
        domains.contains(&("other.org", vec![("none", 1)])),
        "{domains:?}"
    );
    assert_eq!(report.outbound.connections, 2);
    assert_eq!(report.outbound.failed, 1);
    assert_eq!(report.outbound.shares[0].protocol, "TLSv1.2");
    assert_eq!(report.outbound.domains[0].domain, "example.test");
}
