//! `cargo xtask run`: build Postern and run it. Until the appliance image exists this is host
//! mode: the services on unprivileged loopback ports, data in `target/postern-data`.

use xshell::{Shell, cmd};

pub(crate) struct Run {
    /// Extra arguments for `postern run` (after `--`).
    pub(crate) args: Vec<String>,
}

impl Run {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
        crate::deps::ensure(sh, crate::deps::BUILD_PACKAGES)?;
        cmd!(sh, "cargo build --release --locked --package postern").run()?;
        let binary = crate::target_dir().join("release/postern");
        let data = crate::target_dir().join("postern-data");
        let args = self.args.iter().filter(|a| *a != "--");
        eprintln!(
            "xtask: host mode; administer with: {} cli --data {}",
            binary.display(),
            data.display()
        );
        cmd!(sh, "{binary} run --data {data} {args...}").run()?;
        Ok(())
    }
}
