//! `cargo xtask`: Postern's build, test and run commands as a Rust program.
//!
//! - `cargo xtask run [--host] [-- ARGS]`: run the appliance: the image in QEMU, or with
//!   `--host` on this machine (host mode).
//! - `cargo xtask ci`: everything CI checks: formatting, clippy, all tests.
//! - `cargo xtask image [--kernel cloud-amd64|amd64]`: the appliance disk image, assembled
//!   offline (`target/image/`); `cargo xtask image --buildroot PATH`: the same disk built by
//!   the Buildroot checkout at PATH from `board/` (`target/buildroot/`, needs a network).
//! - `cargo xtask qemu [--forward HOST:GUEST]`: boot the image with the console on this terminal.
//! - `cargo xtask qemu-test`: boot the image and check it from outside.
//! - `cargo xtask bench [startup] [tls] [smtp] [image]`: measured figures, printed as a table.

mod bench;
mod buildroot;
mod ci;
mod deps;
mod image;
mod qemu;
mod qemu_test;
mod run;

use std::path::PathBuf;

use anyhow::bail;
use xshell::Shell;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    match command.as_str() {
        "run" => run::Run { args: rest }.run(&sh),
        "ci" => ci::Ci.run(&sh),
        "bench" => bench::Bench { which: rest }.run(&sh),
        "image" => image::Image { args: rest }.run(&sh),
        "qemu" => qemu::Qemu { args: rest }.run(&sh),
        "qemu-test" => qemu_test::QemuTest.run(&sh),
        "" | "help" | "--help" => {
            println!(
                "usage: cargo xtask <run [--host] [-- ARGS] | ci | bench [startup] [tls] [smtp] [image] \
                 | image [--kernel cloud-amd64|amd64 | --buildroot PATH] \
                 | qemu [--forward HOST:GUEST] | qemu-test>"
            );
            Ok(())
        }
        other => bail!("unknown xtask command '{other}'; try 'cargo xtask help'"),
    }
}

/// The repository's root, the folder above `xtask/`.
///
/// Read when it runs: `cargo run` (the `xtask` alias) sets `CARGO_MANIFEST_DIR` for the program
/// it runs. The value compiled in is only the fallback: cargo does not rebuild an unchanged
/// xtask for another checkout sharing the target directory (CI's reuse of a warm one), so it
/// can name a checkout that is not this one, or no longer exists.
fn project_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Where cargo puts build output: `CARGO_TARGET_DIR` when set, else `target/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"))
}
