//! Our connector against our acceptor: which engine serves which pair of ranges, data through
//! both engines, and certificate verification on both. A test body written once runs against
//! each engine (the rustls per-provider pattern): a range within TLS v1.0–v1.1 puts the legacy
//! engine on both sides, one within TLS v1.2–v1.3 rustls.

mod common;

use common::*;
use postern_config::{ProtocolRange, TlsVersion};
use postern_tls::{Engine, FailureKind, Identity, KeyKind, Verification};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What one pair of ranges is expected to end in.
struct Pair {
    server: ProtocolRange,
    client: ProtocolRange,
    /// The version, and each side's engine (server, client); `None` for a version mismatch.
    expect: Option<(TlsVersion, Engine, Engine)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_meet_at_the_newest_common_version_on_the_right_engine() {
    use Engine::{Legacy, Rustls};
    let pairs = [
        // A client that speaks only TLS v1.0 reaches a server that allows everything.
        Pair {
            server: range(Tls1_0, Tls1_3),
            client: range(Tls1_0, Tls1_0),
            expect: Some((Tls1_0, Legacy, Legacy)),
        },
        Pair {
            server: range(Tls1_0, Tls1_3),
            client: range(Tls1_2, Tls1_3),
            expect: Some((Tls1_3, Rustls, Rustls)),
        },
        // The client's range reaches TLS v1.0, so it is the legacy engine, offering up to 1.3.
        Pair {
            server: range(Tls1_0, Tls1_3),
            client: range(Tls1_0, Tls1_3),
            expect: Some((Tls1_3, Rustls, Legacy)),
        },
        Pair {
            server: range(Tls1_1, Tls1_2),
            client: range(Tls1_0, Tls1_3),
            expect: Some((Tls1_2, Rustls, Legacy)),
        },
        // A client offering TLS v1.3 to a server without rustls is served down to TLS v1.1.
        Pair {
            server: range(Tls1_0, Tls1_1),
            client: range(Tls1_1, Tls1_3),
            expect: Some((Tls1_1, Legacy, Legacy)),
        },
        Pair {
            server: range(Tls1_2, Tls1_3),
            client: range(Tls1_0, Tls1_1),
            expect: None,
        },
        Pair {
            server: range(Tls1_3, Tls1_3),
            client: range(Tls1_0, Tls1_2),
            expect: None,
        },
        Pair {
            server: range(Tls1_0, Tls1_1),
            client: range(Tls1_2, Tls1_3),
            expect: None,
        },
        Pair {
            server: range(Tls1_1, Tls1_1),
            client: range(Tls1_0, Tls1_0),
            expect: None,
        },
    ];
    for pair in pairs {
        let case = format!("server {} with client {}", pair.server, pair.client);
        let (server, client) = handshake_pair(
            &acceptor(pair.server),
            &connector(pair.client, &Verification::None),
            HOST,
        )
        .await;
        match pair.expect {
            Some((version, server_engine, client_engine)) => {
                let server = server.unwrap_or_else(|f| panic!("{case}: accept() failed: {f}"));
                let client = client.unwrap_or_else(|f| panic!("{case}: connect() failed: {f}"));
                assert_eq!(
                    (server.version, client.version),
                    (version, version),
                    "{case}"
                );
                assert_eq!(
                    (server.engine, client.engine),
                    (server_engine, client_engine),
                    "{case}"
                );
                assert_eq!(
                    server.cipher, client.cipher,
                    "{case}: both sides name the suite alike"
                );
                assert!(!server.cipher.is_empty(), "{case}");
            }
            None => {
                for (side, result) in [("accept()", server), ("connect()", client)] {
                    let failure = match result {
                        Ok(negotiated) => panic!("{case}: {side} succeeded: {negotiated:?}"),
                        Err(failure) => failure,
                    };
                    assert_eq!(
                        failure.kind,
                        FailureKind::VersionMismatch,
                        "{case}: {side}: {failure}"
                    );
                    assert_failure_shape(&failure);
                }
            }
        }
    }
}

/// The TLS v1.3 suites are chosen in the server's fixed order: the legacy engine as a client
/// offers all three with TLS_AES_256_GCM_SHA384 not first, and still gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls1_3_suite_is_the_servers_first_choice() {
    const AES_256_GCM: u16 = 0x1302;
    let offered: Vec<u16> = offered_suites(&client_hello(range(Tls1_0, Tls1_3)).await)
        .into_iter()
        .filter(|s| (0x1301..=0x1303).contains(s))
        .collect();
    assert_eq!(
        offered.len(),
        3,
        "the TLS v1.3 suites offered: {offered:04x?}"
    );
    assert_ne!(
        offered[0], AES_256_GCM,
        "the client's own first choice must differ"
    );
    let (server, client) = handshake_pair(
        &acceptor(range(Tls1_2, Tls1_3)),
        &connector(range(Tls1_0, Tls1_3), &Verification::None),
        HOST,
    )
    .await;
    let server = server.expect("accept()");
    let client = client.expect("connect()");
    assert_eq!(
        (server.engine, client.engine),
        (Engine::Rustls, Engine::Legacy)
    );
    assert_eq!(server.cipher, "TLS_AES_256_GCM_SHA384");
    assert_eq!(client.cipher, "TLS_AES_256_GCM_SHA384");
}

/// 1 MiB that a shifted or dropped chunk cannot pass for.
fn payload() -> Vec<u8> {
    let mut state: u32 = 0x2545_f491;
    (0..1 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// The body run against each engine: a handshake on `protocols` both sides, then 1 MiB from
/// the client that the server echoes back, read while it is still being written.
async fn echo_round_trip(protocols: ProtocolRange, engine: Engine) {
    let acceptor = acceptor(protocols);
    let connector = connector(protocols, &Verification::None);
    let (listener, port) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = within("TCP accept", listener.accept())
            .await
            .expect("a TCP connection");
        let (tls, negotiated) = within("accept()", acceptor.accept(tcp))
            .await
            .expect("accept()");
        let (mut from_client, mut to_client) = tokio::io::split(tls);
        let echoed = within("echo", tokio::io::copy(&mut from_client, &mut to_client))
            .await
            .expect("the echo ends at the client's close_notify");
        within("server shutdown", to_client.shutdown())
            .await
            .expect("server shutdown");
        (negotiated, echoed)
    });
    let tcp = within("TCP connect", TcpStream::connect(("127.0.0.1", port)))
        .await
        .expect("TCP connect");
    let (tls, negotiated) = within("connect()", connector.connect(HOST, tcp))
        .await
        .expect("connect()");
    let (mut from_server, mut to_server) = tokio::io::split(tls);
    let sent = payload();
    let mut back = vec![0u8; sent.len()];
    let (written, read) = within("1 MiB each way", async {
        tokio::join!(
            async {
                to_server.write_all(&sent).await?;
                to_server.flush().await
            },
            from_server.read_exact(&mut back)
        )
    })
    .await;
    written.expect("the client writes 1 MiB");
    read.expect("the client reads 1 MiB back");
    assert!(back == sent, "the echoed bytes differ from those sent");
    within("client shutdown", to_server.shutdown())
        .await
        .expect("client shutdown");
    let (server_negotiated, echoed) = within("the server's end", server)
        .await
        .expect("the server task");
    assert_eq!(echoed, 1 << 20, "the server echoed every byte and no more");
    let mut rest = Vec::new();
    // Nothing follows the echo: the server's close_notify (or its TCP close) ends the stream.
    let _ = within("the server's close", from_server.read_to_end(&mut rest)).await;
    assert!(rest.is_empty(), "{} bytes after the echo", rest.len());
    for (side, n) in [("server", &server_negotiated), ("client", &negotiated)] {
        assert_eq!(n.engine, engine, "{side}");
        assert_eq!(n.version, protocols.newest(), "{side}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_through_legacy_engine() {
    echo_round_trip(range(Tls1_0, Tls1_1), Engine::Legacy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_through_rustls() {
    echo_round_trip(range(Tls1_2, Tls1_3), Engine::Rustls).await;
}

/// The body run against each engine: our certificates as roots let a connector in with the
/// right name only; a wrong name, an IP address the certificate does not hold, or other roots
/// are certificate rejections on the client, and the server hears of it.
async fn verification(protocols: ProtocolRange, engine: Engine) {
    let ours: Vec<Vec<u8>> = identities().iter().map(certificate_der).collect();
    let roots = |host: &str| {
        let others = [KeyKind::EcdsaP256, KeyKind::Rsa2048].map(|kind| {
            certificate_der(&Identity::self_signed(host, kind).expect("another identity"))
        });
        connector(protocols, &Verification::roots(others.to_vec()))
    };
    let acceptor = acceptor(protocols);
    let trusting = connector(protocols, &Verification::roots(ours));

    let (server, client) = handshake_pair(&acceptor, &trusting, HOST).await;
    let client = client.unwrap_or_else(|f| panic!("{protocols}: the right name and root: {f}"));
    assert_eq!(client.engine, engine);
    server.expect("the server side of a verified handshake");

    let rejected = Some(FailureKind::CertificateRejected);
    let cases = [
        (
            "a name the certificate does not hold",
            &trusting,
            "mail.example.org",
            rejected,
        ),
        (
            "an IP address the certificate does not hold",
            &trusting,
            "127.0.0.1",
            rejected,
        ),
        (
            "roots for another host",
            &roots("mx.example.net"),
            HOST,
            rejected,
        ),
        // Another appliance's factory certificate for the same name: the issuer name matches,
        // the signature does not. rustls says so with a decrypt_error alert, which the server
        // cannot tell from other failed signatures.
        (
            "roots with our name but other keys",
            &roots(HOST),
            HOST,
            None,
        ),
    ];
    for (what, connector, name, server_kind) in cases {
        let (server, client) = handshake_pair(&acceptor, connector, name).await;
        let failure = match client {
            Ok(negotiated) => panic!("{protocols}, {what}: connect() succeeded: {negotiated:?}"),
            Err(failure) => failure,
        };
        assert_eq!(
            failure.kind,
            FailureKind::CertificateRejected,
            "{protocols}, {what}: {failure}"
        );
        assert_failure_shape(&failure);
        let failure = match server {
            Ok(negotiated) => panic!("{protocols}, {what}: accept() succeeded: {negotiated:?}"),
            Err(failure) => failure,
        };
        assert_failure_shape(&failure);
        if let Some(kind) = server_kind {
            assert_eq!(failure.kind, kind, "{protocols}, {what}: server: {failure}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_on_legacy_engine() {
    verification(range(Tls1_0, Tls1_1), Engine::Legacy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_on_rustls() {
    verification(range(Tls1_2, Tls1_3), Engine::Rustls).await;
}
