//! Host integration tests of the supervisor: real child processes, the real control socket, the
//! real store and system_logs in a temporary data directory. Nothing is mocked.
//!
//! Every wait is a poll with a generous deadline ([`DEADLINE`]); the only fixed waits are the
//! short windows in which something must *not* happen.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use postern_config::{Config, FactoryListeners, Hostname, PasswordHash, ProtocolRange, TlsService};
use postern_control::frame::{read_frame, write_frame};
use postern_control::{
    Client, ClientError, ControlError, PROTOCOL_VERSION, Request, Response, ServiceState,
    ServiceStatus,
};
use postern_logs::Subscription;
use postern_supervisor::{
    Backoff, Readiness, ServiceSpec, Supervisor, SupervisorError, SupervisorOptions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// How long any awaited condition may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(10);

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$X4hW/0kb6YyM8qX8oaZWmbYQJYTCKwMeLhxLrbWT5rU";

const BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(100),
    max: Duration::from_millis(400),
    healthy_after: Duration::from_secs(5),
};

const GRACE: Duration = Duration::from_secs(1);

fn factory() -> Config {
    let hash = PasswordHash::try_from(HASH.to_owned()).expect("fixed PHC string parses");
    Config::factory(
        Hostname::new("mail.example.com").expect("valid hostname"),
        FactoryListeners::HOST,
        hash,
    )
}

fn never(_: &Config, _: &Config) -> bool {
    false
}

fn gui_protocols_changed(a: &Config, b: &Config) -> bool {
    a.tls.gui_https.protocols != b.tls.gui_https.protocols
}

fn spec(name: &str, program: &str, args: &[&str]) -> ServiceSpec {
    ServiceSpec {
        name: name.to_owned(),
        program: PathBuf::from(program),
        args: args.iter().map(OsString::from).collect(),
        readiness: Readiness::Started,
        restart_on: never,
        backoff: BACKOFF,
        grace: GRACE,
    }
}

fn sleeper(name: &str) -> ServiceSpec {
    spec(name, "/bin/sleep", &["1000"])
}

fn options(data: &Path, services: Vec<ServiceSpec>) -> SupervisorOptions {
    SupervisorOptions {
        data: data.to_owned(),
        factory: Box::new(factory),
        services,
        firmware: "test".into(),
        echo_logs: false,
    }
}

/// A running supervisor. Dropping a [`Supervisor`] without shutdown leaves its children running
/// (real services notice; `/bin/sleep 1000` does not), so a test that fails before its
/// [`Harness::shutdown`] kills the children it can see instead of leaking them.
struct Harness(Option<Supervisor>);

impl Harness {
    async fn shutdown(mut self) {
        if let Some(supervisor) = self.0.take() {
            supervisor.shutdown().await;
        }
    }
}

impl std::ops::Deref for Harness {
    type Target = Supervisor;
    fn deref(&self) -> &Supervisor {
        self.0.as_ref().expect("the supervisor is running")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(supervisor) = self.0.take() {
            // Live pids of children not yet reaped: no risk of hitting a reused pid.
            for s in supervisor.owner().status().services {
                if let Some(raw) = child_pid(&s) {
                    let _ = killpg(pid(raw), Signal::SIGKILL);
                }
            }
        }
    }
}

/// Kills the process groups of the given children if the test panics while it is alive.
struct KillOnPanic(Vec<u32>);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for raw in &self.0 {
                let _ = killpg(pid(*raw), Signal::SIGKILL);
            }
        }
    }
}

async fn start_with(options: SupervisorOptions) -> Harness {
    let supervisor = tokio::time::timeout(DEADLINE, Supervisor::start(options))
        .await
        .expect("supervisor starts in time")
        .expect("supervisor starts");
    Harness(Some(supervisor))
}

async fn start(data: &Path, services: Vec<ServiceSpec>) -> Harness {
    start_with(options(data, services)).await
}

async fn connect(data: &Path, name: &str) -> Client {
    let socket = postern_control::socket_path(data);
    tokio::time::timeout(DEADLINE, Client::connect(&socket, name))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Polls `probe` until it answers `Some`, failing the test after [`DEADLINE`].
async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

fn service(supervisor: &Supervisor, name: &str) -> ServiceStatus {
    supervisor
        .owner()
        .status()
        .services
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no service {name} in status"))
}

fn running_pid(s: &ServiceStatus) -> Option<u32> {
    match s.state {
        ServiceState::Running { pid, .. } => Some(pid),
        _ => None,
    }
}

fn child_pid(s: &ServiceStatus) -> Option<u32> {
    match s.state {
        ServiceState::Starting { pid } | ServiceState::Running { pid, .. } => Some(pid),
        _ => None,
    }
}

/// Waits for the service to be Running with a pid other than `not`.
async fn wait_running(supervisor: &Supervisor, name: &str, not: Option<u32>) -> u32 {
    eventually(&format!("{name} running (not pid {not:?})"), || {
        running_pid(&service(supervisor, name)).filter(|pid| Some(*pid) != not)
    })
    .await
}

fn pid(raw: u32) -> Pid {
    Pid::from_raw(i32::try_from(raw).expect("pid fits in i32"))
}

fn alive(raw: u32) -> bool {
    match kill(pid(raw), None) {
        Ok(()) => true,
        Err(Errno::ESRCH) => false,
        Err(e) => panic!("kill({raw}, 0): {e}"),
    }
}

fn log_lines(data: &Path) -> Vec<String> {
    let path = Subscription::SystemLogs.current_path(data);
    std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits for a system_logs line containing `needle`; answers it.
async fn wait_log(data: &Path, needle: &str) -> String {
    eventually(&format!("system_logs line containing {needle:?}"), || {
        log_lines(data).into_iter().find(|l| l.contains(needle))
    })
    .await
}

fn with_protocols(config: &Config, service: TlsService, selection: &str) -> Config {
    let mut config = config.clone();
    config
        .tls
        .set_protocols(
            service,
            ProtocolRange::from_selection(selection).expect("valid selection"),
        )
        .expect("protocols accepted");
    config
}

/// Reads until the peer closes; answers what was read before the end (an error is a failure).
async fn read_until_closed(stream: &mut UnixStream) -> Vec<u8> {
    let mut rest = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut rest))
        .await
        .expect("the supervisor closes the connection in time")
        .expect("the connection ends with EOF, not an error");
    rest
}

/// A raw connection that has said a correct hello.
async fn raw_after_hello(data: &Path, name: &str) -> UnixStream {
    let mut stream = UnixStream::connect(postern_control::socket_path(data))
        .await
        .expect("raw connect");
    let hello = Request::Hello {
        version: PROTOCOL_VERSION,
        client: name.to_owned(),
    };
    write_frame(&mut stream, &hello).await.expect("send hello");
    let answer = tokio::time::timeout(DEADLINE, read_frame::<Response>(&mut stream))
        .await
        .expect("hello answered in time")
        .expect("hello answer decodes");
    assert!(
        matches!(answer, Some(Response::Hello { version, ref firmware })
            if version == PROTOCOL_VERSION && firmware == "test"),
        "unexpected hello answer: {answer:?}"
    );
    stream
}

async fn assert_status_answers(client: &mut Client) {
    let status = tokio::time::timeout(DEADLINE, client.status())
        .await
        .expect("status answered in time")
        .expect("status answered");
    assert_eq!(status.firmware, "test");
    assert_eq!(status.hostname, "mail.example.com");
}

/// 1. A service killed with SIGKILL is started again with a new pid, counted as one restart, and
///    the death is logged as a Warning naming the signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_service_is_restarted_and_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let supervisor = start(data, vec![sleeper("sleeper")]).await;

    let first = wait_running(&supervisor, "sleeper", None).await;
    assert_eq!(service(&supervisor, "sleeper").restarts, 0);
    assert!(alive(first));

    kill(pid(first), Signal::SIGKILL).expect("SIGKILL the service");
    let second = wait_running(&supervisor, "sleeper", Some(first)).await;
    assert_ne!(first, second);
    assert!(alive(second));
    assert!(!alive(first), "the killed child was reaped");

    let status = supervisor.owner().status();
    let sleeper = status
        .services
        .iter()
        .find(|s| s.name == "sleeper")
        .expect("sleeper in status");
    assert_eq!(sleeper.restarts, 1);
    assert!(
        status
            .counters
            .contains(&("Service restarts".to_owned(), 1)),
        "counters: {:?}",
        status.counters
    );

    let line = wait_log(data, "Service sleeper was killed by SIGKILL").await;
    assert!(line.contains(" Warning: "), "not a Warning: {line}");
    assert!(line.contains("restarting in 100 ms"), "{line}");

    supervisor.shutdown().await;
    assert!(!alive(second), "shutdown stopped the restarted child");
}

/// 2. A service that exits at once is restarted again and again with growing delays, capped at
///    the maximum, and each exit is logged with its status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_backs_off_up_to_the_maximum() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    // It says why on stderr, as a service that cannot bind does.
    let crasher = spec(
        "crasher",
        "/bin/sh",
        &[
            "-c",
            "echo 'crasher: cannot listen: Address in use' >&2; exit 1",
        ],
    );
    let supervisor = start(data, vec![crasher]).await;

    let mut delays = Vec::new();
    let restarts = eventually("five restarts of the crash loop", || {
        let s = service(&supervisor, "crasher");
        if let ServiceState::Backoff { restart_in_ms } = s.state
            && delays.last() != Some(&restart_in_ms)
        {
            delays.push(restart_in_ms);
        }
        (s.restarts >= 5).then_some(s.restarts)
    })
    .await;
    assert!(restarts >= 5);

    // Status showed the service waiting, with delays from the backoff schedule only, never
    // shrinking (it never ran for `healthy_after`) and never above the maximum.
    assert!(!delays.is_empty(), "never observed in Backoff");
    assert!(
        delays.iter().all(|d| [100, 200, 400].contains(d)),
        "delays outside the schedule: {delays:?}"
    );
    assert!(
        delays.windows(2).all(|w| w[0] < w[1]),
        "delays did not grow: {delays:?}"
    );
    assert_eq!(delays.last(), Some(&400), "capped at max: {delays:?}");

    // The logs show why, and the whole schedule: 100, 200, then 400 every time.
    let died = "Service crasher exited with status 1 (crasher: cannot listen: Address in use); \
                restarting in ";
    wait_log(data, died).await;
    let announced: Vec<u64> = log_lines(data)
        .iter()
        .filter(|l| l.contains(died))
        .map(|l| {
            assert!(l.contains(" Warning: "), "not a Warning: {l}");
            let ms = l.rsplit("restarting in ").next().expect("delay");
            ms.trim_end_matches(" ms").parse().expect("delay in ms")
        })
        .collect();
    assert!(announced.len() >= 5, "{announced:?}");
    assert_eq!(announced[..3], [100, 200, 400], "{announced:?}");
    assert!(announced[3..].iter().all(|d| *d == 400), "{announced:?}");

    supervisor.shutdown().await;
}

/// 3. A commit restarts a service only when its `restart_on` says the change needs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_changes_the_service_cannot_apply_restart_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let mut https = sleeper("https");
    https.restart_on = gui_protocols_changed;
    let supervisor = start(data, vec![https]).await;
    let first = wait_running(&supervisor, "https", None).await;

    let mut client = connect(data, "test").await;
    let base = client.config().await.expect("config");
    assert_eq!(base.commit.generation, 1);

    // Inbound SMTP: the service applies it itself.
    let inbound = with_protocols(&base.config, TlsService::InboundSmtp, "1-3");
    let (generation, changes) = client
        .commit(1, inbound.clone(), "admin", "inbound tls13")
        .await
        .expect("commit inbound");
    assert_eq!(generation, 2);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(
        changes[0].starts_with("tls.inbound_smtp.protocols"),
        "{changes:?}"
    );
    // Must not restart: watch it for a while.
    let watch_until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < watch_until {
        let s = service(&supervisor, "https");
        assert_eq!(running_pid(&s), Some(first), "restarted for inbound: {s:?}");
        assert_eq!(s.restarts, 0);
        tokio::time::sleep(POLL).await;
    }

    // GUI HTTPS: it must be restarted.
    let gui = with_protocols(&inbound, TlsService::GuiHttps, "1-3");
    let (generation, _) = client
        .commit(2, gui, "admin", "gui tls13")
        .await
        .expect("commit gui");
    assert_eq!(generation, 3);
    let second = wait_running(&supervisor, "https", Some(first)).await;
    assert_ne!(first, second);
    assert!(!alive(first), "the old child was stopped");
    assert_eq!(service(&supervisor, "https").restarts, 1);

    let line = wait_log(
        data,
        "Service https restarting to apply configuration generation",
    )
    .await;
    assert!(line.ends_with("generation 3"), "{line}");
    assert!(
        !log_lines(data)
            .iter()
            .any(|l| l.contains("restarting to apply configuration generation 2")),
        "restarted for generation 2"
    );

    supervisor.shutdown().await;
}

/// 4. Shutdown stops a child with SIGTERM, SIGKILLs one that ignores it after its grace, and
///    returns promptly with no child left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_every_child_and_kills_the_stubborn_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let trapped = dir.path().join("trap-installed");
    let script = r#"trap "" TERM; : > "$1"; while :; do sleep 0.2; done"#;
    let trapped_arg = trapped.to_str().expect("utf-8 temp path");
    let stubborn = spec("stubborn", "/bin/sh", &["-c", script, "sh", trapped_arg]);
    let supervisor = start(data, vec![sleeper("sleeper"), stubborn]).await;

    let sleeper = wait_running(&supervisor, "sleeper", None).await;
    let stubborn = wait_running(&supervisor, "stubborn", None).await;
    // SIGTERM must reach the shell after it installed its trap.
    eventually("the shell to ignore SIGTERM", || {
        trapped.exists().then_some(())
    })
    .await;
    let socket = postern_control::socket_path(data);
    assert!(socket.exists());

    let _kill_on_panic = KillOnPanic(vec![sleeper, stubborn]);
    let began = Instant::now();
    tokio::time::timeout(DEADLINE, supervisor.shutdown())
        .await
        .expect("shutdown returns in time");
    let took = began.elapsed();
    assert!(
        took >= GRACE - Duration::from_millis(50),
        "SIGKILL came before the grace period: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");

    assert!(!alive(sleeper), "sleeper still exists");
    assert!(!alive(stubborn), "stubborn still exists");
    assert!(!socket.exists(), "socket left behind");

    let lines = log_lines(data);
    let find = |needle: &str| {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no log line with {needle:?} in {lines:#?}"))
    };
    assert!(find("Service sleeper stopped (was killed by SIGTERM)").contains(" Info: "));
    let killed = find("Service stubborn did not stop within 1000 ms of SIGTERM; sending SIGKILL");
    assert!(killed.contains(" Warning: "), "{killed}");
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("Service sleeper did not stop within")),
        "the sleeper was SIGKILLed"
    );
    find("Postern supervisor stopped");
}

/// 5. Garbage, oversized frames and a wrong protocol version close their own connection and
///    nothing else; the socket is private to its owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clients_are_disconnected_and_good_ones_keep_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let supervisor = start(data, vec![sleeper("sleeper")]).await;
    let socket = postern_control::socket_path(data);
    // The service task starts its child after start() returns; the end of this test asks for it.
    wait_running(&supervisor, "sleeper", None).await;

    let mode = std::fs::metadata(&socket)
        .expect("socket metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    let mut good = connect(data, "good-before").await;
    assert_eq!(good.firmware(), "test");
    assert_status_answers(&mut good).await;

    // A 5-byte frame that is not a request, each byte of it consumed by the server.
    let garbage = [0u8, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff];
    let too_large = u32::MAX.to_be_bytes();

    // Instead of hello.
    for bytes in [&garbage[..], &too_large[..]] {
        let mut raw = UnixStream::connect(&socket).await.expect("raw connect");
        raw.write_all(bytes).await.expect("send");
        assert!(read_until_closed(&mut raw).await.is_empty());
        assert_status_answers(&mut good).await;
    }

    // After a correct hello.
    for bytes in [&garbage[..], &too_large[..]] {
        let mut raw = raw_after_hello(data, "bad-after-hello").await;
        raw.write_all(bytes).await.expect("send");
        assert!(read_until_closed(&mut raw).await.is_empty());
        assert_status_answers(&mut good).await;
    }

    // Another protocol version: refused, then closed.
    let mut old = UnixStream::connect(&socket).await.expect("raw connect");
    let hello = Request::Hello {
        version: PROTOCOL_VERSION + 1,
        client: "from-the-future".to_owned(),
    };
    write_frame(&mut old, &hello).await.expect("send hello");
    let answer = tokio::time::timeout(DEADLINE, read_frame::<Response>(&mut old))
        .await
        .expect("answered in time")
        .expect("answer decodes");
    match answer {
        Some(Response::Error(ControlError::Version { client, server })) => {
            assert_eq!(client, PROTOCOL_VERSION + 1);
            assert_eq!(server, PROTOCOL_VERSION);
        }
        other => panic!("wrong version not refused: {other:?}"),
    }
    assert!(read_until_closed(&mut old).await.is_empty());

    // A request before hello: refused, then closed.
    let mut rude = UnixStream::connect(&socket).await.expect("raw connect");
    write_frame(&mut rude, &Request::Status)
        .await
        .expect("send status");
    let answer = tokio::time::timeout(DEADLINE, read_frame::<Response>(&mut rude))
        .await
        .expect("answered in time")
        .expect("answer decodes");
    assert!(
        matches!(answer, Some(Response::Error(ControlError::BadRequest(_)))),
        "{answer:?}"
    );
    assert!(read_until_closed(&mut rude).await.is_empty());

    // The first client is still served, and new ones are accepted.
    assert_status_answers(&mut good).await;
    let mut after = connect(data, "good-after").await;
    assert_status_answers(&mut after).await;
    let status = after.status().await.expect("status");
    assert!(
        status
            .services
            .iter()
            .any(|s| s.name == "sleeper" && running_pid(s).is_some()),
        "{status:?}"
    );

    wait_log(data, "Control connection closed before hello").await;
    wait_log(data, "Control connection from bad-after-hello closed").await;
    supervisor.shutdown().await;
}

/// 6. Two sessions from the same base changing different settings both land; a third changing a
///    setting one of them changed, differently, is refused as a conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_merge_and_conflicts_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let supervisor = start(data, Vec::new()).await;

    let mut a = connect(data, "session-a").await;
    let mut b = connect(data, "session-b").await;
    let mut c = connect(data, "session-c").await;
    let base = a.config().await.expect("config");
    assert_eq!(base.commit.generation, 1);

    let ours_a = with_protocols(&base.config, TlsService::InboundSmtp, "1-3");
    let mut ours_b = base.config.clone();
    ours_b.tls.other_client.tls_v1_0 = true;

    let (landed_a, landed_b) = tokio::join!(
        a.commit(1, ours_a.clone(), "alice", "inbound"),
        b.commit(1, ours_b, "bob", "tls 1.0 for other clients"),
    );
    let (gen_a, _) = landed_a.expect("A commits");
    let (gen_b, _) = landed_b.expect("B commits");
    let mut generations = [gen_a, gen_b];
    generations.sort_unstable();
    assert_eq!(generations, [2, 3]);

    let now = c.config().await.expect("config");
    assert_eq!(now.commit.generation, 3);
    assert_eq!(
        now.config.tls.inbound_smtp.protocols,
        ours_a.tls.inbound_smtp.protocols
    );
    assert!(now.config.tls.other_client.tls_v1_0);
    assert_eq!(
        now.config.tls.gui_https, base.config.tls.gui_https,
        "untouched settings stay"
    );

    let ours_c = with_protocols(&base.config, TlsService::InboundSmtp, "2");
    match c.commit(1, ours_c, "carol", "inbound tls12 only").await {
        Err(ClientError::Refused(ControlError::Conflict(settings))) => {
            assert_eq!(settings, ["tls.inbound_smtp.protocols"]);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let after = c.config().await.expect("config");
    assert_eq!(after.commit.generation, 3, "the conflict committed nothing");
    assert_eq!(after.config, now.config);
    assert_eq!(supervisor.owner().current().commit.generation, 3);

    supervisor.shutdown().await;
}

/// 7. A subscription answers the current generation, then each one committed afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_sees_the_current_then_each_new_generation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let supervisor = start(data, Vec::new()).await;

    let mut subscription = connect(data, "watcher")
        .await
        .subscribe()
        .await
        .expect("subscribe");
    let first = tokio::time::timeout(DEADLINE, subscription.next())
        .await
        .expect("current generation in time")
        .expect("current generation");
    assert_eq!(first.commit.generation, 1);

    let mut admin = connect(data, "admin").await;
    let changed = with_protocols(&first.config, TlsService::InboundSmtp, "1-3");
    let (generation, _) = admin
        .commit(1, changed.clone(), "admin", "tls13")
        .await
        .expect("commit");
    assert_eq!(generation, 2);

    let second = tokio::time::timeout(DEADLINE, subscription.next())
        .await
        .expect("new generation pushed in time")
        .expect("new generation");
    assert_eq!(second.commit.generation, 2);
    assert_eq!(second.commit.user, "admin");
    assert_eq!(second.config, changed);

    supervisor.shutdown().await;
}

/// 8. A second supervisor on the same data directory is refused while the first runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_supervisor_on_the_same_data_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let first = start(data, vec![sleeper("sleeper")]).await;
    let pid = wait_running(&first, "sleeper", None).await;

    let mut second_options = options(data, vec![sleeper("intruder")]);
    second_options.factory = Box::new(|| panic!("the factory of a refused start was called"));
    match Supervisor::start(second_options).await {
        Err(SupervisorError::AlreadyRunning(path)) => assert_eq!(path, data),
        Err(other) => panic!("expected AlreadyRunning, got {other}"),
        Ok(second) => {
            drop(Harness(Some(second)));
            panic!("a second supervisor started on the same data directory");
        }
    }

    // The first is untouched: same child, socket still served.
    let mut client = connect(data, "test").await;
    let status = client.status().await.expect("status");
    assert_eq!(status.services.len(), 1);
    assert_eq!(running_pid(&status.services[0]), Some(pid));

    first.shutdown().await;
    // Once it stopped, the directory is free again, with the first one's configuration.
    let third = start(data, Vec::new()).await;
    assert_eq!(third.owner().current().commit.generation, 1);
    let mut client = connect(data, "test").await;
    assert_status_answers(&mut client).await;
    third.shutdown().await;
}

/// 9. What was committed is what the next start runs with, after an orderly shutdown and after
///    the supervisor was simply dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_survive_a_restart_of_the_supervisor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let no_factory = || -> Box<dyn FnOnce() -> Config + Send> {
        Box::new(|| panic!("factory called on a data directory that has a configuration"))
    };

    let supervisor = start(data, vec![sleeper("sleeper")]).await;
    let base = supervisor.owner().current();
    assert_eq!(base.commit.generation, 1);
    let inbound = with_protocols(&base.config, TlsService::InboundSmtp, "1-3");
    let mut client = connect(data, "test").await;
    let (generation, _) = client
        .commit(1, inbound.clone(), "admin", "tls13")
        .await
        .expect("commit");
    assert_eq!(generation, 2);
    drop(client);
    supervisor.shutdown().await;

    // After an orderly shutdown.
    let mut again = options(data, vec![sleeper("sleeper")]);
    again.factory = no_factory();
    let supervisor = start_with(again).await;
    let current = supervisor.owner().current();
    assert_eq!(current.commit.generation, 2);
    assert_eq!(current.commit.user, "admin");
    assert_eq!(current.commit.comment, "tls13");
    assert_eq!(current.config, inbound);
    let mut client = connect(data, "test").await;
    assert_eq!(client.status().await.expect("status").generation, 2);
    let journal = client.journal().await.expect("journal");
    assert_eq!(
        journal.iter().map(|c| c.generation).collect::<Vec<_>>(),
        [1, 2]
    );

    let gui = with_protocols(&inbound, TlsService::GuiHttps, "1-3");
    let (generation, _) = client
        .commit(2, gui.clone(), "admin", "gui tls13")
        .await
        .expect("commit");
    assert_eq!(generation, 3);
    drop(client);
    supervisor.shutdown().await;

    // After a drop without shutdown (no services, so no child is left behind).
    let mut again = options(data, Vec::new());
    again.factory = no_factory();
    let supervisor = start_with(again).await;
    let mut client = connect(data, "test").await;
    let fourth = with_protocols(&gui, TlsService::OutboundSmtp, "1-3");
    let (generation, _) = client
        .commit(3, fourth.clone(), "admin", "outbound tls13")
        .await
        .expect("commit");
    assert_eq!(generation, 4);
    drop(client);
    drop(supervisor);

    let mut again = options(data, Vec::new());
    again.factory = no_factory();
    let supervisor = start_with(again).await;
    let current = supervisor.owner().current();
    assert_eq!(current.commit.generation, 4);
    assert_eq!(current.config, fourth);
    let kept: BTreeSet<u64> = supervisor
        .owner()
        .kept()
        .await
        .expect("kept")
        .iter()
        .map(|c| c.generation)
        .collect();
    assert_eq!(kept, BTreeSet::from([1, 2, 3, 4]));
    supervisor.shutdown().await;
}

fn confirm_file(data: &Path) -> PathBuf {
    data.join("config").join("confirm-pending")
}

/// 10. `commit confirmed`: a commit not confirmed in time is rolled back by a new generation
///     with the previous configuration; one confirmed (explicitly, or by another commit) stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_commit_is_rolled_back_and_a_confirmed_one_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let supervisor = start(data, Vec::new()).await;
    let factory_config = supervisor.owner().current().config.clone();
    let inbound = with_protocols(&factory_config, TlsService::InboundSmtp, "1-3");
    let mut client = connect(data, "test").await;

    let landed = client
        .commit_detailed(1, inbound.clone(), "admin", "tls13", Some(1))
        .await
        .expect("commit confirmed");
    assert_eq!(landed.generation, 2);
    assert_eq!(landed.confirmed, None);
    let waiting = landed.confirmation.expect("a confirmation is outstanding");
    assert_eq!((waiting.generation, waiting.previous), (2, 1));
    assert_eq!(waiting.user, "admin");
    assert_eq!(
        client.status().await.expect("status").confirmation,
        Some(waiting)
    );
    assert!(confirm_file(data).exists());

    let rolled = eventually("the automatic rollback", || {
        let current = supervisor.owner().current();
        (current.commit.generation == 3).then_some(current)
    })
    .await;
    assert_eq!(rolled.commit.user, "system");
    assert_eq!(
        rolled.commit.comment,
        "Automatic rollback: commit 2 was not confirmed within 1 second"
    );
    assert_eq!(rolled.config, factory_config);
    let line = wait_log(data, "Commit 2 by admin was not confirmed within 1 second").await;
    assert!(
        line.contains("Warning: ") && line.ends_with("rolled back to generation 1 as generation 3"),
        "{line}"
    );
    assert_eq!(client.status().await.expect("status").confirmation, None);
    assert!(!confirm_file(data).exists());
    match client.confirm("admin").await {
        Err(ClientError::Refused(ControlError::NothingToConfirm)) => {}
        other => panic!("a confirmation with none outstanding: {other:?}"),
    }

    // Confirmed explicitly: it stays past its deadline.
    let landed = client
        .commit_detailed(3, inbound.clone(), "admin", "tls13 again", Some(2))
        .await
        .expect("commit confirmed");
    assert_eq!(landed.generation, 4);
    assert_eq!(client.confirm("bob").await.expect("confirm"), 4);
    assert!(!confirm_file(data).exists());
    wait_log(data, "User bob confirmed commit 4").await;

    // Confirmed by another commit: both stay.
    let gui = with_protocols(&inbound, TlsService::GuiHttps, "1-3");
    let landed = client
        .commit_detailed(4, gui.clone(), "admin", "gui", Some(2))
        .await
        .expect("commit confirmed");
    assert_eq!(landed.generation, 5);
    let outbound = with_protocols(&gui, TlsService::OutboundSmtp, "1-3");
    let landed = client
        .commit_detailed(5, outbound.clone(), "carol", "outbound", None)
        .await
        .expect("commit");
    assert_eq!((landed.generation, landed.confirmed), (6, Some(5)));
    assert_eq!(landed.confirmation, None);

    // A window in which nothing must happen: past both deadlines.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let current = supervisor.owner().current();
    assert_eq!(current.commit.generation, 6);
    assert_eq!(current.config, outbound);
    supervisor.shutdown().await;
}

/// 11. A supervisor restarted while a `commit confirmed` waits still rolls it back: at the
///     deadline, or at once when the deadline passed while it was stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_supervisor_still_rolls_back_an_unconfirmed_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let supervisor = start(data, Vec::new()).await;
    let factory_config = supervisor.owner().current().config.clone();
    let inbound = with_protocols(&factory_config, TlsService::InboundSmtp, "1-3");
    let mut client = connect(data, "test").await;
    let landed = client
        .commit_detailed(1, inbound.clone(), "admin", "tls13", Some(3))
        .await
        .expect("commit confirmed");
    let waiting = landed.confirmation.expect("outstanding");
    drop(client);
    supervisor.shutdown().await;

    // Started again within the window: it still waits, then rolls back.
    let supervisor = start(data, Vec::new()).await;
    let mut client = connect(data, "test").await;
    assert_eq!(
        client.status().await.expect("status").confirmation,
        Some(waiting)
    );
    let rolled = eventually("the rollback after a restart", || {
        let current = supervisor.owner().current();
        (current.commit.generation == 3).then_some(current)
    })
    .await;
    assert_eq!(
        rolled.commit.comment,
        "Automatic rollback: commit 2 was not confirmed within 3 seconds"
    );
    assert_eq!(rolled.config, factory_config);

    // Stopped as a crash would stop it, and started again after the deadline.
    let landed = client
        .commit_detailed(3, inbound.clone(), "admin", "tls13", Some(1))
        .await
        .expect("commit confirmed");
    assert_eq!(landed.generation, 4);
    drop(client);
    drop(supervisor);
    let deadline = landed.confirmation.expect("outstanding").deadline;
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        <= u64::try_from(deadline).expect("deadline")
    {
        tokio::time::sleep(POLL).await;
    }
    let supervisor = start(data, Vec::new()).await;
    let rolled = eventually("the rollback at start", || {
        let current = supervisor.owner().current();
        (current.commit.generation == 5).then_some(current)
    })
    .await;
    assert_eq!(rolled.config, factory_config);
    wait_log(data, "its deadline passed while the supervisor was stopped").await;
    assert!(!confirm_file(data).exists());
    supervisor.shutdown().await;
}
