//! Certificates end to end: the factory pair made at the first start, and one imported through
//! the CLI, checked, assigned to Inbound SMTP, and presented by the running smtpd after the
//! commit.

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::{Gateway, cli};

/// What `openssl s_client` prints on stdout for a handshake with the gateway on `port` (after
/// `STARTTLS` when `smtp`).
fn s_client(port: u16, smtp: bool, extra: &[&str]) -> String {
    let mut command = Command::new("openssl");
    command.args(["s_client", "-connect", &format!("127.0.0.1:{port}")]);
    if smtp {
        command.args(["-starttls", "smtp"]);
    }
    let out = command
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client (Debian package openssl)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subject of the certificate smtpd presents after `STARTTLS`.
fn presented_subject(port: u16) -> String {
    s_client(port, true, &[])
        .lines()
        .find_map(|l| l.strip_prefix("subject="))
        .unwrap_or("none")
        .trim()
        .to_owned()
}

/// The size of the RSA key the gateway presents to a client that takes RSA signatures only,
/// or `None` when the handshake fails.
fn rsa_key_bits(port: u16, smtp: bool) -> Option<String> {
    let sigalgs = ["-sigalgs", "rsa_pss_rsae_sha256:rsa_pkcs1_sha256"];
    s_client(port, smtp, &sigalgs)
        .lines()
        .find_map(|l| l.strip_prefix("Server public key is "))
        .map(|bits| bits.trim_end_matches(" bit").to_owned())
}

fn system_logs(data: &std::path::Path) -> String {
    std::fs::read_to_string(data.join("logs/system_logs/system.current")).unwrap_or_default()
}

#[test]
fn the_factory_rsa_certificate_is_presented_once_made_and_from_the_start_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let gateway = Gateway::start(&data, &[]);
    let (smtp, gui) = (gateway.smtp, gateway.gui);
    // The RSA key is made once the services run (it takes seconds on an emulated CPU); they
    // present it to new connections once it is.
    let deadline = Instant::now() + Duration::from_secs(30);
    while rsa_key_bits(smtp, true).as_deref() != Some("2048")
        || rsa_key_bits(gui, false).as_deref() != Some("2048")
    {
        assert!(
            Instant::now() < deadline,
            "no RSA certificate presented on SMTP or HTTPS:\n{}",
            system_logs(&data)
        );
        thread::sleep(Duration::from_millis(100));
    }
    let log = system_logs(&data);
    assert!(
        log.contains("Factory ECDSA P-256 certificate made for mail.example.com"),
        "{log}"
    );
    assert!(
        log.contains("Factory RSA 2048 certificate made for mail.example.com"),
        "{log}"
    );
    let rsa = std::fs::read(data.join("certs/factory-rsa.crt")).expect("factory-rsa.crt");
    let (status, _) = gateway.terminate();
    assert!(status.success(), "{status}");

    // A later start loads the pair before the services start: the first connection gets it.
    let _gateway = Gateway::start(&data, &[]);
    assert_eq!(rsa_key_bits(smtp, true).as_deref(), Some("2048"));
    assert_eq!(rsa_key_bits(gui, false).as_deref(), Some("2048"));
    assert_eq!(
        std::fs::read(data.join("certs/factory-rsa.crt")).expect("factory-rsa.crt"),
        rsa,
        "the factory certificate was made again"
    );
    assert_eq!(
        system_logs(&data)
            .matches("Factory RSA 2048 certificate made")
            .count(),
        1
    );
}

#[test]
fn an_imported_certificate_is_checked_assigned_and_presented() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .args(["-subj", "/CN=imported.example.test", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl req");
    assert!(made.status.success(), "{made:?}");
    let gateway = Gateway::start(&data, &[]);
    assert!(presented_subject(gateway.smtp).contains("mail.example.com"));

    // A key that does not sign the certificate is refused, before anything is staged.
    let factory_key = data.join("certs/factory-ecdsa.key");
    let (ok, out) = cli(
        &data,
        &format!(
            "certconfig import bad {} {}\n",
            cert.display(),
            factory_key.display()
        ),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("the private key does not sign the certificate"),
        "{out}"
    );

    let script = format!(
        "certconfig import corp {} {}\ncertconfig assign inbound corp\ncommit certificate\n\
         certconfig print\ncertconfig delete corp\n",
        cert.display(),
        key.display()
    );
    let (ok, out) = cli(&data, &script);
    assert!(
        !ok,
        "the delete of an assigned certificate is refused:\n{out}"
    );
    assert!(
        out.contains("Certificate corp imported: CN=imported.example.test"),
        "{out}"
    );
    assert!(out.contains("Inbound SMTP: corp"), "{out}");
    assert!(
        out.contains("Certificate corp is assigned to Inbound SMTP"),
        "{out}"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    while !presented_subject(gateway.smtp).contains("imported.example.test") {
        assert!(
            Instant::now() < deadline,
            "smtpd still presents the factory certificate"
        );
        thread::sleep(Duration::from_millis(100));
    }

    // Back to the factory pair, and the certificate can go.
    let (ok, out) = cli(
        &data,
        "certconfig assign inbound factory\ncertconfig delete corp\ncommit back\n",
    );
    assert!(ok, "{out}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !presented_subject(gateway.smtp).contains("mail.example.com") {
        assert!(
            Instant::now() < deadline,
            "smtpd still presents the imported certificate"
        );
        thread::sleep(Duration::from_millis(100));
    }
}
