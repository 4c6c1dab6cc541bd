//! `cargo xtask image --buildroot <checkout>`: the appliance image built by Buildroot from the
//! `board/` tree (BR2_EXTERNAL `POSTERN`) instead of assembled offline from Debian's packages.
//!
//! It needs a network for what Buildroot downloads (its toolchain, the kernel, GRUB, BusyBox,
//! dropbear, clang, Rust) and hours on a first build, so it is not run in CI; the tests of this
//! module check the tree without either. Steps:
//! 1. `cargo vendor --locked` of the workspace's crates into `<out>/postern-cargo/vendor/`, with
//!    the source replacement beside it in `config.toml`: Postern is a local package, which
//!    Buildroot's cargo infrastructure does not vendor, and it builds `--offline --locked`
//!    (`board/package/postern/postern.mk` reads that file).
//! 2. `make BR2_EXTERNAL=<repo>/board O=<out> postern_x86_64_defconfig` in the checkout, and a
//!    check that its Rust is not older than the workspace's `rust-version`.
//! 3. `make postern-rebuild all`: the local package is copied from the working tree again (a
//!    plain `make` would keep the copy of the first build), then everything else.
//! 4. `postern.qcow2` beside `postern.img` when `qemu-img` is here, and the sizes.
//!
//! `<out>` is `target/buildroot/` (under `CARGO_TARGET_DIR` when that is set).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

/// The defconfig of `board/configs/`.
const DEFCONFIG: &str = "postern_x86_64_defconfig";

/// The Buildroot release the tree was written for (board/README.md says why).
const TARGETED_RELEASE: &str = "2026.08";

/// `cargo xtask image --buildroot <checkout>`.
#[derive(Debug)]
pub(crate) struct BuildrootImage {
    checkout: PathBuf,
}

impl BuildrootImage {
    /// The Buildroot build when `image`'s arguments ask for it (`--buildroot PATH` or
    /// `--buildroot=PATH`), `None` when they ask for the offline assembly.
    pub(crate) fn requested(args: &[String]) -> anyhow::Result<Option<Self>> {
        if !args.first().is_some_and(|a| a.starts_with("--buildroot")) {
            return Ok(None);
        }
        let checkout = match args {
            [option, path] if option == "--buildroot" => path.as_str(),
            [one] if one.starts_with("--buildroot=") => &one["--buildroot=".len()..],
            _ => bail!("usage: cargo xtask image --buildroot <path to a Buildroot checkout>"),
        };
        if checkout.is_empty() {
            bail!("usage: cargo xtask image --buildroot <path to a Buildroot checkout>");
        }
        Ok(Some(Self {
            checkout: PathBuf::from(checkout),
        }))
    }

    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let started = Instant::now();
        let checkout = checkout(&self.checkout)?;
        let repository = crate::project_root();
        let board = repository.join("board");
        let out = crate::target_dir().join("buildroot");
        fs::create_dir_all(&out)?;

        let vendored = vendor(sh, &repository, &out.join("postern-cargo"), false)?;
        eprintln!(
            "xtask: crates vendored for Buildroot: {}",
            vendored.display()
        );

        let make = |target: &str| {
            cmd!(sh, "make -C {checkout} O={out} {target}")
                // What cargo reads from the environment would reach Buildroot's cargo: the
                // package sets its own target directory and flags.
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("CARGO_BUILD_TARGET")
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .env_remove("RUSTC_WRAPPER")
        };
        cmd!(
            sh,
            "make -C {checkout} BR2_EXTERNAL={board} O={out} {DEFCONFIG}"
        )
        .run()
        .context("configuring Buildroot")?;

        let needed = workspace_rust_version(&fs::read_to_string(repository.join("Cargo.toml"))?)?;
        let printed = make("printvars")
            .arg("VARS=RUST_BIN_VERSION")
            .args(["-s", "--no-print-directory"])
            .read()
            .context("asking Buildroot for its Rust version")?;
        let available = printed
            .lines()
            .find_map(|l| l.trim().strip_prefix("RUST_BIN_VERSION="))
            .with_context(|| format!("no RUST_BIN_VERSION in Buildroot's answer: {printed}"))?;
        if !at_least(available, &needed) {
            bail!(
                "this Buildroot builds with Rust {available}, and Postern needs {needed} \
                 (rust-version in Cargo.toml): use Buildroot {TARGETED_RELEASE} or later"
            );
        }

        make("postern-rebuild")
            .arg("all")
            .run()
            .context("building the image with Buildroot")?;

        let images = out.join("images");
        let raw = images.join("postern.img");
        if !raw.is_file() {
            bail!("Buildroot finished without {}", raw.display());
        }
        let qcow2 = images.join("postern.qcow2");
        // A qcow2 of an earlier build is not this image.
        let _ = fs::remove_file(&qcow2);
        let have_qemu_img = cmd!(sh, "qemu-img --version").quiet().read().is_ok();
        if have_qemu_img {
            cmd!(sh, "qemu-img convert -O qcow2 {raw} {qcow2}").run()?;
        }
        println!("\nimage ({}):", images.display());
        for name in [
            "bzImage",
            "initrd.img",
            "rootfs.squashfs",
            "postern.img",
            "postern.qcow2",
        ] {
            if let Ok(meta) = fs::metadata(images.join(name)) {
                println!("  {name:<28}{:>10}", crate::image::mb(meta.len()));
            }
        }
        if !have_qemu_img {
            println!("  (no qemu-img here: no postern.qcow2)");
        }
        println!(
            "\nxtask: Buildroot image built in {:.0} min: {}",
            started.elapsed().as_secs_f64() / 60.0,
            raw.display()
        );
        Ok(())
    }
}

/// The canonical path of a Buildroot checkout, or why `path` is not one.
fn checkout(path: &Path) -> anyhow::Result<PathBuf> {
    let not_buildroot = |why: &str| {
        anyhow::anyhow!(
            "{} is not a Buildroot checkout ({why}); get one with \
             `git clone -b {TARGETED_RELEASE}.x https://gitlab.com/buildroot.org/buildroot.git`",
            path.display()
        )
    };
    let path = fs::canonicalize(path).map_err(|_| not_buildroot("no such folder"))?;
    let makefile = fs::read_to_string(path.join("Makefile")).unwrap_or_default();
    if !makefile.contains("Makefile for buildroot") {
        return Err(not_buildroot("its Makefile is not Buildroot's"));
    }
    // The cargo package infrastructure and BR2_EXTERNAL support the tree relies on.
    for file in ["package/pkg-cargo.mk", "support/scripts/br2-external"] {
        if !path.join(file).is_file() {
            return Err(not_buildroot(&format!("it has no {file}")));
        }
    }
    Ok(path)
}

/// `cargo vendor --locked` of the workspace at `workspace` into `into/vendor/`, and the source
/// replacement that makes cargo build from it into `into/config.toml` (its path is returned).
/// `offline`: from the crates cargo has downloaded before only.
pub(crate) fn vendor(
    sh: &Shell,
    workspace: &Path,
    into: &Path,
    offline: bool,
) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(into)?;
    let into = fs::canonicalize(into)?;
    let vendor = into.join("vendor");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let offline = offline.then_some("--offline");
    let _dir = sh.push_dir(workspace);
    // Versioned folders: the names do not depend on which versions of a crate the lock holds.
    // Its progress (a line per crate) is kept for the error should it fail.
    let vendoring = cmd!(
        sh,
        "{cargo} vendor --locked {offline...} --versioned-dirs {vendor}"
    )
    .ignore_status()
    .output()
    .with_context(|| format!("starting cargo vendor in {}", workspace.display()))?;
    if !vendoring.status.success() {
        bail!(
            "cargo vendor failed in {} ({}):\n{}",
            workspace.display(),
            vendoring.status,
            String::from_utf8_lossy(&vendoring.stderr).trim_end()
        );
    }
    let replacement = String::from_utf8(vendoring.stdout).context("cargo vendor's output")?;
    // What cargo vendor prints for .cargo/config.toml, with the absolute path given to it.
    if !replacement.contains("replace-with = \"vendored-sources\"")
        || !replacement.contains(&format!("directory = \"{}\"", vendor.display()))
    {
        bail!(
            "cargo vendor printed no source replacement for {}: {replacement}",
            vendor.display()
        );
    }
    let config = into.join("config.toml");
    fs::write(
        &config,
        format!(
            "# Written by `cargo xtask image --buildroot`: crates.io replaced by the crates\n\
             # vendored for Buildroot's offline build of Postern (board/package/postern).\n{}\n",
            replacement.trim()
        ),
    )?;
    Ok(config)
}

/// The workspace's `rust-version` (`[workspace.package]` of the root Cargo.toml).
fn workspace_rust_version(manifest: &str) -> anyhow::Result<String> {
    manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version"))
        .and_then(|rest| rest.trim().strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
        .context("the workspace's Cargo.toml has no rust-version")
}

/// Whether version `have` (`1.97.1`) is `need` (`1.95`) or newer; missing parts count as 0.
fn at_least(have: &str, need: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> {
        v.split('.')
            .map(|p| p.trim().parse().unwrap_or(0))
            .collect()
    };
    let (have, need) = (parts(have), parts(need));
    for i in 0..have.len().max(need.len()) {
        let (h, n) = (
            have.get(i).copied().unwrap_or(0),
            need.get(i).copied().unwrap_or(0),
        );
        if h != n {
            return h > n;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    //! The Buildroot tree checked without Buildroot and without a network: what the defconfig
    //! and the scripts name exists, the names Buildroot derives from folders match, the disk
    //! is the offline assembly's, and the vendored crates build offline.

    use std::collections::BTreeMap;

    use super::*;

    fn board() -> PathBuf {
        crate::project_root().join("board")
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The defconfig's settings: `KEY=VALUE` (quotes kept) and `# KEY is not set` as `n`.
    fn defconfig() -> BTreeMap<String, String> {
        let text = read(&board().join("configs").join(DEFCONFIG));
        let mut settings = BTreeMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            let setting = if let Some(unset) = line
                .strip_prefix("# ")
                .and_then(|l| l.strip_suffix(" is not set"))
            {
                Some((unset, "n"))
            } else if line.is_empty() || line.starts_with('#') {
                None
            } else {
                let (key, value) = line
                    .split_once('=')
                    .unwrap_or_else(|| panic!("defconfig line {}: {line}", number + 1));
                Some((key, value))
            };
            if let Some((key, value)) = setting {
                assert!(
                    key.starts_with("BR2_")
                        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "defconfig line {}: {key} is not a Buildroot option",
                    number + 1
                );
                let quoted = value.starts_with('"');
                assert!(
                    !quoted || (value.len() >= 2 && value.ends_with('"')),
                    "defconfig line {}: unbalanced quotes in {value}",
                    number + 1
                );
                let previous = settings.insert(key.to_owned(), value.to_owned());
                assert!(previous.is_none(), "{key} is set twice in the defconfig");
            }
        }
        settings
    }

    #[test]
    fn every_file_the_defconfig_names_exists_in_board_or_image() {
        let settings = defconfig();
        let repository = crate::project_root();
        let mut named = Vec::new();
        for (key, value) in &settings {
            if !value.contains("$(BR2_EXTERNAL_POSTERN_PATH)") {
                continue;
            }
            // Lists (fragments, overlays, scripts) are separated by spaces.
            for item in value.trim_matches('"').split_whitespace() {
                let path = item.replace("$(BR2_EXTERNAL_POSTERN_PATH)", &board().to_string_lossy());
                let path = fs::canonicalize(&path)
                    .unwrap_or_else(|_| panic!("{key} names {item}, which does not exist"));
                assert!(
                    path.starts_with(repository.join("board"))
                        || path.starts_with(repository.join("image")),
                    "{key} names {}, outside board/ and image/",
                    path.display()
                );
                named.push(key.as_str());
            }
        }
        // The ones the image cannot do without, so that the loop above checked something.
        for key in [
            "BR2_ROOTFS_OVERLAY",
            "BR2_ROOTFS_POST_BUILD_SCRIPT",
            "BR2_ROOTFS_POST_IMAGE_SCRIPT",
            "BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES",
            "BR2_PACKAGE_BUSYBOX_CONFIG_FRAGMENT_FILES",
            "BR2_TARGET_GRUB2_BUILTIN_CONFIG_PC",
            "BR2_TARGET_GRUB2_BUILTIN_CONFIG_EFI",
        ] {
            assert!(
                named.contains(&key),
                "{key} does not name a file of this tree"
            );
        }
        assert_eq!(
            settings["BR2_ROOTFS_OVERLAY"],
            "\"$(BR2_EXTERNAL_POSTERN_PATH)/../image/rootfs-overlay\"",
            "both images share image/rootfs-overlay"
        );
        for script in ["post-build.sh", "post-image.sh"] {
            let mode = fs::metadata(board().join(script)).unwrap().permissions();
            assert!(
                std::os::unix::fs::PermissionsExt::mode(&mode) & 0o111 != 0,
                "Buildroot runs board/{script}: it must be executable"
            );
        }
    }

    #[test]
    fn the_defconfig_builds_what_the_shared_files_expect() {
        let settings = defconfig();
        for (key, value) in [
            ("BR2_x86_64", "y"),
            ("BR2_TOOLCHAIN_BUILDROOT_GLIBC", "y"),
            ("BR2_TOOLCHAIN_BUILDROOT_CXX", "y"),
            ("BR2_INIT_BUSYBOX", "y"),
            ("BR2_LINUX_KERNEL", "y"),
            ("BR2_TARGET_ROOTFS_SQUASHFS", "y"),
            ("BR2_TARGET_GRUB2_I386_PC", "y"),
            ("BR2_TARGET_GRUB2_X86_64_EFI", "y"),
            ("BR2_TARGET_GRUB2_BOOT_PARTITION", "\"hd0,msdos1\""),
            ("BR2_PACKAGE_HOST_GENIMAGE", "y"),
            ("BR2_PACKAGE_DROPBEAR", "y"),
            ("BR2_PACKAGE_POSTERN", "y"),
            ("BR2_TARGET_GENERIC_REMOUNT_ROOTFS_RW", "n"),
        ] {
            assert_eq!(settings.get(key).map(String::as_str), Some(value), "{key}");
        }
        // The kernel headers' series follows the kernel's version.
        let version = settings["BR2_LINUX_KERNEL_CUSTOM_VERSION_VALUE"].trim_matches('"');
        let series: Vec<&str> = version.split('.').take(2).collect();
        let headers = format!("BR2_PACKAGE_HOST_LINUX_HEADERS_CUSTOM_{}", series.join("_"));
        assert_eq!(
            settings.get(&headers).map(String::as_str),
            Some("y"),
            "{headers}"
        );
        // GRUB runs its built-in configuration with the rescue parser, where a quote, even in a
        // comment, takes the lines after it into a string (found booting it in QEMU).
        let early = read(&board().join("grub-early.cfg"));
        assert!(
            !early.contains(['\'', '"']),
            "a quote in board/grub-early.cfg"
        );
        assert!(early.lines().any(|l| l == "set prefix=($root)/grub"));
        // The kernel has what the initramfs would otherwise load as modules: it loads none.
        let kernel = read(&board().join("linux.config"));
        for option in [
            "CONFIG_VIRTIO_PCI=y",
            "CONFIG_VIRTIO_BLK=y",
            "CONFIG_VIRTIO_NET=y",
            "CONFIG_EXT4_FS=y",
            "CONFIG_SQUASHFS=y",
            "CONFIG_SQUASHFS_ZSTD=y",
            "CONFIG_OVERLAY_FS=y",
            "CONFIG_FW_CFG_SYSFS=y",
        ] {
            assert!(
                kernel.lines().any(|l| l == option),
                "linux.config lacks {option}"
            );
        }
    }

    #[test]
    fn external_desc_names_the_tree_postern() {
        let desc = read(&board().join("external.desc"));
        // As Buildroot's support/scripts/br2-external reads it: `^name: +(.*)$`.
        let names: Vec<&str> = desc
            .lines()
            .filter_map(|l| l.strip_prefix("name:"))
            .filter(|rest| rest.starts_with(' '))
            .map(str::trim)
            .collect();
        assert_eq!(names, ["POSTERN"]);
        for file in ["Config.in", "external.mk"] {
            assert!(board().join(file).is_file(), "board/{file} is required");
        }
    }

    #[test]
    fn every_package_is_sourced_and_named_after_its_folder() {
        let config = read(&board().join("Config.in"));
        let sourced: Vec<String> = config
            .lines()
            .filter_map(|l| l.trim().strip_prefix("source "))
            .map(|s| s.trim_matches('"').to_owned())
            .collect();
        for source in &sourced {
            let path = source.replace("$BR2_EXTERNAL_POSTERN_PATH", &board().to_string_lossy());
            assert!(
                Path::new(&path).is_file(),
                "Config.in sources {source}, which is missing"
            );
        }
        let external = read(&board().join("external.mk"));
        assert!(
            external.contains("$(BR2_EXTERNAL_POSTERN_PATH)/package/*/*.mk"),
            "external.mk includes every package's .mk"
        );

        let mut packages = 0;
        for entry in fs::read_dir(board().join("package")).unwrap() {
            let dir = entry.unwrap().path();
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            // Buildroot's package name to variable prefix: upper case, `-` and `.` to `_`.
            let prefix = name.to_uppercase().replace(['-', '.'], "_");
            assert!(
                sourced.contains(&format!(
                    "$BR2_EXTERNAL_POSTERN_PATH/package/{name}/Config.in"
                )),
                "board/Config.in does not source package/{name}/Config.in"
            );
            let kconfig = read(&dir.join("Config.in"));
            assert!(
                kconfig
                    .lines()
                    .any(|l| l.trim() == format!("config BR2_PACKAGE_{prefix}")),
                "package/{name}/Config.in does not define BR2_PACKAGE_{prefix}"
            );
            let mk = read(&dir.join(format!("{name}.mk")));
            let mut assigned = 0;
            for line in mk.lines() {
                let Some((left, _)) = line.split_once('=') else {
                    continue;
                };
                let variable = left.trim_end_matches([':', '+', '?', ' ']);
                let is_assignment = !line.starts_with(['\t', ' ', '#'])
                    && !variable.is_empty()
                    && variable
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                let is_define = line.starts_with("define ");
                if is_assignment || is_define {
                    let variable = variable.trim_start_matches("define ");
                    assert!(
                        variable.starts_with(&format!("{prefix}_")),
                        "package/{name}/{name}.mk sets {variable}, not a {prefix}_ variable"
                    );
                    assigned += 1;
                }
            }
            assert!(assigned > 0, "package/{name}/{name}.mk sets nothing");
            assert!(
                mk.trim_end().ends_with("$(eval $(cargo-package))")
                    || mk.trim_end().ends_with("$(eval $(generic-package))"),
                "package/{name}/{name}.mk does not end with its infrastructure's eval"
            );
            packages += 1;
        }
        assert_eq!(
            packages,
            sourced.len(),
            "Config.in sources a package that is not there"
        );
        assert!(packages >= 1);
    }

    #[test]
    fn the_package_builds_with_the_workspaces_release_profile() {
        let manifest = read(&crate::project_root().join("Cargo.toml"));
        let profile = manifest
            .split("[profile.release]")
            .nth(1)
            .and_then(|rest| rest.split("\n[").next())
            .expect("[profile.release] in Cargo.toml");
        let mk = read(&board().join("package/postern/postern.mk"));
        let mut compared = 0;
        for line in profile.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = key.trim();
            // The ones Buildroot's cargo infrastructure overrides.
            if !["lto", "codegen-units", "opt-level"].contains(&key) {
                continue;
            }
            let variable = format!(
                "CARGO_PROFILE_RELEASE_{}=\"{}\"",
                key.to_uppercase().replace('-', "_"),
                value.trim().trim_matches('"')
            );
            assert!(mk.contains(&variable), "postern.mk does not set {variable}");
            compared += 1;
        }
        assert!(compared >= 2, "Cargo.toml's [profile.release]: {profile}");
    }

    /// A genimage section: `kind [name] { ... }` with its settings and subsections.
    #[derive(Debug, Default)]
    struct Section {
        kind: String,
        name: String,
        settings: BTreeMap<String, String>,
        sections: Vec<Section>,
    }

    impl Section {
        fn find(&self, kind: &str, name: &str) -> Option<&Section> {
            self.sections
                .iter()
                .find(|s| s.kind == kind && s.name == name)
        }

        fn all<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Section> {
            self.sections.iter().filter(move |s| s.kind == kind)
        }
    }

    /// genimage's configuration language, as far as Postern's files use it: sections, `key =
    /// value` with a word, a string, or a `{...}` list (kept as its text), `#` comments.
    fn parse_genimage(text: &str) -> Section {
        let mut tokens = Vec::new();
        for line in text.lines() {
            let mut rest = line.trim();
            while !rest.is_empty() {
                if rest.starts_with('#') {
                    break;
                }
                let token = if let Some(quoted) = rest.strip_prefix('"') {
                    let end = quoted.find('"').expect("an unterminated string");
                    let token = format!("\"{}\"", &quoted[..end]);
                    rest = &quoted[end + 1..];
                    token
                } else if rest.starts_with(['{', '}', '=']) {
                    let token = rest[..1].to_owned();
                    rest = &rest[1..];
                    token
                } else {
                    let end = rest
                        .find(|c: char| c.is_whitespace() || "{}=\"".contains(c))
                        .unwrap_or(rest.len());
                    let token = rest[..end].to_owned();
                    rest = &rest[end..];
                    token
                };
                tokens.push(token);
                rest = rest.trim_start();
            }
        }
        fn section(tokens: &[String], at: &mut usize, into: &mut Section) {
            while *at < tokens.len() && tokens[*at] != "}" {
                let word = tokens[*at].clone();
                let next = tokens.get(*at + 1).map(String::as_str);
                if next == Some("=") {
                    *at += 2;
                    let value = if tokens[*at] == "{" {
                        let mut list = Vec::new();
                        *at += 1;
                        while tokens[*at] != "}" {
                            list.push(tokens[*at].clone());
                            *at += 1;
                        }
                        format!("{{{}}}", list.join(" "))
                    } else {
                        tokens[*at].clone()
                    };
                    *at += 1;
                    into.settings
                        .insert(word, value.trim_matches('"').to_owned());
                } else {
                    let mut child = Section {
                        kind: word,
                        ..Section::default()
                    };
                    *at += 1;
                    if tokens[*at] != "{" {
                        child.name = tokens[*at].clone();
                        *at += 1;
                    }
                    assert_eq!(tokens[*at], "{", "a section {} without a body", child.kind);
                    *at += 1;
                    section(tokens, at, &mut child);
                    *at += 1;
                    into.sections.push(child);
                }
            }
        }
        let mut top = Section::default();
        let mut at = 0;
        section(&tokens, &mut at, &mut top);
        assert_eq!(
            at,
            tokens.len(),
            "an unbalanced }} in the genimage configuration"
        );
        top
    }

    /// What both disks must agree on: the partition table, the boot partition's FAT, and the
    /// slots' kernels and initramfs on it (the boot loader's own files may differ).
    fn shared_layout(config: &Section) -> Vec<String> {
        let disk = config
            .find("image", "postern.img")
            .expect("image postern.img");
        let mut layout = vec![format!(
            "table {:?}",
            disk.find("hdimage", "").map(|h| &h.settings)
        )];
        for partition in disk.all("partition") {
            if partition
                .settings
                .get("in-partition-table")
                .map(String::as_str)
                == Some("false")
            {
                continue;
            }
            layout.push(format!(
                "partition {} {:?}",
                partition.name, partition.settings
            ));
            let image = &partition.settings["image"];
            if let Some(filesystem) = config.find("image", image) {
                let vfat = filesystem.find("vfat", "").expect("a vfat boot partition");
                layout.push(format!(
                    "{image}: size {:?} label {:?}",
                    filesystem.settings.get("size"),
                    vfat.settings.get("label")
                ));
                for file in vfat.all("file") {
                    if file.name.starts_with("bzImage") || file.name.starts_with("initrd") {
                        layout.push(format!("{image}: {} {:?}", file.name, file.settings));
                    }
                }
            }
        }
        layout
    }

    #[test]
    fn the_buildroot_disk_is_the_offline_assemblys_disk() {
        let repository = crate::project_root();
        let offline = parse_genimage(&read(&repository.join("image/genimage.cfg")));
        let buildroot = parse_genimage(&read(&board().join("genimage.cfg")));
        let offline = shared_layout(&offline);
        // Boot, two slots and /data, with the FAT's four slot files.
        assert!(offline.len() >= 1 + 4 + 1 + 4, "{offline:#?}");
        assert_eq!(shared_layout(&buildroot), offline);
    }

    #[test]
    fn every_input_of_the_buildroot_disk_is_made() {
        let config = parse_genimage(&read(&board().join("genimage.cfg")));
        let settings = defconfig();
        let post_image = read(&board().join("post-image.sh"));
        let made_here: Vec<&str> = config
            .all("image")
            .map(|image| image.name.as_str())
            .collect();
        let mut inputs = Vec::new();
        for image in config.all("image") {
            for partition in image.all("partition") {
                inputs.push(partition.settings["image"].clone());
            }
            for filesystem in &image.sections {
                for file in filesystem.all("file") {
                    inputs.push(file.settings["image"].clone());
                }
            }
        }
        assert!(inputs.len() >= 10, "{inputs:?}");
        assert!(post_image.contains("\nboot=$images/postern-boot\n"));
        for input in inputs.iter().filter(|i| !made_here.contains(&i.as_str())) {
            // Buildroot's own outputs in output/images, and the option that makes each.
            let option = match input.as_str() {
                "bzImage" => Some("BR2_LINUX_KERNEL"),
                "rootfs.squashfs" => Some("BR2_TARGET_ROOTFS_SQUASHFS"),
                "grub.img" => Some("BR2_TARGET_GRUB2_I386_PC"),
                _ => None,
            };
            match option {
                Some(option) => assert_eq!(
                    settings.get(option).map(String::as_str),
                    Some("y"),
                    "{input} needs {option}"
                ),
                None => {
                    let written = match input.strip_prefix("postern-boot/") {
                        Some(rest) => format!("\"$boot/{rest}"),
                        None => format!("\"$images/{input}\""),
                    };
                    assert!(
                        post_image.contains(&written),
                        "board/genimage.cfg reads {input}, which post-image.sh does not make"
                    );
                }
            }
        }
    }

    /// The quoted words of `const NAME: &[&str] = &[...]` in a Rust source.
    fn string_list(source: &str, name: &str) -> Option<Vec<String>> {
        let list = source
            .split(&format!("const {name}: &[&str] = &["))
            .nth(1)?;
        let list = list.split("];").next()?;
        Some(
            list.split('"')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect(),
        )
    }

    #[test]
    fn the_shared_grub_cfg_boots_from_buildroots_grub_too() {
        let repository = crate::project_root();
        let shared = repository.join("image/grub.cfg");
        if !shared.exists() {
            // Before the offline assembly moves to GRUB it boots with syslinux, and there is no
            // image/grub.cfg for post-image.sh to take yet (board/README.md).
            assert!(
                repository.join("image/syslinux.cfg").is_file(),
                "image/ has neither grub.cfg nor syslinux.cfg"
            );
            return;
        }
        // post-image.sh takes it as it is: it must boot both ways, by platform.
        let grub = read(&shared);
        assert!(
            grub.contains("$grub_platform"),
            "image/grub.cfg: no platform test"
        );
        for command in [
            "linux16 /bzImage-",
            "initrd16 /initrd-",
            "linux /bzImage-",
            "initrd /initrd-",
        ] {
            let lines = grub
                .lines()
                .filter(|l| l.trim_start().starts_with(command))
                .count();
            assert_eq!(lines, 1, "image/grub.cfg: lines starting with {command}");
        }
        // GRUB's files on the FAT are the offline assembly's, in /grub.
        let grub_files = |config: &Section| -> Vec<String> {
            let fat = config.find("image", "boot.vfat").expect("image boot.vfat");
            let vfat = fat.find("vfat", "").expect("vfat");
            let mut names: Vec<String> = vfat
                .all("file")
                .map(|f| f.name.clone())
                .filter(|n| n.starts_with("grub/"))
                .collect();
            names.sort();
            names
        };
        let offline = parse_genimage(&read(&repository.join("image/genimage.cfg")));
        let buildroot = parse_genimage(&read(&board().join("genimage.cfg")));
        assert!(!grub_files(&offline).is_empty());
        assert_eq!(grub_files(&buildroot), grub_files(&offline));
        // What the offline assembly builds into its GRUB, Buildroot's has: for UEFI with linux
        // instead of linux16, and without the BIOS disk.
        let image_rs = read(&repository.join("xtask/src/image.rs"));
        let modules = string_list(&image_rs, "GRUB_MODULES").expect("GRUB_MODULES in image.rs");
        let settings = defconfig();
        let built_in = |key: &str| -> Vec<String> {
            settings[key]
                .trim_matches('"')
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        let (pc, efi) = (
            built_in("BR2_TARGET_GRUB2_BUILTIN_MODULES_PC"),
            built_in("BR2_TARGET_GRUB2_BUILTIN_MODULES_EFI"),
        );
        for module in &modules {
            assert!(pc.contains(module), "GRUB for BIOS lacks {module}");
            let for_efi = match module.as_str() {
                "biosdisk" => continue,
                "linux16" => "linux",
                other => other,
            };
            assert!(
                efi.iter().any(|m| m == for_efi),
                "GRUB for UEFI lacks {for_efi}"
            );
        }
        // A new image's environment block: the same variables as the offline assembly's.
        let post_image = read(&board().join("post-image.sh"));
        let settings_of = |text: &str, prefix: &str| -> Option<String> {
            text.lines()
                .find_map(|l| l.trim().split_once(prefix))
                .map(|(_, rest)| rest.trim_end_matches([')', '"', ' ']).to_owned())
        };
        let offline_env = settings_of(&image_rs, "grubenv} set ")
            .or_else(|| settings_of(&image_rs, "grub-editenv {env} set "))
            .expect("image.rs sets grubenv with grub-editenv");
        let buildroot_env =
            settings_of(&post_image, "grubenv\" set ").expect("post-image.sh sets grubenv");
        assert_eq!(buildroot_env, offline_env);
    }

    #[test]
    fn a_folder_that_is_not_buildroot_is_refused_clearly() {
        let error = checkout(&crate::project_root()).unwrap_err().to_string();
        assert!(error.contains("is not a Buildroot checkout"), "{error}");
        let error = checkout(Path::new("/nonexistent/buildroot"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no such folder"), "{error}");
        assert!(BuildrootImage::requested(&["--buildroot".into()]).is_err());
        assert!(BuildrootImage::requested(&["--buildroot=".into()]).is_err());
        let parsed = BuildrootImage::requested(&["--buildroot=/src/br".into()]).unwrap();
        assert_eq!(parsed.unwrap().checkout, Path::new("/src/br"));
        let offline = ["--kernel".into(), "amd64".into()];
        assert!(BuildrootImage::requested(&offline).unwrap().is_none());
    }

    #[test]
    fn rust_versions_compare_by_number() {
        assert!(at_least("1.97.1", "1.95"));
        assert!(at_least("1.95.0", "1.95"));
        assert!(at_least("1.100.0", "1.95"));
        assert!(!at_least("1.93.1", "1.95"));
        assert!(!at_least("1.9", "1.95"));
        let manifest = read(&crate::project_root().join("Cargo.toml"));
        let needed = workspace_rust_version(&manifest).unwrap();
        assert!(needed.starts_with("1."), "{needed}");
        assert!(workspace_rust_version("[package]\nname = \"x\"\n").is_err());
    }

    /// The vendoring step on a small workspace: one crate of the lock file, which this test's
    /// own build has downloaded. Then a build from the vendored copy alone, as Buildroot's:
    /// offline, locked, with an empty CARGO_HOME (no registry, no index).
    #[test]
    fn vendored_crates_build_offline_with_the_written_config() {
        let lock = read(&crate::project_root().join("Cargo.lock"));
        let anyhow_entry = lock
            .split("[[package]]")
            .find(|p| p.contains("\nname = \"anyhow\"\n"))
            .expect("anyhow in Cargo.lock");
        /// The test's folder, removed however the test ends.
        struct Scratch(PathBuf);
        impl Drop for Scratch {
            fn drop(&mut self) {
                let _ = fs::remove_dir_all(&self.0);
            }
        }
        let scratch = Scratch(
            std::env::temp_dir().join(format!("postern-vendor-test-{}", std::process::id())),
        );
        let work = scratch.0.clone();
        let _ = fs::remove_dir_all(&work);
        let workspace = work.join("probe");
        fs::create_dir_all(workspace.join("src")).unwrap();
        let version = anyhow_entry
            .lines()
            .find_map(|l| l.strip_prefix("version = "))
            .unwrap()
            .trim_matches('"');
        fs::write(
            workspace.join("Cargo.toml"),
            format!(
                "[package]\nname = \"probe\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
                 [dependencies]\nanyhow = \"={version}\"\n\n[workspace]\n"
            ),
        )
        .unwrap();
        fs::write(
            workspace.join("Cargo.lock"),
            format!(
                "version = 4\n\n[[package]]{anyhow_entry}[[package]]\nname = \"probe\"\n\
                 version = \"0.1.0\"\ndependencies = [\n \"anyhow\",\n]\n"
            ),
        )
        .unwrap();
        fs::write(
            workspace.join("src/lib.rs"),
            "pub fn fails() -> anyhow::Result<()> { anyhow::bail!(\"vendored\") }\n",
        )
        .unwrap();

        let sh = Shell::new().unwrap();
        let config = vendor(&sh, &workspace, &work.join("cargo"), true).unwrap();
        assert_eq!(
            config,
            fs::canonicalize(work.join("cargo/config.toml")).unwrap()
        );
        let vendored = work.join(format!("cargo/vendor/anyhow-{version}"));
        assert!(
            vendored.join(".cargo-checksum.json").is_file(),
            "{}",
            vendored.display()
        );

        let empty_home = work.join("empty-cargo-home");
        fs::create_dir_all(&empty_home).unwrap();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let _dir = sh.push_dir(&workspace);
        let target = work.join("target");
        cmd!(
            sh,
            "{cargo} build --offline --locked --quiet --config {config}"
        )
        .env("CARGO_HOME", &empty_home)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .run()
        .expect("a build from the vendored crates alone");
        // Without the config, the same build has no crates: the config is what made it work.
        let without = cmd!(sh, "{cargo} build --offline --locked --quiet")
            .env("CARGO_HOME", &empty_home)
            .env("CARGO_TARGET_DIR", &target)
            .ignore_stderr()
            .run();
        assert!(
            without.is_err(),
            "the build found crates without the vendored copy"
        );
    }
}
