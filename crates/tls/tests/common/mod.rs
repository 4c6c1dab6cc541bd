//! What the integration tests share: the policies and identities they use, loopback listeners,
//! a time limit on every step, the `(code, 'reason')` shape check, and the Debian `openssl`
//! command (OpenSSL 3.0) as a real peer, `s_client` and `s_server`.

// Each test binary uses a part of these helpers.
#![allow(dead_code)]

use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use postern_config::{CipherString, ProtocolRange, ServiceTls, TlsVersion};
use postern_tls::hello::{Peek, peek};
use postern_tls::{
    HandshakeFailure, Identity, KeyKind, Negotiated, TlsAcceptor, TlsConnector, Verification,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// Works for every range: AEAD suites for TLS v1.2, the CBC SHA1 suites TLS v1.0/v1.1 need.
pub(crate) const CIPHERS: &str = "ECDHE+AESGCM:ECDHE+AES";

/// The longest any one step (a handshake, a process, a read) may take before the test fails.
pub(crate) const STEP: Duration = Duration::from_secs(15);

/// The name the test identities are issued for.
pub(crate) const HOST: &str = "localhost";

/// What the server side writes after a successful handshake, for the client to prove it read.
pub(crate) const GREETING: &str = "220 postern says hello";

pub(crate) use TlsVersion::{Tls1_0, Tls1_1, Tls1_2, Tls1_3};

pub(crate) fn range(a: TlsVersion, b: TlsVersion) -> ProtocolRange {
    ProtocolRange::new(a, b)
}

/// Every contiguous range an administrator can select: the 10 of them.
pub(crate) fn all_ranges() -> Vec<ProtocolRange> {
    let versions = [Tls1_0, Tls1_1, Tls1_2, Tls1_3];
    let mut ranges = Vec::new();
    for (i, oldest) in versions.iter().enumerate() {
        for newest in &versions[i..] {
            ranges.push(range(*oldest, *newest));
        }
    }
    ranges
}

pub(crate) fn policy(protocols: ProtocolRange) -> ServiceTls {
    ServiceTls {
        protocols,
        ciphers: CipherString::new(CIPHERS).expect("the test cipher string is well formed"),
    }
}

/// The ECDSA and the RSA identity for [`HOST`], made once per test binary.
pub(crate) fn identities() -> &'static [Identity] {
    static IDENTITIES: OnceLock<Vec<Identity>> = OnceLock::new();
    IDENTITIES.get_or_init(|| {
        [KeyKind::EcdsaP256, KeyKind::Rsa2048]
            .into_iter()
            .map(|kind| Identity::self_signed(HOST, kind).expect("a self-signed identity"))
            .collect()
    })
}

pub(crate) fn identity(kind: KeyKind) -> &'static Identity {
    identities()
        .iter()
        .find(|i| i.key_kind() == kind)
        .expect("both kinds are made")
}

/// The leaf certificate of `identity`, DER, as a root for [`Verification::Roots`].
pub(crate) fn certificate_der(identity: &Identity) -> Vec<u8> {
    let (chain, _key) = identity.to_pem().expect("PEM of the identity");
    openssl::x509::X509::from_pem(&chain)
        .and_then(|c| c.to_der())
        .expect("the PEM certificate converts to DER")
}

pub(crate) fn acceptor(protocols: ProtocolRange) -> TlsAcceptor {
    TlsAcceptor::with_timeout(&policy(protocols), identities(), STEP)
        .expect("an acceptor for the policy")
}

pub(crate) fn connector(protocols: ProtocolRange, verification: &Verification) -> TlsConnector {
    TlsConnector::with_timeout(&policy(protocols), verification, STEP)
        .expect("a connector for the policy")
}

/// `future`, or a panic naming `what` when it takes longer than [`STEP`].
pub(crate) async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(STEP, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: no result within {STEP:?}"),
    }
}

/// A listener on a free loopback port, and the port.
pub(crate) async fn listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let port = listener
        .local_addr()
        .expect("the listener's address")
        .port();
    (listener, port)
}

/// Writes [`GREETING`] and waits until the client closes (or the step's time is up), so that the
/// connection is not torn down before the client has read the line.
pub(crate) async fn greet_and_wait<S>(stream: &mut S)
where
    S: tokio::io::AsyncRead + AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    let line = format!("{GREETING}\n");
    within("write the greeting", stream.write_all(line.as_bytes()))
        .await
        .expect("the greeting is written");
    within("flush the greeting", stream.flush())
        .await
        .expect("the greeting is flushed");
    let mut rest = Vec::new();
    // The client closes with or without close_notify; either ends the wait.
    let _ = tokio::time::timeout(STEP, stream.read_to_end(&mut rest)).await;
}

/// One handshake between `acceptor` and `connector` on loopback. Each side's result; a
/// successful connection is closed right away.
pub(crate) async fn handshake_pair(
    acceptor: &TlsAcceptor,
    connector: &TlsConnector,
    server_name: &str,
) -> (
    Result<Negotiated, HandshakeFailure>,
    Result<Negotiated, HandshakeFailure>,
) {
    let (listener, port) = listener().await;
    let server = async {
        let (tcp, _) = within("TCP accept", listener.accept())
            .await
            .expect("a TCP connection");
        within("accept()", acceptor.accept(tcp))
            .await
            .map(|(_, negotiated)| negotiated)
    };
    let client = async {
        let tcp = within("TCP connect", TcpStream::connect(("127.0.0.1", port)))
            .await
            .expect("TCP connect to our listener");
        within("connect()", connector.connect(server_name, tcp))
            .await
            .map(|(_, negotiated)| negotiated)
    };
    tokio::join!(server, client)
}

/// A real ClientHello: what our connector for `protocols` sends first, captured in memory.
pub(crate) async fn client_hello(protocols: ProtocolRange) -> Vec<u8> {
    let (client_end, mut server_end) = tokio::io::duplex(64 * 1024);
    let connector = connector(protocols, &Verification::None);
    let client = tokio::spawn(async move { connector.connect(HOST, client_end).await.map(|_| ()) });
    let mut hello = Vec::new();
    within("the ClientHello", async {
        let mut chunk = [0u8; 4096];
        while peek(&hello) == Peek::NeedMore {
            let n = server_end
                .read(&mut chunk)
                .await
                .expect("read the ClientHello");
            assert!(
                n > 0,
                "the connector closed before its ClientHello was whole"
            );
            hello.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    client.abort();
    assert!(
        matches!(peek(&hello), Peek::Hello { .. }),
        "not a ClientHello: {hello:?}"
    );
    hello
}

/// The cipher suites a ClientHello (one record, as our connectors send it) offers, in order.
pub(crate) fn offered_suites(hello: &[u8]) -> Vec<u16> {
    // Record header 5, handshake header 4, legacy version 2, random 32, then the session id.
    let session = 5 + 4 + 2 + 32;
    let suites = session + 1 + usize::from(hello[session]);
    let len = usize::from(u16::from_be_bytes([hello[suites], hello[suites + 1]]));
    hello[suites + 2..suites + 2 + len]
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
        .collect()
}

/// Asserts `failure` displays as `(code, 'error:XXXXXXXX:library:function:reason')`: the shape
/// log parsers read, with the decimal code and the hex one the same number.
pub(crate) fn assert_failure_shape(failure: &HandshakeFailure) {
    let text = failure.to_string();
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix("')"))
        .unwrap_or_else(|| panic!("{text:?} is not wrapped in ( and ')"));
    let (code, reason) = inner
        .split_once(", '")
        .unwrap_or_else(|| panic!("{text:?} has no \", '\" after the code"));
    assert!(
        !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()),
        "{text:?}: the code {code:?} is not a decimal number"
    );
    let code: u64 = code
        .parse()
        .unwrap_or_else(|_| panic!("{text:?}: the code does not fit a u64"));
    assert_eq!(
        code, failure.code,
        "{text:?}: the code printed is not the failure's code"
    );
    assert!(
        !reason.contains('\''),
        "{text:?}: a quote inside the reason breaks the shape"
    );
    let parts: Vec<&str> = reason.splitn(5, ':').collect();
    let [error, hex, library, function, why] = parts.as_slice() else {
        panic!("{text:?}: the reason is not error:<hex>:<library>:<function>:<reason>");
    };
    assert_eq!(*error, "error", "{text:?}");
    assert!(
        hex.len() == 8
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
        "{text:?}: {hex:?} is not 8 upper-case hex digits"
    );
    assert_eq!(
        u64::from_str_radix(hex, 16).ok(),
        Some(code),
        "{text:?}: the hex code is not the decimal one"
    );
    for (name, part) in [
        ("library", library),
        ("function", function),
        ("reason", why),
    ] {
        assert!(!part.trim().is_empty(), "{text:?}: the {name} is empty");
    }
}

/// The `openssl s_client` / `s_server` flag pinning one version.
pub(crate) fn openssl_flag(version: TlsVersion) -> &'static str {
    match version {
        Tls1_0 => "-tls1",
        Tls1_1 => "-tls1_1",
        Tls1_2 => "-tls1_2",
        Tls1_3 => "-tls1_3",
    }
}

/// OpenSSL 3 refuses TLS v1.0/v1.1 (and their SHA1 signatures) unless the security level is 0.
fn seclevel_args(version: TlsVersion) -> &'static [&'static str] {
    if version < Tls1_2 {
        &["-cipher", "DEFAULT@SECLEVEL=0"]
    } else {
        &[]
    }
}

/// What an `openssl s_client` run ended in.
#[derive(Debug)]
pub(crate) struct SClient {
    pub(crate) status: ExitStatus,
    /// What the server sent over TLS.
    pub(crate) received: String,
    /// The `-brief` summary and any errors.
    pub(crate) stderr: String,
}

impl SClient {
    /// The value of a `-brief` summary line such as `Protocol version: TLSv1.3`.
    pub(crate) fn summary(&self, key: &str) -> Option<&str> {
        self.stderr
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(": "))
            .map(str::trim)
    }
}

/// Runs `openssl s_client` against 127.0.0.1:`port`, offering only `version`. When the server
/// sends [`GREETING`] it is read, then stdin is closed and s_client closes the connection.
pub(crate) async fn s_client(port: u16, version: TlsVersion, extra: &[&str]) -> SClient {
    let mut child = Command::new("openssl")
        .arg("s_client")
        .args([
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            HOST,
            "-brief",
        ])
        .arg(openssl_flag(version))
        .args(seclevel_args(version))
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl s_client starts (is the openssl command installed?)");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut received = String::new();
    // Until the greeting, or the end of output when the handshake failed.
    within("s_client output", async {
        loop {
            let mut line = String::new();
            match stdout.read_line(&mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    received.push_str(&line);
                    if line.starts_with(GREETING) {
                        break;
                    }
                }
            }
        }
    })
    .await;
    drop(child.stdin.take());
    within("s_client exit", stdout.read_to_string(&mut received))
        .await
        .expect("s_client's stdout");
    let output = within("s_client exit", child.wait_with_output())
        .await
        .expect("s_client's exit status");
    SClient {
        status: output.status,
        received,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// An `openssl s_server -www` pinned to one version, on a loopback port it chose itself. It
/// answers `GET /` with a page that names the session's protocol and cipher. Killed on drop.
#[derive(Debug)]
pub(crate) struct SServer {
    pub(crate) port: u16,
    _child: Child,
    _files: tempfile::TempDir,
}

impl SServer {
    /// `identity` must be RSA for TLS v1.0/v1.1 (OpenSSL 3 signs those with SHA1 or MD5+SHA1).
    pub(crate) async fn start(version: TlsVersion, identity: &Identity) -> Self {
        let files = tempfile::tempdir().expect("a temporary directory");
        let (cert, key) = identity.to_pem().expect("the identity as PEM");
        let cert_path = files.path().join("cert.pem");
        let key_path = files.path().join("key.pem");
        std::fs::write(&cert_path, cert).expect("write cert.pem");
        std::fs::write(&key_path, key).expect("write key.pem");
        let mut child = Command::new("openssl")
            .arg("s_server")
            .args(["-accept", "127.0.0.1:0", "-www"])
            .arg("-cert")
            .arg(&cert_path)
            .arg("-key")
            .arg(&key_path)
            .arg(openssl_flag(version))
            .args(seclevel_args(version))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("openssl s_server starts (is the openssl command installed?)");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        // "ACCEPT 127.0.0.1:40123" once it listens; the port is the one the kernel gave it.
        let port = within("s_server listening", async {
            loop {
                let mut line = String::new();
                let n = stdout
                    .read_line(&mut line)
                    .await
                    .expect("s_server's stdout");
                assert!(n > 0, "s_server exited before it listened");
                if let Some(address) = line.trim().strip_prefix("ACCEPT ") {
                    let port = address
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.parse::<u16>().ok());
                    break port.unwrap_or_else(|| panic!("no port in {line:?}"));
                }
            }
        })
        .await;
        // Keep its stdout drained so that it never blocks on a full pipe.
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut stdout, &mut tokio::io::sink()).await;
        });
        Self {
            port,
            _child: child,
            _files: files,
        }
    }
}
