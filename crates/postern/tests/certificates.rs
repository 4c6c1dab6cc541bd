//! Certificates end to end: one imported through the CLI, checked, assigned to Inbound SMTP,
//! and presented by the running smtpd after the commit.

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::{Gateway, cli};

/// The subject line `openssl s_client -starttls smtp` prints for the gateway's certificate.
fn presented_subject(port: u16) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-starttls", "smtp", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client (Debian package openssl)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("subject="))
        .unwrap_or("none")
        .trim()
        .to_owned()
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
    let factory_key = data.join("certs/factory-rsa.key");
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
