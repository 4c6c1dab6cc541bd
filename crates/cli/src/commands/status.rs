//! `status` and `version`.

use std::io::Write;

use postern_control::{ServiceState, Status};
use postern_logs::format_unix_time;

use super::CommandError;
use crate::console::Console;
use crate::session::Session;

pub(super) fn version<C: Console>(session: &mut Session<C>) -> Result<(), CommandError> {
    let status = session.runtime.block_on(session.client.status())?;
    let out = session.out();
    writeln!(out, "Current Version")?;
    writeln!(out, "===============")?;
    writeln!(out, "Product: Postern Secure Email Gateway")?;
    writeln!(out, "Version: {}", status.firmware)?;
    writeln!(out, "CLI version: {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(out, "Hostname: {}", status.hostname)?;
    writeln!(out, "Configuration generation: {}", status.generation)?;
    Ok(())
}

pub(super) fn status<C: Console>(session: &mut Session<C>, args: &str) -> Result<(), CommandError> {
    let detail = match args {
        "" => false,
        "detail" => true,
        other => {
            return Err(CommandError::Refused(format!(
                "'{other}' is not a status option; use 'status' or 'status detail'."
            )));
        }
    };
    let status = session.runtime.block_on(session.client.status())?;
    write_status(session.out(), &status, detail)?;
    Ok(())
}

fn write_status(out: &mut dyn Write, s: &Status, detail: bool) -> std::io::Result<()> {
    let row = |out: &mut dyn Write, label: &str, value: &str| {
        writeln!(out, "{:<31}{value}", format!("{label}:"))
    };
    row(out, "Status as of", &format_unix_time(s.now))?;
    let up = format!(
        "{} ({})",
        format_unix_time(s.up_since),
        duration(s.now.saturating_sub(s.up_since))
    );
    row(out, "Up since", &up)?;
    let degraded = s.services.iter().any(|svc| {
        !matches!(
            svc.state,
            ServiceState::Running { .. } | ServiceState::Starting { .. }
        )
    });
    row(
        out,
        "System status",
        if degraded { "Degraded" } else { "Online" },
    )?;
    row(out, "Configuration generation", &s.generation.to_string())?;
    if let Some(c) = &s.confirmation {
        let waiting = format!(
            "commit {} by {}, rolled back to generation {} at {} unless confirmed with 'commit'",
            c.generation,
            c.user,
            c.previous,
            format_unix_time(c.deadline)
        );
        row(out, "Awaiting confirmation", &waiting)?;
    }
    writeln!(out)?;
    writeln!(out, "Services:")?;
    if s.services.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for svc in &s.services {
        let state = match svc.state {
            ServiceState::Starting { pid } => format!("Starting (pid {pid})"),
            ServiceState::Running { pid, since } => format!(
                "Running (pid {pid}){} for {}",
                process_user(pid).map_or(String::new(), |u| format!(" as {u}")),
                duration(s.now.saturating_sub(since))
            ),
            ServiceState::Backoff { restart_in_ms } => {
                format!("Restarting in {} ms", restart_in_ms)
            }
            ServiceState::Stopped => "Stopped".to_owned(),
        };
        writeln!(out, "  {:<29}{state}, {} restarts", svc.name, svc.restarts)?;
    }
    writeln!(out)?;
    writeln!(out, "Counters:")?;
    for (name, value) in &s.counters {
        writeln!(out, "  {name:<29}{value}")?;
    }
    writeln!(out)?;
    let g = &s.gauges;
    writeln!(out, "Gauges:")?;
    writeln!(
        out,
        "  {:<29}{}%",
        "RAM Utilization",
        percent(g.ram_used, g.ram_total)
    )?;
    writeln!(out, "  {:<29}{:.0}%", "Overall CPU load", g.cpu_percent)?;
    writeln!(
        out,
        "  {:<29}{}%",
        "Data Disk Usage",
        percent(g.data_disk_used, g.data_disk_total)
    )?;
    if detail {
        writeln!(
            out,
            "  {:<29}{}",
            "Data Disk Available",
            mib(g.data_disk_total - g.data_disk_used.min(g.data_disk_total))
        )?;
        writeln!(
            out,
            "  {:<29}{}",
            "Postern Memory (RSS)",
            mib(g.postern_rss)
        )?;
        writeln!(
            out,
            "  {:<29}{} / {}",
            "RAM Used / Total",
            mib(g.ram_used),
            mib(g.ram_total)
        )?;
    }
    Ok(())
}

fn percent(part: u64, whole: u64) -> u64 {
    (part * 100).checked_div(whole).unwrap_or(0)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn duration(secs: i64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3_600,
        secs % 3_600 / 60,
        secs % 60,
    );
    match d {
        0 => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m {s}s"),
    }
}

/// The account a process of this machine runs as (its effective user), from `/proc`: the
/// services give up root once their ports are bound.
fn process_user(pid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let effective: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(crate::accounts::name_of(effective).unwrap_or_else(|| effective.to_string()))
}
