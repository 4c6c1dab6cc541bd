//! A look at a ClientHello before any engine sees it: which is the newest TLS version the client
//! offers. It decides which engine serves the connection.

/// What the first bytes of a connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek {
    /// A whole ClientHello whose newest offered version is this wire version (`0x0303` = TLS 1.2).
    Hello { newest: u16 },
    /// Not enough bytes yet.
    NeedMore,
    /// The bytes are not a TLS handshake (plain text, an SSLv2 hello, anything else).
    NotTls,
}

/// The largest ClientHello we wait for; real ones are under 2 KiB, post-quantum ones under 8 KiB.
pub const MAX_HELLO: usize = 64 * 1024;

const HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const SUPPORTED_VERSIONS: u16 = 43;

/// Reads the ClientHello at the start of `bytes`, which may span several records.
pub fn peek(bytes: &[u8]) -> Peek {
    let mut message = Vec::new();
    let mut rest = bytes;
    loop {
        let Some(header) = rest.get(..5) else {
            return more_or_not_tls(bytes);
        };
        if header[0] != HANDSHAKE || header[1] != 3 {
            return Peek::NotTls;
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > 16384 + 256 {
            return Peek::NotTls;
        }
        let Some(payload) = rest.get(5..5 + len) else {
            return more_or_not_tls(bytes);
        };
        message.extend_from_slice(payload);
        rest = &rest[5 + len..];
        match hello(&message) {
            Some(result) => return result,
            None if message.len() < MAX_HELLO => continue,
            None => return Peek::NotTls,
        }
    }
}

fn more_or_not_tls(bytes: &[u8]) -> Peek {
    if bytes.len() >= MAX_HELLO {
        Peek::NotTls
    } else {
        Peek::NeedMore
    }
}

/// `None` while the handshake message is incomplete.
fn hello(message: &[u8]) -> Option<Peek> {
    let mut r = Reader(message);
    if r.u8()? != CLIENT_HELLO {
        return Some(Peek::NotTls);
    }
    let len = r.u24()?;
    let body = r.take(len)?;
    Some(parse_body(body).unwrap_or(Peek::NotTls))
}

fn parse_body(body: &[u8]) -> Option<Peek> {
    let mut r = Reader(body);
    let legacy_version = r.u16()?;
    r.take(32)?;
    let session = usize::from(r.u8()?);
    r.take(session)?;
    let suites = usize::from(r.u16()?);
    r.take(suites)?;
    let compression = usize::from(r.u8()?);
    r.take(compression)?;
    let mut newest = legacy_version;
    if r.0.is_empty() {
        return Some(Peek::Hello { newest });
    }
    let extensions = usize::from(r.u16()?);
    let mut ext = Reader(r.take(extensions)?);
    while !ext.0.is_empty() {
        let kind = ext.u16()?;
        let len = usize::from(ext.u16()?);
        let data = ext.take(len)?;
        if kind == SUPPORTED_VERSIONS {
            let mut v = Reader(data);
            let list = usize::from(v.u8()?);
            let mut versions = Reader(v.take(list)?);
            newest = 0;
            while !versions.0.is_empty() {
                let version = versions.u16()?;
                // GREASE values (0x?a?a) and drafts are not versions anyone speaks.
                let grease = version & 0x0f0f == 0x0a0a;
                if !grease && (0x0300..=0x0304).contains(&version) {
                    newest = newest.max(version);
                }
            }
        }
    }
    Some(Peek::Hello { newest })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello with the given legacy version and, when given, supported_versions.
    fn client_hello(legacy: u16, supported: Option<&[u16]>) -> Vec<u8> {
        let mut body = legacy.to_be_bytes().to_vec();
        body.extend([7u8; 32]);
        body.push(0);
        body.extend([0, 2, 0x13, 0x01]);
        body.extend([1, 0]);
        if let Some(versions) = supported {
            let mut ext = vec![u8::try_from(versions.len() * 2).unwrap()];
            for v in versions {
                ext.extend(v.to_be_bytes());
            }
            let mut exts = SUPPORTED_VERSIONS.to_be_bytes().to_vec();
            exts.extend(u16::try_from(ext.len()).unwrap().to_be_bytes());
            exts.extend(ext);
            body.extend(u16::try_from(exts.len()).unwrap().to_be_bytes());
            body.extend(exts);
        }
        let mut message = vec![CLIENT_HELLO];
        message.extend(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
        message.extend(body);
        let mut record = vec![HANDSHAKE, 3, 1];
        record.extend(u16::try_from(message.len()).unwrap().to_be_bytes());
        record.extend(message);
        record
    }

    #[test]
    fn the_newest_version_is_found() {
        assert_eq!(
            peek(&client_hello(0x0301, None)),
            Peek::Hello { newest: 0x0301 }
        );
        assert_eq!(
            peek(&client_hello(0x0303, None)),
            Peek::Hello { newest: 0x0303 }
        );
        let tls13 = client_hello(0x0303, Some(&[0x3a3a, 0x0304, 0x0303]));
        assert_eq!(peek(&tls13), Peek::Hello { newest: 0x0304 });
    }

    #[test]
    fn a_hello_cut_anywhere_needs_more_and_split_records_are_joined() {
        let hello = client_hello(0x0303, Some(&[0x0304, 0x0303]));
        for cut in 0..hello.len() {
            assert_eq!(peek(&hello[..cut]), Peek::NeedMore, "cut at {cut}");
        }
        // The same handshake message carried in two records.
        let message = &hello[5..];
        let (a, b) = message.split_at(10);
        let mut two = Vec::new();
        for part in [a, b] {
            two.extend([HANDSHAKE, 3, 1]);
            two.extend(u16::try_from(part.len()).unwrap().to_be_bytes());
            two.extend(part);
        }
        assert_eq!(peek(&two), Peek::Hello { newest: 0x0304 });
    }

    #[test]
    fn anything_else_is_not_tls() {
        assert_eq!(peek(b"EHLO mail.example.com\r\n"), Peek::NotTls);
        assert_eq!(peek(&[0x80, 0x2e, 0x01, 0x03, 0x01]), Peek::NotTls);
        assert_eq!(peek(&[22, 3, 1, 0, 0]), Peek::NotTls);
        let mut truncated_body = client_hello(0x0303, None);
        truncated_body[8] = 0xff; // a handshake length beyond the record, never completed
        assert_eq!(peek(&truncated_body), Peek::NeedMore);
        assert_eq!(peek(&vec![22; MAX_HELLO]), Peek::NotTls);
    }
}
