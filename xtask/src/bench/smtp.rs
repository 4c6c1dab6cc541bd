//! `cargo xtask bench smtp`: Postern beside Postfix 3.7 (Debian's) as relays on loopback, each
//! with its durable queue: Postfix's `smtp-source` sends [`MESSAGES`] messages of [`SIZE`]
//! bytes from [`SESSIONS`] sessions at a time, one message per connection, to the relay, which
//! relays them for `example.test` to a sink; the figure is messages per second from the first
//! connection until the sink has them all. The sink is Postfix's `smtp-sink` in clear text. With
//! STARTTLS on both legs the client is the `load` of the `smtp_bench` example of postern-smtp and
//! the sink its `sink` (Postfix's tools speak no TLS), the same for both relays. Then resident
//! memory per idle inbound connection, after EHLO and after STARTTLS, held open by its `idle`.
//!
//! Postern runs as `postern run` in host mode in a fresh data directory, set up through its CLI
//! (RAT and SMTP route for `example.test`, listener limits above the load, TLS v1.2–v1.3 on
//! Inbound and Outbound SMTP so that every leg negotiates what Postfix does). Postfix runs as a
//! private instance (`postfix -c DIR start`, never the system one) with its configuration,
//! queue and data directories under `target/bench/smtp/postfix/`, relaying `example.test` to
//! the sink with no DNS and no local delivery, Debian's defaults otherwise (100 processes per
//! service, 20 connections per destination). Postfix fsyncs each queue file before its `250`;
//! Postern's queue fdatasyncs before its `250` with group commit.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use xshell::{Cmd, Shell, cmd};

use super::{cli_session, field, free_ports};

/// Messages per run, their payload, and the client's sessions at a time (`smtp-source -m -l -s`).
const MESSAGES: u32 = 5000;
const SIZE: u32 = 4096;
const SESSIONS: u32 = 20;
/// Runs of each throughput measurement; the best counts.
const RUNS: usize = 2;
/// Idle connections held open to Postern.
const IDLE: u32 = 1000;
/// Idle connections held open to Postfix: one smtpd process each, and Postfix runs at most
/// `default_process_limit` (100) of them.
const POSTFIX_IDLE: u32 = 100;
/// How long one throughput run may take before it is given up.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// File descriptors for Postern and the idle client: one per connection, and some.
const NOFILE: u32 = 8192;

const SENDER: &str = "a@example.org";
const RECIPIENT: &str = "b@example.test";
const DOMAIN: &str = "example.test";
const HOSTNAME: &str = "bench.example.com";

/// The target the product sets: Postern's messages/s at least twice Postfix's, both durable.
const THROUGHPUT_TARGET: f64 = 2.0;
/// And at most this much resident memory per idle inbound connection, KiB.
const IDLE_TARGET_KIB: f64 = 64.0;

pub(super) fn smtp(sh: &Shell) -> anyhow::Result<()> {
    if cmd!(sh, "id -u").quiet().read()?.trim() != "0" {
        bail!("bench smtp runs a private Postfix instance, which needs root");
    }
    crate::deps::ensure(sh, crate::deps::BUILD_PACKAGES)?;
    crate::deps::ensure(sh, crate::deps::BENCH_PACKAGES)?;
    cmd!(sh, "cargo build --release --locked --package postern").run()?;
    cmd!(
        sh,
        "cargo build --release --locked -p postern-smtp --example smtp_bench"
    )
    .run()?;
    let release = crate::target_dir().join("release");
    let root = crate::target_dir().join("bench/smtp");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root)?;
    let tools = Tools {
        postern: release.join("postern"),
        bench: release.join("examples/smtp_bench"),
        password: root.join("password"),
        cert: root.join("bench-ecdsa.crt"),
        key: root.join("bench-ecdsa.key"),
        root,
    };
    fs::write(&tools.password, "bench-password\n")?;
    let bench = &tools.bench;
    let out = &tools.root;
    cmd!(sh, "{bench} cert --out {out}").run()?;
    let postfix = cmd!(sh, "postconf -d -h mail_version").quiet().read()?;
    let busy_before = Busy::now();

    let mut runs = Vec::new();
    for run in 1..=RUNS {
        for (leg, relays) in [
            (Leg::Plain, &[Relay::Postern, Relay::Postfix][..]),
            (Leg::StartTls, &Relay::ALL[..]),
        ] {
            for &relay in relays {
                let figures = throughput(sh, &tools, relay, leg, run)?;
                eprintln!(
                    "xtask: {} {} run {run}: {:.1} messages/s",
                    relay.name(),
                    leg.name(),
                    figures.per_second
                );
                runs.push(figures);
            }
        }
    }
    let mut idle = Vec::new();
    for leg in [Leg::Plain, Leg::StartTls] {
        for relay in [Relay::Postern, Relay::Postfix] {
            idle.push(idle_memory(sh, &tools, relay, leg)?);
        }
    }
    let figures = SmtpFigures {
        postfix: postfix.trim().to_owned(),
        runs,
        idle,
        busy: [busy_before, Busy::now()],
    };
    figures.print();
    Ok(())
}

/// The binaries and files every measurement uses.
struct Tools {
    postern: PathBuf,
    /// The `smtp_bench` example.
    bench: PathBuf,
    /// Postern's admin password, for a fresh data directory.
    password: PathBuf,
    /// The certificate and key of the TLS sink and of Postfix's smtpd.
    cert: PathBuf,
    key: PathBuf,
    /// `target/bench/smtp`.
    root: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relay {
    Postern,
    Postfix,
    /// Postfix with `smtp_tls_connection_reuse = yes`: its smtp client keeps TLS connections to
    /// the sink open for more messages, as it does clear-text ones (by default it does not).
    /// Not Debian's default, so not what the target compares with; shown beside it.
    PostfixTlsReuse,
}

impl Relay {
    const ALL: [Relay; 3] = [Self::Postern, Self::Postfix, Self::PostfixTlsReuse];

    fn name(self) -> &'static str {
        match self {
            Self::Postern => "postern",
            Self::Postfix => "postfix",
            Self::PostfixTlsReuse => "postfix-tls-reuse",
        }
    }
}

/// Clear text, or STARTTLS on both legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leg {
    Plain,
    StartTls,
}

impl Leg {
    fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::StartTls => "starttls",
        }
    }
}

/// One throughput run.
struct Throughput {
    relay: Relay,
    leg: Leg,
    per_second: f64,
    /// CPU time of the relay's processes per message, ms.
    cpu_ms: f64,
    /// `PROTOCOL/CIPHER` the client and the sink negotiated with the relay (STARTTLS runs).
    inbound_tls: String,
    outbound_tls: String,
    /// Connections the sink took.
    sink_sessions: f64,
}

/// Sends [`MESSAGES`] through `relay` and times them until the sink has them all.
fn throughput(
    sh: &Shell,
    tools: &Tools,
    relay: Relay,
    leg: Leg,
    run: usize,
) -> anyhow::Result<Throughput> {
    let name = format!("{}-{}-{run}", relay.name(), leg.name());
    let sink_port = free_ports(1)?[0];
    let sink_log = tools.root.join(format!("{name}-sink.log"));
    let (messages, port) = (MESSAGES.to_string(), sink_port.to_string());
    let mut sink = match leg {
        Leg::Plain => {
            let address = format!("127.0.0.1:{sink_port}");
            Process::spawn(
                cmd!(sh, "smtp-sink -u nobody -M {messages} {address} 1000"),
                &sink_log,
            )?
        }
        Leg::StartTls => {
            let (bench, cert, key) = (&tools.bench, &tools.cert, &tools.key);
            Process::spawn(
                cmd!(
                    sh,
                    "{bench} sink --port {port} --messages {messages} --cert {cert} --key {key}"
                ),
                &sink_log,
            )?
        }
    };
    sink.wait_listening(sink_port)?;
    let instance = Instance::start(sh, tools, relay, &name, sink_port)?;
    let (before, began) = (instance.cpu()?, Instant::now());
    let relay_address = format!("127.0.0.1:{}", instance.port());
    let relay_port = instance.port().to_string();
    let (sessions, size) = (SESSIONS.to_string(), SIZE.to_string());
    let load_log = tools.root.join(format!("{name}-load.log"));
    let mut load = match leg {
        Leg::Plain => Process::spawn(
            cmd!(
                sh,
                "smtp-source -s {sessions} -m {messages} -l {size} -f {SENDER} -t {RECIPIENT} {relay_address}"
            ),
            &load_log,
        )?,
        Leg::StartTls => {
            let bench = &tools.bench;
            Process::spawn(
                cmd!(
                    sh,
                    "{bench} load --port {relay_port} --sessions {sessions} --messages {messages} --size {size} --from {SENDER} --to {RECIPIENT} --starttls"
                ),
                &load_log,
            )?
        }
    };
    // Done when the sink has the last message; a client that fails first ends the run.
    let deadline = began + RUN_TIMEOUT;
    let sink_status = loop {
        if let Some(status) = sink.child.try_wait()? {
            break status;
        }
        if let Some(status) = load.child.try_wait()?
            && !status.success()
        {
            bail!(
                "the load client failed ({status}) during {name}; see {}",
                load_log.display()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the sink did not get {MESSAGES} messages within {} s during {name}; see {}",
                RUN_TIMEOUT.as_secs(),
                tools.root.display()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = began.elapsed().as_secs_f64();
    let cpu = instance.cpu()? - before;
    if !sink_status.success() {
        bail!(
            "the sink failed ({sink_status}); see {}",
            sink_log.display()
        );
    }
    let load_status = load.wait_within(Duration::from_secs(60))?;
    if !load_status.success() {
        bail!(
            "the load client failed ({load_status}); see {}",
            load_log.display()
        );
    }
    let (load_report, sink_report) = (load.stdout()?, sink.stdout()?);
    let (inbound_tls, outbound_tls, sink_sessions) = match leg {
        Leg::Plain => ("-".to_owned(), "-".to_owned(), f64::NAN),
        Leg::StartTls => (
            word(&load_report, "tls")?,
            word(&sink_report, "tls")?,
            field(&sink_report, "sessions")?,
        ),
    };
    drop(instance);
    Ok(Throughput {
        relay,
        leg,
        per_second: f64::from(MESSAGES) / elapsed,
        cpu_ms: cpu.as_secs_f64() * 1000.0 / f64::from(MESSAGES),
        inbound_tls,
        outbound_tls,
        sink_sessions,
    })
}

/// Memory per idle inbound connection.
struct Idle {
    relay: Relay,
    leg: Leg,
    connections: u32,
    /// Growth per connection, KiB: resident, and proportional (shared pages divided among the
    /// processes that map them).
    rss: f64,
    pss: f64,
    tls: String,
}

/// Opens idle connections to a fresh relay and reads how its memory grew.
fn idle_memory(sh: &Shell, tools: &Tools, relay: Relay, leg: Leg) -> anyhow::Result<Idle> {
    let name = format!("{}-{}-idle", relay.name(), leg.name());
    // No mail flows: the route points at a port nothing listens on.
    let instance = Instance::start(sh, tools, relay, &name, free_ports(1)?[0])?;
    let connections = match relay {
        Relay::Postern => IDLE,
        Relay::Postfix | Relay::PostfixTlsReuse => POSTFIX_IDLE,
    };
    std::thread::sleep(Duration::from_secs(1));
    let before = instance.memory()?;
    let (bench, port, count) = (
        &tools.bench,
        instance.port().to_string(),
        connections.to_string(),
    );
    let starttls = (leg == Leg::StartTls).then_some("--starttls");
    let nofile = format!("--nofile={NOFILE}:{NOFILE}");
    let log = tools.root.join(format!("{name}-client.log"));
    let mut client = Process::spawn(
        cmd!(
            sh,
            "prlimit {nofile} -- {bench} idle --port {port} --connections {count} {starttls...}"
        ),
        &log,
    )?;
    let stdout = client.child.stdout.take().context("no stdout")?;
    let report = first_line(stdout, |l| l.starts_with("idle "), Duration::from_secs(120))
        .with_context(|| format!("the idle client did not connect; see {}", log.display()))?;
    std::thread::sleep(Duration::from_secs(1));
    let after = instance.memory()?;
    drop(client);
    drop(instance);
    let per = |b: u64, a: u64| (a as f64 - b as f64) / f64::from(connections);
    Ok(Idle {
        relay,
        leg,
        connections,
        rss: per(before.rss, after.rss),
        pss: per(before.pss, after.pss),
        tls: match leg {
            Leg::Plain => "-".to_owned(),
            Leg::StartTls => word(&report, "tls")?,
        },
    })
}

/// A running relay, stopped when dropped.
enum Instance {
    Postern(Postern),
    Postfix(Postfix),
}

impl Instance {
    /// A fresh relay named `name` that relays `example.test` to 127.0.0.1:`sink_port`, once it
    /// accepts a recipient there.
    fn start(
        sh: &Shell,
        tools: &Tools,
        relay: Relay,
        name: &str,
        sink_port: u16,
    ) -> anyhow::Result<Self> {
        let instance = match relay {
            Relay::Postern => Self::Postern(Postern::start(sh, tools, name, sink_port)?),
            Relay::Postfix | Relay::PostfixTlsReuse => {
                let reuse = relay == Relay::PostfixTlsReuse;
                Self::Postfix(Postfix::start(sh, tools, name, sink_port, reuse)?)
            }
        };
        wait_relaying(instance.port())
            .with_context(|| format!("{name} does not accept mail for {DOMAIN}"))?;
        Ok(instance)
    }

    fn port(&self) -> u16 {
        match self {
            Self::Postern(p) => p.port,
            Self::Postfix(p) => p.port,
        }
    }

    /// CPU time used so far by all the relay's processes, including those that ended.
    fn cpu(&self) -> anyhow::Result<Duration> {
        let pid = match self {
            Self::Postern(p) => p.child.id(),
            Self::Postfix(p) => p.master()?,
        };
        tree_cpu(pid)
    }

    /// Postern: its smtpd process, which holds the connections. Postfix: all its processes,
    /// one smtpd per connection among them.
    fn memory(&self) -> anyhow::Result<Memory> {
        match self {
            Self::Postern(p) => memory(p.smtpd_pid()?),
            Self::Postfix(p) => {
                let mut total = Memory::default();
                for pid in process_tree(p.master()?)? {
                    let m = memory(pid)?;
                    total.rss += m.rss;
                    total.pss += m.pss;
                }
                Ok(total)
            }
        }
    }
}

/// `postern run` in host mode; SIGTERM when dropped, as Ctrl-C would.
struct Postern {
    child: Child,
    data: PathBuf,
    binary: PathBuf,
    port: u16,
}

impl Postern {
    fn start(sh: &Shell, tools: &Tools, name: &str, sink_port: u16) -> anyhow::Result<Self> {
        let data = tools.root.join(name);
        let ports = free_ports(3)?;
        let [smtp, gui, ngui] = [0, 1, 2].map(|i| format!("127.0.0.1:{}", ports[i]));
        let (binary, password) = (&tools.postern, &tools.password);
        let nofile = format!("--nofile={NOFILE}:{NOFILE}");
        let log_path = tools.root.join(format!("{name}.log"));
        let log = fs::File::create(&log_path)?;
        let mut command = Command::from(cmd!(
            sh,
            "prlimit {nofile} -- {binary} run --data {data} --smtp {smtp} --gui {gui} --ngui {ngui} --admin-password-file {password} --hostname {HOSTNAME}"
        ));
        command.stdout(Stdio::piped()).stderr(log);
        let mut postern = Self {
            child: command.spawn().context("starting postern run")?,
            data,
            binary: binary.clone(),
            port: ports[0],
        };
        let stdout = postern.child.stdout.take().context("no stdout")?;
        first_line(stdout, |l| l == "postern: ready", Duration::from_secs(60))
            .with_context(|| format!("postern run is not ready; see {}", log_path.display()))?;
        let script = [
            format!("listenerconfig rcptaccess new {DOMAIN} accept"),
            format!("smtproutes new {DOMAIN} 127.0.0.1:{sink_port}"),
            "listenerconfig limits max-connections 5000".to_owned(),
            "listenerconfig limits max-connections-per-ip 5000".to_owned(),
            // TLS v1.3 and v1.2 (the factory has v1.1 and v1.2): what Postfix negotiates.
            "sslconfig inbound 1-2".to_owned(),
            "sslconfig outbound 1-2".to_owned(),
            "commit bench smtp".to_owned(),
        ];
        cli_session(&postern.binary, &postern.data, &script.join("\n"))?;
        Ok(postern)
    }

    /// The smtpd service's pid, from `status`.
    fn smtpd_pid(&self) -> anyhow::Result<u32> {
        let output = Command::new(&self.binary)
            .args(["cli", "--data"])
            .arg(&self.data)
            .args(["-c", "status"])
            .output()?;
        let status = String::from_utf8_lossy(&output.stdout);
        smtpd_pid(&status).with_context(|| format!("no running smtpd in:\n{status}"))
    }
}

impl Drop for Postern {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        stop_within(&mut self.child, Duration::from_secs(30));
    }
}

/// A private Postfix instance under `target/bench/smtp/postfix/NAME`; `postfix stop` when
/// dropped.
struct Postfix {
    config: PathBuf,
    queue: PathBuf,
    port: u16,
}

impl Postfix {
    fn start(
        sh: &Shell,
        tools: &Tools,
        name: &str,
        sink_port: u16,
        tls_reuse: bool,
    ) -> anyhow::Result<Self> {
        let dir = tools.root.join("postfix").join(name);
        let (config, queue) = (dir.join("etc"), dir.join("queue"));
        fs::create_dir_all(&config)?;
        // Postfix makes the queue's subdirectories and the data directory itself, owned by
        // its user; the queue directory must be root's.
        fs::create_dir_all(&queue)?;
        let port = free_ports(1)?[0];
        let mut main = main_cf(&dir, port, sink_port, &tools.cert, &tools.key);
        if tls_reuse {
            // Through the tlsproxy service, which master.cf has.
            main.push_str("smtp_tls_connection_reuse = yes\n");
        }
        fs::write(config.join("main.cf"), main)?;
        fs::write(config.join("master.cf"), master_cf(port))?;
        let warnings = cmd!(sh, "postconf -c {config} -n")
            .quiet()
            .ignore_stdout()
            .read_stderr()?;
        if !warnings.trim().is_empty() {
            bail!("postconf -c {} -n: {warnings}", config.display());
        }
        // Stopped when dropped from here on, whether start succeeds or not.
        let postfix = Self {
            config: config.clone(),
            queue,
            port,
        };
        cmd!(sh, "postfix -c {config} start")
            .quiet()
            .run()
            .with_context(|| format!("starting Postfix; see {}", dir.join("maillog").display()))?;
        wait_port(port, Duration::from_secs(20))?;
        Ok(postfix)
    }

    /// The pid of the master process.
    fn master(&self) -> anyhow::Result<u32> {
        let file = self.queue.join("pid/master.pid");
        let text = fs::read_to_string(&file)?;
        text.trim()
            .parse()
            .with_context(|| format!("{} holds '{text}'", file.display()))
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&self.config)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Postfix as a relay for `example.test` to the sink: the queue and logs under `dir`, loopback
/// only, no DNS, no local delivery, STARTTLS offered and used when the peer offers it (`may`)
/// with the bench certificate. Everything else is Debian's default, process limits included.
fn main_cf(dir: &Path, port: u16, sink_port: u16, cert: &Path, key: &Path) -> String {
    let dir = dir.display();
    let (cert, key) = (cert.display(), key.display());
    format!(
        "# cargo xtask bench smtp: a private relay on 127.0.0.1:{port}
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
maillog_file = {dir}/maillog
myhostname = {HOSTNAME}
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 no local delivery
alias_maps =
alias_database =
relay_domains = {DOMAIN}
transport_maps = inline:{{{DOMAIN}=relay:[127.0.0.1]:{sink_port}}}
relayhost = [127.0.0.1]:{sink_port}
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_peername_lookup = no
default_process_limit = 100
biff = no
smtpd_tls_security_level = may
smtpd_tls_chain_files = {key}, {cert}
smtp_tls_security_level = may
"
    )
}

/// Debian's master.cf without chroot (the instance's paths are not in one), without the
/// delivery agents nothing uses, and with smtpd on `port`.
fn master_cf(port: u16) -> String {
    format!(
        "# cargo xtask bench smtp
127.0.0.1:{port} inet n - n - - smtpd
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - n -     - smtp
relay      unix  - - n -     - smtp
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
tlsproxy   unix  - - n -     0 tlsproxy
"
    )
}

/// A child process (sink, load client, idle client) with its output: standard output kept for
/// its report, standard error to `log`. Killed and reaped when dropped.
struct Process {
    child: Child,
}

impl Process {
    fn spawn(command: Cmd<'_>, log: &Path) -> anyhow::Result<Self> {
        let stderr =
            fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::from(command);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let child = command
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        Ok(Self { child })
    }

    fn wait_listening(&mut self, port: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.child.try_wait()? {
                bail!("the sink ended ({status}) before it listened on port {port}");
            }
            if Instant::now() > deadline {
                bail!("the sink does not listen on port {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn wait_within(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("a process did not end within {} s", timeout.as_secs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything it printed, once it has ended.
    fn stdout(&mut self) -> anyhow::Result<String> {
        let mut text = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            stdout.read_to_string(&mut text)?;
        }
        Ok(text)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to `grace` for `child` to end, then kills it.
fn stop_within(child: &mut Child, grace: Duration) {
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The first line of `stdout` that `wanted` accepts, within `timeout`. A thread reads it, and
/// goes on reading (and dropping) what follows, so that the process never blocks on a full pipe.
fn first_line(
    stdout: ChildStdout,
    wanted: fn(&str) -> bool,
    timeout: Duration,
) -> anyhow::Result<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if wanted(&line)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(line);
            }
        }
    });
    rx.recv_timeout(timeout)
        .map_err(|_| anyhow::anyhow!("no such line within {} s", timeout.as_secs()))
}

fn wait_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on port {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Waits until the relay on `port` accepts a recipient in `example.test`: its configuration is
/// in force, RAT and route in the same generation. Sends no message.
fn wait_relaying(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let last = match probe(port) {
            Ok(reply) if reply.starts_with("250") => return Ok(()),
            Ok(reply) => reply,
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            bail!("RCPT TO:<{RECIPIENT}> was answered: {last}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The reply to `RCPT TO:<b@example.test>` after EHLO and MAIL.
fn probe(port: u16) -> anyhow::Result<String> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut reply = || -> anyhow::Result<String> {
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                bail!("connection closed");
            }
            // The last line of a reply has a space after the code.
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(line.trim_end().to_owned());
            }
        }
    };
    reply()?;
    writer.write_all(b"EHLO probe.example.org\r\n")?;
    reply()?;
    writer.write_all(format!("MAIL FROM:<{SENDER}>\r\n").as_bytes())?;
    reply()?;
    writer.write_all(format!("RCPT TO:<{RECIPIENT}>\r\n").as_bytes())?;
    let answer = reply()?;
    writer.write_all(b"QUIT\r\n")?;
    let _ = reply();
    Ok(answer)
}

/// The pid in the `smtpd` line of `status`: `  smtpd   Running (pid 1234) for 5s, 0 restarts`.
fn smtpd_pid(status: &str) -> Option<u32> {
    let line = status
        .lines()
        .find(|l| l.trim_start().starts_with("smtpd "))?;
    let (_, rest) = line.split_once("(pid ")?;
    rest.split(')').next()?.trim().parse().ok()
}

/// The word after the word `key` in a `key value key value …` report.
fn word(report: &str, key: &str) -> anyhow::Result<String> {
    let mut words = report.split_whitespace();
    while let Some(w) = words.next() {
        if w == key {
            return words
                .next()
                .map(str::to_owned)
                .with_context(|| format!("nothing after {key} in: {report}"));
        }
    }
    bail!("no {key} in: {report}")
}

/// `pid` and all its descendants.
fn process_tree(pid: u32) -> anyhow::Result<Vec<u32>> {
    let mut all = Vec::new();
    let mut pending = vec![pid];
    while let Some(pid) = pending.pop() {
        all.push(pid);
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            // Ended meanwhile.
            continue;
        };
        for task in tasks {
            let text = fs::read_to_string(task?.path().join("children")).unwrap_or_default();
            pending.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    Ok(all)
}

/// CPU time of `pid`'s process tree: each process's own, and that of its children that have
/// ended and been waited for.
fn tree_cpu(pid: u32) -> anyhow::Result<Duration> {
    let ticks = clock_ticks()?;
    let mut total = 0u64;
    for pid in process_tree(pid)? {
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        total += stat_cpu_ticks(&stat).with_context(|| format!("/proc/{pid}/stat: {stat}"))?;
    }
    Ok(Duration::from_secs_f64(total as f64 / ticks))
}

/// utime + stime + cutime + cstime of a `/proc/PID/stat` line, in clock ticks. The name in
/// parentheses may hold spaces: fields are counted after its closing parenthesis.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3; utime, stime, cutime, cstime are fields 14 to 17.
    fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum()
}

fn clock_ticks() -> anyhow::Result<f64> {
    let output = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().parse()?)
}

/// Resident and proportional memory, KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Memory {
    rss: u64,
    pss: u64,
}

/// VmRSS from `/proc/PID/status` and Pss from `/proc/PID/smaps_rollup`; nothing for a process
/// that ended meanwhile.
fn memory(pid: u32) -> anyhow::Result<Memory> {
    let kib = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (Ok(status), Ok(rollup)) = (
        fs::read_to_string(format!("/proc/{pid}/status")),
        fs::read_to_string(format!("/proc/{pid}/smaps_rollup")),
    ) else {
        return Ok(Memory::default());
    };
    Ok(Memory {
        rss: kib(&status, "VmRSS:"),
        pss: kib(&rollup, "Pss:"),
    })
}

/// What else the machine was doing: the load average and the compilers running.
struct Busy {
    load_average: String,
    compilers: usize,
}

impl Busy {
    fn now() -> Self {
        let compilers = fs::read_dir("/proc")
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| fs::read_to_string(e.path().join("comm")).ok())
                    .filter(|comm| {
                        matches!(
                            comm.trim(),
                            "rustc" | "cc1" | "cc1plus" | "ld" | "clippy-driver"
                        )
                    })
                    .count()
            })
            .unwrap_or(0);
        let load_average = fs::read_to_string("/proc/loadavg").unwrap_or_default();
        Self {
            load_average: load_average
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            compilers,
        }
    }
}

/// Everything `bench smtp` measured.
struct SmtpFigures {
    /// `3.7.11`.
    postfix: String,
    runs: Vec<Throughput>,
    idle: Vec<Idle>,
    /// At the start and at the end.
    busy: [Busy; 2],
}

impl SmtpFigures {
    fn best(&self, relay: Relay, leg: Leg) -> Option<&Throughput> {
        self.runs
            .iter()
            .filter(|r| r.relay == relay && r.leg == leg)
            .max_by(|a, b| a.per_second.total_cmp(&b.per_second))
    }

    fn idle(&self, relay: Relay, leg: Leg) -> Option<&Idle> {
        self.idle.iter().find(|i| i.relay == relay && i.leg == leg)
    }

    fn print(&self) {
        println!(
            "\nSMTP relay on loopback: Postern (release build) and Postfix {}, both with durable \
             queues; {MESSAGES} messages of {SIZE} bytes from {SESSIONS} sessions, one message per \
             connection, best of {RUNS} runs",
            self.postfix
        );
        println!(
            "{:<62}{:>10}{:>10}{:>8}  target",
            "measure", "Postern", "Postfix", "ratio"
        );
        for (leg, label) in [
            (
                Leg::Plain,
                "messages/s, clear text (smtp-source -> smtp-sink)",
            ),
            (Leg::StartTls, "messages/s, STARTTLS on both legs"),
        ] {
            if let (Some(ours), Some(theirs)) = (
                self.best(Relay::Postern, leg),
                self.best(Relay::Postfix, leg),
            ) {
                let ratio = ours.per_second / theirs.per_second;
                let target = if ratio >= THROUGHPUT_TARGET {
                    format!(">= {THROUGHPUT_TARGET:.2}, met")
                } else {
                    format!(">= {THROUGHPUT_TARGET:.2}, not met")
                };
                row(label, ours.per_second, theirs.per_second, &target, 1);
                row(
                    "  relay CPU time per message, ms (all its processes)",
                    ours.cpu_ms,
                    theirs.cpu_ms,
                    "-",
                    2,
                );
                if let Some(reuse) = self.best(Relay::PostfixTlsReuse, leg) {
                    row(
                        "  beside Postfix with smtp_tls_connection_reuse = yes",
                        ours.per_second,
                        reuse.per_second,
                        "-",
                        1,
                    );
                }
            }
        }
        for (leg, label) in [
            (Leg::Plain, "idle memory per connection after EHLO, KiB"),
            (
                Leg::StartTls,
                "idle memory per connection after STARTTLS+EHLO, KiB",
            ),
        ] {
            if let (Some(ours), Some(theirs)) = (
                self.idle(Relay::Postern, leg),
                self.idle(Relay::Postfix, leg),
            ) {
                let target = if ours.rss <= IDLE_TARGET_KIB {
                    format!("<= {IDLE_TARGET_KIB:.0} KiB, met")
                } else {
                    format!("<= {IDLE_TARGET_KIB:.0} KiB, not met")
                };
                row(label, ours.rss, theirs.pss, &target, 1);
            }
        }

        println!("\nruns, messages/s (relay CPU ms per message):");
        for relay in Relay::ALL {
            for leg in [Leg::Plain, Leg::StartTls] {
                let each: Vec<String> = self
                    .runs
                    .iter()
                    .filter(|r| r.relay == relay && r.leg == leg)
                    .map(|r| format!("{:.1} ({:.2})", r.per_second, r.cpu_ms))
                    .collect();
                if each.is_empty() {
                    continue;
                }
                println!(
                    "  {:<18} {:<9} {}",
                    relay.name(),
                    leg.name(),
                    each.join(", ")
                );
            }
        }
        for relay in Relay::ALL {
            if let Some(run) = self.best(relay, Leg::StartTls) {
                println!(
                    "{} STARTTLS: client -> relay {}, relay -> sink {} ({} sink connections for \
                     {MESSAGES} messages)",
                    relay.name(),
                    run.inbound_tls,
                    run.outbound_tls,
                    run.sink_sessions
                );
            }
        }
        for idle in &self.idle {
            println!(
                "idle {} {}: {} connections{}, per connection {:.1} KiB RSS, {:.1} KiB PSS",
                idle.relay.name(),
                idle.leg.name(),
                idle.connections,
                if idle.tls == "-" {
                    String::new()
                } else {
                    format!(" ({})", idle.tls)
                },
                idle.rss,
                idle.pss
            );
        }
        println!(
            "Postern idle memory is its smtpd's VmRSS growth (the target's measure); Postfix's is \
             the PSS growth of all its processes, one smtpd each connection (their RSS would count \
             the shared libraries once per smtpd). Ratio = Postern / Postfix."
        );
        println!(
            "Clear text: Postfix's smtp-source and smtp-sink; STARTTLS: the smtp_bench example's \
             load client and sink (TLS v1.2-v1.3, Postern's engine), the same for both relays. \
             Postern runs with TLS v1.2-v1.3 on Inbound and Outbound SMTP; Postfix smtpd/smtp TLS \
             'may' with the same ECDSA P-256 certificate as the sink. Postfix's smtp client \
             keeps clear-text connections to the sink for more messages, but not TLS ones unless \
             smtp_tls_connection_reuse = yes (the row beside, not Debian's default)."
        );
        let [start, end] = &self.busy;
        println!(
            "everything on this machine's cores, relay, client and sink alike; load average {} at \
             the start, {} at the end; compiler processes running then: {}, {}",
            start.load_average, end.load_average, start.compilers, end.compilers
        );
    }
}

fn row(label: &str, ours: f64, theirs: f64, target: &str, decimals: usize) {
    let ratio = ours / theirs;
    println!("{label:<62}{ours:>10.decimals$}{theirs:>10.decimals$}{ratio:>8.2}  {target}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtpd_pid_is_read_from_the_status_services() {
        let status =
            "Services:\n  smtpd                        Running (pid 4242) for 3s, 0 restarts\n";
        assert_eq!(smtpd_pid(status), Some(4242));
        assert_eq!(
            smtpd_pid("Services:\n  smtpd   Restarting in 200 ms, 1 restarts\n"),
            None
        );
    }

    #[test]
    fn stat_cpu_ticks_counts_after_the_name() {
        let stat = "123 (a (b) c) S 1 123 123 0 -1 4194560 100 0 0 0 7 3 20 10 20 0 1 0 5 0 0";
        assert_eq!(stat_cpu_ticks(stat), Some(40));
        assert_eq!(stat_cpu_ticks("123 (x) S 1"), None);
    }

    #[test]
    fn word_reads_the_word_after_its_key() {
        let report = "messages 5000 sessions 12 tls_sessions 12 tls TLSv1.3/TLS_AES_256_GCM_SHA384";
        assert_eq!(
            word(report, "tls").ok().as_deref(),
            Some("TLSv1.3/TLS_AES_256_GCM_SHA384")
        );
        assert!(word(report, "cipher").is_err());
    }

    #[test]
    fn main_cf_relays_the_domain_to_the_sink() {
        let main = main_cf(
            Path::new("/b/postfix/x"),
            2525,
            2626,
            Path::new("/b/c.crt"),
            Path::new("/b/c.key"),
        );
        assert!(main.contains("transport_maps = inline:{example.test=relay:[127.0.0.1]:2626}\n"));
        assert!(main.contains("queue_directory = /b/postfix/x/queue\n"));
        assert!(main.contains("smtpd_tls_chain_files = /b/c.key, /b/c.crt\n"));
        assert!(master_cf(2525).starts_with("# cargo xtask bench smtp\n127.0.0.1:2525 inet"));
    }
}
