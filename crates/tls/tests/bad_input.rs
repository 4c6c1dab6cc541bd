//! What the acceptor makes of clients that are not well-behaved TLS clients, and the text of
//! its failures: every one classified, in the `(code, 'error:...')` shape, in bounded time,
//! without a task or connection left behind.

mod common;

use std::time::{Duration, Instant};

use common::*;
use postern_tls::{Engine, FailureKind, HandshakeFailure, TlsAcceptor, Verification};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Runs `client` against `acceptor` on loopback; returns what accept() ended in, how long it
/// took, and what the client task returned.
async fn against<F, T>(
    acceptor: &TlsAcceptor,
    client: impl FnOnce(TcpStream) -> F,
) -> (HandshakeFailure, Duration, T)
where
    F: Future<Output = T>,
{
    let (listener, port) = listener().await;
    let tcp = within("TCP connect", TcpStream::connect(("127.0.0.1", port)))
        .await
        .expect("TCP connect");
    let (server_side, _) = within("TCP accept", listener.accept())
        .await
        .expect("TCP accept");
    let started = Instant::now();
    let (accepted, client_result) = tokio::join!(
        within("accept()", acceptor.accept(server_side)),
        within("the client", client(tcp))
    );
    let failure = match accepted {
        Ok((_, negotiated)) => panic!("accept() succeeded: {negotiated:?}"),
        Err(failure) => failure,
    };
    assert_failure_shape(&failure);
    println!("accept(): {failure}");
    (failure, started.elapsed(), client_result)
}

/// Sends `bytes`, then closes the connection.
async fn send_and_close(mut tcp: TcpStream, bytes: &[u8]) {
    tcp.write_all(bytes).await.expect("the client writes");
    tcp.shutdown().await.expect("the client shuts its side");
    // Hold the connection until the server has closed its side, so the close is the client's.
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_client_hello_then_close_is_peer_closed() {
    let hello = client_hello(range(Tls1_2, Tls1_3)).await;
    let acceptor = acceptor(range(Tls1_0, Tls1_3));
    let (failure, _, ()) = against(&acceptor, |tcp| async move {
        send_and_close(tcp, &hello[..hello.len() / 2]).await
    })
    .await;
    assert_eq!(failure.kind, FailureKind::PeerClosed, "{failure}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_bytes_then_close_is_peer_closed() {
    let acceptor = acceptor(range(Tls1_0, Tls1_3));
    let (failure, _, ()) = against(
        &acceptor,
        |tcp| async move { send_and_close(tcp, b"").await },
    )
    .await;
    assert_eq!(failure.kind, FailureKind::PeerClosed, "{failure}");
}

/// A whole ClientHello and then nothing: the close reaches the engine, which must report it
/// as the peer closing, each engine alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_client_hello_then_close_is_peer_closed_on_both_engines() {
    for (protocols, engine) in [
        (range(Tls1_0, Tls1_1), Engine::Legacy),
        (range(Tls1_2, Tls1_3), Engine::Rustls),
    ] {
        let hello = client_hello(protocols).await;
        let acceptor = acceptor(protocols);
        let (failure, _, ()) =
            against(
                &acceptor,
                |tcp| async move { send_and_close(tcp, &hello).await },
            )
            .await;
        assert_eq!(
            failure.kind,
            FailureKind::PeerClosed,
            "{engine:?}: {failure}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_is_not_tls() {
    let acceptor = acceptor(range(Tls1_0, Tls1_3));
    let inputs: [&[u8]; 3] = [
        b"EHLO x\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        // An SSLv2-format hello, which no enabled version uses.
        &[
            0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10,
        ],
    ];
    for input in inputs {
        let (failure, _, ()) = against(
            &acceptor,
            |tcp| async move { send_and_close(tcp, input).await },
        )
        .await;
        assert_eq!(
            failure.kind,
            FailureKind::NotTls,
            "{:?}: {failure}",
            String::from_utf8_lossy(input)
        );
    }
}

/// A client that sends a valid ClientHello one byte every 50 ms gets the acceptor's time limit
/// (here 1 s), not more; the connection is closed then, which ends the client too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hello_one_byte_at_a_time_times_out() {
    let hello = client_hello(range(Tls1_2, Tls1_3)).await;
    assert!(
        hello.len() > 40,
        "the hello must outlast the time limit at 20 bytes/s"
    );
    let limit = Duration::from_secs(1);
    let acceptor = TlsAcceptor::with_timeout(&policy(range(Tls1_0, Tls1_3)), identities(), limit)
        .expect("an acceptor");
    // The writer runs on as its own task, to see whether it outlives the connection.
    let slow_writer = |mut tcp: TcpStream| async move {
        for byte in &hello {
            tokio::time::sleep(Duration::from_millis(50)).await;
            tcp.write_all(std::slice::from_ref(byte)).await?;
        }
        Ok::<_, std::io::Error>(())
    };
    let (failure, elapsed, client) = against(&acceptor, |tcp| {
        std::future::ready(tokio::spawn(slow_writer(tcp)))
    })
    .await;
    assert_eq!(failure.kind, FailureKind::TimedOut, "{failure}");
    assert!(
        limit <= elapsed && elapsed < limit + Duration::from_secs(2),
        "accept() returned after {elapsed:?}"
    );
    // The server dropped the connection at its time limit: the client's next writes fail and its
    // task ends long before the rest of its hello would have been sent.
    let ended = tokio::time::timeout(Duration::from_secs(3), client).await;
    let written = match ended {
        Ok(joined) => joined.expect("the client task"),
        Err(_) => panic!("the slow client was still writing 3 s after the time limit"),
    };
    assert!(
        written.is_err(),
        "the slow client sent its whole hello: the connection stayed open"
    );
}

/// A version mismatch found by each engine, on each side, keeps the shape of the reference
/// appliance's lines: `(70, 'error:00000046:rustls:accept:...')`, and AWS-LC's packed code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_mismatch_text_has_the_log_shape_for_both_engines() {
    // rustls serves a TLS v1.2-v1.3 policy; the legacy engine speaks for a TLS v1.0 client.
    let (server, client) = handshake_pair(
        &acceptor(range(Tls1_2, Tls1_3)),
        &connector(range(Tls1_0, Tls1_0), &Verification::None),
        HOST,
    )
    .await;
    let (server, client) = (
        server.expect_err("accept()"),
        client.expect_err("connect()"),
    );
    println!("rustls accept: {server}\nlegacy connect: {client}");
    for failure in [&server, &client] {
        assert_eq!(failure.kind, FailureKind::VersionMismatch, "{failure}");
        assert_failure_shape(failure);
    }
    assert!(
        server.reason.starts_with("error:00000046:rustls:accept:"),
        "{server}"
    );
    assert_eq!(server.code, 70, "the protocol_version alert");
    assert!(
        client.reason.starts_with("error:") && client.reason.contains("PROTOCOL_VERSION"),
        "{client}"
    );

    // The legacy engine serves a TLS v1.0-v1.1 policy; rustls speaks for a TLS v1.3 client.
    let (server, client) = handshake_pair(
        &acceptor(range(Tls1_0, Tls1_1)),
        &connector(range(Tls1_3, Tls1_3), &Verification::None),
        HOST,
    )
    .await;
    let (server, client) = (
        server.expect_err("accept()"),
        client.expect_err("connect()"),
    );
    println!("legacy accept: {server}\nrustls connect: {client}");
    for failure in [&server, &client] {
        assert_eq!(failure.kind, FailureKind::VersionMismatch, "{failure}");
        assert_failure_shape(failure);
    }
    assert!(server.reason.contains("UNSUPPORTED_PROTOCOL"), "{server}");
    assert!(
        server.code > 0xFFFF,
        "AWS-LC's packed code carries its library: {server}"
    );
    assert!(
        client.reason.starts_with("error:00000046:rustls:connect:"),
        "{client}"
    );
}

/// The shape check itself refuses what log parsers could not read, so the tests above can fail.
#[test]
fn the_shape_check_refuses_other_shapes() {
    let failure = |code: u64, reason: &str| HandshakeFailure {
        kind: FailureKind::Other,
        code,
        reason: reason.to_owned(),
    };
    assert_failure_shape(&failure(
        70,
        "error:00000046:rustls:accept:peer is incompatible",
    ));
    let bad = [
        failure(71, "error:00000046:rustls:accept:the hex is not the code"),
        failure(70, "error:46:rustls:accept:a short hex code"),
        failure(70, "error:0000004g:rustls:accept:not hex"),
        failure(70, "rustls:accept:no error prefix"),
        failure(70, "error:00000046:rustls:no function"),
        failure(70, "error:00000046:rustls:accept:"),
        failure(70, "error:00000046:rustls:accept:it's quoted"),
    ];
    for failure in bad {
        let refused = std::panic::catch_unwind(|| assert_failure_shape(&failure)).is_err();
        assert!(refused, "{failure} passed the shape check");
    }
}
