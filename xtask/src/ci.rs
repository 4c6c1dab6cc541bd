//! `cargo xtask ci`: the checks CI runs, in order, stopping at the first failure: formatting,
//! clippy, every test, then the appliance image booted in QEMU (`qemu-test`).

use xshell::{Shell, cmd};

pub(crate) struct Ci;

impl Ci {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
        step("packages");
        crate::deps::ensure(sh, crate::deps::CI_PACKAGES)?;
        step("formatting");
        cmd!(sh, "cargo fmt --all -- --check").run()?;
        step("clippy");
        cmd!(
            sh,
            "cargo clippy --workspace --all-targets --locked -- -D warnings"
        )
        .run()?;
        step("tests");
        cmd!(sh, "cargo test --workspace --locked").run()?;
        // The release build it needs takes about 5 minutes from nothing; its boots about 2 minutes.
        step("image: build it and boot it in QEMU (cargo xtask qemu-test)");
        crate::qemu_test::QemuTest.run(sh)?;
        step("all checks passed");
        Ok(())
    }
}

fn step(name: &str) {
    eprintln!("\n== xtask ci: {name}");
}
