//! `cargo xtask qemu-test`: boot the image in QEMU and check it from outside as an
//! administrator would, printing the figures it measured.
//!
//! The disk is `target/image/qemu-test.qcow2`, a new overlay on `postern.qcow2` each run, so the
//! image itself is never written (as with `snapshot=on`) while the second boot finds what the
//! first one left on `/data`.
//!
//! First boot (Postern's first start makes the factory configuration and certificates):
//! 1. Readiness: `postern: ready` on the serial console, then the SMTP `220` banner on the
//!    forwarded port. (QEMU's user-mode network accepts a connection before the guest listens,
//!    so only the banner says the service is up.)
//! 2. STARTTLS on the forwarded port negotiates TLS v1.2 (the factory policy: v1.1 and v1.2),
//!    with `openssl s_client`.
//! 3. The Classic UI answers its login page over HTTPS on the forwarded port 443 (`curl`).
//! 4. The console login `admin` refuses a wrong password and takes the one the test provisioned
//!    through QEMU's fw_cfg (`opt/postern/admin-password`: the first start's admin password,
//!    which the console never shows), and lands in the Postern CLI; its `status detail` gives
//!    the guest's Postern memory and shows smtpd and httpd running as the `postern` account
//!    (they give up root once their ports are bound). Then the seed's change on the console: `sslconfig inbound 1-3` and
//!    `commit`, after which STARTTLS negotiates TLS v1.3.
//! 5. SSH on the forwarded port 22 (dropbear, started after readiness): `ssh admin@` with a
//!    wrong password is refused; with the provisioned one, `ssh admin@... version` runs the
//!    CLI's `version`.
//! 6. The NGUI answers its login page over HTTPS on the forwarded port 4431, and the REST API
//!    beside it takes the provisioned password for a token that reads `/api/v1/status`.
//! 7. The CLI's `grep` over SSH finds `ICID n TLS success protocol TLSv1.3 cipher
//!    TLS_AES_256_GCM_SHA384` in mail_logs: the STARTTLS of step 4, as the seed shows it; and no
//!    warning that the system CA bundle (what `-Verify` deliveries check against) is missing.
//! 8. Mail (`qemu_test/mail.rs`): a CLI session over SSH opens the Recipient Access Table for
//!    `example.test` and `held.test` and routes them to the host (10.0.2.2, QEMU's user-mode
//!    network): `example.test` to a sink in this process, `held.test` to a port nothing listens
//!    on yet; one commit. A message to `held.test` gets 250 and mail_logs shows it `Delayed`.
//!    Then four client threads inject numbered messages to `example.test`, each noting which
//!    got 250 to the final dot, while the appliance delivers them to the sink; once
//!    `ACKED_BEFORE_THE_CUT` got 250, QEMU is killed with the clients still sending: a power cut.
//!
//! Second boot: readiness again, on the data the first left: the boot time of every later day;
//! STARTTLS still negotiates TLS v1.3 (the commit survived the power cut); SSH answers with the
//! same host key (kept in /data) and the same password. The held message's next hop starts
//! listening, `delivernow ALL` over SSH, and it arrives, its text whole; every injected message
//! that got 250 arrives too (the report counts those sent, accepted, delivered, and duplicates,
//! which are allowed: the cut may fall between the sink's 250 and the appliance noting it).
//!
//! Third boot, of a new overlay without a provisioned password (as on hardware): the console
//! shows the random admin password of the first start once Postern is ready, and SSH takes it.
//! Then the CLI's `shutdown`, confirmed over SSH: Postern stops in order (rcK prints `postern:
//! stopped`) and the guest powers off, which ends QEMU.
//!
//! Every boot: where the time to `postern: ready` went, from the console's lines as they came
//! (the initramfs prints the kernel's uptime when it starts, rcS says when it starts).
//!
//! Slots: a copy of the new disk whose GRUB environment tries slot B once, with slot B's root
//! zeroed: GRUB boots B's trial, which cannot mount its root and reboots; the next start falls
//! back to slot A, which records itself as the good slot once Postern is ready, so the start
//! after that boots slot A without falling back ([`slot_fallback`]).
//!
//! UEFI: a new disk under OVMF (Debian's `ovmf`) instead of SeaBIOS: GRUB's `BOOTX64.EFI`
//! boots slot A and Postern gets ready ([`uefi_boot`]).
//!
//! All boots: the serial log has no kernel panic, oops or BUG. It is kept, the boots one after
//! the other, in `target/image/serial.log`.

mod mail;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::qemu::{Boot, Forward, Serial};

/// How long the guest may take from QEMU's start to `postern: ready`.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// How long each later step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the test waits after login's `Password:` prompt before typing: the guest's tty
/// echoes what arrives before login has turned the echo off.
const PROMPT_SETTLE: Duration = Duration::from_secs(1);
/// How long the mail accepted before a power cut may take to reach the sinks after the next
/// boot's `delivernow`.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(300);
/// The clients inject mail until this many messages got `250`, then QEMU is killed.
const ACKED_BEFORE_THE_CUT: u64 = 200;
/// How long the clients may take to get there; the cut comes then all the same.
const INJECTION_TIMEOUT: Duration = Duration::from_secs(240);
/// What the serial log must not contain.
const KERNEL_FAULTS: &[&str] = &["Kernel panic", "Oops", "BUG: "];

#[derive(Debug)]
pub(crate) struct QemuTest;

impl QemuTest {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
        crate::deps::ensure(sh, crate::deps::QEMU_TEST_PACKAGES)?;
        let build_started = Instant::now();
        let built = crate::image::build_if_stale(sh)?;
        let build_time = build_started.elapsed();
        let forwards = crate::qemu::free_forwards()?;
        let port = |guest| crate::qemu::host_port(&forwards, guest);
        let (smtp, gui, ssh, ngui) = (port(25)?, port(443)?, port(22)?, port(4431)?);
        // The next hops of the mail checks, on the host: the sink listens from the start; the
        // held message's port only from the second boot on.
        let run = mail::run_token()?;
        let sink = mail::Sink::start(&run)?;
        let mail = MailBoot {
            smtp,
            ssh,
            run: &run,
            sink: &sink,
            held_port: mail::port_for_later()?,
        };
        let dir = crate::image::dir();
        let login = Login::provision(&dir)?;
        let disk = dir.join("qemu-test.qcow2");
        let image = &built.qcow2;
        cmd!(sh, "qemu-img create -q -f qcow2 -F qcow2 -b {image} {disk}")
            .run()
            .context("making the test disk")?;
        let log_path = dir.join("serial.log");
        let mut log = fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        eprintln!(
            "xtask: booting {} with SMTP on 127.0.0.1:{smtp}; serial log in {}",
            disk.display(),
            log_path.display()
        );

        writeln!(log, "=== qemu-test: first boot")?;
        let mut vm = Vm::start(&disk, &forwards, Some(&login.file), log.try_clone()?)?;
        let checks = first_boot(sh, &mut vm, &login, smtp, gui, ssh).and_then(|first| {
            let ngui = ngui_checks(sh, ngui, &login)?;
            let tls_logged = tls13_in_mail_logs(sh, &login, ssh)?;
            no_ca_warning(sh, &login, ssh)?;
            let cut = mail.before_the_power_cut(sh, &vm, &login)?;
            Ok((first, (ngui, tls_logged), cut))
        });
        // QEMU is killed while the clients send: the power cut.
        let (first, (ngui_checked, tls_logged), cut) = vm.finish(checks, &log_path)?;
        let injected = cut.load.finish();
        if injected.acked.is_empty() {
            bail!(
                "no injected message got 250 before the power cut: {:?}",
                injected.first_errors
            );
        }
        writeln!(log, "\n=== qemu-test: second boot")?;
        let mut vm = Vm::start(&disk, &forwards, Some(&login.file), log.try_clone()?)?;
        let checks = readiness(&vm, smtp).and_then(|ready| {
            let protocol = starttls(sh, smtp)?;
            if protocol.0.as_deref() != Some("TLSv1.3") {
                bail!(
                    "after the reboot STARTTLS did not negotiate TLS v1.3 (the commit was \
                     lost?); openssl s_client said:\n{}",
                    protocol.1
                );
            }
            let (host_key, version) = ssh_checks(sh, &vm, &login, ssh)?;
            if host_key != first.1.ssh_host_key {
                bail!(
                    "after the reboot SSH has another host key (not kept in /data?): {host_key} \
                     instead of {}",
                    first.1.ssh_host_key
                );
            }
            Ok((ready, version))
        });
        let checks = checks.and_then(|second| {
            let banner = second.0.banner;
            let delivered =
                mail.after_the_power_cut(sh, &vm, &login, &cut.held, &injected, banner)?;
            Ok((second, delivered))
        });
        let (second, delivered) = vm.finish(checks, &log_path)?;
        drop(sink);
        let _ = fs::remove_file(&disk);
        let _ = fs::remove_file(&login.file);

        writeln!(
            log,
            "\n=== qemu-test: third boot, a new disk without a provisioned password"
        )?;
        cmd!(sh, "qemu-img create -q -f qcow2 -F qcow2 -b {image} {disk}")
            .run()
            .context("making the test disk")?;
        let mut vm = Vm::start(&disk, &forwards, None, log.try_clone()?)?;
        let checks = unprovisioned_boot(sh, &vm, &dir, smtp, ssh);
        let third = vm.finish(checks, &log_path)?;
        let _ = fs::remove_file(&disk);
        let slots = slot_fallback(sh, &built.raw, &forwards, &mut log, &log_path)?;

        writeln!(log, "\n=== qemu-test: UEFI boot (OVMF), a new disk")?;
        cmd!(sh, "qemu-img create -q -f qcow2 -F qcow2 -b {image} {disk}")
            .run()
            .context("making the test disk")?;
        let uefi = uefi_boot(&disk, &forwards, smtp, &mut log, &log_path);
        let _ = fs::remove_file(&disk);
        let uefi = uefi?;

        println!("\nqemu-test: the image booted and passed its checks");
        println!(
            "  {:<40}{:.1} s",
            "building what was missing",
            build_time.as_secs_f64()
        );
        let (second, second_ssh) = second;
        for (name, boot) in [
            ("first boot", &first.0),
            ("second boot", &second),
            ("third boot", &third.0),
        ] {
            println!(
                "  {:<40}{:.1} s to `postern: ready`, {:.1} s to the SMTP 220 banner",
                format!("QEMU start -> ({name})"),
                boot.ready.as_secs_f64(),
                boot.banner.as_secs_f64()
            );
            println!("  {:<40}{}", "  where the time went", boot.phases);
        }
        let checked = &first.1;
        println!("  {:<40}{}", "STARTTLS on the forwarded port", checked.tls);
        println!(
            "  {:<40}{}",
            "after sslconfig inbound 1-3 + commit", checked.tls_after
        );
        println!(
            "  {:<40}TLSv1.3 (kept over the power cut)",
            "STARTTLS after the reboot"
        );
        println!("  {:<40}{}", "Classic UI login page (HTTPS)", checked.gui);
        println!("  {:<40}{}", "NGUI (HTTPS, port 4431)", ngui_checked);
        println!("  {:<40}{}", "mail_logs (CLI grep over SSH)", tls_logged);
        println!(
            "  {:<40}present: smtpd found {} (no warning in mail_logs)",
            "system CA bundle", CA_BUNDLE
        );
        println!(
            "  {:<40}wrong password refused, provisioned one accepted",
            "console login (admin)"
        );
        println!(
            "  {:<40}wrong password refused; `version`: {}",
            "ssh admin@ (password)", checked.ssh_version
        );
        println!(
            "  {:<40}{} (the same after the reboot; `version`: {second_ssh})",
            "SSH host key (ed25519)", checked.ssh_host_key
        );
        println!(
            "  {:<40}{}",
            "guest Postern memory (RSS)", checked.postern_rss
        );
        println!(
            "  {:<40}{}",
            "QEMU memory (RSS)",
            checked
                .qemu_rss
                .map_or("unknown".to_owned(), crate::image::mb)
        );
        println!(
            "  {:<40}MID {} for a next hop that was down: deferred, kept over the power cut, \
             delivered after `delivernow` {:.1} s after the banner",
            "queued message over a power cut", cut.held.mid, delivered.held_after
        );
        println!(
            "  {:<40}{} sent in {:.1} s, {} accepted (250; {} when the cut was ordered), {} \
             delivered of them ({} before the cut, all there by {:.1} s after the next banner), {} \
             delivered that never got 250, {} duplicates",
            "mail injected during the power cut",
            injected.attempted,
            cut.injected_for.as_secs_f64(),
            injected.acked.len(),
            cut.acked_at_cut,
            delivered.accepted,
            cut.delivered_before,
            delivered.all_after,
            delivered.unacknowledged,
            delivered.duplicates
        );
        println!(
            "  {:<40}shown on the console: {}; SSH takes it",
            "unprovisioned first boot's password", third.1
        );
        println!(
            "  {:<40}Postern stopped in order, the guest powered off {:.1} s after the command",
            "`shutdown` in the CLI (over SSH)",
            third.2.as_secs_f64()
        );
        println!("  {:<40}{slots}", "slot B's failing trial boot");
        println!(
            "  {:<40}{:.1} s to `postern: ready`, {:.1} s to the SMTP 220 banner (a first boot)",
            "UEFI (OVMF, GRUB's BOOTX64.EFI)",
            uefi.ready.as_secs_f64(),
            uefi.banner.as_secs_f64()
        );
        println!("  {:<40}none", "kernel panic/oops/BUG");
        Ok(())
    }
}

/// When the guest was ready, from QEMU's start.
pub(crate) struct Readiness {
    ready: Duration,
    pub(crate) banner: Duration,
    /// Where the time to `postern: ready` went, for the report.
    phases: String,
}

/// What the first boot's checks found.
struct Checked {
    tls: String,
    tls_after: String,
    gui: String,
    /// The `Version:` line of the CLI's `version` over SSH.
    ssh_version: String,
    /// The guest's ed25519 host key, as `ssh-keyscan` got it.
    ssh_host_key: String,
    postern_rss: String,
    qemu_rss: Option<u64>,
}

/// `postern: ready` on the console, then the SMTP banner.
pub(crate) fn readiness(vm: &Vm, smtp: u16) -> anyhow::Result<Readiness> {
    let at = vm.wait_for("postern: ready", 0, BOOT_TIMEOUT)?;
    let ready = vm.arrival(at);
    let phases = boot_phases(vm, ready);
    let banner_line = wait_for_banner(vm, smtp)?;
    let banner = vm.started.elapsed();
    eprintln!(
        "xtask: ready after {:.1} s, banner after {:.1} s: {banner_line}",
        ready.as_secs_f64(),
        banner.as_secs_f64()
    );
    Ok(Readiness {
        ready,
        banner,
        phases,
    })
}

/// The boot's phases from the console: when the initramfs started (it prints the kernel's
/// uptime then, which tells when the kernel started), when rcS started, and `postern: ready`.
/// Times are from QEMU's start, as the lines arrived (the console is read as it comes).
fn boot_phases(vm: &Vm, ready: Duration) -> String {
    let text = vm.since(0);
    let initramfs = text.find(INITRAMFS_MARK).map(|at| {
        let arrived = vm.arrival(at + INITRAMFS_MARK.len());
        let uptime = text[at + INITRAMFS_MARK.len()..]
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok());
        (arrived, uptime)
    });
    let rcs = text
        .find(RCS_MARK)
        .map(|at| vm.arrival(at + RCS_MARK.len()));
    let supervisor = text
        .find(SUPERVISOR_MARK)
        .map(|at| vm.arrival(at + SUPERVISOR_MARK.len()));
    let (Some((initramfs, Some(uptime))), Some(rcs), Some(supervisor)) =
        (initramfs, rcs, supervisor)
    else {
        return "(the console did not say when the initramfs, rcS and the supervisor started)"
            .to_owned();
    };
    let kernel = initramfs.as_secs_f64() - uptime;
    format!(
        "kernel entered at {kernel:.1} s (firmware, GRUB, loading it), initramfs at {:.1} s, \
         rcS at {:.1} s, the supervisor at {:.1} s, Postern ready {:.1} s after",
        initramfs.as_secs_f64(),
        rcs.as_secs_f64(),
        supervisor.as_secs_f64(),
        (ready - supervisor).as_secs_f64()
    )
}

/// What the initramfs prints first, before the kernel's uptime in seconds.
const INITRAMFS_MARK: &str = "postern-initramfs: started at uptime ";
/// What rcS prints first.
const RCS_MARK: &str = "postern: system start";
/// What init's start script of the supervisor prints before it runs Postern.
const SUPERVISOR_MARK: &str = "postern: supervisor starting";

/// The same disk under UEFI firmware (OVMF) instead of the BIOS: GRUB's `BOOTX64.EFI` on the
/// boot partition boots slot A with the EFI boot protocol, and Postern gets ready.
fn uefi_boot(
    disk: &Path,
    forwards: &[Forward],
    smtp: u16,
    log: &mut fs::File,
    log_path: &Path,
) -> anyhow::Result<Readiness> {
    // The firmware writes its variable store: a copy of the empty one, per run.
    let vars = crate::image::dir().join("qemu-test-uefi-vars.fd");
    let empty = Path::new(crate::qemu::OVMF_CODE).with_file_name("OVMF_VARS_4M.fd");
    fs::copy(&empty, &vars).with_context(|| format!("copying {}", empty.display()))?;
    let boot = Boot {
        disk,
        snapshot: false,
        forwards,
        serial: Serial::Pipe,
        admin_password: None,
        uefi_vars: Some(&vars),
    };
    let mut vm = Vm::boot(&boot, log.try_clone()?)?;
    let checks = readiness(&vm, smtp).and_then(|ready| {
        if vm.since(0).contains("postern-boot: slot a") {
            Ok(ready)
        } else {
            bail!("GRUB did not say it boots slot a under UEFI")
        }
    });
    let ready = vm.finish(checks, log_path);
    let _ = fs::remove_file(&vars);
    ready
}

/// A first boot without a provisioned password: the console shows the random one once Postern
/// is ready, and SSH takes it; then the CLI's `shutdown` powers the guest off. The boot's
/// readiness, the password, and how long the shutdown took.
fn unprovisioned_boot(
    sh: &Shell,
    vm: &Vm,
    dir: &Path,
    smtp: u16,
    ssh: u16,
) -> anyhow::Result<(Readiness, String, Duration)> {
    const SHOWN: &str = "postern: first start: the admin password is ";
    let ready = readiness(vm, smtp)?;
    let at = vm.wait_for(SHOWN, 0, STEP_TIMEOUT)?;
    vm.wait_for("\n", at, STEP_TIMEOUT)?;
    let password = vm
        .since(at)
        .split_whitespace()
        .next()
        .context("the console showed no password")?
        .to_owned();
    if password.chars().count() < 8 {
        bail!("the first start's password is short: {password:?}");
    }
    let file = dir.join("qemu-test-shown-password");
    fs::write(&file, &password)?;
    let login = Login {
        password: password.clone(),
        file,
    };
    let checked = ssh_checks(sh, vm, &login, ssh).and_then(|_| shutdown(sh, vm, &login, ssh));
    let _ = fs::remove_file(&login.file);
    let powered_off = checked?;
    Ok((ready, password, powered_off))
}

/// The CLI's `shutdown` over SSH, confirmed: Postern stops in order (rcK says `postern:
/// stopped`) and the guest powers off, which ends QEMU. How long that took.
fn shutdown(sh: &Shell, vm: &Vm, login: &Login, port: u16) -> anyhow::Result<Duration> {
    let from = vm.since(0).len();
    let began = Instant::now();
    let (_, said) = ssh_with(sh, port, &login.file, Some("shutdown"), "y\n")?;
    if !said.contains("Shutting down the appliance") {
        bail!("`shutdown` over SSH did not shut down:\n{said}");
    }
    vm.wait_for("postern: stopped", from, STEP_TIMEOUT)?;
    if !vm.wait_closed(STEP_TIMEOUT) {
        bail!("the guest did not power off within {STEP_TIMEOUT:?} of `shutdown`");
    }
    Ok(began.elapsed())
}

/// A new slot that cannot boot is tried once, then the good slot boots again
/// ([`crate::image::failing_trial_disk`]: slot B tried once, its root zeroed). Three starts of
/// QEMU on one disk: B's trial, whose initramfs finds no root and reboots (which ends QEMU, as
/// it runs with -no-reboot); slot A, which GRUB falls back to, until Postern is ready and
/// `boot-slot` has recorded slot A as the good one; and the start after, which boots slot A
/// without a word of a trial (stopped once GRUB has said so). What it saw, for the report.
fn slot_fallback(
    sh: &Shell,
    raw: &Path,
    forwards: &[Forward],
    log: &mut fs::File,
    log_path: &Path,
) -> anyhow::Result<String> {
    let disk = crate::image::dir().join("qemu-test-slots.qcow2");
    crate::image::failing_trial_disk(sh, raw, &disk)?;
    writeln!(log, "\n=== qemu-test: slot B's trial boot, its root zeroed")?;
    let mut vm = Vm::start(&disk, forwards, None, log.try_clone()?)?;
    let checks = (|| {
        let at = vm.wait_for("postern-boot: slot b, trial boot", 0, BOOT_TIMEOUT)?;
        let at = vm.wait_for(
            "postern-initramfs: root slot b, a trial boot",
            at,
            BOOT_TIMEOUT,
        )?;
        vm.wait_for("cannot mount slot b", at, STEP_TIMEOUT)?;
        if !vm.wait_closed(STEP_TIMEOUT) {
            bail!("slot B's failed trial boot did not reboot within {STEP_TIMEOUT:?}");
        }
        Ok(vm.started.elapsed())
    })();
    let failed = vm.finish(checks, log_path)?;

    writeln!(
        log,
        "\n=== qemu-test: the start after slot B's failed trial"
    )?;
    let mut vm = Vm::start(&disk, forwards, None, log.try_clone()?)?;
    let checks = (|| {
        let at = vm.wait_for(
            "postern-boot: slot b failed its trial boots; falling back to slot a",
            0,
            BOOT_TIMEOUT,
        )?;
        let at = vm.wait_for("postern-initramfs: root slot a", at, BOOT_TIMEOUT)?;
        let at = vm.wait_for("postern: ready", at, BOOT_TIMEOUT)?;
        let ready = vm.arrival(at);
        vm.wait_for(
            "postern: slot b failed its trial boots; slot a stays the good slot",
            at,
            STEP_TIMEOUT,
        )?;
        Ok(ready)
    })();
    let ready = vm.finish(checks, log_path)?;

    writeln!(log, "\n=== qemu-test: the start after that")?;
    let mut vm = Vm::start(&disk, forwards, None, log.try_clone()?)?;
    let checks = (|| {
        let at = vm.wait_for("postern-boot: slot a", 0, BOOT_TIMEOUT)?;
        vm.wait_for("\n", at, STEP_TIMEOUT)?;
        let said = vm.since(0);
        if said.contains("trial") || said.contains("falling back") {
            bail!("GRUB still tries slot B after slot A recorded itself as the good slot:\n{said}");
        }
        Ok(())
    })();
    vm.finish(checks, log_path)?;
    let _ = fs::remove_file(&disk);
    Ok(format!(
        "rebooted after {:.1} s; slot A ready {:.1} s after the restart and recorded as good; \
         the next start boots slot A",
        failed.as_secs_f64(),
        ready.as_secs_f64()
    ))
}

/// `openssl s_client -starttls smtp` against the forwarded port: the protocol it negotiated, if
/// any, and everything it said.
fn starttls(sh: &Shell, smtp: u16) -> anyhow::Result<(Option<String>, String)> {
    let port = smtp.to_string();
    let output = cmd!(
        sh,
        "timeout 60 openssl s_client -starttls smtp -connect 127.0.0.1:{port} -brief"
    )
    .stdin("QUIT\r\n")
    .ignore_status()
    .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((field(&text, "Protocol version:"), text))
}

/// The Classic UI's login page over HTTPS on the forwarded port: the TLS version curl got.
fn classic_ui_login(sh: &Shell, port: u16) -> anyhow::Result<String> {
    let url = format!("https://127.0.0.1:{port}/login");
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let page = cmd!(sh, "curl -sk --max-time 20 {url}")
            .ignore_status()
            .read()?;
        if page.contains("id=\"login\"") {
            let verbose = cmd!(sh, "curl -sk -v --max-time 20 -o /dev/null {url}")
                .ignore_status()
                .output()?;
            let said = String::from_utf8_lossy(&verbose.stderr).into_owned();
            let tls = said
                .lines()
                .find_map(|l| l.split("SSL connection using ").nth(1))
                .unwrap_or("TLS (version not reported)");
            return Ok(format!("login page over {}", tls.trim()));
        }
        if Instant::now() > deadline {
            bail!("the Classic UI did not serve its login page on {url}: {page}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn first_boot(
    sh: &Shell,
    vm: &mut Vm,
    login: &Login,
    smtp: u16,
    gui: u16,
    ssh: u16,
) -> anyhow::Result<(Readiness, Checked)> {
    let ready = readiness(vm, smtp)?;

    let (protocol, text) = starttls(sh, smtp)?;
    if protocol.as_deref() != Some("TLSv1.2") {
        bail!("STARTTLS did not negotiate TLS v1.2; openssl s_client said:\n{text}");
    }
    let tls = format!(
        "TLSv1.2, {}",
        field(&text, "Ciphersuite:").unwrap_or_default()
    );
    let gui = classic_ui_login(sh, gui)?;

    // The first start took the provisioned password, and said so without showing it.
    vm.wait_for("admin password was provisioned", 0, STEP_TIMEOUT)?;
    // The console login; getty drew its prompt at boot. A wrong password first.
    let at = vm.wait_for("login:", 0, STEP_TIMEOUT)?;
    vm.send("admin\n")?;
    let at = vm.wait_for("Password:", at, STEP_TIMEOUT)?;
    // login turns the echo off only after its prompt: typed at once, the line would be echoed.
    std::thread::sleep(PROMPT_SETTLE);
    vm.send("not-the-password\n")?;
    let at = vm.wait_for("Login incorrect", at, STEP_TIMEOUT)?;
    let at = vm.wait_for("login:", at, STEP_TIMEOUT)?;
    if vm.since(at).contains("postern> ") {
        bail!("the console login let a wrong password in");
    }
    vm.send("admin\n")?;
    let at = vm.wait_for("Password:", at, STEP_TIMEOUT)?;
    std::thread::sleep(PROMPT_SETTLE);
    vm.send(&format!("{}\n", login.password))?;
    let at = vm.wait_for("postern> ", at, STEP_TIMEOUT)?;
    vm.send("status detail\n")?;
    let at = vm.wait_for("RAM Used / Total", at, STEP_TIMEOUT)?;
    let postern_rss = vm
        .since(0)
        .lines()
        .rev()
        .find(|l| l.contains("Postern Memory (RSS)"))
        .and_then(|l| l.split("Postern Memory (RSS)").nth(1))
        .map(|v| v.trim().to_owned())
        .context("`status detail` showed no Postern Memory (RSS)")?;
    // The services gave up root once their ports were bound.
    let shown = vm.since(0);
    for service in ["smtpd", "httpd"] {
        let line = shown
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with(service) && l.contains("Running (pid"))
            .with_context(|| format!("`status detail` showed no running {service}"))?;
        if !line.contains(") as postern ") {
            bail!("{service} does not run as the postern account: {line}");
        }
    }
    // The seed's change, on the console: TLS v1.3 for inbound SMTP, committed.
    vm.send("sslconfig inbound 1-3\n")?;
    let at = vm.wait_for(
        "Inbound SMTP method: tlsv1_1tlsv1_2tlsv1_3",
        at,
        STEP_TIMEOUT,
    )?;
    vm.send("commit TLS 1.3 for inbound (qemu-test)\n")?;
    let at = vm.wait_for("Changes committed", at, STEP_TIMEOUT)?;
    let deadline = Instant::now() + STEP_TIMEOUT;
    let tls_after = loop {
        let (protocol, text) = starttls(sh, smtp)?;
        if protocol.as_deref() == Some("TLSv1.3") {
            break format!(
                "TLSv1.3, {}",
                field(&text, "Ciphersuite:").unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            bail!("STARTTLS did not become TLS v1.3 after the commit:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    vm.send("quit\n")?;
    vm.wait_for("login:", at, STEP_TIMEOUT)?;

    let (ssh_host_key, ssh_version) = ssh_checks(sh, vm, login, ssh)?;
    if vm.since(0).contains(&login.password) {
        bail!("the console showed the provisioned admin password");
    }
    let checked = Checked {
        tls,
        tls_after,
        gui,
        ssh_version,
        ssh_host_key,
        postern_rss,
        qemu_rss: vm.rss(),
    };
    Ok((ready, checked))
}

/// The NGUI over HTTPS on the forwarded port 4431: its page, and the REST API beside it: a
/// login with the provisioned password gives a token, with which `/api/v1/status` lists the
/// services.
fn ngui_checks(sh: &Shell, port: u16, login: &Login) -> anyhow::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let page_url = format!("https://127.0.0.1:{port}/");
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let page = cmd!(sh, "curl -sk --max-time 20 {page_url}")
            .ignore_status()
            .read()?;
        if page.contains("id=\"ngui-login\"") {
            break;
        }
        if Instant::now() > deadline {
            bail!("the NGUI did not serve its login page on {page_url}: {page}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let verbose = cmd!(sh, "curl -sk -v --max-time 20 -o /dev/null {page_url}")
        .ignore_status()
        .output()?;
    let said = String::from_utf8_lossy(&verbose.stderr).into_owned();
    let tls = said
        .lines()
        .find_map(|l| l.split("SSL connection using ").nth(1))
        .unwrap_or("TLS (version not reported)")
        .trim()
        .to_owned();

    // The password goes in a file, not on curl's command line.
    let credentials = login.file.with_extension("json");
    let _ = fs::remove_file(&credentials);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&credentials)
        .and_then(|mut f| {
            write!(
                f,
                "{{\"username\":\"admin\",\"password\":\"{}\"}}",
                login.password
            )
        })
        .with_context(|| format!("writing {}", credentials.display()))?;
    let json = "Content-Type: application/json";
    let login_url = format!("https://127.0.0.1:{port}/api/v1/login");
    let answer = cmd!(
        sh,
        "curl -sk --max-time 90 -H {json} --data-binary @{credentials} {login_url}"
    )
    .ignore_status()
    .read();
    let _ = fs::remove_file(&credentials);
    let answer = answer?;
    let token = answer
        .split("\"token\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .filter(|t| !t.is_empty())
        .with_context(|| format!("the REST API's login gave no token: {answer}"))?;
    let bearer = format!("Authorization: Bearer {token}");
    let status_url = format!("https://127.0.0.1:{port}/api/v1/status");
    let status = cmd!(sh, "curl -sk --max-time 30 -H {bearer} {status_url}")
        .ignore_status()
        .read()?;
    if !status.contains("\"smtpd\"") || !status.contains("\"httpd\"") {
        bail!("the REST API's status, with the login's token, lists no smtpd and httpd: {status}");
    }
    Ok(format!("login page; REST API login and status over {tls}"))
}

/// The seed's proof in mail_logs, read through the CLI's `grep` over SSH: after the commit,
/// `ICID n TLS success protocol TLSv1.3 cipher TLS_AES_256_GCM_SHA384`. The line.
fn tls13_in_mail_logs(sh: &Shell, login: &Login, ssh_port: u16) -> anyhow::Result<String> {
    const EVENT: &str = "TLS success protocol TLSv1.3 cipher TLS_AES_256_GCM_SHA384";
    let command = format!("grep \"ICID [0-9]+ {EVENT}\" mail_logs");
    // `<date> Info: ICID <n> <EVENT>`, not merely a line that mentions it.
    let is_event = |line: &str| {
        line.split_once(" Info: ICID ")
            .and_then(|(_, rest)| rest.split_once(' '))
            .is_some_and(|(icid, event)| icid.parse::<u64>().is_ok() && event.trim_end() == EVENT)
    };
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let (_, said) = ssh(sh, ssh_port, &login.file, &command)?;
        if let Some(line) = said.lines().find(|l| is_event(l)) {
            return Ok(line.trim().to_owned());
        }
        if Instant::now() > deadline {
            bail!(
                "mail_logs has no `ICID n {EVENT}` line after the commit; `{command}` over SSH said:\n{said}"
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Where the image keeps the CA bundle smtpd reads at start.
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// smtpd warns in mail_logs at start when the image has no CA certificates for `-Verify`
/// deliveries: there must be no such line.
fn no_ca_warning(sh: &Shell, login: &Login, ssh_port: u16) -> anyhow::Result<()> {
    let command = "grep \"no CA certificates\" mail_logs";
    let (_, said) = ssh(sh, ssh_port, &login.file, command)?;
    if said.contains(CA_BUNDLE) {
        bail!("smtpd found no CA bundle in the image; `{command}` over SSH said:\n{said}");
    }
    Ok(())
}

/// The mail checks around the power cut: the clients, the sinks and where they listen.
struct MailBoot<'a> {
    smtp: u16,
    ssh: u16,
    /// The token of this run's messages.
    run: &'a str,
    /// The next hop of `example.test`, listening from the start.
    sink: &'a mail::Sink,
    /// The next hop of `held.test`: nothing listens there until the second boot.
    held_port: u16,
}

/// The message sent to a next hop that is down, before the power cut.
struct Held {
    mid: u64,
}

/// What the first boot left running for the power cut.
struct PowerCut {
    held: Held,
    /// The clients, still sending.
    load: mail::Load,
    /// Messages that had got 250 when the cut was ordered.
    acked_at_cut: u64,
    /// From the first client's start to the cut.
    injected_for: Duration,
    /// Messages that had reached the sink when the cut was ordered.
    delivered_before: usize,
}

/// What reached the sinks after the second boot.
struct Delivered {
    /// Seconds from the banner to the held message's arrival.
    held_after: f64,
    /// Seconds from the banner to the arrival of the last accepted message.
    all_after: f64,
    /// Accepted messages delivered (all of them, or the check failed).
    accepted: usize,
    /// Messages delivered that never got 250 (the cut came between the fsync and the reply).
    unacknowledged: usize,
    duplicates: u64,
}

impl MailBoot<'_> {
    /// Opens the Recipient Access Table for the test domains and routes them to the host (over
    /// SSH: a CLI session of several commands, one commit); sends the held message, and waits
    /// until mail_logs says it was deferred; then starts the clients and answers once
    /// `ACKED_BEFORE_THE_CUT` of their messages got 250.
    fn before_the_power_cut(&self, sh: &Shell, vm: &Vm, login: &Login) -> anyhow::Result<PowerCut> {
        let (sink, held) = (self.sink.port(), self.held_port);
        let (domain, held_domain) = (mail::DOMAIN, mail::HELD_DOMAIN);
        let script = format!(
            "listenerconfig rcptaccess new {domain} accept\n\
             listenerconfig rcptaccess new {held_domain} accept\n\
             smtproutes new {domain} 10.0.2.2:{sink}\n\
             smtproutes new {held_domain} 10.0.2.2:{held}\n\
             commit mail routes to the host (qemu-test)\n"
        );
        let (ok, said) = ssh_session(sh, self.ssh, &login.file, &script)?;
        if !ok || !said.contains("Changes committed") {
            bail!("the CLI session over SSH did not commit the routes:\n{said}");
        }
        // smtpd applies a commit to new connections once it has seen it.
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let taken = mail::Client::connect(self.smtp).and_then(|mut c| {
                c.command("MAIL FROM:<sender@example.net>", 250)?;
                c.command(&format!("RCPT TO:<probe@{held_domain}>"), 250)?;
                c.quit();
                Ok(())
            });
            match taken {
                Ok(()) => break,
                Err(e) if Instant::now() > deadline => {
                    bail!("the committed Recipient Access Table did not take {held_domain}: {e:#}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
        let mut client = mail::Client::connect(self.smtp)?;
        let mid = client
            .send(mail::HELD_ID, self.run)
            .context("the held message was not accepted")?;
        client.quit();
        // Tried, found the next hop down, and kept for a retry.
        let command = format!("grep \"Delayed: DCID [0-9]+ MID {mid} \" mail_logs");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (_, said) = ssh(sh, self.ssh, &login.file, &command)?;
            if said.contains(&format!(" MID {mid} to RID 0")) {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "the held message (MID {mid}) was not deferred; mail_logs says of it:\n{}",
                    mail_log_of(sh, self.ssh, login, mid)
                );
            }
            std::thread::sleep(Duration::from_secs(2));
        }

        let injection = Instant::now();
        let load = mail::Load::start(self.smtp, self.run);
        let deadline = injection + INJECTION_TIMEOUT;
        while load.acked() < ACKED_BEFORE_THE_CUT && Instant::now() < deadline && !vm.closed() {
            std::thread::sleep(Duration::from_millis(100));
        }
        let acked_at_cut = load.acked();
        eprintln!(
            "xtask: {acked_at_cut} injected messages got 250; cutting the power while the \
             clients send"
        );
        Ok(PowerCut {
            held: Held { mid },
            acked_at_cut,
            injected_for: injection.elapsed(),
            delivered_before: self.sink.received().counts.len(),
            load,
        })
    }

    /// The second boot: the held message's next hop starts listening, `delivernow` over SSH,
    /// and every message that got 250 before the power cut reaches its sink.
    fn after_the_power_cut(
        &self,
        sh: &Shell,
        vm: &Vm,
        login: &Login,
        held: &Held,
        injected: &mail::LoadReport,
        banner: Duration,
    ) -> anyhow::Result<Delivered> {
        let after_banner = || vm.started.elapsed().saturating_sub(banner).as_secs_f64();
        let held_sink = mail::Sink::start_on(self.held_port, self.run)?;
        let (ok, said) = ssh(sh, self.ssh, &login.file, "delivernow ALL")?;
        if !ok || !said.contains("Delivery now requested") {
            bail!("`delivernow ALL` over SSH failed:\n{said}");
        }
        let missing =
            held_sink.wait_for(&BTreeSet::from([mail::HELD_ID]), DELIVERY_TIMEOUT, || {
                vm.closed()
            });
        if !missing.is_empty() {
            bail!(
                "the held message (MID {}) did not reach its next hop within {DELIVERY_TIMEOUT:?} \
                 of `delivernow`; mail_logs says of it:\n{}",
                held.mid,
                mail_log_of(sh, self.ssh, login, held.mid)
            );
        }
        let held_after = after_banner();
        let held_received = held_sink.received();
        if held_received.damaged > 0 {
            bail!(
                "the held message's next hop got a message that is not the one sent:\n{}",
                held_received.first_damaged.unwrap_or_default()
            );
        }

        let missing = self
            .sink
            .wait_for(&injected.acked, DELIVERY_TIMEOUT, || vm.closed());
        let received = self.sink.received();
        if !missing.is_empty() {
            bail!(
                "{} of the {} injected messages that got 250 before the power cut never reached \
                 the sink: ids {:?}",
                missing.len(),
                injected.acked.len(),
                &missing[..missing.len().min(30)]
            );
        }
        let all_after = after_banner();
        if received.damaged > 0 {
            bail!(
                "the sink got {} messages that are not ones sent, the first:\n{}",
                received.damaged,
                received.first_damaged.unwrap_or_default()
            );
        }
        let stray: Vec<u64> = received
            .counts
            .keys()
            .copied()
            .filter(|&id| id >= injected.attempted)
            .collect();
        if !stray.is_empty() {
            bail!("the sink got ids that were never sent: {stray:?}");
        }
        Ok(Delivered {
            held_after,
            all_after,
            accepted: injected.acked.len(),
            unacknowledged: received
                .counts
                .keys()
                .filter(|id| !injected.acked.contains(id))
                .count(),
            duplicates: received.duplicates() + held_received.duplicates(),
        })
    }
}

/// The mail_logs lines about `mid`, through the CLI's `grep` over SSH: what explains a failure.
fn mail_log_of(sh: &Shell, ssh_port: u16, login: &Login, mid: u64) -> String {
    let command = format!("grep \"MID {mid}( |$)\" mail_logs");
    match ssh(sh, ssh_port, &login.file, &command) {
        Ok((_, said)) => said,
        Err(e) => format!("(`{command}` over SSH failed: {e:#})"),
    }
}

/// The first admin password the test gives the guest (fw_cfg), and the file QEMU reads it from.
pub(crate) struct Login {
    password: String,
    pub(crate) file: std::path::PathBuf,
}

impl Login {
    /// A new random password in `dir/qemu-test-admin-password` (0600, no newline).
    pub(crate) fn provision(dir: &Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut random = [0u8; 12];
        fs::File::open("/dev/urandom")?.read_exact(&mut random)?;
        let password: String = std::iter::once("qt-".to_owned())
            .chain(random.iter().map(|b| format!("{b:02x}")))
            .collect();
        let file = dir.join("qemu-test-admin-password");
        let _ = fs::remove_file(&file);
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .and_then(|mut f| f.write_all(password.as_bytes()))
            .with_context(|| format!("writing {}", file.display()))?;
        Ok(Self { password, file })
    }
}

/// SSH on the forwarded port: once dropbear answers, a wrong password is refused and the
/// provisioned one runs the CLI's `version`. The guest's ed25519 host key and the `Version:` line.
fn ssh_checks(sh: &Shell, vm: &Vm, login: &Login, port: u16) -> anyhow::Result<(String, String)> {
    let greeting = wait_for_ssh(vm, port)?;
    eprintln!("xtask: SSH greets with {greeting}");
    let port_text = port.to_string();
    let scanned = cmd!(
        sh,
        "timeout 60 ssh-keyscan -p {port_text} -t ed25519 127.0.0.1"
    )
    .ignore_status()
    .ignore_stderr()
    .read()?;
    let host_key = scanned
        .lines()
        .find_map(|l| {
            l.split_once(" ssh-ed25519 ")
                .map(|(_, key)| key.trim().to_owned())
        })
        .with_context(|| format!("ssh-keyscan found no ed25519 host key: {scanned}"))?;

    let wrong = login.file.with_extension("wrong");
    fs::write(&wrong, "not-the-password")?;
    let refused = ssh(sh, port, &wrong, "version");
    let _ = fs::remove_file(&wrong);
    let (ok, said) = refused?;
    if ok || !said.contains("Permission denied") {
        bail!("ssh with a wrong password was not refused:\n{said}");
    }
    let (ok, said) = ssh(sh, port, &login.file, "version")?;
    if !ok || !said.contains("Product: Postern Secure Email Gateway") {
        bail!("`ssh admin@127.0.0.1 -p {port} version` did not run the CLI's version:\n{said}");
    }
    let version = field(&said, "Version:").context("`version` over SSH showed no Version:")?;
    Ok((host_key, version))
}

/// `ssh -p PORT admin@127.0.0.1 COMMAND` with the password in `password` (through sshpass):
/// whether it succeeded, and what it printed.
pub(crate) fn ssh(
    sh: &Shell,
    port: u16,
    password: &Path,
    command: &str,
) -> anyhow::Result<(bool, String)> {
    ssh_with(sh, port, password, Some(command), "")
}

/// `ssh -p PORT admin@127.0.0.1` without a command: a CLI session that reads `script`, one
/// command a line (pending changes last for the session, so a commit takes them all).
fn ssh_session(
    sh: &Shell,
    port: u16,
    password: &Path,
    script: &str,
) -> anyhow::Result<(bool, String)> {
    ssh_with(sh, port, password, None, script)
}

fn ssh_with(
    sh: &Shell,
    port: u16,
    password: &Path,
    command: Option<&str>,
    input: &str,
) -> anyhow::Result<(bool, String)> {
    let port = port.to_string();
    let output = cmd!(
        sh,
        "timeout 90 sshpass -f {password} ssh -p {port}
            -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
            -o PubkeyAuthentication=no -o PreferredAuthentications=password
            -o NumberOfPasswordPrompts=1 -o ConnectTimeout=30
            admin@127.0.0.1 {command...}"
    )
    .stdin(input)
    .ignore_status()
    .output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), said))
}

/// Connects to the forwarded SSH port until the guest greets with `SSH-2.0-`: dropbear starts
/// once Postern is ready (and has made its host keys, on the first boot).
pub(crate) fn wait_for_ssh(vm: &Vm, port: u16) -> anyhow::Result<String> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if let Ok(line) = greeting(port, None)
            && line.starts_with("SSH-2.0-")
        {
            return Ok(line);
        }
        if Instant::now() > deadline {
            bail!("no SSH greeting on 127.0.0.1:{port} within {STEP_TIMEOUT:?}");
        }
        if vm.closed() {
            bail!("QEMU ended while waiting for SSH");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Connects to the forwarded SMTP port until the guest answers with `220`; the banner line.
fn wait_for_banner(vm: &Vm, port: u16) -> anyhow::Result<String> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        match greeting(port, Some(b"QUIT\r\n")) {
            Ok(line) if line.starts_with("220") => return Ok(line),
            Ok(line) if !line.is_empty() => bail!("the SMTP service greeted with: {line}"),
            _ => {}
        }
        if Instant::now() > deadline {
            bail!("no SMTP banner on 127.0.0.1:{port} within {STEP_TIMEOUT:?} of `postern: ready`");
        }
        if vm.closed() {
            bail!("QEMU ended while waiting for the SMTP banner");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The first line a server on the forwarded `port` sends, after which `reply` (if any) is sent.
fn greeting(port: u16, reply: Option<&[u8]>) -> std::io::Result<String> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    if let Some(reply) = reply {
        let _ = (&stream).write_all(reply);
    }
    Ok(line.trim_end().to_owned())
}

/// The value after `name` on its line of `text`.
fn field(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(name))
        .map(|v| v.trim().to_owned())
}

/// A running QEMU with its serial console on pipes: everything it prints is kept in memory and
/// in the serial log.
pub(crate) struct Vm {
    child: Child,
    stdin: ChildStdin,
    started: Instant,
    serial: Arc<SerialBuffer>,
    /// Copies the console to the buffer and the log until QEMU closes it.
    reader: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct SerialBuffer {
    /// What the console printed, and whether QEMU closed it.
    state: Mutex<(Vec<u8>, bool)>,
    /// When each read of the console ended (its length then, time from QEMU's start).
    arrivals: Mutex<Vec<(usize, Duration)>>,
    grew: Condvar,
}

impl Vm {
    /// Starts QEMU on `disk`, with the first admin password in `password` given through
    /// fw_cfg; what the console prints is appended to `log` too.
    pub(crate) fn start(
        disk: &Path,
        forwards: &[Forward],
        password: Option<&Path>,
        log: fs::File,
    ) -> anyhow::Result<Self> {
        let boot = Boot {
            disk,
            snapshot: false,
            forwards,
            serial: Serial::Pipe,
            admin_password: password,
            uefi_vars: None,
        };
        Self::boot(&boot, log)
    }

    /// Starts QEMU as `boot` says; what the console prints is appended to `log` too.
    pub(crate) fn boot(boot: &Boot<'_>, mut log: fs::File) -> anyhow::Result<Self> {
        let started = Instant::now();
        let mut child = boot
            .command()?
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting qemu-system-x86_64")?;
        let stdin = child.stdin.take().context("QEMU's stdin")?;
        let mut stdout = child.stdout.take().context("QEMU's stdout")?;
        let serial = Arc::new(SerialBuffer::default());
        let buffer = serial.clone();
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                let n = stdout.read(&mut chunk).unwrap_or(0);
                let _ = log.write_all(&chunk[..n]);
                let mut state = buffer.state.lock().unwrap_or_else(|e| e.into_inner());
                state.0.extend_from_slice(&chunk[..n]);
                buffer
                    .arrivals
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((state.0.len(), started.elapsed()));
                state.1 = n == 0;
                buffer.grew.notify_all();
                if n == 0 {
                    break;
                }
            }
        });
        Ok(Self {
            child,
            stdin,
            started,
            serial,
            reader: Some(reader),
        })
    }

    /// Stops QEMU after `checks`; their result, unless they or the console found a fault. The
    /// last lines of the console explain a failure.
    pub(crate) fn finish<T>(&mut self, checks: anyhow::Result<T>, log: &Path) -> anyhow::Result<T> {
        self.stop();
        let faults = self.faults();
        let checks = checks.and_then(|value| {
            if faults.is_empty() {
                Ok(value)
            } else {
                bail!("the console printed: {}", faults.join(", "))
            }
        });
        if checks.is_err() {
            eprintln!(
                "\n--- last lines of the console ({}):\n{}",
                log.display(),
                self.tail(40)
            );
        }
        checks
    }

    /// Waits until the console prints `needle` after byte `from`; the byte after it.
    fn wait_for(&self, needle: &str, from: usize, timeout: Duration) -> anyhow::Result<usize> {
        let deadline = Instant::now() + timeout;
        let mut state = self.serial.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let text = state.0.get(from..).unwrap_or_default();
            if let Some(at) = text
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
            {
                return Ok(from + at + needle.len());
            }
            if state.1 {
                bail!("QEMU ended before the console printed `{needle}`");
            }
            let now = Instant::now();
            if now >= deadline {
                bail!("the console did not print `{needle}` within {timeout:?}");
            }
            state = self
                .serial
                .grew
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Types `text` on the console.
    fn send(&mut self, text: &str) -> anyhow::Result<()> {
        self.stdin.write_all(text.as_bytes())?;
        self.stdin.flush()?;
        Ok(())
    }

    /// When the console's byte `offset` arrived, from QEMU's start.
    fn arrival(&self, offset: usize) -> Duration {
        let arrivals = self
            .serial
            .arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        arrivals
            .iter()
            .find(|(end, _)| *end >= offset)
            .map_or_else(|| self.started.elapsed(), |(_, at)| *at)
    }

    fn since(&self, from: usize) -> String {
        let state = self.serial.state.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(state.0.get(from..).unwrap_or_default()).into_owned()
    }

    fn closed(&self) -> bool {
        self.serial.state.lock().map(|s| s.1).unwrap_or(true)
    }

    /// Waits up to `timeout` for QEMU to close its console (it has ended); whether it did.
    fn wait_closed(&self, timeout: Duration) -> bool {
        let state = self.serial.state.lock().unwrap_or_else(|e| e.into_inner());
        let (state, _) = self
            .serial
            .grew
            .wait_timeout_while(state, timeout, |s| !s.1)
            .unwrap_or_else(|e| e.into_inner());
        state.1
    }

    fn tail(&self, lines: usize) -> String {
        let text = self.since(0);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The kernel faults the console printed.
    fn faults(&self) -> Vec<String> {
        let text = self.since(0);
        KERNEL_FAULTS
            .iter()
            .filter(|f| text.contains(*f))
            .map(|f| (*f).to_owned())
            .collect()
    }

    /// QEMU's resident memory in bytes.
    pub(crate) fn rss(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kb: u64 = field(&status, "VmRSS:")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some(kb * 1024)
    }

    /// Kills QEMU (a power cut for the guest) and waits for the last of its console.
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.stop();
    }
}
