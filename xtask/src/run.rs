//! `cargo xtask run`: build Postern and run it: the appliance image in QEMU (as `cargo xtask
//! qemu`), or with `--host` on this machine (host mode: the services on unprivileged loopback
//! ports, data in `target/postern-data`).

use xshell::{Shell, cmd};

pub(crate) struct Run {
    /// `--host`, then the extra arguments for `postern run` (after `--`); without `--host`,
    /// the arguments of `cargo xtask qemu`.
    pub(crate) args: Vec<String>,
}

impl Run {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
        if !self.args.iter().any(|a| a == "--host") {
            return crate::qemu::Qemu { args: self.args }.run(sh);
        }
        crate::deps::ensure(sh, crate::deps::BUILD_PACKAGES)?;
        cmd!(sh, "cargo build --release --locked --package postern").run()?;
        let binary = crate::target_dir().join("release/postern");
        let data = crate::target_dir().join("postern-data");
        let args = self.args.iter().filter(|a| *a != "--" && *a != "--host");
        eprintln!(
            "xtask: host mode; administer with: {} cli --data {}",
            binary.display(),
            data.display()
        );
        cmd!(sh, "{binary} run --data {data} {args...}").run()?;
        Ok(())
    }
}
