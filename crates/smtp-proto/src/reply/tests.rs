use super::*;

fn status(s: &str) -> EnhancedStatus {
    s.parse().unwrap()
}

fn written(reply: &Reply) -> String {
    let mut out = Vec::new();
    reply.write(&mut out);
    String::from_utf8(out).unwrap()
}

/// Every reply the parser finds in `input` fed in the given pieces.
fn parse_all<'a>(
    parser: &mut ReplyParser,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<Result<Reply, ReplyParseError>> {
    let mut replies = Vec::new();
    for chunk in chunks {
        parser.push(chunk);
        while let Some(reply) = parser.next_reply() {
            replies.push(reply);
        }
    }
    replies
}

#[test]
fn enhanced_status_codes() {
    let s = status("5.1.1");
    assert_eq!(
        (s.class(), s.subject(), s.detail()),
        (StatusClass::PermanentFailure, 1, 1)
    );
    assert_eq!(status("4.7.0").class(), StatusClass::TransientFailure);
    assert_eq!(status("2.999.999").to_string(), "2.999.999");
    assert_eq!(status("5.6.011").to_string(), "5.6.11");
    for bad in [
        "", "5", "5.1", "5.1.1.1", "3.1.1", "1.0.0", "5.1000.1", "5..1", "5.+1.1", "5.1.x",
        " 5.1.1", "55.1.1",
    ] {
        assert_eq!(
            bad.parse::<EnhancedStatus>(),
            Err(InvalidEnhancedStatus),
            "{bad:?}"
        );
    }
    assert_eq!(EnhancedStatus::new(StatusClass::Success, 1000, 0), None);
    assert_eq!(
        EnhancedStatus::new(StatusClass::Success, 1, 5),
        Some(status("2.1.5"))
    );
}

#[test]
fn new_checks_code_and_status() {
    assert_eq!(Reply::new(199, None, "x"), Err(ReplyError::BadCode(199)));
    assert_eq!(Reply::new(600, None, "x"), Err(ReplyError::BadCode(600)));
    assert_eq!(
        Reply::new(250, Some(status("5.0.0")), "x"),
        Err(ReplyError::StatusMismatch {
            code: 250,
            status: status("5.0.0")
        })
    );
    assert_eq!(
        Reply::new(354, Some(status("2.0.0")), "x"),
        Err(ReplyError::StatusMismatch {
            code: 354,
            status: status("2.0.0")
        })
    );
    let reply = Reply::new(550, Some(status("5.1.1")), "User unknown").unwrap();
    assert_eq!(written(&reply), "550 5.1.1 User unknown\r\n");
    assert_eq!(reply.to_string(), "550 5.1.1 User unknown");
}

#[test]
fn text_cannot_break_the_framing() {
    let reply = Reply::new(250, None, "a\r\n250 fake\0")
        .unwrap()
        .with_line("b\nc");
    assert_eq!(written(&reply), "250-a  250 fake \r\n250 b c\r\n");
    assert_eq!(
        written(&Reply::greeting("evil\r\n250 x")),
        "220 evil  250 x ESMTP\r\n"
    );
}

#[test]
fn written_forms() {
    let multi = Reply::new(250, Some(status("2.0.0")), "one")
        .unwrap()
        .with_line("two")
        .with_line("");
    assert_eq!(
        written(&multi),
        "250-2.0.0 one\r\n250-2.0.0 two\r\n250 2.0.0\r\n"
    );
    let plain = Reply::new(250, None, "mx.example.com")
        .unwrap()
        .with_line("")
        .with_line("PIPELINING")
        .with_line("");
    assert_eq!(
        written(&plain),
        "250-mx.example.com\r\n250-\r\n250-PIPELINING\r\n250\r\n"
    );
    assert_eq!(multi.to_string(), "250 2.0.0 one two");
}

#[test]
fn constructors() {
    for (reply, text) in [
        (
            Reply::greeting("mx.example.com"),
            "220 mx.example.com ESMTP",
        ),
        (Reply::helo("mx.example.com"), "250 mx.example.com"),
        (Reply::ok(), "250 2.0.0 Ok"),
        (Reply::sender_ok(), "250 2.1.0 Sender ok"),
        (Reply::recipient_ok(), "250 2.1.5 Recipient ok"),
        (
            Reply::start_mail_input(),
            "354 End data with <CR><LF>.<CR><LF>",
        ),
        (Reply::queued("4XyZ"), "250 2.0.0 Ok: queued as 4XyZ"),
        (Reply::closing(), "221 2.0.0 Bye"),
        (Reply::help(), "214 2.0.0 See RFC 5321"),
        (
            Reply::cannot_verify(),
            "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery",
        ),
        (Reply::ready_to_start_tls(), "220 2.0.0 Ready to start TLS"),
        (
            Reply::tls_unavailable(),
            "454 4.7.0 TLS not available due to temporary reason",
        ),
        (
            Reply::starttls_required(),
            "530 5.7.0 Must issue a STARTTLS command first",
        ),
        (
            Reply::service_unavailable("mx"),
            "421 4.3.2 mx Service not available, closing transmission channel",
        ),
        (
            Reply::timeout("mx"),
            "421 4.4.2 mx Timeout exceeded, closing transmission channel",
        ),
        (Reply::local_error(), "451 4.3.0 Local error in processing"),
        (
            Reply::insufficient_storage(),
            "452 4.3.1 Insufficient system storage",
        ),
        (
            Reply::too_many_recipients(),
            "452 4.5.3 Too many recipients",
        ),
        (Reply::unrecognized(), "500 5.5.1 Unrecognized command"),
        (Reply::line_too_long(), "500 5.5.2 Line too long"),
        (
            Reply::not_implemented(),
            "502 5.5.1 Command not implemented",
        ),
        (Reply::bad_sequence(), "503 5.5.1 Bad sequence of commands"),
        (Reply::need_helo(), "503 5.5.1 Send HELO or EHLO first"),
        (Reply::need_mail(), "503 5.5.1 Need MAIL command"),
        (Reply::need_rcpt(), "503 5.5.1 Need RCPT command"),
        (Reply::nested_mail(), "503 5.5.1 Nested MAIL command"),
        (
            Reply::message_too_big(),
            "552 5.3.4 Message size exceeds fixed maximum message size",
        ),
        (
            Reply::bare_line_ending(),
            "554 5.6.11 Message contains bare CR or LF",
        ),
    ] {
        assert_eq!(written(&reply), format!("{text}\r\n"));
        // What the crate builds unchecked passes the checks of Reply::new and parses back.
        let checked = Reply::new(reply.code(), reply.status(), &reply.lines()[0]).unwrap();
        assert_eq!(checked, reply, "{text}");
        let mut parser = ReplyParser::new();
        assert_eq!(
            parse_all(&mut parser, [written(&reply).as_bytes()]),
            vec![Ok(reply.clone())],
            "{text}"
        );
    }
}

#[test]
fn classes() {
    let class = |code| {
        let r = Reply::new(code, None, "").unwrap();
        (
            r.is_positive(),
            r.is_positive_completion(),
            r.is_positive_intermediate(),
            r.is_transient_failure(),
            r.is_permanent_failure(),
        )
    };
    assert_eq!(class(250), (true, true, false, false, false));
    assert_eq!(class(354), (true, false, true, false, false));
    assert_eq!(class(421), (false, false, false, true, false));
    assert_eq!(class(550), (false, false, false, false, true));
}

const EHLO_REPLY: &[u8] = b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n\
250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n250 2.1.0 Ok\r\n\
550-5.1.1 The email account that you tried to reach does not exist.\r\n\
550 5.1.1 Please check the address. x12si34.5 - gsmtp\r\n354 Go ahead\r\n";

fn ehlo_transcript_replies() -> Vec<Result<Reply, ReplyParseError>> {
    vec![
        Ok(Reply::new(250, None, "mx.example.com")
            .unwrap()
            .with_line("PIPELINING")
            .with_line("SIZE 10240000")
            .with_line("8BITMIME")
            .with_line("ENHANCEDSTATUSCODES")
            .with_line("SMTPUTF8")),
        Ok(Reply::new(250, Some(status("2.1.0")), "Ok").unwrap()),
        Ok(Reply::new(
            550,
            Some(status("5.1.1")),
            "The email account that you tried to reach does not exist.",
        )
        .unwrap()
        .with_line("Please check the address. x12si34.5 - gsmtp")),
        Ok(Reply::new(354, None, "Go ahead").unwrap()),
    ]
}

#[test]
fn multi_line_replies_split_at_every_byte() {
    let expected = ehlo_transcript_replies();
    let mut parser = ReplyParser::new();
    assert_eq!(parse_all(&mut parser, [EHLO_REPLY]), expected);
    assert!(!parser.has_pending());
    let mut parser = ReplyParser::new();
    assert_eq!(parse_all(&mut parser, EHLO_REPLY.chunks(1)), expected);
    for split in 0..=EHLO_REPLY.len() {
        let (a, b) = EHLO_REPLY.split_at(split);
        let mut parser = ReplyParser::new();
        assert_eq!(parse_all(&mut parser, [a, b]), expected, "split {split}");
    }
}

#[test]
fn lenient_where_it_is_harmless() {
    let mut parser = ReplyParser::new();
    let replies = parse_all(&mut parser, [&b"250\n220-a\r\n220 b\n221 caf\xe9\r\n"[..]]);
    assert_eq!(
        replies,
        vec![
            Ok(Reply::new(250, None, "").unwrap()),
            Ok(Reply::new(220, None, "a").unwrap().with_line("b")),
            Ok(Reply::new(221, None, "caf\u{fffd}").unwrap()),
        ]
    );
    // A status whose class differs from the code is text; other lines keep their own.
    let mut parser = ReplyParser::new();
    let replies = parse_all(&mut parser, [&b"451-5.0.0 odd\r\n451 4.0.0 x\r\n"[..]]);
    assert_eq!(
        replies,
        vec![Ok(Reply::new(451, None, "5.0.0 odd")
            .unwrap()
            .with_line("4.0.0 x"))]
    );
    let mut parser = ReplyParser::new();
    let replies = parse_all(
        &mut parser,
        [&b"550-5.1.1 a\r\n550-b\r\n550 5.1.10 c\r\n"[..]],
    );
    assert_eq!(
        replies,
        vec![Ok(Reply::new(550, Some(status("5.1.1")), "a")
            .unwrap()
            .with_line("b")
            .with_line("5.1.10 c"))]
    );
}

#[test]
fn hostile_servers() {
    let cases: Vec<(Vec<u8>, ReplyParseError)> = vec![
        (
            b"250-x\r\n".repeat(10_000),
            ReplyParseError::TooManyLines { limit: 100 },
        ),
        (b"hello\r\n".to_vec(), ReplyParseError::MissingCode),
        (b"\r\n".to_vec(), ReplyParseError::MissingCode),
        (b"25\r\n".to_vec(), ReplyParseError::MissingCode),
        (b"150 x\r\n".to_vec(), ReplyParseError::MissingCode),
        (b"650 x\r\n".to_vec(), ReplyParseError::MissingCode),
        (b"2a0 x\r\n".to_vec(), ReplyParseError::MissingCode),
        (b"250x\r\n".to_vec(), ReplyParseError::BadSeparator(250)),
        (
            b"250-a\r\n550 b\r\n".to_vec(),
            ReplyParseError::CodeMismatch {
                expected: 250,
                found: 550,
            },
        ),
        (
            [&b"250 "[..], &[b'x'; 10_000], b"\r\n"].concat(),
            ReplyParseError::LineTooLong { limit: 2048 },
        ),
        (
            vec![b'2'; 1_000_000],
            ReplyParseError::LineTooLong { limit: 2048 },
        ),
    ];
    for (input, error) in cases {
        for chunk in [input.len(), 4096, 1] {
            let mut parser = ReplyParser::new();
            let mut replies = Vec::new();
            for piece in input.chunks(chunk) {
                parser.push(piece);
                while let Some(reply) = parser.next_reply() {
                    replies.push(reply);
                }
                assert!(parser.held_bytes() <= 2048 * 100);
            }
            assert_eq!(replies, vec![Err(error)], "{error}, chunks of {chunk}");
            // After an error the parser reads nothing more.
            parser.push(b"250 ok\r\n");
            assert_eq!(parser.next_reply(), None);
            assert_eq!(parser.held_bytes(), 0);
        }
    }
}

#[test]
fn replies_before_an_error_are_kept() {
    let mut parser = ReplyParser::new();
    let replies = parse_all(&mut parser, [&b"250 ok\r\nnonsense\r\n250 ok\r\n"[..]]);
    assert_eq!(
        replies,
        vec![
            Ok(Reply::new(250, None, "ok").unwrap()),
            Err(ReplyParseError::MissingCode)
        ]
    );
}

#[test]
fn pending_bytes_after_a_reply_are_seen() {
    let mut parser = ReplyParser::new();
    parser.push(b"220 2.0.0 Ready to start TLS\r\n250 injected\r\n");
    assert_eq!(parser.next_reply(), Some(Ok(Reply::ready_to_start_tls())));
    assert!(parser.has_pending());
    parser.clear();
    assert!(!parser.has_pending());
    parser.push(b"250-partial\r\n");
    assert_eq!(parser.next_reply(), None);
    assert!(parser.has_pending());
}

#[test]
fn custom_limits() {
    let mut parser = ReplyParser::with_limits(10, 2);
    let replies = parse_all(
        &mut parser,
        [&b"250-a\r\n250 b\r\n250-a\r\n250-b\r\n250 c\r\n"[..]],
    );
    assert_eq!(
        replies,
        vec![
            Ok(Reply::new(250, None, "a").unwrap().with_line("b")),
            Err(ReplyParseError::TooManyLines { limit: 2 })
        ]
    );
    let mut parser = ReplyParser::with_limits(10, 2);
    assert_eq!(
        parse_all(&mut parser, [&b"250 1234\r\n250 12345\r\n"[..]]),
        vec![
            Ok(Reply::new(250, None, "1234").unwrap()),
            Err(ReplyParseError::LineTooLong { limit: 10 })
        ]
    );
}
