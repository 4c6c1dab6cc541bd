//! Every parser against pseudo-random input: no panic, bounded memory, and what parses writes
//! back to the same thing.

use super::*;

/// xorshift64*: a fixed seed gives the same run every time, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a [u8]]) -> &'a [u8] {
        items[self.below(items.len())]
    }

    /// Bytes that mostly hit the interesting cases of the grammars: line endings, dots,
    /// delimiters, digits of reply codes, UTF-8, and now and then anything at all.
    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        const PIECES: &[&[u8]] = &[
            b"\r\n",
            b"\r",
            b"\n",
            b".",
            b"..",
            b"\r\n.\r\n",
            b"\0",
            b" ",
            b"<",
            b">",
            b"@",
            b":",
            b",",
            b"\"",
            b"\\",
            b"[",
            b"]",
            b"=",
            b"-",
            b"250",
            b"550 5.1.1",
            b"2.0.0",
            b"250-",
            b"354 ",
            b"MAIL FROM:",
            b"RCPT TO:",
            b"EHLO ",
            b"DATA",
            b"SIZE=",
            b"BODY=8BITMIME",
            b"SMTPUTF8",
            b"IPv6:",
            b"postmaster",
            b"user",
            b"example.com",
            "ü".as_bytes(),
            "例".as_bytes(),
            b"\xff",
            b"\xc3",
        ];
        let len = self.below(max_len + 1);
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            if self.below(4) == 0 {
                out.push(self.next() as u8);
            } else {
                out.extend_from_slice(self.pick(PIECES));
            }
        }
        out
    }

    /// Text shaped like an address, now and then with a random octet inserted.
    fn address(&mut self) -> String {
        const LOCAL: &[&[u8]] = &[
            b"user",
            b"a.b",
            b"\"a b\"",
            b"\"q\\\"\"",
            b"x+y",
            b"",
            b".",
            b"..",
            b"postmaster",
            "jörg".as_bytes(),
            b"\"",
            b"a b",
        ];
        const HOST: &[&[u8]] = &[
            b"example.com",
            b"EXAMPLE.org",
            b"[192.0.2.1]",
            b"[IPv6:2001:db8::1]",
            b"[1.2.3]",
            b"a-b.c",
            b"-a.b",
            b"a..b",
            "bücher.example".as_bytes(),
            b"[IPv6:::1",
            b"x",
        ];
        let mut text = Vec::new();
        if self.below(4) == 0 {
            text.extend_from_slice(b"@r.example:");
        }
        for _ in 0..=self.below(2) {
            text.extend_from_slice(self.pick(LOCAL));
        }
        if self.below(8) != 0 {
            text.push(b'@');
        }
        text.extend_from_slice(self.pick(HOST));
        if self.below(4) == 0 {
            let at = self.below(text.len() + 1);
            text.insert(at, self.next() as u8);
        }
        String::from_utf8_lossy(&text).into_owned()
    }

    /// Lines shaped like replies: codes, separators and text of every kind, in bursts.
    fn replies(&mut self) -> Vec<u8> {
        const CODES: &[&[u8]] = &[b"250", b"250", b"550", b"354", b"421", b"2x0", b"", b"199"];
        const SEPARATORS: &[&[u8]] = &[b"-", b"-", b"-", b" ", b" ", b"", b"x"];
        const STATUS: &[&[u8]] = &[b"", b"", b"2.0.0 ", b"5.1.1 ", b"4.7.0", b"2.1.10 "];
        const ENDS: &[&[u8]] = &[b"\r\n", b"\r\n", b"\r\n", b"\n", b""];
        let mut out = Vec::new();
        for _ in 0..self.below(40) {
            out.extend_from_slice(self.pick(CODES));
            out.extend_from_slice(self.pick(SEPARATORS));
            out.extend_from_slice(self.pick(STATUS));
            let text: Vec<u8> = self
                .bytes(60)
                .into_iter()
                .filter(|&b| self.below(50) == 0 || (b != b'\r' && b != b'\n'))
                .collect();
            out.extend_from_slice(&text);
            out.extend_from_slice(self.pick(ENDS));
        }
        out
    }

    /// `data` cut in pieces of random sizes, some empty.
    fn chunks<'a>(&mut self, data: &'a [u8]) -> Vec<&'a [u8]> {
        let mut pieces = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let (piece, tail) = rest.split_at(self.below(rest.len().min(700) + 1));
            pieces.push(piece);
            rest = tail;
        }
        pieces
    }
}

const ITERATIONS: usize = 4000;

#[test]
fn line_buffer_and_commands() {
    let mut rng = Rng(0x5eed_0001);
    for _ in 0..ITERATIONS {
        let input = rng.bytes(3000);
        let mut buffer = LineBuffer::new();
        for chunk in rng.chunks(&input) {
            buffer.push(chunk);
            while let Some(line) = buffer.next_line() {
                let line = match line {
                    Ok(line) => line,
                    Err(e) => {
                        e.reply().write(&mut Vec::new());
                        continue;
                    }
                };
                assert!(line.as_bytes().len() <= 510);
                for smtputf8 in [false, true] {
                    match Command::parse_with(line.as_bytes(), smtputf8) {
                        Ok(command) => {
                            let mut out = Vec::new();
                            command.write(&mut out);
                            let again = Command::parse_with(&out, true);
                            assert_eq!(again.as_ref(), Ok(&command), "{line:?}");
                        }
                        Err(e) => {
                            let reply = e.reply();
                            assert!(reply.is_transient_failure() || reply.is_permanent_failure());
                        }
                    }
                }
            }
            assert!(buffer.pending_len() < MAX_COMMAND_LINE);
        }
    }
}

#[test]
fn commands_built_from_parts() {
    const PATHS: &[&[u8]] = &[
        b"<>",
        b"<postmaster>",
        b"<a@b>",
        b"<\"a b\"@[192.0.2.1]>",
        b"<x@[IPv6:::1]>",
        b"<@r.example:u@d.example>",
        "<ü@例.example>".as_bytes(),
        b"<a@b",
        b"<a..b@c>",
    ];
    const PARAMS: &[&[u8]] = &[
        b"",
        b" SIZE=100",
        b" SIZE=99999999999999999999",
        b" BODY=8BITMIME",
        b" BODY=7BIT",
        b" SMTPUTF8",
        b" FOO=bar",
        b" SIZE=1 SIZE=2",
        b"  body=binarymime",
        b" =",
    ];
    let mut rng = Rng(0x5eed_0002);
    for _ in 0..ITERATIONS {
        let verb = rng.pick(&[b"MAIL FROM:", b"RCPT TO:", b"mail from: ", b"rcpt to:"]);
        let mut line = verb.to_vec();
        line.extend_from_slice(rng.pick(PATHS));
        line.extend_from_slice(rng.pick(PARAMS));
        line.extend_from_slice(rng.pick(PARAMS));
        if rng.below(4) == 0 {
            let at = rng.below(line.len() + 1);
            line.insert(at, rng.next() as u8);
        }
        if let Ok(command) = Command::parse_with(&line, rng.below(2) == 0) {
            let mut out = Vec::new();
            command.write(&mut out);
            assert_eq!(Command::parse_with(&out, true), Ok(command));
        }
    }
}

#[test]
fn addresses() {
    let mut rng = Rng(0x5eed_0003);
    for _ in 0..ITERATIONS {
        let text = if rng.below(4) == 0 {
            String::from_utf8_lossy(&rng.bytes(300)).into_owned()
        } else {
            rng.address()
        };
        for smtputf8 in [false, true] {
            if let Ok(mailbox) = Mailbox::parse(&text, smtputf8) {
                assert_eq!(Mailbox::parse(&mailbox.to_string(), smtputf8), Ok(mailbox));
            }
            let bracketed = format!("<{text}>");
            for s in [&text, &bracketed] {
                if let Ok(path) = ReversePath::parse(s, smtputf8) {
                    assert!(s.len() <= address::MAX_PATH);
                    assert_eq!(ReversePath::parse(&path.to_string(), smtputf8), Ok(path));
                }
                if let Ok(path) = ForwardPath::parse(s, smtputf8) {
                    assert_eq!(ForwardPath::parse(&path.to_string(), smtputf8), Ok(path));
                }
            }
        }
        let _ = text.parse::<EnhancedStatus>();
    }
}

#[test]
fn reply_parser() {
    let mut rng = Rng(0x5eed_0004);
    for _ in 0..ITERATIONS {
        let input = if rng.below(4) == 0 {
            rng.bytes(3000)
        } else {
            rng.replies()
        };
        let mut parser = ReplyParser::with_limits(256, 8);
        for chunk in rng.chunks(&input) {
            parser.push(chunk);
            while let Some(reply) = parser.next_reply() {
                let Ok(reply) = reply else { continue };
                let _ = Capabilities::from_ehlo_reply(&reply);
                let mut out = Vec::new();
                reply.write(&mut out);
                let mut again = ReplyParser::new();
                again.push(&out);
                assert_eq!(again.next_reply(), Some(Ok(reply)));
                assert!(!again.has_pending());
            }
            assert!(parser.held_bytes() <= 256 * 8);
        }
    }
}

#[test]
fn data_decoder() {
    let mut rng = Rng(0x5eed_0005);
    for _ in 0..ITERATIONS {
        let input = rng.bytes(3000);
        let max_size = rng.below(2000) as u64;
        let mut decoder = DataDecoder::new(max_size);
        let mut body = Vec::new();
        for chunk in rng.chunks(&input) {
            match decoder.decode(chunk, &mut body) {
                DataStatus::NeedMore => {}
                DataStatus::Done { consumed, result } => {
                    assert!(consumed >= 1 && consumed <= chunk.len());
                    if let Ok(size) = result {
                        assert_eq!(size, body.len() as u64);
                    }
                    break;
                }
            }
            assert!(body.len() as u64 <= max_size);
        }
    }
}

#[test]
fn stuffed_messages_decode_to_themselves() {
    let mut rng = Rng(0x5eed_0006);
    for _ in 0..ITERATIONS {
        // Any bytes: what is stuffed decodes without error, and to exactly the whole input.
        let message = rng.bytes(2000);
        let wire = dot_stuff(&message);
        let mut decoded = Vec::new();
        let mut decoder = DataDecoder::new(u64::MAX);
        assert_eq!(
            decoder.decode(&wire, &mut decoded),
            DataStatus::Done {
                consumed: wire.len(),
                result: Ok(decoded.len() as u64)
            }
        );
        // A message with CRLF line endings only comes back as it was, plus a last CRLF.
        let clean: Vec<u8> = message
            .split(|&b| b == b'\r' || b == b'\n')
            .collect::<Vec<_>>()
            .join(&b"\r\n"[..]);
        let mut expected = clean.clone();
        if !expected.is_empty() && !expected.ends_with(b"\r\n") {
            expected.extend_from_slice(b"\r\n");
        }
        let wire = dot_stuff(&clean);
        let mut decoded = Vec::new();
        let mut decoder = DataDecoder::new(u64::MAX);
        for chunk in rng.chunks(&wire) {
            decoder.decode(chunk, &mut decoded);
        }
        assert!(decoder.is_done());
        assert_eq!(decoded, expected);
    }
}
