//! `cargo xtask qemu`: boot the appliance image in QEMU with the serial console on this
//! terminal, and the machine definition that `qemu-test` shares.
//!
//! The machine is `qemu/postern-x86_64.args`; this module fills in the disk, the port forwards
//! and the serial console. QEMU runs under TCG (software emulation) always: `/dev/kvm` on these
//! machines cannot run a normal guest, and probing it does not tell.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use xshell::Shell;

/// A host port on 127.0.0.1 forwarded to a port of the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Forward {
    pub(crate) host: u16,
    pub(crate) guest: u16,
}

/// The guest's services and the host ports they are reached on by default.
pub(crate) const FORWARDS: [(&str, Forward); 4] = [
    (
        "SMTP",
        Forward {
            host: 2525,
            guest: 25,
        },
    ),
    (
        "Classic UI (HTTPS)",
        Forward {
            host: 8443,
            guest: 443,
        },
    ),
    (
        "NGUI and API (HTTPS)",
        Forward {
            host: 4431,
            guest: 4431,
        },
    ),
    (
        "SSH",
        Forward {
            host: 2222,
            guest: 22,
        },
    ),
];

/// Where the serial console goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Serial {
    /// This terminal, multiplexed with QEMU's monitor (Ctrl-A C; Ctrl-A X quits).
    Terminal,
    /// QEMU's standard input and output, for a program to read and type on.
    Pipe,
}

/// One boot of the image.
#[derive(Debug)]
pub(crate) struct Boot<'a> {
    /// The qcow2 disk.
    pub(crate) disk: &'a Path,
    /// Writes go to a temporary file, not the disk (`snapshot=on`).
    pub(crate) snapshot: bool,
    pub(crate) forwards: &'a [Forward],
    pub(crate) serial: Serial,
    /// A file holding the first admin password, given to the guest as the fw_cfg item
    /// `opt/postern/admin-password`: a fresh `/data` takes it (image/README.md).
    pub(crate) admin_password: Option<&'a Path>,
    /// UEFI firmware instead of the BIOS: OVMF's code (Debian's `ovmf`, [`OVMF_CODE`]) with
    /// this copy of its variable store, which the firmware writes.
    pub(crate) uefi_vars: Option<&'a Path>,
}

/// OVMF's code, read-only; its variable store is `OVMF_VARS_4M.fd` beside it.
pub(crate) const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";

impl Boot<'_> {
    /// The `qemu-system-x86_64` command for this boot.
    pub(crate) fn command(&self) -> anyhow::Result<Command> {
        let file = machine_file();
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading the machine definition {}", file.display()))?;
        let mut command = Command::new("qemu-system-x86_64");
        command.args(self.args(&text)?);
        Ok(command)
    }

    fn args(&self, machine: &str) -> anyhow::Result<Vec<String>> {
        let disk = self.disk.to_str().context("the disk's path is not UTF-8")?;
        if disk.contains(',') {
            bail!("QEMU cannot take a disk path with a comma: {disk}");
        }
        let snapshot = if self.snapshot { ",snapshot=on" } else { "" };
        let mut forwards = String::new();
        for (i, f) in self.forwards.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            write!(
                forwards,
                "{comma}hostfwd=tcp:127.0.0.1:{}-:{}",
                f.host, f.guest
            )?;
        }
        let mut args = Vec::new();
        for (number, line) in machine.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (option, value) = match line.split_once(' ') {
                Some((o, v)) => (o, Some(v.trim())),
                None => (line, None),
            };
            args.push(option.to_owned());
            if let Some(value) = value {
                let value = value
                    .replace("{disk}", disk)
                    .replace("{snapshot}", snapshot)
                    .replace("{forwards}", &forwards);
                if value.contains('{') {
                    bail!(
                        "line {} of the machine definition has an unknown placeholder: {value}",
                        number + 1
                    );
                }
                args.push(value);
            }
        }
        args.extend(
            match self.serial {
                Serial::Terminal => ["-serial", "mon:stdio"].as_slice(),
                Serial::Pipe => ["-serial", "stdio"].as_slice(),
            }
            .iter()
            .map(|s| (*s).to_owned()),
        );
        if let Some(file) = self.admin_password {
            let file = file
                .to_str()
                .context("the admin password file's path is not UTF-8")?;
            if file.contains(',') {
                bail!("QEMU cannot take a file path with a comma: {file}");
            }
            args.push("-fw_cfg".to_owned());
            args.push(format!("name=opt/postern/admin-password,file={file}"));
        }
        if let Some(vars) = self.uefi_vars {
            let vars = vars
                .to_str()
                .context("the UEFI variable store's path is not UTF-8")?;
            if vars.contains(',') {
                bail!("QEMU cannot take a file path with a comma: {vars}");
            }
            args.push("-drive".to_owned());
            args.push(format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"));
            args.push("-drive".to_owned());
            args.push(format!("if=pflash,format=raw,file={vars}"));
        }
        // A program watches the console: a reboot (a kernel panic's, with panic=10) ends QEMU
        // instead of booting again behind its back.
        if self.serial == Serial::Pipe {
            args.push("-no-reboot".to_owned());
        }
        Ok(args)
    }
}

/// `qemu/postern-x86_64.args`.
pub(crate) fn machine_file() -> PathBuf {
    crate::project_root().join("qemu/postern-x86_64.args")
}

/// `cargo xtask qemu [--snapshot] [--forward HOST:GUEST]...`: build the image if it is missing
/// or older than its inputs, then boot it with the console on this terminal. The disk keeps its
/// changes (`/data`) from one boot to the next, until the image is built again; with
/// `--snapshot` it keeps none.
#[derive(Debug)]
pub(crate) struct Qemu {
    pub(crate) args: Vec<String>,
}

impl Qemu {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let snapshot = self.args.iter().any(|a| a == "--snapshot");
        let args: Vec<String> = self
            .args
            .into_iter()
            .filter(|a| a != "--snapshot")
            .collect();
        let forwards = parse_forwards(&args)?;
        for f in &forwards {
            if TcpListener::bind(("127.0.0.1", f.host)).is_err() {
                bail!(
                    "127.0.0.1:{} is taken; forward guest port {} elsewhere with --forward PORT:{}",
                    f.host,
                    f.guest,
                    f.guest
                );
            }
        }
        let built = crate::image::build_if_stale(sh)?;
        if !built.report.is_empty() {
            eprintln!("{}", built.report);
        }
        eprintln!(
            "xtask: booting {}{} under TCG",
            built.qcow2.display(),
            if snapshot { " (snapshot)" } else { "" }
        );
        for f in &forwards {
            let name = FORWARDS
                .iter()
                .find(|(_, d)| d.guest == f.guest)
                .map_or("", |(name, _)| *name);
            eprintln!(
                "  127.0.0.1:{:<5} -> guest port {:<5} {name}",
                f.host, f.guest
            );
        }
        eprintln!(
            "  console: log in as admin for the CLI; Ctrl-A X quits QEMU, Ctrl-A C is its monitor"
        );
        let boot = Boot {
            disk: &built.qcow2,
            snapshot,
            forwards: &forwards,
            serial: Serial::Terminal,
            admin_password: None,
            uefi_vars: None,
        };
        let status = boot
            .command()?
            .status()
            .context("starting qemu-system-x86_64")?;
        if !status.success() {
            bail!("QEMU ended with {status}");
        }
        Ok(())
    }
}

/// The default forwards, with the host port of each `--forward HOST:GUEST` changed.
fn parse_forwards(args: &[String]) -> anyhow::Result<Vec<Forward>> {
    let mut forwards: Vec<Forward> = FORWARDS.iter().map(|(_, f)| *f).collect();
    let mut args = args.iter().filter(|a| *a != "--");
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--forward") {
            Some("") => args.next().context("--forward needs HOST:GUEST")?.as_str(),
            Some(rest) if rest.starts_with('=') => &rest[1..],
            _ => bail!("unknown argument '{arg}'; use --snapshot or --forward HOST:GUEST"),
        };
        let (host, guest) = value
            .split_once(':')
            .with_context(|| format!("--forward {value}: expected HOST:GUEST, e.g. 2526:25"))?;
        let host: u16 = host.parse().with_context(|| format!("host port {host}"))?;
        let guest: u16 = guest
            .parse()
            .with_context(|| format!("guest port {guest}"))?;
        match forwards.iter_mut().find(|f| f.guest == guest) {
            Some(f) => f.host = host,
            None => forwards.push(Forward { host, guest }),
        }
    }
    Ok(forwards)
}

/// The default forwards, each moved to a free port chosen by the kernel when its own is taken.
pub(crate) fn free_forwards() -> anyhow::Result<Vec<Forward>> {
    FORWARDS
        .iter()
        .map(|(_, f)| {
            if TcpListener::bind(("127.0.0.1", f.host)).is_ok() {
                return Ok(*f);
            }
            let host = TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port();
            Ok(Forward {
                host,
                guest: f.guest,
            })
        })
        .collect()
}

/// The host port that `forwards` forwards to the guest's `guest`.
pub(crate) fn host_port(forwards: &[Forward], guest: u16) -> anyhow::Result<u16> {
    forwards
        .iter()
        .find(|f| f.guest == guest)
        .map(|f| f.host)
        .with_context(|| format!("no forward of guest port {guest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_is_tcg_with_aes_ni_and_the_forwards() {
        let machine = std::fs::read_to_string(machine_file()).unwrap();
        let forwards = [
            Forward {
                host: 2525,
                guest: 25,
            },
            Forward {
                host: 40000,
                guest: 443,
            },
        ];
        let boot = Boot {
            disk: Path::new("/t/postern.qcow2"),
            snapshot: true,
            forwards: &forwards,
            serial: Serial::Pipe,
            admin_password: Some(Path::new("/t/password")),
            uefi_vars: None,
        };
        let args = boot.args(&machine).unwrap();
        let after = |option: &str| {
            let at = args.iter().position(|a| a == option).unwrap();
            args[at + 1].as_str()
        };
        assert_eq!(after("-accel"), "tcg");
        assert_eq!(after("-cpu"), "max");
        assert_eq!(after("-m"), "512");
        assert_eq!(
            after("-drive"),
            "file=/t/postern.qcow2,format=qcow2,if=virtio,snapshot=on"
        );
        assert_eq!(
            after("-netdev"),
            "user,id=net0,hostfwd=tcp:127.0.0.1:2525-:25,hostfwd=tcp:127.0.0.1:40000-:443"
        );
        assert_eq!(after("-serial"), "stdio");
        assert_eq!(
            after("-fw_cfg"),
            "name=opt/postern/admin-password,file=/t/password"
        );
        assert!(args.iter().any(|a| a == "-no-reboot"));
        assert!(!args.iter().any(|a| a.contains("kvm")));

        let interactive = Boot {
            snapshot: false,
            serial: Serial::Terminal,
            admin_password: None,
            uefi_vars: None,
            ..boot
        };
        let args = interactive.args(&machine).unwrap();
        assert!(args.iter().any(|a| a == "mon:stdio"));
        assert!(!args.iter().any(|a| a == "-fw_cfg"));
        assert!(
            !args
                .iter()
                .any(|a| a.contains("snapshot") || a == "-no-reboot")
        );
        let watched = Boot {
            serial: Serial::Pipe,
            ..interactive
        };
        assert!(
            watched
                .args(&machine)
                .unwrap()
                .iter()
                .any(|a| a == "-no-reboot")
        );
        assert!(boot.args("-foo {bar}").is_err());
    }

    #[test]
    fn forwards_change_by_guest_port() {
        let args = ["--forward".to_owned(), "2526:25".to_owned()];
        let forwards = parse_forwards(&args).unwrap();
        assert_eq!(
            forwards[0],
            Forward {
                host: 2526,
                guest: 25
            }
        );
        assert_eq!(
            forwards[1],
            Forward {
                host: 8443,
                guest: 443
            }
        );
        let forwards = parse_forwards(&["--forward=8080:80".to_owned()]).unwrap();
        assert_eq!(forwards.len(), 5);
        assert!(parse_forwards(&["--forward".to_owned(), "25".to_owned()]).is_err());
        assert!(parse_forwards(&["--smtp".to_owned()]).is_err());
    }
}
