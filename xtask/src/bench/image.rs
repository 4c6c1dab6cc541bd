//! `cargo xtask bench image`: the appliance image against the targets of issue 7, on this
//! machine under TCG: QEMU's start to the SMTP `220` banner, on the first boot of a new disk
//! and on a later boot of the same disk (≤ 10 s); the compressed image, `postern.img.xz` as
//! `cargo xtask image` makes it (≤ 40 MB); the resident memory of all Postern processes in the
//! idle VM, the `Postern Memory (RSS)` of `status detail` read over SSH (≤ 40 MB).
//!
//! Each run boots a new overlay on `postern.qcow2` twice with `qemu-test`'s VM helpers (the
//! first boot is cut off once SSH has made its host keys, as a power cut would); the consoles
//! go to `target/image/bench-serial.log`.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::qemu_test::{Login, Vm, readiness, ssh, wait_for_ssh};

/// Runs of two boots each; a boot takes 10–30 s here.
const RUNS: usize = 3;
/// How long the VM idles after the banner before its memory is read: SSH has started, and
/// what the start allocated for a moment is given back.
const IDLE: Duration = Duration::from_secs(15);
const BOOT_TARGET_S: f64 = 10.0;
const IMAGE_TARGET_MB: f64 = 40.0;
const RSS_TARGET_MB: f64 = 40.0;

pub(super) fn image(sh: &Shell) -> anyhow::Result<()> {
    crate::deps::ensure(sh, crate::deps::QEMU_TEST_PACKAGES)?;
    let built = crate::image::build_if_stale(sh)?;
    let compressed = compressed_size(sh, &built.raw)?;
    let forwards = crate::qemu::free_forwards()?;
    let port = |guest| crate::qemu::host_port(&forwards, guest);
    let (smtp, ssh_port) = (port(25)?, port(22)?);
    let dir = crate::image::dir();
    let disk = dir.join("bench.qcow2");
    let log_path = dir.join("bench-serial.log");
    let mut log =
        fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let load_average = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let started = Instant::now();

    let (mut first, mut later, mut postern, mut qemu) = (vec![], vec![], vec![], vec![]);
    for run in 1..=RUNS {
        eprintln!("xtask: bench image, run {run} of {RUNS}");
        let image = &built.qcow2;
        cmd!(sh, "qemu-img create -q -f qcow2 -F qcow2 -b {image} {disk}")
            .run()
            .context("making the bench disk")?;
        let login = Login::provision(&dir)?;

        writeln!(log, "=== bench image: run {run}, first boot")?;
        let mut vm = Vm::start(&disk, &forwards, Some(&login.file), log.try_clone()?)?;
        let checks = readiness(&vm, smtp).and_then(|ready| {
            // Not timed: the first start's host keys are on /data before the cut.
            wait_for_ssh(&vm, ssh_port)?;
            Ok(ready)
        });
        first.push(vm.finish(checks, &log_path)?.banner.as_secs_f64());

        writeln!(log, "\n=== bench image: run {run}, later boot")?;
        let mut vm = Vm::start(&disk, &forwards, Some(&login.file), log.try_clone()?)?;
        let checks = readiness(&vm, smtp).and_then(|ready| {
            wait_for_ssh(&vm, ssh_port)?;
            std::thread::sleep(IDLE);
            let rss = postern_rss_mb(sh, ssh_port, &login.file)?;
            Ok((ready, rss, vm.rss()))
        });
        let (ready, rss, qemu_rss) = vm.finish(checks, &log_path)?;
        later.push(ready.banner.as_secs_f64());
        postern.push(rss);
        qemu.extend(qemu_rss.map(|b| b as f64 / 1e6));
        let _ = fs::remove_file(&disk);
        let _ = fs::remove_file(&login.file);
    }

    println!(
        "\nPostern appliance image under TCG ({RUNS} runs of a first and a later boot, {:.0} s; \
         load average at the start: {})",
        started.elapsed().as_secs_f64(),
        load_average
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:<46}{:>9}{:>9}{:>9}   target",
        "measure", "min", "median", "max"
    );
    row(
        "QEMU start -> SMTP banner, first boot (s)",
        &first,
        Some(BOOT_TARGET_S),
    );
    row(
        "QEMU start -> SMTP banner, later boot (s)",
        &later,
        Some(BOOT_TARGET_S),
    );
    row(
        "postern.img.xz, xz -T2 -6 (MB)",
        &[compressed as f64 / 1e6],
        Some(IMAGE_TARGET_MB),
    );
    row(
        "Postern processes, idle VM, RSS (MB)",
        &postern,
        Some(RSS_TARGET_MB),
    );
    row("QEMU process, RSS (MB)", &qemu, None);
    println!("(a target is met when the median is within it; MB = 10^6 bytes)");
    Ok(())
}

/// `status detail` over SSH: `Postern Memory (RSS)`, the supervisor and its services, in MB.
fn postern_rss_mb(sh: &Shell, port: u16, password: &Path) -> anyhow::Result<f64> {
    let (ok, said) = ssh(sh, port, password, "status detail")?;
    let value = said
        .lines()
        .find_map(|l| l.trim().strip_prefix("Postern Memory (RSS)"))
        .map(str::trim)
        .filter(|_| ok)
        .with_context(|| format!("`status detail` over SSH showed no Postern Memory:\n{said}"))?;
    let mib: f64 = value
        .strip_suffix(" MiB")
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("Postern Memory (RSS) is not in MiB: {value}"))?;
    Ok(mib * 1_048_576.0 / 1e6)
}

/// `postern.img.xz` beside the raw image, made again (as `cargo xtask image` makes it) when it
/// is missing or older than the image; its size in bytes.
fn compressed_size(sh: &Shell, raw: &Path) -> anyhow::Result<u64> {
    let xz = raw.with_extension("img.xz");
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified());
    let fresh = matches!((modified(&xz), modified(raw)), (Ok(x), Ok(r)) if x >= r);
    if !fresh {
        eprintln!(
            "xtask: compressing {} as `cargo xtask image` does",
            raw.display()
        );
        crate::image::compress(sh, raw)?;
    }
    Ok(fs::metadata(&xz)?.len())
}

/// One line of the table: min, median and max of `values`, and the target with whether the
/// median meets it.
fn row(label: &str, values: &[f64], target: Option<f64>) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (Some(min), Some(max)) = (sorted.first(), sorted.last()) else {
        println!("{label:<46}{:>9}", "-");
        return;
    };
    let median = sorted[sorted.len() / 2];
    let target = target.map_or(String::new(), |t| {
        let verdict = if median <= t { "met" } else { "MISSED" };
        format!("<= {t:<5} {verdict}")
    });
    println!("{label:<46}{min:>9.1}{median:>9.1}{max:>9.1}   {target}");
}
