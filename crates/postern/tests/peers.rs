//! Mail through the gateway between third-party peers on loopback: `swaks` submits over
//! STARTTLS, the gateway queues and relays, Postfix's `smtp-sink` receives.

use std::process::{Command, Stdio};
use std::thread;
use std::time::Instant;

mod common;

use common::{Gateway, POLL, TIMEOUT, cli, free_port, wait_mail_log};

/// `swaks` sending one message over STARTTLS to the gateway; its output when it succeeded.
fn swaks(port: u16) -> Option<String> {
    let out = Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{port}")])
        .args(["--from", "alice@example.net", "--to", "bob@example.test"])
        .args(["--tls", "--timeout", "20"])
        .stdin(Stdio::null())
        .output()
        .expect("swaks (installed by cargo xtask ci)");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn swaks_in_over_starttls_and_smtp_sink_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let gateway = Gateway::start(data, &[]);
    let sink_port = free_port();
    let (ok, out) = cli(
        data,
        &format!(
            "listenerconfig rcptaccess new example.test accept\nsmtproutes new example.test 127.0.0.1:{sink_port}\ncommit peers\n"
        ),
    );
    assert!(ok, "{out}");
    // Postfix's sink, answering 250 to everything. (Its `-M 1` would exit on the final dot
    // before answering it, which the gateway rightly takes as a failed delivery.)
    let mut sink = Command::new("smtp-sink")
        .args(["-u", "nobody"])
        .arg(format!("127.0.0.1:{sink_port}"))
        .arg("10")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("smtp-sink (Postfix, installed by cargo xtask ci)");

    let deadline = Instant::now() + TIMEOUT;
    let said = loop {
        if let Some(said) = swaks(gateway.smtp) {
            break said;
        }
        assert!(Instant::now() < deadline, "swaks never got its message in");
        thread::sleep(POLL);
    };
    assert!(said.contains("TLS started"), "{said}");
    assert!(said.contains("<~  250 "), "{said}");
    wait_mail_log(data, |l| {
        l.contains(" Info: ICID ") && l.contains(" TLS success protocol TLSv1.2 cipher ")
    });

    // The sink's 250 to the final dot is what makes the gateway log the delivery done.
    let log = wait_mail_log(data, |l| l.contains("Message finished MID"));
    assert!(log.contains("Message done DCID"), "{log}");
    assert!(
        sink.try_wait().expect("try_wait").is_none(),
        "smtp-sink ended early"
    );
    let _ = sink.kill();
    let _ = sink.wait();
    drop(gateway);
}
