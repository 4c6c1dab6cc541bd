use super::*;

/// What the decoder makes of `chunks`: the body and the final status (`NeedMore` if the end
/// marker never came), with `consumed` made absolute over the whole input.
fn decode_chunks<'a>(
    max_size: u64,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<u8>, DataStatus) {
    let mut decoder = DataDecoder::new(max_size);
    let mut body = Vec::new();
    let mut offset = 0;
    for chunk in chunks {
        match decoder.decode(chunk, &mut body) {
            DataStatus::NeedMore => offset += chunk.len(),
            DataStatus::Done { consumed, result } => {
                assert!(decoder.is_done());
                return (
                    body,
                    DataStatus::Done {
                        consumed: offset + consumed,
                        result,
                    },
                );
            }
        }
        assert!(body.len() as u64 <= max_size);
    }
    (body, DataStatus::NeedMore)
}

fn decode(max_size: u64, input: &[u8]) -> (Vec<u8>, DataStatus) {
    decode_chunks(max_size, [input])
}

fn done(consumed: usize, result: Result<u64, DataError>) -> DataStatus {
    DataStatus::Done { consumed, result }
}

const LIMIT: u64 = 1 << 20;

#[test]
fn plain_message() {
    let input = b"Subject: hi\r\n\r\nHello\r\n.\r\n";
    assert_eq!(
        decode(LIMIT, input),
        (
            b"Subject: hi\r\n\r\nHello\r\n".to_vec(),
            done(input.len(), Ok(22))
        )
    );
}

#[test]
fn empty_message() {
    assert_eq!(decode(LIMIT, b".\r\n"), (Vec::new(), done(3, Ok(0))));
    assert_eq!(decode(0, b".\r\nQUIT\r\n"), (Vec::new(), done(3, Ok(0))));
}

#[test]
fn dots_are_unstuffed() {
    let input = b"..\r\n..leading\r\n...\r\na.b\r\n.single\r\n. \r\n.\r\n";
    let (body, status) = decode(LIMIT, input);
    assert_eq!(body, b".\r\n.leading\r\n..\r\na.b\r\nsingle\r\n \r\n");
    assert_eq!(status, done(input.len(), Ok(body.len() as u64)));
}

#[test]
fn a_dot_that_is_not_the_end_marker() {
    // `.` alone on a line only ends the message after CRLF; these are all inside the body.
    let input = b"a.\r\nb\r\n.x\r\n..\r\n.\r\n";
    let (body, status) = decode(LIMIT, input);
    assert_eq!(body, b"a.\r\nb\r\nx\r\n.\r\n");
    assert_eq!(status, done(input.len(), Ok(13)));
}

#[test]
fn bytes_after_the_end_marker_belong_to_the_next_command() {
    let input = b"body\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n";
    let (body, status) = decode(LIMIT, input);
    assert_eq!(body, b"body\r\n");
    assert_eq!(status, done(9, Ok(6)));
    assert_eq!(&input[9..], b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
}

#[test]
fn end_marker_split_at_every_boundary() {
    let input = b"Subject: x\r\n\r\n..dot\r\nline\r\n.\r\nQUIT\r\n";
    let end = input.len() - 6;
    let expected = (
        b"Subject: x\r\n\r\n.dot\r\nline\r\n".to_vec(),
        done(end, Ok(26)),
    );
    assert_eq!(decode(LIMIT, input), expected);
    assert_eq!(decode_chunks(LIMIT, input.chunks(1)), expected);
    for a in 0..=input.len() {
        for b in a..=input.len() {
            let pieces = [&input[..a], &input[a..b], &input[b..]];
            assert_eq!(decode_chunks(LIMIT, pieces), expected, "split {a} {b}");
        }
    }
}

#[test]
fn decoding_after_done_reads_nothing() {
    let mut decoder = DataDecoder::new(LIMIT);
    let mut body = Vec::new();
    assert_eq!(decoder.decode(b"x\r\n.\r\nrest", &mut body), done(6, Ok(3)));
    assert_eq!(decoder.decode(b"more\r\n.\r\n", &mut body), done(0, Ok(3)));
    assert_eq!(body, b"x\r\n");
}

#[test]
fn size_limit_exactly_at_and_over_the_boundary() {
    // "12345678\r\n" is 10 octets.
    let input = b"12345678\r\n.\r\nNOOP\r\n";
    assert_eq!(
        decode(10, input),
        (b"12345678\r\n".to_vec(), done(13, Ok(10)))
    );
    let too_big = Err(DataError::TooBig { limit: 9 });
    let (body, status) = decode(9, input);
    assert_eq!(status, done(13, too_big));
    assert!(body.len() <= 9);
    // Split everywhere, the answer is the same.
    for split in 0..=input.len() {
        let (a, b) = input.split_at(split);
        assert_eq!(decode_chunks(10, [a, b]).1, done(13, Ok(10)));
        assert_eq!(decode_chunks(9, [a, b]).1, done(13, too_big));
    }
    // Stuffed dots do not count, the CRLF of the last line does.
    assert_eq!(decode(3, b"..\r\n.\r\n").1, done(7, Ok(3)));
    assert_eq!(
        decode(2, b"..\r\n.\r\n").1,
        done(7, Err(DataError::TooBig { limit: 2 }))
    );
}

#[test]
fn past_the_limit_nothing_is_stored_but_the_end_is_found() {
    let mut input = vec![b'x'; 100_000];
    input.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
    let (body, status) = decode_chunks(1000, input.chunks(777));
    assert!(body.len() <= 1000);
    assert_eq!(
        status,
        done(input.len() - 6, Err(DataError::TooBig { limit: 1000 }))
    );
}

#[test]
fn bare_line_endings_are_refused_after_the_end_marker() {
    for (input, error) in [
        (&b"a\nb\r\n.\r\n"[..], DataError::BareLf),
        (b"a\rb\r\n.\r\n", DataError::BareCr),
        (b"a\r\r\n.\r\n", DataError::BareCr),
        (b"\n.\r\n.\r\n", DataError::BareLf),
        (b"x\r\n.\n.\r\n.\r\n", DataError::BareLf),
        (b"x\r\n.\r.\r\n.\r\n", DataError::BareCr),
        (b"x\r\n.\rx\r\n.\r\n", DataError::BareCr),
        // The first problem is the one reported.
        (b"a\nb\rc\r\n.\r\n", DataError::BareLf),
    ] {
        let expected = done(input.len(), Err(error));
        assert_eq!(decode(LIMIT, input).1, expected, "{input:?}");
        assert_eq!(
            decode_chunks(LIMIT, input.chunks(1)).1,
            expected,
            "{input:?}"
        );
    }
}

#[test]
fn smuggled_end_markers_do_not_end_the_message() {
    for fake in [&b"x\n.\r\n"[..], b"x\r\n.\n", b"x\r.\r\n", b"x\n.\n"] {
        assert_eq!(decode(LIMIT, fake).1, DataStatus::NeedMore, "{fake:?}");
    }
    // The classic smuggling payloads: a fake end marker with a bare LF, a command after it,
    // then the real end. Everything up to the real end marker is one refused message.
    for fake in [
        &b"\n.\n"[..],
        b"\n.\r\n",
        b"\r\n.\n",
        b"\r.\r\n",
        b"\r\n.\r",
    ] {
        let mut input = b"Subject: x\r\n\r\nhello".to_vec();
        input.extend_from_slice(fake);
        input.extend_from_slice(b"MAIL FROM:<admin@victim.example>\r\nRCPT TO:<x@y>\r\n");
        input.extend_from_slice(b"DATA\r\n\r\nsmuggled\r\n.\r\n");
        let end = input.len();
        input.extend_from_slice(b"QUIT\r\n");
        let (_, status) = decode(LIMIT, &input);
        match status {
            DataStatus::Done {
                consumed,
                result: Err(DataError::BareLf | DataError::BareCr),
            } => assert_eq!(consumed, end, "{fake:?}"),
            other => panic!("{fake:?}: {other:?}"),
        }
    }
}

#[test]
fn replies() {
    let text = |e: DataError| e.reply().to_string();
    assert_eq!(
        text(DataError::TooBig { limit: 1 }),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    assert_eq!(
        text(DataError::BareLf),
        "554 5.6.11 Message contains bare CR or LF"
    );
    assert_eq!(
        text(DataError::BareCr),
        "554 5.6.11 Message contains bare CR or LF"
    );
}

#[test]
fn dot_stuffing() {
    for (message, wire) in [
        (&b""[..], &b".\r\n"[..]),
        (b"a", b"a\r\n.\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b".", b"..\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),
        (b"a\r\n.\r\nb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"..x\r\n", b"...x\r\n.\r\n"),
        (b"a.b\r\n", b"a.b\r\n.\r\n"),
        (b"a\nb\n", b"a\r\nb\r\n.\r\n"),
        (b"a\rb", b"a\r\nb\r\n.\r\n"),
        (b"a\n.\n", b"a\r\n..\r\n.\r\n"),
        (b"a\r\r\n.", b"a\r\n\r\n..\r\n.\r\n"),
        (b"\r", b"\r\n.\r\n"),
        (b"\n\n", b"\r\n\r\n.\r\n"),
    ] {
        assert_eq!(dot_stuff(message), wire, "{message:?}");
    }
}

#[test]
fn dot_stuffing_in_pieces_is_the_same() {
    let message = b"a\r\n.b\n..c\r\rd\r\n.\r\n\r\n.";
    let whole = dot_stuff(message);
    for split in 0..=message.len() {
        let mut encoder = DataEncoder::new();
        let mut out = Vec::new();
        encoder.encode(&message[..split], &mut out);
        encoder.encode(&message[split..], &mut out);
        encoder.finish(&mut out);
        assert_eq!(out, whole, "split {split}");
    }
    let mut encoder = DataEncoder::default();
    let mut out = Vec::new();
    for byte in message.chunks(1) {
        encoder.encode(byte, &mut out);
    }
    encoder.finish(&mut out);
    assert_eq!(out, whole);
}

#[test]
fn stuffed_then_decoded_gives_the_message_back() {
    let bodies: [&[u8]; 10] = [
        b"",
        b"\r\n",
        b".\r\n",
        b"..\r\n",
        b"Subject: x\r\n\r\n.\r\n..\r\n...\r\n.x\r\n",
        b"line\r\n.\r\nline\r\n",
        b"\r\n.\r\n\r\n.\r\n",
        b"no final line ending",
        b"ends with a dot.",
        b".",
    ];
    for body in bodies {
        let wire = dot_stuff(body);
        let (decoded, status) = decode(LIMIT, &wire);
        let mut expected = body.to_vec();
        if !expected.is_empty() && !expected.ends_with(b"\r\n") {
            expected.extend_from_slice(b"\r\n");
        }
        assert_eq!(decoded, expected, "{body:?}");
        assert_eq!(
            status,
            done(wire.len(), Ok(expected.len() as u64)),
            "{body:?}"
        );
    }
}
