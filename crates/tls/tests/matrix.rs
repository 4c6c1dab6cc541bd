//! Every protocol range against the `openssl` command pinned to each single version: our
//! acceptor against `openssl s_client`, our connector against `openssl s_server`. A handshake
//! succeeds with exactly the pinned version when the range holds it, and otherwise fails as a
//! version mismatch on our side and on OpenSSL's.

mod common;

use common::*;
use postern_config::{ProtocolRange, TlsVersion};
use postern_tls::{Engine, FailureKind, KeyKind, Negotiated, TlsAcceptor, Verification};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The protocol as log lines print it, written out here rather than taken from the crate.
fn logged_name(version: TlsVersion) -> &'static str {
    match version {
        Tls1_0 => "TLSv1",
        Tls1_1 => "TLSv1.1",
        Tls1_2 => "TLSv1.2",
        Tls1_3 => "TLSv1.3",
    }
}

/// Accepts one connection; on success greets the client and waits for it to close.
async fn serve_one(
    listener: &TcpListener,
    acceptor: &TlsAcceptor,
) -> Result<Negotiated, postern_tls::HandshakeFailure> {
    let (tcp, _) = within("TCP accept", listener.accept())
        .await
        .expect("a TCP connection");
    let (mut tls, negotiated) = within("accept()", acceptor.accept(tcp)).await?;
    greet_and_wait(&mut tls).await;
    Ok(negotiated)
}

/// One row of the server matrix: an acceptor for `protocols` against `s_client` pinned to each
/// version in turn.
async fn server_row(protocols: ProtocolRange) {
    let acceptor = acceptor(protocols);
    let (listener, port) = listener().await;
    for version in [Tls1_0, Tls1_1, Tls1_2, Tls1_3] {
        let (server, client) = tokio::join!(
            serve_one(&listener, &acceptor),
            s_client(port, version, &[])
        );
        let case = format!(
            "server {protocols} against s_client {}",
            openssl_flag(version)
        );
        if protocols.contains(version) {
            let negotiated = server.unwrap_or_else(|f| {
                panic!(
                    "{case}: accept() failed: {f}\ns_client said:\n{}",
                    client.stderr
                )
            });
            assert_eq!(negotiated.version, version, "{case}");
            assert_eq!(negotiated.protocol(), logged_name(version), "{case}");
            let engine = if version < Tls1_2 {
                Engine::Legacy
            } else {
                Engine::Rustls
            };
            assert_eq!(negotiated.engine, engine, "{case}");
            assert!(
                client.status.success(),
                "{case}: s_client failed:\n{}",
                client.stderr
            );
            assert!(
                client.received.contains(GREETING),
                "{case}: s_client read {:?}",
                client.received
            );
            assert_eq!(
                client.summary("Protocol version"),
                Some(logged_name(version)),
                "{case}"
            );
            // Both sides name the suite alike: the OpenSSL name before TLS v1.3, IANA's in it.
            assert_eq!(
                client.summary("Ciphersuite"),
                Some(negotiated.cipher.as_str()),
                "{case}"
            );
            match version {
                // Clients this old are served the RSA certificate.
                Tls1_0 | Tls1_1 => assert!(
                    negotiated.cipher.starts_with("ECDHE-RSA-AES"),
                    "{case}: {negotiated:?}"
                ),
                // A client that takes ECDSA gets the ECDSA one.
                Tls1_2 => assert!(
                    negotiated.cipher.starts_with("ECDHE-ECDSA-AES"),
                    "{case}: {negotiated:?}"
                ),
                Tls1_3 => assert_eq!(negotiated.cipher, "TLS_AES_256_GCM_SHA384", "{case}"),
            }
        } else {
            let failure = match server {
                Ok(negotiated) => panic!("{case}: accept() succeeded: {negotiated:?}"),
                Err(failure) => failure,
            };
            assert_eq!(
                failure.kind,
                FailureKind::VersionMismatch,
                "{case}: {failure}"
            );
            assert_failure_shape(&failure);
            assert!(
                !client.status.success(),
                "{case}: s_client succeeded:\n{}",
                client.stderr
            );
            assert!(!client.received.contains(GREETING), "{case}");
            // The client learns it is the version too: from its own check or from our alert.
            assert!(
                client.stderr.contains(":unsupported protocol:")
                    || client.stderr.contains(":tlsv1 alert protocol version:"),
                "{case}: s_client did not fail on the version:\n{}",
                client.stderr
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls1_0_only() {
    server_row(range(Tls1_0, Tls1_0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls1_0_to_1_1() {
    server_row(range(Tls1_0, Tls1_1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls1_0_to_1_2() {
    server_row(range(Tls1_0, Tls1_2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls1_0_to_1_3() {
    server_row(range(Tls1_0, Tls1_3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls1_1_only() {
    server_row(range(Tls1_1, Tls1_1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls1_1_to_1_2() {
    server_row(range(Tls1_1, Tls1_2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls1_1_to_1_3() {
    server_row(range(Tls1_1, Tls1_3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls1_2_only() {
    server_row(range(Tls1_2, Tls1_2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls1_2_to_1_3() {
    server_row(range(Tls1_2, Tls1_3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls1_3_only() {
    server_row(range(Tls1_3, Tls1_3)).await;
}

/// The fixed TLS v1.3 order is the server's: a client that lists TLS_AES_256_GCM_SHA384 last
/// still gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_prefers_tls1_3_aes256_over_the_client_order() {
    let acceptor = acceptor(range(Tls1_2, Tls1_3));
    let (listener, port) = listener().await;
    let reversed = [
        "-ciphersuites",
        "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384",
    ];
    let (server, client) = tokio::join!(
        serve_one(&listener, &acceptor),
        s_client(port, Tls1_3, &reversed)
    );
    let negotiated = server.unwrap_or_else(|f| panic!("accept() failed: {f}\n{}", client.stderr));
    assert_eq!(negotiated.cipher, "TLS_AES_256_GCM_SHA384");
    assert_eq!(
        client.summary("Ciphersuite"),
        Some("TLS_AES_256_GCM_SHA384")
    );
}

/// One column of the client matrix: `s_server` pinned to `version` against a connector for
/// each range in turn.
async fn client_column(version: TlsVersion) {
    // OpenSSL 3 signs TLS v1.0/v1.1 handshakes with SHA1: RSA is what such servers have.
    let kind = if version < Tls1_2 {
        KeyKind::Rsa2048
    } else {
        KeyKind::EcdsaP256
    };
    let server = SServer::start(version, identity(kind)).await;
    for protocols in all_ranges() {
        let case = format!(
            "connector {protocols} against s_server {}",
            openssl_flag(version)
        );
        let connector = connector(protocols, &Verification::None);
        let tcp = within(
            "TCP connect",
            TcpStream::connect(("127.0.0.1", server.port)),
        )
        .await
        .expect("TCP connect to s_server");
        let result = within("connect()", connector.connect(HOST, tcp)).await;
        if !protocols.contains(version) {
            let failure = match result {
                Ok((_, negotiated)) => panic!("{case}: connect() succeeded: {negotiated:?}"),
                Err(failure) => failure,
            };
            assert_eq!(
                failure.kind,
                FailureKind::VersionMismatch,
                "{case}: {failure}"
            );
            assert_failure_shape(&failure);
            continue;
        }
        let (mut tls, negotiated) =
            result.unwrap_or_else(|f| panic!("{case}: connect() failed: {f}"));
        assert_eq!(negotiated.version, version, "{case}");
        assert_eq!(negotiated.protocol(), logged_name(version), "{case}");
        // The connector's engine follows its range, not the server.
        let engine = if protocols.oldest() < Tls1_2 {
            Engine::Legacy
        } else {
            Engine::Rustls
        };
        assert_eq!(negotiated.engine, engine, "{case}");
        // s_server -www describes the session it has: its protocol and cipher must be ours.
        within("send the request", tls.write_all(b"GET / HTTP/1.0\r\n\r\n"))
            .await
            .expect("the request is written");
        within("flush the request", tls.flush())
            .await
            .expect("the request is flushed");
        let mut page = Vec::new();
        within("read the page", async {
            let mut chunk = [0u8; 4096];
            // s_server closes without close_notify: an error after the page ends it too.
            while let Ok(n @ 1..) = tls.read(&mut chunk).await {
                page.extend_from_slice(&chunk[..n]);
            }
        })
        .await;
        let page = String::from_utf8_lossy(&page);
        assert!(
            page.contains(&format!("Protocol  : {}\n", logged_name(version))),
            "{case}: {negotiated:?}\n{page}"
        );
        assert!(
            page.contains(&format!("Cipher    : {}\n", negotiated.cipher)),
            "{case}: {negotiated:?}\n{page}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_against_s_server_tls1_0() {
    client_column(Tls1_0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_against_s_server_tls1_1() {
    client_column(Tls1_1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_against_s_server_tls1_2() {
    client_column(Tls1_2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_against_s_server_tls1_3() {
    client_column(Tls1_3).await;
}
