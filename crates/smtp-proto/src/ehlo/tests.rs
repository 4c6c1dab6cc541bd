use super::*;
use crate::reply::ReplyParser;

fn parse_reply(bytes: &[u8]) -> Reply {
    let mut parser = ReplyParser::new();
    parser.push(bytes);
    parser.next_reply().unwrap().unwrap()
}

fn gateway() -> Capabilities {
    Capabilities {
        pipelining: true,
        size: Some(52_428_800),
        eight_bit_mime: true,
        enhanced_status_codes: true,
        smtputf8: true,
        starttls: true,
        other: Vec::new(),
    }
}

#[test]
fn the_servers_ehlo_reply() {
    let mut out = Vec::new();
    gateway().ehlo_reply("mx.example.com").write(&mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n\
         250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 STARTTLS\r\n"
    );
    let mut out = Vec::new();
    Capabilities::default()
        .ehlo_reply("mx.example.com")
        .write(&mut out);
    assert_eq!(out, b"250 mx.example.com\r\n");
}

#[test]
fn written_and_read_back() {
    let mut caps = gateway();
    caps.other = vec!["AUTH PLAIN LOGIN".into(), "CHUNKING".into()];
    for caps in [caps, Capabilities::default(), gateway()] {
        let mut out = Vec::new();
        caps.ehlo_reply("mx.example.com").write(&mut out);
        assert_eq!(Capabilities::from_ehlo_reply(&parse_reply(&out)), caps);
    }
}

#[test]
fn a_real_servers_reply() {
    let reply = parse_reply(
        b"250-mx.google.com at your service, [192.0.2.7]\r\n250-SIZE 157286400\r\n\
          250-8bitmime\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n\
          250-CHUNKING\r\n250-AUTH LOGIN PLAIN XOAUTH2\r\n250-\r\n250 SMTPUTF8\r\n",
    );
    let caps = Capabilities::from_ehlo_reply(&reply);
    assert_eq!(
        caps,
        Capabilities {
            pipelining: true,
            size: Some(157_286_400),
            eight_bit_mime: true,
            enhanced_status_codes: true,
            smtputf8: true,
            starttls: true,
            other: vec!["CHUNKING".into(), "AUTH LOGIN PLAIN XOAUTH2".into()],
        }
    );
    assert_eq!(caps.max_message_size(), Some(157_286_400));
    assert_eq!(caps.extension("auth"), Some("LOGIN PLAIN XOAUTH2"));
    assert_eq!(caps.extension("CHUNKING"), Some(""));
    assert_eq!(caps.extension("DSN"), None);
}

#[test]
fn size_without_a_limit() {
    for line in ["SIZE", "SIZE 0", "SIZE lots"] {
        let reply = parse_reply(format!("250-mx\r\n250 {line}\r\n").as_bytes());
        let caps = Capabilities::from_ehlo_reply(&reply);
        assert_eq!(caps.size, Some(0), "{line}");
        assert_eq!(caps.max_message_size(), None, "{line}");
    }
    assert_eq!(Capabilities::default().max_message_size(), None);
}

#[test]
fn the_first_line_and_failures_announce_nothing() {
    let reply = parse_reply(b"250 PIPELINING\r\n");
    assert_eq!(
        Capabilities::from_ehlo_reply(&reply),
        Capabilities::default()
    );
    let reply = parse_reply(b"502-5.5.1 no EHLO\r\n502 5.5.1 PIPELINING\r\n");
    assert_eq!(
        Capabilities::from_ehlo_reply(&reply),
        Capabilities::default()
    );
}
