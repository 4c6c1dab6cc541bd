//! The Debian packages the build and the tests need, installed when missing.

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

/// What building Postern needs beyond the Rust toolchain (see [`CI_PACKAGES`]).
pub(crate) const BUILD_PACKAGES: &[&str] = &["cmake", "clang", "libclang-dev"];

/// What `cargo xtask ci` needs beyond the Rust toolchain:
/// - cmake, clang, libclang-dev: AWS-LC's libssl (the legacy TLS engine) is built with CMake and
///   its bindings with bindgen;
/// - openssl: the `openssl s_client`/`s_server`/`ciphers` peers of the TLS tests;
/// - util-linux: `mount`, for the full-disk tests on a small tmpfs.
pub(crate) const CI_PACKAGES: &[&str] =
    &["cmake", "clang", "libclang-dev", "openssl", "util-linux"];

/// Installs the packages of `wanted` that are not installed yet.
pub(crate) fn ensure(sh: &Shell, wanted: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|p| !installed(sh, p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !nix_is_root(sh) {
        bail!(
            "these Debian packages are needed: {}; install them (apt-get install {}) or run as root",
            missing.join(", "),
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    cmd!(sh, "apt-get update -qq")
        .run()
        .context("apt-get update")?;
    cmd!(
        sh,
        "apt-get install -y -qq --no-install-recommends {missing...}"
    )
    .env("DEBIAN_FRONTEND", "noninteractive")
    .run()
    .context("apt-get install")?;
    Ok(())
}

fn installed(sh: &Shell, package: &str) -> bool {
    let format = "-f=${Status}";
    cmd!(sh, "dpkg-query -W {format} {package}")
        .quiet()
        .ignore_stderr()
        .read()
        .is_ok_and(|s| s.contains("install ok installed"))
}

fn nix_is_root(sh: &Shell) -> bool {
    cmd!(sh, "id -u")
        .quiet()
        .read()
        .is_ok_and(|s| s.trim() == "0")
}
