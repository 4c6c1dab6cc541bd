//! `cargo xtask bench [startup]`: measured figures of the release build, printed as a table.
//!
//! `startup`: time from `postern run` to `postern: ready` (first start, which creates the data
//! directory, and restart on existing data), resident memory of the supervisor and its services
//! when idle, and commit latency seen by a CLI session.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

pub(crate) struct Bench {
    pub(crate) which: Vec<String>,
}

impl Bench {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let which: Vec<&str> = self.which.iter().map(String::as_str).collect();
        match which.as_slice() {
            [] | ["startup"] => startup(sh),
            other => bail!("unknown benchmark {other:?}; available: startup"),
        }
    }
}

const RUNS: usize = 5;
const COMMITS: usize = 50;

fn startup(sh: &Shell) -> anyhow::Result<()> {
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
fn start(binary: &Path, data: &Path, password: &Path) -> anyhow::Result<(Gateway, Duration)> {
    let began = Instant::now();
    let mut child = Command::new(binary)
        .arg("run")
        .arg("--data")
        .arg(data)
        .args(["--hostname", "bench.example.com", "--admin-password-file"])
        .arg(password)
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
