//! `postern`: the one binary of the appliance. `postern run` is host mode, `postern supervisor`
//! is what init starts in the image, `postern cli` is the administrator's CLI; `smtpd` and
//! `httpd` are the services the supervisor starts.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use postern_cli::{Session, StdConsole};
use postern_config::{Config, FactoryListeners, Hostname, LoginHash, PasswordHash};
use postern_supervisor::{Backoff, Readiness, ServiceSpec, Supervisor, SupervisorOptions};

/// Exit code for a configuration that is refused before anything starts (sysexits EX_USAGE).
const EXIT_CONFIG: u8 = 64;

#[derive(Debug, Parser)]
#[command(name = "postern", version, about = "Postern secure email gateway")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the appliance on this host in the foreground (host mode); Ctrl-C stops it.
    Run {
        #[command(flatten)]
        start: StartArgs,
        /// SMTP listener address of a fresh data directory.
        #[arg(long, default_value_t = FactoryListeners::HOST.smtp)]
        smtp: SocketAddr,
        /// Classic UI address of a fresh data directory.
        #[arg(long, default_value_t = FactoryListeners::HOST.classic_ui)]
        gui: SocketAddr,
        /// NGUI and REST API address of a fresh data directory.
        #[arg(long, default_value_t = FactoryListeners::HOST.ngui)]
        ngui: SocketAddr,
    },
    /// Run the supervisor as the appliance's init starts it (standard ports).
    Supervisor {
        #[command(flatten)]
        start: StartArgs,
    },
    /// The SMTP service; the supervisor starts it.
    Smtpd {
        #[arg(long, default_value = "/data")]
        data: PathBuf,
    },
    /// The HTTPS service (Classic UI, NGUI, REST API); the supervisor starts it.
    Httpd {
        #[arg(long, default_value = "/data")]
        data: PathBuf,
    },
    /// The administrator's CLI, on the control socket of a running Postern.
    Cli {
        /// The data directory of the running Postern.
        #[arg(long, default_value = "/data")]
        data: PathBuf,
        /// Run this one command and exit.
        #[arg(short = 'c', long = "command")]
        command: Option<String>,
        /// The user this session acts as.
        #[arg(long, default_value = Config::FIRST_ADMIN)]
        user: String,
    },
}

#[derive(Debug, clap::Args)]
struct StartArgs {
    /// The data directory: configuration, certificates, queue, logs.
    #[arg(long, default_value = "/data")]
    data: PathBuf,
    /// The admin password of a fresh data directory, read from this file. Without it a random
    /// one is written to DATA/initial-admin-password.
    #[arg(long)]
    admin_password_file: Option<PathBuf>,
    /// The host name of a fresh data directory (default: this machine's).
    #[arg(long)]
    hostname: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result =
        match args.command {
            Command::Run {
                start,
                smtp,
                gui,
                ngui,
            } => {
                let listeners = FactoryListeners {
                    smtp,
                    classic_ui: gui,
                    ngui,
                };
                supervise(start, listeners, true)
            }
            Command::Supervisor { start } => supervise(start, FactoryListeners::APPLIANCE, false),
            Command::Smtpd { data } => service(|stop| async move {
                postern_smtp::service::run(&data, stop, drop_privileges).await
            }),
            Command::Httpd { data } => service(|stop| async move {
                postern_web::service::run(&data, stop, drop_privileges).await
            }),
            Command::Cli {
                data,
                command,
                user,
            } => cli(&data, &user, command.as_deref()),
        };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("postern: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What a fresh data directory is made from, read and checked before anything starts.
struct Factory {
    hostname: Hostname,
    listeners: FactoryListeners,
    /// From `--admin-password-file`, or random.
    password: String,
    /// The password is random: it is written to `DATA/initial-admin-password` for the
    /// administrator to read.
    generated: bool,
    data: PathBuf,
}

impl Factory {
    fn from_args(start: &StartArgs, listeners: FactoryListeners) -> anyhow::Result<Self> {
        let hostname = match &start.hostname {
            Some(h) => h.clone(),
            None => nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "postern.localdomain".to_owned()),
        };
        let hostname = Hostname::new(&hostname)?;
        let password = match &start.admin_password_file {
            Some(file) => {
                let text = fs::read_to_string(file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let password = text.trim_end_matches(['\n', '\r']).to_owned();
                if password.chars().count() < PasswordHash::MIN_PASSWORD_LEN {
                    bail!(
                        "the admin password in {} is shorter than {} characters",
                        file.display(),
                        PasswordHash::MIN_PASSWORD_LEN
                    );
                }
                (password, false)
            }
            None => (
                random_password().context("reading the kernel's random source")?,
                true,
            ),
        };
        Ok(Self {
            hostname,
            listeners,
            password: password.0,
            generated: password.1,
            data: start.data.clone(),
        })
    }

    /// Called by the store only when the data directory holds no configuration yet.
    fn build(self) -> Config {
        if self.generated {
            let path = self.data.join("initial-admin-password");
            if let Err(e) = write_secret(&path, &self.password) {
                eprintln!("postern: cannot write the initial admin password: {e:#}");
            }
        }
        // The password was checked for length above, and hashing cannot otherwise fail;
        // should it, nobody could log in, which is worse than stopping here.
        let hash = PasswordHash::new(&self.password).expect("hashing a checked password");
        let login = LoginHash::new(&self.password).expect("hashing a checked password");
        let mut config = Config::factory(self.hostname, self.listeners, hash);
        for admin in config.users.values_mut() {
            admin.login_password = Some(login.clone());
        }
        config
    }
}

fn supervise(
    start: StartArgs,
    listeners: FactoryListeners,
    host_mode: bool,
) -> anyhow::Result<ExitCode> {
    let factory = match Factory::from_args(&start, listeners) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("postern: {e:#}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    fs::create_dir_all(&start.data)
        .with_context(|| format!("creating the data directory {}", start.data.display()))?;
    let data = start.data.canonicalize()?;
    prepare_service_dirs(&data)?;
    let options = SupervisorOptions {
        data: data.clone(),
        factory: Box::new(move || factory.build()),
        services: services(&data)?,
        firmware: env!("CARGO_PKG_VERSION").to_owned(),
        echo_logs: host_mode,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        // Before anything starts: a SIGTERM that arrives during start-up, or just after
        // `postern: ready`, must stop the supervisor in order rather than kill it outright.
        let mut stop = StopSignals::install()?;
        let supervisor = Supervisor::start(options).await?;
        let stopped_while_starting = tokio::select! {
            () = supervisor.ready() => false,
            () = stop.wait() => true,
        };
        if !stopped_while_starting {
            if host_mode {
                eprintln!(
                    "postern: data in {dir}; administer with: postern cli --data {dir}",
                    dir = data.display()
                );
            }
            println!("postern: ready");
            let _ = std::io::stdout().flush();
            stop.wait().await;
        }
        supervisor.shutdown().await;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// The unprivileged account the services run as once their ports are bound. The image has it;
/// where it does not exist (a development host) or Postern does not run as root, nothing
/// changes.
const SERVICE_USER: &str = "postern";

/// The service account (user and group), when Postern runs as root and the account exists.
fn service_user() -> Option<(nix::unistd::Uid, nix::unistd::Gid)> {
    if !nix::unistd::Uid::effective().is_root() {
        return None;
    }
    postern_cli::accounts::by_name(SERVICE_USER).map(|a| {
        (
            nix::unistd::Uid::from_raw(a.uid),
            nix::unistd::Gid::from_raw(a.gid),
        )
    })
}

/// What the services write as their own user: the queue, their logs, the web sessions. Given to
/// the service account (with everything in them) before any service starts.
fn prepare_service_dirs(data: &Path) -> anyhow::Result<()> {
    let Some((uid, gid)) = service_user() else {
        return Ok(());
    };
    for dir in ["queue", "logs/mail_logs", "logs/gui_logs", "web"] {
        let dir = data.join(dir);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        chown_tree(&dir, uid, gid)
            .with_context(|| format!("giving {} to {SERVICE_USER}", dir.display()))?;
    }
    Ok(())
}

fn chown_tree(path: &Path, uid: nix::unistd::Uid, gid: nix::unistd::Gid) -> std::io::Result<()> {
    nix::unistd::chown(path, Some(uid), Some(gid)).map_err(std::io::Error::from)?;
    if fs::symlink_metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Called by a service once its ports are bound: becomes the service account (groups, group,
/// then user, for every thread), when there is one.
fn drop_privileges() -> std::io::Result<()> {
    let Some((uid, gid)) = service_user() else {
        return Ok(());
    };
    nix::unistd::setgroups(&[gid]).map_err(std::io::Error::from)?;
    nix::unistd::setgid(gid).map_err(std::io::Error::from)?;
    nix::unistd::setuid(uid).map_err(std::io::Error::from)?;
    if nix::unistd::setuid(nix::unistd::Uid::from_raw(0)).is_ok() {
        return Err(std::io::Error::other("root privileges could be taken back"));
    }
    Ok(())
}

/// The services the supervisor runs: this same binary with a service subcommand.
fn services(data: &Path) -> anyhow::Result<Vec<ServiceSpec>> {
    let program = std::env::current_exe().context("finding this program")?;
    let smtpd = ServiceSpec {
        name: postern_smtp::service::SERVICE.to_owned(),
        program: program.clone(),
        args: vec!["smtpd".into(), "--data".into(), data.as_os_str().to_owned()],
        readiness: Readiness::Reported,
        restart_on: postern_smtp::service::needs_restart,
        backoff: Backoff::DEFAULT,
        grace: Duration::from_secs(15),
    };
    let httpd = ServiceSpec {
        name: postern_web::service::SERVICE.to_owned(),
        program,
        args: vec!["httpd".into(), "--data".into(), data.as_os_str().to_owned()],
        readiness: Readiness::Reported,
        restart_on: postern_web::service::needs_restart,
        backoff: Backoff::DEFAULT,
        grace: Duration::from_secs(10),
    };
    Ok(vec![smtpd, httpd])
}

/// Runs a service process: it stops on SIGTERM, and when the supervisor dies (the kernel sends
/// it SIGTERM then), so no service outlives the supervisor that started it.
fn service<F, Fut, E>(main: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
        .context("asking for SIGTERM when the supervisor exits")?;
    // A supervisor that died before the request above is noticed all the same: the service's
    // first step is to connect to its control socket.
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        let mut signals = StopSignals::install()?;
        let stop: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> =
            Box::pin(async move { signals.wait().await });
        main(stop).await?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// Ctrl-C (SIGINT) or SIGTERM (init, or `kill`). Once installed, these signals no longer
/// terminate the process; one that arrives is kept until [`StopSignals::wait`] sees it.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

fn cli(data: &Path, user: &str, command: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut session = Session::connect(data, user, StdConsole::new())?;
    let ok = match command {
        Some(line) => session.run_one(line)?,
        None => session.run()?,
    };
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// 16 characters from the kernel's random source, letters and digits without look-alikes.
fn random_password() -> std::io::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(&mut fs::File::open("/dev/urandom")?, &mut bytes)?;
    // 256 is not a multiple of 56: a slight bias toward the first letters, under 0.1 bit each.
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{secret}")?;
    file.sync_all()?;
    Ok(())
}
