use super::*;
use crate::address::Mailbox;

fn from(s: &str) -> ReversePath {
    ReversePath::parse(s, true).unwrap()
}

fn to(s: &str) -> ForwardPath {
    ForwardPath::parse(s, true).unwrap()
}

fn mail(path: &str, size: Option<u64>, body: Option<Body>, smtputf8: bool) -> Command {
    Command::Mail {
        from: from(path),
        params: MailParams {
            size,
            body,
            smtputf8,
        },
    }
}

fn rcpt(path: &str) -> Command {
    Command::Rcpt {
        to: to(path),
        params: RcptParams::default(),
    }
}

fn reply_text(reply: &Reply) -> String {
    let mut out = Vec::new();
    reply.write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn every_command_form() {
    let eight = Some(Body::EightBitMime);
    for (line, command) in [
        (
            "EHLO client.example",
            Command::Ehlo("client.example".into()),
        ),
        ("ehlo [192.0.2.1]", Command::Ehlo("[192.0.2.1]".into())),
        (
            "EHLO  client.example  ",
            Command::Ehlo("client.example".into()),
        ),
        ("HELO client", Command::Helo("client".into())),
        (
            "HeLo client.example",
            Command::Helo("client.example".into()),
        ),
        (
            "MAIL FROM:<a@example.org>",
            mail("<a@example.org>", None, None, false),
        ),
        (
            "mail from:<a@example.org>",
            mail("<a@example.org>", None, None, false),
        ),
        (
            "MAIL FROM: <a@example.org>",
            mail("<a@example.org>", None, None, false),
        ),
        ("MAIL FROM:<>", mail("<>", None, None, false)),
        ("MAIL FROM:<> SIZE=0", mail("<>", Some(0), None, false)),
        (
            "MAIL FROM:<a@b> SIZE=1000 BODY=8BITMIME SMTPUTF8",
            mail("<a@b>", Some(1000), eight, true),
        ),
        (
            "MAIL FROM:<a@b>  size=18446744073709551615   body=7bit",
            mail("<a@b>", Some(u64::MAX), Some(Body::SevenBit), false),
        ),
        (
            "MAIL FROM:<a@b> SIZE=0001",
            mail("<a@b>", Some(1), None, false),
        ),
        ("MAIL FROM:<a@b> smtputf8", mail("<a@b>", None, None, true)),
        (
            "MAIL FROM:<jörg@bücher.example> SMTPUTF8",
            mail("<jörg@bücher.example>", None, None, true),
        ),
        (
            "MAIL FROM:<@relay.example:a@b>",
            mail("<a@b>", None, None, false),
        ),
        (
            "MAIL FROM:<\"a b\"@[192.0.2.1]>",
            mail("<\"a b\"@[192.0.2.1]>", None, None, false),
        ),
        ("RCPT TO:<b@example.test>", rcpt("<b@example.test>")),
        ("rcpt to: <b@example.test>", rcpt("<b@example.test>")),
        (
            "RCPT TO:<Postmaster>",
            Command::Rcpt {
                to: ForwardPath::Postmaster,
                params: RcptParams::default(),
            },
        ),
        (
            "RCPT TO:<b@[IPv6:2001:db8::2]>",
            rcpt("<b@[IPv6:2001:db8::2]>"),
        ),
        ("DATA", Command::Data),
        ("data", Command::Data),
        ("RSET", Command::Rset),
        ("NOOP", Command::Noop),
        ("NOOP anything at all", Command::Noop),
        ("QUIT", Command::Quit),
        ("QUIT\r\n", Command::Quit),
        ("VRFY postmaster", Command::Vrfy("postmaster".into())),
        ("EXPN staff", Command::Expn("staff".into())),
        ("HELP", Command::Help(None)),
        ("HELP MAIL", Command::Help(Some("MAIL".into()))),
        ("STARTTLS", Command::StartTls),
        ("starttls  ", Command::StartTls),
    ] {
        assert_eq!(Command::parse(line.as_bytes()), Ok(command), "{line}");
    }
}

#[test]
fn utf8_recipient_only_in_an_smtputf8_transaction() {
    let line = "RCPT TO:<jörg@bücher.example>".as_bytes();
    assert_eq!(
        Command::parse(line),
        Err(CommandError::BadRecipient(AddressError::NonAscii))
    );
    assert_eq!(
        Command::parse_with(line, true),
        Ok(rcpt("<jörg@bücher.example>"))
    );
}

/// Every error, with the reply the server gives.
#[test]
fn every_error_and_its_reply() {
    use AddressError as A;
    use CommandError as E;
    let unrecognized = |verb: &str| E::Unrecognized { verb: verb.into() };
    let cases: Vec<(&[u8], CommandError, &str)> = vec![
        (b"", E::Empty, "500 5.5.2 Empty command"),
        (b"   ", E::Empty, "500 5.5.2 Empty command"),
        (
            b"FOO bar",
            unrecognized("FOO"),
            "500 5.5.1 Unrecognized command",
        ),
        (
            b"MAILFROM:<a@b>",
            unrecognized("MAILFROM:<A@B>"),
            "500 5.5.1 Unrecognized command",
        ),
        (
            b"\x16\x03\x01\x02",
            unrecognized("????"),
            "500 5.5.1 Unrecognized command",
        ),
        (
            b"AUTH PLAIN AGFsaWNlAHNlY3JldA==",
            E::NotImplemented {
                verb: "AUTH".into(),
            },
            "502 5.5.1 Command not implemented",
        ),
        (
            b"bdat 100 LAST",
            E::NotImplemented {
                verb: "BDAT".into(),
            },
            "502 5.5.1 Command not implemented",
        ),
        (
            b"GET / HTTP/1.1",
            E::Forbidden { verb: "GET".into() },
            "554 5.5.1 Not an SMTP command; closing connection",
        ),
        (
            b"CONNECT mx.example:25 HTTP/1.1",
            E::Forbidden {
                verb: "CONNECT".into(),
            },
            "554 5.5.1 Not an SMTP command; closing connection",
        ),
        (
            b"EHLO \xff",
            E::InvalidUtf8,
            "501 5.5.2 Invalid UTF-8 in arguments",
        ),
        (
            b"EHLO",
            E::Syntax(Verb::Ehlo),
            "501 5.5.4 Syntax: EHLO hostname",
        ),
        (
            b"HELO  ",
            E::Syntax(Verb::Helo),
            "501 5.5.4 Syntax: HELO hostname",
        ),
        (
            b"EHLO a\tb",
            E::Syntax(Verb::Ehlo),
            "501 5.5.4 Syntax: EHLO hostname",
        ),
        (
            b"MAIL",
            E::Syntax(Verb::Mail),
            "501 5.5.4 Syntax: MAIL FROM:<address>",
        ),
        (
            b"MAIL TO:<a@b>",
            E::Syntax(Verb::Mail),
            "501 5.5.4 Syntax: MAIL FROM:<address>",
        ),
        (
            b"MAIL FROM a@b",
            E::Syntax(Verb::Mail),
            "501 5.5.4 Syntax: MAIL FROM:<address>",
        ),
        (
            b"MAIL FROM:a@b",
            E::Syntax(Verb::Mail),
            "501 5.5.4 Syntax: MAIL FROM:<address>",
        ),
        (
            b"MAIL FROM:",
            E::Syntax(Verb::Mail),
            "501 5.5.4 Syntax: MAIL FROM:<address>",
        ),
        (
            b"MAIL FROM:<a@b>SIZE=10",
            E::Syntax(Verb::Mail),
            "501 5.5.4 Syntax: MAIL FROM:<address>",
        ),
        (
            b"RCPT FROM:<a@b>",
            E::Syntax(Verb::Rcpt),
            "501 5.5.4 Syntax: RCPT TO:<address>",
        ),
        (
            b"RCPT TO:b@c",
            E::Syntax(Verb::Rcpt),
            "501 5.5.4 Syntax: RCPT TO:<address>",
        ),
        (b"DATA now", E::Syntax(Verb::Data), "501 5.5.4 Syntax: DATA"),
        (b"RSET x", E::Syntax(Verb::Rset), "501 5.5.4 Syntax: RSET"),
        (b"QUIT now", E::Syntax(Verb::Quit), "501 5.5.4 Syntax: QUIT"),
        (
            b"STARTTLS x",
            E::Syntax(Verb::StartTls),
            "501 5.5.4 Syntax: STARTTLS",
        ),
        (
            b"VRFY",
            E::Syntax(Verb::Vrfy),
            "501 5.5.4 Syntax: VRFY address",
        ),
        (
            b"EXPN",
            E::Syntax(Verb::Expn),
            "501 5.5.4 Syntax: EXPN mailing-list",
        ),
        (
            b"MAIL FROM:<a b@c>",
            E::BadSender(A::BadLocalPart),
            "501 5.1.7 Bad sender address syntax",
        ),
        (
            b"MAIL FROM:<a@b",
            E::BadSender(A::NotBracketed),
            "501 5.1.7 Bad sender address syntax",
        ),
        (
            b"MAIL FROM:<postmaster>",
            E::BadSender(A::MissingAt),
            "501 5.1.7 Bad sender address syntax",
        ),
        (
            b"MAIL FROM:<a@[1.2.3.999]>",
            E::BadSender(A::BadAddressLiteral),
            "501 5.1.7 Bad sender address syntax",
        ),
        (
            "MAIL FROM:<jörg@example.com>".as_bytes(),
            E::BadSender(A::NonAscii),
            "553 5.6.7 Non-ASCII sender address needs SMTPUTF8",
        ),
        (
            b"RCPT TO:<>",
            E::BadRecipient(A::NullRecipient),
            "501 5.1.3 Bad recipient address syntax",
        ),
        (
            b"RCPT TO:<b@-c>",
            E::BadRecipient(A::BadDomain),
            "501 5.1.3 Bad recipient address syntax",
        ),
        (
            "RCPT TO:<b@bücher.example>".as_bytes(),
            E::BadRecipient(A::NonAscii),
            "553 5.6.7 Non-ASCII recipient address needs SMTPUTF8",
        ),
        (
            b"MAIL FROM:<a@b> =x",
            E::MalformedParameter,
            "501 5.5.4 Syntax error in parameters",
        ),
        (
            b"MAIL FROM:<a@b> SIZE=",
            E::MalformedParameter,
            "501 5.5.4 Syntax error in parameters",
        ),
        (
            b"MAIL FROM:<a@b> SIZE=1=2",
            E::MalformedParameter,
            "501 5.5.4 Syntax error in parameters",
        ),
        (
            b"MAIL FROM:<a@b> -X",
            E::MalformedParameter,
            "501 5.5.4 Syntax error in parameters",
        ),
        (
            b"MAIL FROM:<a@b> X_Y",
            E::MalformedParameter,
            "501 5.5.4 Syntax error in parameters",
        ),
        (
            b"MAIL FROM:<a@b> BODY",
            E::MalformedParameter,
            "501 5.5.4 Syntax error in parameters",
        ),
        (
            b"MAIL FROM:<a@b> SMTPUTF8=yes",
            E::MalformedParameter,
            "501 5.5.4 Syntax error in parameters",
        ),
        (
            b"RCPT TO:<b@c> =x",
            E::MalformedParameter,
            "501 5.5.4 Syntax error in parameters",
        ),
        (
            b"MAIL FROM:<a@b> SIZE=1 size=2",
            E::DuplicateParameter("SIZE".into()),
            "501 5.5.4 Duplicate parameter",
        ),
        (
            b"MAIL FROM:<a@b> RET=HDRS",
            E::UnsupportedParameter("RET".into()),
            "555 5.5.4 Unsupported parameter",
        ),
        (
            b"MAIL FROM:<a@b> AUTH=<>",
            E::UnsupportedParameter("AUTH".into()),
            "555 5.5.4 Unsupported parameter",
        ),
        (
            b"RCPT TO:<b@c> NOTIFY=NEVER",
            E::UnsupportedParameter("NOTIFY".into()),
            "555 5.5.4 Unsupported parameter",
        ),
        (
            b"RCPT TO:<b@c> orcpt=rfc822;b@c",
            E::UnsupportedParameter("ORCPT".into()),
            "555 5.5.4 Unsupported parameter",
        ),
        (
            b"MAIL FROM:<a@b> SIZE",
            E::BadSize,
            "501 5.5.4 Bad SIZE value",
        ),
        (
            b"MAIL FROM:<a@b> SIZE=-1",
            E::BadSize,
            "501 5.5.4 Bad SIZE value",
        ),
        (
            b"MAIL FROM:<a@b> SIZE=+1",
            E::BadSize,
            "501 5.5.4 Bad SIZE value",
        ),
        (
            b"MAIL FROM:<a@b> SIZE=1k",
            E::BadSize,
            "501 5.5.4 Bad SIZE value",
        ),
        (
            b"MAIL FROM:<a@b> SIZE=18446744073709551616",
            E::BadSize,
            "501 5.5.4 Bad SIZE value",
        ),
        (
            b"MAIL FROM:<a@b> BODY=BINARYMIME",
            E::UnsupportedBody("BINARYMIME".into()),
            "555 5.5.4 Unsupported BODY type",
        ),
    ];
    for (line, error, reply) in cases {
        let shown = String::from_utf8_lossy(line);
        assert_eq!(Command::parse(line), Err(error.clone()), "{shown}");
        assert_eq!(
            reply_text(&error.reply()),
            format!("{reply}\r\n"),
            "{shown}"
        );
    }
}

#[test]
fn unrecognized_verbs_are_cut_and_cleaned_for_logs() {
    let line = b"VERYLONGVERBTHATGOESONANDON\x01 x";
    assert_eq!(
        Command::parse(line),
        Err(CommandError::Unrecognized {
            verb: "VERYLONGVERBTHAT".into()
        })
    );
}

#[test]
fn written_commands_parse_back() {
    let commands = [
        Command::Ehlo("client.example".into()),
        Command::Helo("client.example".into()),
        mail("<>", None, None, false),
        mail(
            "<a@example.org>",
            Some(12345),
            Some(Body::EightBitMime),
            false,
        ),
        mail(
            "<\"a b\"@[IPv6:2001:db8::1]>",
            None,
            Some(Body::SevenBit),
            true,
        ),
        rcpt("<b@example.test>"),
        rcpt("<Postmaster>"),
        Command::Data,
        Command::Rset,
        Command::Noop,
        Command::Quit,
        Command::Vrfy("user".into()),
        Command::Expn("list".into()),
        Command::Help(None),
        Command::Help(Some("DATA".into())),
        Command::StartTls,
    ];
    for command in commands {
        let mut out = Vec::new();
        command.write(&mut out);
        assert!(out.ends_with(b"\r\n"));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(Command::parse(&out), Ok(command.clone()), "{command:?}");
    }
}

#[test]
fn written_forms() {
    let write = |c: &Command| {
        let mut out = Vec::new();
        c.write(&mut out);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(
        write(&mail(
            "<a@Example.ORG>",
            Some(1000),
            Some(Body::EightBitMime),
            true
        )),
        "MAIL FROM:<a@example.org> SIZE=1000 BODY=8BITMIME SMTPUTF8\r\n"
    );
    assert_eq!(write(&rcpt("<Postmaster>")), "RCPT TO:<postmaster>\r\n");
    assert_eq!(write(&Command::StartTls), "STARTTLS\r\n");
    // An argument cannot end the line early.
    assert_eq!(
        write(&Command::Ehlo("evil\r\nRCPT TO:<x@y>".into())),
        "EHLO evil  RCPT TO:<x@y>\r\n"
    );
}

#[test]
fn verbs() {
    for verb in Verb::ALL {
        assert_eq!(
            Verb::from_word(verb.as_str().to_lowercase().as_bytes()),
            Some(verb)
        );
    }
    let command = Command::parse(b"MAIL FROM:<a@b>").unwrap();
    assert_eq!(command.verb(), Verb::Mail);
    assert_eq!(command.verb().to_string(), "MAIL");
    let Command::Mail { from, .. } = command else {
        panic!("not MAIL");
    };
    assert_eq!(from.mailbox(), Some(&Mailbox::parse("a@b", false).unwrap()));
}
