//! `cargo xtask bench [startup] [tls] [smtp] [image]`: measured figures of the release build, printed as
//! a table; all of them when none is named.
//!
//! `startup`: time from `postern run` to `postern: ready` (first start, which creates the data
//! directory, and restart on existing data), resident memory of the supervisor and its services
//! when idle, and commit latency seen by a CLI session.
//!
//! `tls`: the TLS engine beside OpenSSL on the same machine, with the `tls_bench` example of
//! postern-tls: full TLS 1.3 handshakes per second with the server on one core (our acceptor,
//! then `openssl s_server`, driven by the same load client on the other core, both with one
//! ECDSA P-256 certificate), and AES-256-GCM and ChaCha20-Poly1305 throughput through a TLS 1.3
//! connection beside `openssl speed -evp` on 16 KiB blocks, over loopback TCP and with the
//! records handed over in memory (the engine's own cost, without the kernel's).
//!
//! `smtp` (`bench/smtp.rs`): Postern beside a private Postfix 3.7 as relays on loopback, both
//! durable: messages per second from `smtp-source` to `smtp-sink`, and with STARTTLS on both
//! legs; memory per idle inbound connection.
//!
//! `image` (`bench/image.rs`): the appliance image in QEMU against its targets: boot to the SMTP
//! banner (first and later boot), the compressed image, Postern's memory in the idle VM.

mod image;
mod smtp;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use xshell::{Cmd, Shell, cmd};

pub(crate) struct Bench {
    pub(crate) which: Vec<String>,
}

impl Bench {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let which: Vec<&str> = match self.which.as_slice() {
            [] => vec!["startup", "tls", "smtp", "image"],
            named => named.iter().map(String::as_str).collect(),
        };
        // Every name is checked before the first benchmark starts.
        let benchmarks = which
            .into_iter()
            .map(|name| -> anyhow::Result<fn(&Shell) -> anyhow::Result<()>> {
                Ok(match name {
                    "startup" => startup,
                    "tls" => tls,
                    "smtp" => smtp::smtp,
                    "image" => image::image,
                    other => {
                        bail!("unknown benchmark '{other}'; available: startup, tls, smtp, image")
                    }
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for benchmark in benchmarks {
            benchmark(sh)?;
        }
        Ok(())
    }
}

const RUNS: usize = 5;
const COMMITS: usize = 50;

fn startup(sh: &Shell) -> anyhow::Result<()> {
    crate::deps::ensure(sh, crate::deps::BUILD_PACKAGES)?;
    cmd!(sh, "cargo build --release --locked --package postern").run()?;
    let binary = crate::target_dir().join("release/postern");
    let root = crate::target_dir().join("bench/startup");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root)?;
    let password = root.join("password");
    fs::write(&password, "bench-password\n")?;

    let mut first = Vec::new();
    let mut again = Vec::new();
    let mut rss = Vec::new();
    for run in 0..RUNS {
        let data = root.join(format!("data{run}"));
        let (gateway, took) = start(&binary, &data, &password)?;
        first.push(took);
        stop(gateway)?;
        let (gateway, took) = start(&binary, &data, &password)?;
        again.push(took);
        // Let start-up allocations settle before reading memory.
        std::thread::sleep(Duration::from_millis(500));
        rss.push(tree_rss_kib(gateway.child.id())?);
        stop(gateway)?;
    }

    let data = root.join("data-commit");
    let (gateway, _) = start(&binary, &data, &password)?;
    let round_trip = cli_session(&binary, &data, &vec!["version"; COMMITS].join("\n"))?;
    let script: Vec<String> = (0..COMMITS)
        .map(|i| {
            let selection = if i % 2 == 0 { "1-3" } else { "2-3" };
            format!("sslconfig inbound {selection}\ncommit bench {i}")
        })
        .collect();
    let commits = cli_session(&binary, &data, &script.join("\n"))?;
    stop(gateway)?;

    println!("\nPostern start-up and control plane (release build, {RUNS} runs each)");
    println!(
        "{:<52}{:>10}{:>10}{:>10}",
        "measure", "min", "median", "max"
    );
    row("run -> ready, first start (ms)", &ms(&first));
    row("run -> ready, existing data (ms)", &ms(&again));
    row(
        "idle RSS, supervisor + services (KiB)",
        &rss.iter().map(|k| *k as f64).collect::<Vec<_>>(),
    );
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / COMMITS as f64;
    println!(
        "commit latency, CLI session: {:.2} ms per stage+commit, {:.2} ms per read-only round trip ({COMMITS} each)",
        per(commits),
        per(round_trip)
    );
    Ok(())
}

struct Gateway {
    child: Child,
}

/// Starts `postern run` and waits for its ready line; answers the time that took.
///
/// A fresh data directory gets free ports (an appliance running beside the bench, as
/// `cargo xtask run` does, holds the defaults); a later start keeps the ones it got.
fn start(binary: &Path, data: &Path, password: &Path) -> anyhow::Result<(Gateway, Duration)> {
    let ports = free_ports(3)?;
    let began = Instant::now();
    let mut child = Command::new(binary)
        .arg("run")
        .arg("--data")
        .arg(data)
        .args(["--hostname", "bench.example.com", "--admin-password-file"])
        .arg(password)
        .args(["--smtp", &format!("127.0.0.1:{}", ports[0])])
        .args(["--gui", &format!("127.0.0.1:{}", ports[1])])
        .args(["--ngui", &format!("127.0.0.1:{}", ports[2])])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting postern run")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line == "postern: ready" => break,
            Some(Ok(_)) => {}
            _ => bail!("postern run ended before it was ready"),
        }
    }
    Ok((Gateway { child }, began.elapsed()))
}

fn stop(mut gateway: Gateway) -> anyhow::Result<()> {
    Command::new("kill")
        .arg("-TERM")
        .arg(gateway.child.id().to_string())
        .status()?;
    gateway.child.wait()?;
    Ok(())
}

/// Runs one CLI session with `script` on stdin; answers its wall time.
fn cli_session(binary: &Path, data: &Path, script: &str) -> anyhow::Result<Duration> {
    let began = Instant::now();
    let mut child = Command::new(binary)
        .arg("cli")
        .arg("--data")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    child
        .stdin
        .take()
        .context("no stdin")?
        .write_all(format!("{script}\n").as_bytes())?;
    let status = child.wait()?;
    if !status.success() {
        bail!("the CLI session failed: {status}");
    }
    Ok(began.elapsed())
}

/// Resident memory of a process and all its descendants, in KiB.
fn tree_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let mut total = 0;
    let mut pending = vec![pid];
    while let Some(pid) = pending.pop() {
        let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        for task in fs::read_dir(format!("/proc/{pid}/task"))? {
            let children: PathBuf = task?.path().join("children");
            let text = fs::read_to_string(children).unwrap_or_default();
            pending.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    Ok(total)
}

fn ms(durations: &[Duration]) -> Vec<f64> {
    durations.iter().map(|d| d.as_secs_f64() * 1000.0).collect()
}

fn row(label: &str, values: &[f64]) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    let median = sorted[sorted.len() / 2];
    println!("{label:<52}{min:>10.1}{median:>10.1}{max:>10.1}");
}

/// How long each handshake measurement lasts.
const HANDSHAKE_SECONDS: u32 = 10;
/// Connections the load client keeps in flight.
const CONCURRENCY: usize = 16;
/// `openssl speed -seconds` and the aws-lc-rs seal loop.
const CIPHER_SECONDS: u32 = 3;
/// Bytes through the connection per bulk run, and runs per suite (the best one counts).
const BULK_MIB: u32 = 2048;
const BULK_RUNS: usize = 3;
/// The bulk suites: name for `tls_bench`, for `openssl speed -evp`, and in the table.
const SUITES: [(&str, &str, &str); 2] = [
    ("aes256", "aes-256-gcm", "AES-256-GCM"),
    ("chacha", "chacha20-poly1305", "ChaCha20-Poly1305"),
];

fn tls(sh: &Shell) -> anyhow::Result<()> {
    crate::deps::ensure(sh, crate::deps::BUILD_PACKAGES)?;
    // The servers are pinned with util-linux's taskset; openssl is what we compare with.
    crate::deps::ensure(sh, &["openssl", "util-linux"])?;
    cmd!(
        sh,
        "cargo build --release --locked -p postern-tls --example tls_bench"
    )
    .run()?;
    let bench = crate::target_dir().join("release/examples/tls_bench");
    let dir = crate::target_dir().join("bench/tls");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    cmd!(sh, "{bench} cert --out {dir}").run()?;
    let (cert, key) = (dir.join("bench-ecdsa.crt"), dir.join("bench-ecdsa.key"));
    let openssl = cmd!(sh, "openssl version").quiet().read()?;
    let openssl: String = openssl
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let load_average = fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let figures = TlsFigures {
        openssl,
        load_average,
        ours: postern_handshakes(sh, &bench, &cert, &key, &dir)?,
        theirs: openssl_handshakes(sh, &bench, &cert, &key, &dir, CONCURRENCY)?,
        serial: openssl_handshakes(sh, &bench, &cert, &key, &dir, 1)?,
        ciphers: SUITES
            .iter()
            .map(|&(suite, evp, label)| {
                Ok(CipherFigures {
                    label,
                    openssl: openssl_speed(sh, evp)?,
                    through_tls: bulk(sh, &bench, suite)?,
                    in_memory: records(sh, &bench, suite)?,
                    seal: aws_lc_seal(sh, &bench, suite)?,
                })
            })
            .collect::<anyhow::Result<_>>()?,
    };
    figures.print();
    Ok(())
}

/// Everything `bench tls` measured.
struct TlsFigures {
    /// `OpenSSL 3.0.19`.
    openssl: String,
    load_average: String,
    ours: HandshakeRun,
    /// As many s_server processes as the client has connections in flight.
    theirs: HandshakeRun,
    /// One s_server.
    serial: HandshakeRun,
    ciphers: Vec<CipherFigures>,
}

/// One bulk cipher: OpenSSL's raw speed, ours through TLS and raw.
struct CipherFigures {
    label: &'static str,
    /// `openssl speed -evp`, 16 KiB blocks, MB per user CPU-second.
    openssl: f64,
    through_tls: Bulk,
    /// The same engine with the records handed over in memory: MB per CPU-second of the
    /// busier side, without the kernel's TCP work.
    in_memory: f64,
    /// aws-lc-rs sealing 16 KiB blocks, MB per CPU-second.
    seal: f64,
}

impl TlsFigures {
    fn print(&self) {
        let (ours, theirs, serial) = (&self.ours, &self.theirs, &self.serial);
        println!(
            "\nTLS 1.3: Postern (rustls on aws-lc-rs) and {}, one ECDSA P-256 certificate",
            self.openssl
        );
        println!(
            "{:<62}{:>10}{:>10}{:>8}  target",
            "measure", "Postern", "OpenSSL", "ratio"
        );
        compare(
            &format!("full handshakes/s, server on 1 core (s_server x{CONCURRENCY})"),
            ours.per_second,
            theirs.per_second,
            Some(1.3),
        );
        compare(
            "  the same, per CPU-second of the server",
            ours.per_cpu_second,
            theirs.per_cpu_second,
            None,
        );
        compare(
            "  beside one s_server (serves one connection at a time)",
            ours.per_second,
            serial.per_second,
            None,
        );
        for cipher in &self.ciphers {
            let label = cipher.label;
            compare(
                &format!("{label} through TLS 1.3, MB/s (vs openssl speed, 16 KiB)"),
                cipher.through_tls.per_second,
                cipher.openssl,
                Some(0.9),
            );
            compare(
                "  the same, per CPU-second of the busier side",
                cipher.through_tls.per_cpu_second,
                cipher.openssl,
                None,
            );
            compare(
                "  records in memory, no TCP, per CPU-second of the busier side",
                cipher.in_memory,
                cipher.openssl,
                None,
            );
            compare(
                &format!("  {label} raw seal, 16 KiB blocks, aws-lc-rs, MB/CPU-s"),
                cipher.seal,
                cipher.openssl,
                None,
            );
        }
        println!(
            "\nserver core busy during the handshake runs: Postern {:.0}%, s_server x{CONCURRENCY} \
             {:.0}%, one s_server {:.0}% (below ~95%, something besides the server limited the \
             figure; the per-CPU-second one holds)",
            ours.busy * 100.0,
            theirs.busy * 100.0,
            serial.busy * 100.0
        );
        println!(
            "failed handshakes: Postern {}, s_server x{CONCURRENCY} {}, one s_server {}",
            ours.failures, theirs.failures, serial.failures
        );
        println!(
            "load client: {CONCURRENCY} connections in flight on core 1, X25519, no resumption, no \
             certificate check, {HANDSHAKE_SECONDS} s per server; s_server without CA store"
        );
        println!(
            "openssl speed counts user CPU time; the TLS figure is wall time for {BULK_MIB} MiB in \
             1 MiB writes, client and server on their own threads, best of {BULK_RUNS}"
        );
        println!("load average at the start: {}", self.load_average.trim());
    }
}

/// What one handshake measurement found.
struct HandshakeRun {
    per_second: f64,
    per_cpu_second: f64,
    /// The share of its core the server used.
    busy: f64,
    failures: u64,
}

/// Our acceptor on core 0, the load client on core 1.
fn postern_handshakes(
    sh: &Shell,
    bench: &Path,
    cert: &Path,
    key: &Path,
    dir: &Path,
) -> anyhow::Result<HandshakeRun> {
    let ports = free_ports(1)?;
    let port = ports[0].to_string();
    let server = Server::start(
        cmd!(
            sh,
            "taskset -c 0 {bench} serve --port {port} --cert {cert} --key {key}"
        ),
        ports[0],
        &dir.join("postern-serve.log"),
    )?;
    load(sh, bench, &[server], &ports)
}

/// `processes` instances of `openssl s_server` on core 0, the same load client on core 1. One
/// s_server serves one connection at a time; as many as the client has connections in flight
/// give OpenSSL the concurrency our acceptor has. Without `-no-CA*`, s_server searches the
/// system's CA directory for an issuer on every handshake (a third of its time here), work our
/// acceptor does not do: OpenSSL is measured at its best.
fn openssl_handshakes(
    sh: &Shell,
    bench: &Path,
    cert: &Path,
    key: &Path,
    dir: &Path,
    processes: usize,
) -> anyhow::Result<HandshakeRun> {
    let ports = free_ports(processes)?;
    let log = dir.join(format!("openssl-s_server-x{processes}.log"));
    let servers = ports
        .iter()
        .map(|&port| {
            let accept = format!("127.0.0.1:{port}");
            Server::start(
                cmd!(
                    sh,
                    "taskset -c 0 openssl s_server -tls1_3 -no-CAfile -no-CApath -no-CAstore -cert {cert} -key {key} -accept {accept} -quiet"
                ),
                port,
                &log,
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    load(sh, bench, &servers, &ports)
}

/// Runs the load client against `ports` and reads the servers' CPU time around it.
fn load(
    sh: &Shell,
    bench: &Path,
    servers: &[Server],
    ports: &[u16],
) -> anyhow::Result<HandshakeRun> {
    let ports = ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let (seconds, concurrency) = (HANDSHAKE_SECONDS.to_string(), CONCURRENCY.to_string());
    let cpu = || {
        servers
            .iter()
            .map(Server::cpu)
            .sum::<anyhow::Result<Duration>>()
    };
    let (before, began) = (cpu()?, Instant::now());
    let report = cmd!(
        sh,
        "taskset -c 1 {bench} load --port {ports} --seconds {seconds} --concurrency {concurrency}"
    )
    .read()?;
    let (used, elapsed) = (
        (cpu()? - before).as_secs_f64(),
        began.elapsed().as_secs_f64(),
    );
    let handshakes = field(&report, "handshakes")?;
    if handshakes == 0.0 {
        bail!("no handshake succeeded: {report}");
    }
    Ok(HandshakeRun {
        per_second: field(&report, "per_second")?,
        per_cpu_second: handshakes / used,
        busy: used / elapsed,
        failures: field(&report, "failures")? as u64,
    })
}

/// A server process for one measurement, killed and reaped when dropped: none outlives the
/// benchmark, whether it ends or fails.
struct Server {
    child: Child,
}

impl Server {
    /// Starts `command` and waits until it accepts connections on `port`.
    fn start(command: Cmd<'_>, port: u16, log: &Path) -> anyhow::Result<Self> {
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut command = Command::from(command);
        // s_server reads its stdin and ends at its end: give it an open pipe that stays empty.
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = command
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        let mut server = Self { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait()? {
                bail!("{command:?} ended ({status}); see {}", log.display());
            }
            if Instant::now() > deadline {
                bail!(
                    "{command:?} does not listen on port {port}; see {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// The CPU time the process has used so far, all its threads.
    fn cpu(&self) -> anyhow::Result<Duration> {
        let mut nanos = 0;
        for task in fs::read_dir(format!("/proc/{}/task", self.child.id()))? {
            let schedstat = fs::read_to_string(task?.path().join("schedstat"))?;
            nanos += schedstat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .context("unreadable schedstat")?;
        }
        Ok(Duration::from_nanos(nanos))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `count` distinct loopback ports that nothing listens on now.
fn free_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()?)
}

/// OpenSSL's speed for `cipher` (an `-evp` name) on 16 KiB blocks on core 0, in MB/s.
fn openssl_speed(sh: &Shell, cipher: &str) -> anyhow::Result<f64> {
    let seconds = CIPHER_SECONDS.to_string();
    // Only the 16 KiB column is compared: -bytes measures only that block size.
    let output = cmd!(
        sh,
        "taskset -c 0 openssl speed -evp {cipher} -seconds {seconds} -bytes 16384"
    )
    .ignore_stderr()
    .read()?;
    speed_16k(&output)
        .with_context(|| format!("no 16384-byte figure in the output of openssl speed:\n{output}"))
}

/// The 16384-byte column of `openssl speed` output, in MB/s. Its figures are in 1000s of bytes
/// per second, suffixed `k`, one per block size of the `type` header line; the row's name may
/// hold spaces, so the figures are counted from the right.
fn speed_16k(output: &str) -> Option<f64> {
    let lines: Vec<&str> = output.lines().collect();
    let header = lines.iter().rposition(|l| l.starts_with("type "))?;
    let sizes: Vec<&str> = lines[header]
        .split_whitespace()
        .skip(1)
        .step_by(2)
        .collect();
    let column = sizes.iter().position(|s| *s == "16384")?;
    let row: Vec<&str> = lines.get(header + 1)?.split_whitespace().collect();
    let first = row.len().checked_sub(sizes.len()).filter(|&f| f > 0)?;
    let thousands: f64 = row[first + column].strip_suffix('k')?.parse().ok()?;
    Some(thousands / 1000.0)
}

/// Throughput through one TLS 1.3 connection.
struct Bulk {
    /// MB/s of wall time.
    per_second: f64,
    /// MB per CPU-second of whichever side, sender or receiver, used more.
    per_cpu_second: f64,
}

/// The best of [`BULK_RUNS`] transfers of [`BULK_MIB`] MiB with `suite`.
fn bulk(sh: &Shell, bench: &Path, suite: &str) -> anyhow::Result<Bulk> {
    let mib = BULK_MIB.to_string();
    let mut best = Bulk {
        per_second: 0.0,
        per_cpu_second: 0.0,
    };
    for _ in 0..BULK_RUNS {
        let report = cmd!(sh, "{bench} bulk --suite {suite} --mib {mib}").read()?;
        let run = Bulk {
            per_second: field(&report, "mb_per_s")?,
            per_cpu_second: field(&report, "mb_per_cpu_s")?,
        };
        if run.per_second > best.per_second {
            best = run;
        }
    }
    Ok(best)
}

/// [`BULK_MIB`] MiB with `suite` between a client and a server connection in one thread on
/// core 0, the records handed over in memory: MB per CPU-second of the busier side.
fn records(sh: &Shell, bench: &Path, suite: &str) -> anyhow::Result<f64> {
    let mib = BULK_MIB.to_string();
    let report = cmd!(
        sh,
        "taskset -c 0 {bench} records --suite {suite} --mib {mib}"
    )
    .read()?;
    Ok(field(&report, "sender_mb_per_cpu_s")?.min(field(&report, "receiver_mb_per_cpu_s")?))
}

/// aws-lc-rs sealing 16 KiB blocks with `suite` on core 0, in MB per CPU-second: the measure
/// `openssl speed` takes of OpenSSL.
fn aws_lc_seal(sh: &Shell, bench: &Path, suite: &str) -> anyhow::Result<f64> {
    let seconds = CIPHER_SECONDS.to_string();
    let report = cmd!(
        sh,
        "taskset -c 0 {bench} seal --suite {suite} --seconds {seconds}"
    )
    .read()?;
    field(&report, "mb_per_cpu_s")
}

/// The number after the word `key` in a `key value key value …` report of `tls_bench`.
fn field(report: &str, key: &str) -> anyhow::Result<f64> {
    let mut words = report.split_whitespace();
    while let Some(word) = words.next() {
        if word == key {
            let value = words.next().unwrap_or_default();
            return value
                .parse()
                .with_context(|| format!("{key} is '{value}' in: {report}"));
        }
    }
    bail!("no {key} in: {report}")
}

fn compare(label: &str, ours: f64, theirs: f64, target: Option<f64>) {
    let ratio = ours / theirs;
    let target = match target {
        Some(t) if ratio >= t => format!(">= {t:.2}, met"),
        Some(t) => format!(">= {t:.2}, not met"),
        None => "-".to_owned(),
    };
    println!("{label:<62}{ours:>10.0}{theirs:>10.0}{ratio:>8.2}  {target}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_16k_reads_the_last_column_of_a_full_table() {
        let output = "\
version: 3.0.19
The 'numbers' are in 1000s of bytes per second processed.
type             16 bytes     64 bytes    256 bytes   1024 bytes   8192 bytes  16384 bytes
AES-256-GCM     512345.67k  1234567.89k  2000000.00k  2300000.00k  2400000.00k  2450123.45k
";
        assert!(speed_16k(output).is_some_and(|mb| (mb - 2450.12345).abs() < 1e-6));
    }

    #[test]
    fn speed_16k_reads_a_single_block_size_and_a_name_with_spaces() {
        let output = "\
The 'numbers' are in 1000s of bytes per second processed.
type          16384 bytes
ChaCha20-Poly1305   764288.78k
";
        assert!(speed_16k(output).is_some_and(|mb| (mb - 764.28878).abs() < 1e-6));
        let spaced = "type  1024 bytes 16384 bytes\ndes ede3  1000.00k 2000.00k\n";
        assert_eq!(speed_16k(spaced), Some(2.0));
    }

    #[test]
    fn speed_16k_refuses_output_without_the_column() {
        assert_eq!(speed_16k("type  1024 bytes\nAES-256-GCM  1000.00k\n"), None);
        assert_eq!(speed_16k("Doing AES-256-GCM for 3s"), None);
    }

    #[test]
    fn field_reads_the_number_after_its_key() {
        let report = "handshakes 1234 seconds 10.000 per_second 123.4 failures 0";
        assert_eq!(field(report, "per_second").ok(), Some(123.4));
        assert_eq!(field(report, "handshakes").ok(), Some(1234.0));
        assert!(field(report, "mb_per_s").is_err());
    }
}
