//! `reboot` and `shutdown`: on the appliance, after a confirmation, they ask its init (BusyBox,
//! process 1) to reboot or power off, which stops every service through `rcK` first. Anywhere
//! else (a host running `postern run`) they refuse: the CLI never reboots a machine that is not
//! the appliance.

use std::io;
use std::path::PathBuf;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::CommandError;
use crate::console::Console;
use crate::session::Session;

/// What the administrator asked of the appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Power {
    Reboot,
    Shutdown,
}

impl Power {
    fn command(self) -> &'static str {
        match self {
            Self::Reboot => "reboot",
            Self::Shutdown => "shutdown",
        }
    }

    /// BusyBox init reboots on SIGTERM and powers off on SIGUSR2 (init/init.c).
    fn signal(self) -> Signal {
        match self {
            Self::Reboot => Signal::SIGTERM,
            Self::Shutdown => Signal::SIGUSR2,
        }
    }
}

pub(super) fn power<C: Console>(
    session: &mut Session<C>,
    power: Power,
    args: &str,
) -> Result<(), CommandError> {
    let command = power.command();
    if !args.is_empty() {
        return Err(super::bad_usage(
            command,
            &format!("'{command}' takes no arguments"),
        ));
    }
    appliance_init(std::fs::read_link("/proc/1/exe")).map_err(|why| {
        CommandError::Refused(format!(
            "{command} is only available on the appliance: {why}. This machine is not rebooted \
             or shut down from the CLI."
        ))
    })?;
    session.may_change()?;
    if session.pending.is_some() {
        writeln!(
            session.out(),
            "Warning: this session has uncommitted changes; they will be lost. Use 'commit' \
             first to keep them."
        )?;
    }
    let question = match power {
        Power::Reboot => {
            "This command will reboot the appliance: mail being received or delivered is \
             interrupted and queued mail is delivered after the restart. Are you sure you want \
             to continue?"
        }
        Power::Shutdown => {
            "This command will power off the appliance: it stays off until it is started again \
             from its console or hypervisor. Are you sure you want to continue?"
        }
    };
    if !session.confirm(question, false)? {
        writeln!(session.out(), "Nothing was done.")?;
        return Ok(());
    }
    // The command and its confirmation are in cli_logs already: the supervisor wrote each line
    // before it answered.
    session.pending = None;
    match power {
        Power::Reboot => writeln!(session.out(), "Rebooting the appliance...")?,
        Power::Shutdown => writeln!(session.out(), "Shutting down the appliance...")?,
    }
    session.out().flush()?;
    kill(Pid::from_raw(1), power.signal()).map_err(|e| {
        CommandError::Refused(format!(
            "The appliance's init did not take the request ({e}); nothing was done."
        ))
    })
}

/// Whether process 1, whose executable is `exe`, is the appliance's init (BusyBox); why not
/// otherwise.
fn appliance_init(exe: io::Result<PathBuf>) -> Result<(), String> {
    match exe {
        Ok(path) if path.file_name() == Some("busybox".as_ref()) => Ok(()),
        Ok(path) => Err(format!(
            "process 1 here is {}, not the appliance's init (BusyBox)",
            path.display()
        )),
        Err(e) => Err(format!(
            "process 1 here cannot be identified ({e}), so it is not taken for the \
             appliance's init"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_busybox_init_is_the_appliance() {
        assert_eq!(appliance_init(Ok(PathBuf::from("/bin/busybox"))), Ok(()));
        let systemd = appliance_init(Ok(PathBuf::from("/usr/lib/systemd/systemd")));
        assert_eq!(
            systemd,
            Err(
                "process 1 here is /usr/lib/systemd/systemd, not the appliance's init (BusyBox)"
                    .to_owned()
            )
        );
        assert!(appliance_init(Ok(PathBuf::from("/bin/busybox-not"))).is_err());
        let hidden = appliance_init(Err(io::Error::from(io::ErrorKind::PermissionDenied)));
        assert!(hidden.is_err_and(|why| why.contains("cannot be identified")));
    }
}
