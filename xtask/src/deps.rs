//! The Debian packages the build and the tests need, installed when missing.

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

/// What building Postern needs beyond the Rust toolchain (see [`CI_PACKAGES`]).
pub(crate) const BUILD_PACKAGES: &[&str] = &["cmake", "clang", "libclang-dev"];

/// What `cargo xtask ci` needs beyond the Rust toolchain:
/// - cmake, clang, libclang-dev: AWS-LC's libssl (the legacy TLS engine) is built with CMake and
///   its bindings with bindgen;
/// - openssl: the `openssl s_client`/`s_server`/`ciphers` peers of the TLS tests;
/// - util-linux: `mount`, for the full-disk tests on a small tmpfs;
/// - curl: the web tests' TLS v1.2-limited client (`--tls-max 1.2`);
/// - swaks, postfix: the third-party peers of `tests/peers.rs` (swaks submits over STARTTLS,
///   Postfix's `smtp-sink` receives; Postfix is installed with "No configuration", see
///   [`PRESEED`]);
/// - chromium, chromium-driver: the real browser of the web UI tests (`crates/postern/tests/
///   browser.rs`), headless Chromium driven through WebDriver; the tests fail without them;
/// - fonts-liberation: a font for the pages those tests screenshot (only recommended by chromium,
///   and recommends are not installed).
pub(crate) const CI_PACKAGES: &[&str] = &[
    "cmake",
    "clang",
    "libclang-dev",
    "openssl",
    "util-linux",
    "curl",
    "swaks",
    "postfix",
    "chromium",
    "chromium-driver",
    "fonts-liberation",
];

/// What `cargo xtask bench smtp` needs beyond [`BUILD_PACKAGES`]:
/// - postfix: the Postfix it is compared with, and its `smtp-source` and `smtp-sink`; installed
///   with "No configuration" ([`PRESEED`]), so no system Postfix is set up or started;
/// - util-linux: `prlimit`, file descriptors for a thousand idle connections.
pub(crate) const BENCH_PACKAGES: &[&str] = &["postfix", "util-linux"];

/// What `cargo xtask image` needs beyond [`BUILD_PACKAGES`] (the image recipe of the probe):
/// - busybox-static: the appliance's init, shell and tools (taken from its `.deb`, and run here
///   to list its applets);
/// - kmod: `depmod -b` for the Debian kernel's modules; cpio, lz4: the initramfs;
/// - squashfs-tools: the read-only root; e2fsprogs: the empty `/data` ext4;
/// - dosfstools, mtools: the FAT boot partition, without mounts; grub-common: `grub-mkimage`
///   and `grub-editenv`, which make the boot loader from `grub-pc-bin`'s files (downloaded into
///   the image cache, not installed: nothing here installs a boot loader on this machine);
///   genimage: the partition layout; xz-utils: the compressed size.
pub(crate) const IMAGE_PACKAGES: &[&str] = &[
    "busybox-static",
    "kmod",
    "cpio",
    "lz4",
    "squashfs-tools",
    "e2fsprogs",
    "dosfstools",
    "mtools",
    "grub-common",
    "genimage",
    "xz-utils",
];

/// What booting the image needs: QEMU, and `qemu-img` for the qcow2. On Debian 12 both come
/// from bookworm-backports ([`ensure_qemu`]); openssl is the STARTTLS peer of `qemu-test`.
pub(crate) const QEMU_PACKAGES: &[&str] = &["qemu-system-x86", "qemu-utils"];

/// What `cargo xtask qemu-test` talks to the guest with: openssl (STARTTLS), curl (HTTPS),
/// openssh-client (`ssh`, `ssh-keyscan`) and sshpass (the password login over SSH).
pub(crate) const QEMU_TEST_PACKAGES: &[&str] =
    &["openssl", "curl", "openssh-client", "sshpass", "ovmf"];

/// Debconf answers given before a package is installed, as `debconf-set-selections` reads
/// them; each line starts with the package it is for.
const PRESEED: &[&str] = &["postfix postfix/main_mailer_type select No configuration"];

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
    let postfix = missing.contains(&"postfix");
    let answers: String = PRESEED
        .iter()
        .filter(|line| missing.iter().any(|p| line.split(' ').next() == Some(*p)))
        .map(|line| format!("{line}\n"))
        .collect();
    if !answers.is_empty() {
        cmd!(sh, "debconf-set-selections")
            .stdin(answers)
            .run()
            .context("debconf-set-selections")?;
    }
    cmd!(sh, "apt-get -o DPkg::Lock::Timeout=300 update -qq")
        .run()
        .context("apt-get update")?;
    cmd!(
        sh,
        "apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends {missing...}"
    )
    .env("DEBIAN_FRONTEND", "noninteractive")
    .run()
    .context("apt-get install")?;
    if postfix {
        stop_system_postfix(sh);
    }
    Ok(())
}

/// A system Postfix that an install started anyway (a machine where `/etc/postfix/main.cf`
/// existed before) is stopped: nothing of the bench's is left listening on port 25.
fn stop_system_postfix(sh: &Shell) {
    let running = cmd!(sh, "postfix status")
        .quiet()
        .ignore_stderr()
        .ignore_stdout()
        .run()
        .is_ok();
    if running {
        eprintln!("xtask: stopping the system Postfix the install started");
        let _ = cmd!(sh, "postfix stop").quiet().run();
    }
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

/// Installs QEMU ([`QEMU_PACKAGES`]). On Debian 12 the machine's qemu-utils is the 10.0 of
/// bookworm-backports, which the bookworm qemu-system-x86 (7.2) conflicts with, so both come
/// from backports: the suite is added first, from the same mirror as the machine's own Debian
/// source. Elsewhere they come from the release itself.
pub(crate) fn ensure_qemu(sh: &Shell) -> anyhow::Result<()> {
    let missing: Vec<&str> = QEMU_PACKAGES
        .iter()
        .copied()
        .filter(|p| !installed(sh, p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let codename = os_release_codename()?;
    if codename != "bookworm" {
        return ensure(sh, QEMU_PACKAGES);
    }
    if !nix_is_root(sh) {
        bail!(
            "QEMU is needed: add bookworm-backports to apt's sources and run \
             apt-get install -t bookworm-backports {}; or run as root",
            missing.join(" ")
        );
    }
    let sources = std::path::Path::new(BACKPORTS_SOURCES);
    if !sources.exists() {
        let mirror = debian_mirror()?;
        eprintln!("xtask: adding bookworm-backports from {mirror} ({BACKPORTS_SOURCES})");
        std::fs::write(sources, backports_sources(&mirror))
            .with_context(|| format!("writing {BACKPORTS_SOURCES}"))?;
    }
    eprintln!(
        "xtask: installing {} from bookworm-backports",
        missing.join(" ")
    );
    cmd!(sh, "apt-get -o DPkg::Lock::Timeout=300 update -qq")
        .run()
        .context("apt-get update")?;
    cmd!(
        sh,
        "apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends -t bookworm-backports {missing...}"
    )
    .env("DEBIAN_FRONTEND", "noninteractive")
    .run()
    .context("apt-get install from bookworm-backports")?;
    Ok(())
}

const BACKPORTS_SOURCES: &str = "/etc/apt/sources.list.d/bookworm-backports.sources";

fn backports_sources(mirror: &str) -> String {
    format!(
        "Types: deb\nURIs: {mirror}\nSuites: bookworm-backports\nComponents: main\n\
         Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
}

fn os_release_codename() -> anyhow::Result<String> {
    let text = std::fs::read_to_string("/etc/os-release").context("reading /etc/os-release")?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .unwrap_or_default()
        .trim_matches('"')
        .to_owned())
}

/// The URI of the machine's Debian source for bookworm itself (not -security), from the
/// deb822 files in `/etc/apt/sources.list.d/` or the one-line `/etc/apt/sources.list`.
fn debian_mirror() -> anyhow::Result<String> {
    let mut texts = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for entry in entries.flatten() {
            let path = entry.path();
            if path
                .extension()
                .is_some_and(|e| e == "sources" || e == "list")
            {
                texts.push(std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    texts.push(std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default());
    texts
        .iter()
        .find_map(|t| mirror_in(t))
        .context("no Debian bookworm source found in /etc/apt/sources.list*")
}

/// The mirror of a bookworm `main` source in one sources file, either format.
fn mirror_in(text: &str) -> Option<String> {
    // deb822: paragraphs of `Field: value` lines.
    for paragraph in text.split("\n\n") {
        let field = |name: &str| {
            paragraph.lines().find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .map(str::trim)
            })
        };
        let suites = field("Suites").unwrap_or_default();
        if suites.split_whitespace().any(|s| s == "bookworm")
            && let Some(uri) = field("URIs").and_then(|u| u.split_whitespace().next())
        {
            return Some(uri.to_owned());
        }
    }
    // One-line: `deb [options] URI SUITE COMPONENTS...`.
    text.lines().find_map(|line| {
        let mut words = line
            .split_whitespace()
            .filter(|w| !(w.starts_with('[') || w.ends_with(']')));
        (words.next()? == "deb").then_some(())?;
        let uri = words.next()?;
        (words.next()? == "bookworm").then(|| uri.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::mirror_in;

    #[test]
    fn mirror_from_deb822_skips_security() {
        let text = "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n\
                    Components: main\n\nTypes: deb\n# a comment\nURIs: http://mirror.example/debian\n\
                    Suites: bookworm bookworm-updates\nComponents: main\n";
        assert_eq!(
            mirror_in(text).as_deref(),
            Some("http://mirror.example/debian")
        );
    }

    #[test]
    fn mirror_from_one_line_format() {
        let text = "deb http://security.example/debian-security bookworm-security main\n\
                    deb [arch=amd64] http://mirror.example/debian bookworm main contrib\n";
        assert_eq!(
            mirror_in(text).as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(mirror_in("deb http://x/ trixie main\n"), None);
    }
}
