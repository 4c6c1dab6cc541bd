use super::*;

type Taken = Vec<Result<Vec<u8>, LineError>>;

/// Feeds the chunks one after the other, taking every line after each push.
fn feed<'a>(buffer: &mut LineBuffer, chunks: impl IntoIterator<Item = &'a [u8]>) -> Taken {
    let mut taken = Vec::new();
    for chunk in chunks {
        buffer.push(chunk);
        while let Some(line) = buffer.next_line() {
            taken.push(line.map(Line::into_bytes));
        }
        assert!(buffer.pending_len() < buffer.max_line());
    }
    taken
}

fn lines(input: &[u8]) -> Taken {
    feed(&mut LineBuffer::new(), [input])
}

fn ok(line: &str) -> Result<Vec<u8>, LineError> {
    Ok(line.as_bytes().to_vec())
}

const TOO_LONG: Result<Vec<u8>, LineError> = Err(LineError::TooLong { limit: 512 });

/// A session transcript with every kind of line: good ones, an empty one, lines at and just
/// over the limit, a long one, bare LF, bare CR, NUL.
fn transcript() -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\n\r\n");
    t.extend_from_slice(&[b'x'; 510]);
    t.extend_from_slice(b"\r\n");
    t.extend_from_slice(&[b'y'; 511]);
    t.extend_from_slice(b"\r\n");
    t.extend_from_slice(&[b'z'; 2000]);
    t.extend_from_slice(b"\r\nRCPT TO:<b@example.test>\nNOOP\r\nNO\rOP\r\nNO\0OP\r\nQUIT\r\nRS");
    t
}

fn transcript_lines() -> Taken {
    vec![
        ok("EHLO client.example"),
        ok("MAIL FROM:<a@example.org>"),
        ok(""),
        ok(&"x".repeat(510)),
        TOO_LONG,
        TOO_LONG,
        Err(LineError::BareLf),
        ok("NOOP"),
        Err(LineError::BareCr),
        Err(LineError::Nul),
        ok("QUIT"),
    ]
}

#[test]
fn transcript_in_one_piece() {
    let mut buffer = LineBuffer::new();
    assert_eq!(feed(&mut buffer, [&transcript()[..]]), transcript_lines());
    assert_eq!(buffer.pending_len(), 2, "the unfinished RS stays");
}

#[test]
fn transcript_one_byte_at_a_time() {
    let t = transcript();
    let mut buffer = LineBuffer::new();
    assert_eq!(feed(&mut buffer, t.chunks(1)), transcript_lines());
    assert_eq!(buffer.take_pending(), b"RS");
}

#[test]
fn transcript_split_at_every_boundary() {
    let t = transcript();
    for split in 0..=t.len() {
        let (a, b) = t.split_at(split);
        let mut buffer = LineBuffer::new();
        assert_eq!(
            feed(&mut buffer, [a, b]),
            transcript_lines(),
            "split {split}"
        );
        assert_eq!(buffer.take_pending(), b"RS", "split {split}");
    }
}

#[test]
fn transcript_in_chunks_of_every_size() {
    let t = transcript();
    for size in 1..=64 {
        let mut buffer = LineBuffer::new();
        assert_eq!(
            feed(&mut buffer, t.chunks(size)),
            transcript_lines(),
            "{size}"
        );
    }
}

#[test]
fn line_limit_counts_crlf() {
    let line = |n: usize| {
        let mut l = vec![b'a'; n];
        l.extend_from_slice(b"\r\n");
        l
    };
    assert_eq!(lines(&line(510)), vec![ok(&"a".repeat(510))]);
    assert_eq!(lines(&line(511)), vec![TOO_LONG]);
    let mut small = LineBuffer::with_max_line(6);
    assert_eq!(
        feed(&mut small, [&b"NOOP\r\nNOOPS\r\n"[..]]),
        vec![ok("NOOP"), Err(LineError::TooLong { limit: 6 })]
    );
}

#[test]
fn ten_thousand_character_line_then_the_session_goes_on() {
    let mut input = vec![b'A'; 10_000];
    input.extend_from_slice(b"\r\nQUIT\r\n");
    let expected = vec![TOO_LONG, ok("QUIT")];
    assert_eq!(lines(&input), expected);
    let mut buffer = LineBuffer::new();
    assert_eq!(feed(&mut buffer, input.chunks(1000)), expected);
    let mut buffer = LineBuffer::new();
    assert_eq!(feed(&mut buffer, input.chunks(1)), expected);
}

#[test]
fn an_endless_line_is_reported_once_and_not_stored() {
    let mut buffer = LineBuffer::new();
    let chunk = [b'x'; 4096];
    let taken = feed(&mut buffer, std::iter::repeat_n(&chunk[..], 256));
    assert_eq!(taken, vec![TOO_LONG]);
    assert_eq!(buffer.pending_len(), 0);
    // A push without taking lines in between: the dropped line stores nothing either.
    buffer.push(&chunk);
    assert_eq!(buffer.pending_len(), 0);
    assert_eq!(
        feed(&mut buffer, [&b"tail\r\nNOOP\r\n"[..]]),
        vec![ok("NOOP")]
    );
}

#[test]
fn bare_lf_ends_the_line_and_is_refused() {
    assert_eq!(lines(b"DATA\n"), vec![Err(LineError::BareLf)]);
    assert_eq!(lines(b"\n\r\n"), vec![Err(LineError::BareLf), ok("")]);
    assert_eq!(lines(b"NOOP\r\r\n"), vec![Err(LineError::BareCr)]);
    assert_eq!(lines(b"\0\n"), vec![Err(LineError::Nul)], "NUL first");
    assert_eq!(
        lines(b"NO\0OP\r\nNOOP\r\n"),
        vec![Err(LineError::Nul), ok("NOOP")]
    );
}

#[test]
fn pipelined_bytes_after_starttls_are_seen_and_cleared() {
    let mut buffer = LineBuffer::new();
    buffer.push(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n");
    assert_eq!(buffer.next_line(), Some(Ok(Line(b"STARTTLS".to_vec()))));
    assert!(buffer.has_pending());
    buffer.clear();
    assert!(!buffer.has_pending());
    assert_eq!(buffer.next_line(), None);

    buffer.push(b"STARTTLS\r\n");
    assert_eq!(buffer.next_line(), Some(Ok(Line(b"STARTTLS".to_vec()))));
    assert!(!buffer.has_pending());
}

#[test]
fn take_pending_hands_over_the_rest() {
    let mut buffer = LineBuffer::new();
    buffer.push(b"DATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\n");
    assert_eq!(
        buffer.next_line().map(|l| l.map(Line::into_bytes)),
        Some(ok("DATA"))
    );
    assert_eq!(buffer.take_pending(), b"Subject: hi\r\n\r\nbody\r\n.\r\n");
    assert!(!buffer.has_pending());
    buffer.push(b"QUIT\r\n");
    assert_eq!(
        buffer.next_line().map(|l| l.map(Line::into_bytes)),
        Some(ok("QUIT"))
    );
}

#[test]
fn every_line_error_has_a_500_reply() {
    for (error, text) in [
        (
            LineError::TooLong { limit: 512 },
            "500 5.5.2 Line too long\r\n",
        ),
        (
            LineError::BareLf,
            "500 5.5.2 Bare LF received; lines must end with CRLF\r\n",
        ),
        (
            LineError::BareCr,
            "500 5.5.2 Bare CR received; lines must end with CRLF\r\n",
        ),
        (LineError::Nul, "500 5.5.2 NUL character received\r\n"),
    ] {
        let mut out = Vec::new();
        error.reply().write(&mut out);
        assert_eq!(String::from_utf8(out).unwrap(), text);
    }
}
