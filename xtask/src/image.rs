//! `cargo xtask image`: the appliance disk, assembled offline from Debian's packages and our
//! release binary, without mounts, loop devices or a network beyond apt's mirror (and none once
//! `target/image/cache` holds the packages).
//!
//! Steps, each in `target/image/`:
//! 1. `postern`, built for x86_64-unknown-linux-gnu with `+crt-static`: a static-pie binary, as
//!    the image has no C library. (musl needs the musl Rust target, and AWS-LC's libssl is C++,
//!    for which Debian has no musl compiler; the gnu build is 6% larger and needs neither.)
//! 2. `cache/`: Debian's kernel (`linux-image-FLAVOUR`, see [`Flavour`]), the versioned
//!    package it depends on, `busybox-static`, `dropbear-bin` with the shared libraries it
//!    needs ([`SSH_PACKAGES`]), `ca-certificates` (the CA bundle), and GRUB for BIOS and UEFI (`grub-pc-bin`,
//!    `grub-efi-amd64-bin`), by `apt-get download`; kept until deleted, so later builds are
//!    offline and the kernel stays the one recorded in `manifest.txt`.
//! 3. `initrd.img`: BusyBox, `image/initramfs/init`, and the kernel modules of the virtio disk
//!    and network, ext4 and squashfs with what they depend on (`modules.dep`), unless the
//!    kernel has them built in.
//! 4. `rootfs.squashfs`: BusyBox and its applets, `postern`, dropbear (the SSH server) with the
//!    C libraries it is linked against, the CA bundle, `image/rootfs-overlay/`.
//! 5. The boot loader: for BIOS, GRUB's `boot.img` (the MBR's code) and a `core.img` made by
//!    `grub-mkimage` with the modules `image/grub.cfg` needs, which genimage writes into the gap
//!    between the MBR and the boot partition; for UEFI, `BOOTX64.EFI` (`grub-mkimage` too), which
//!    goes to `EFI/BOOT/` on the boot partition; `grub.cfg`, and `grubenv` made by
//!    `grub-editenv` (slot A, nothing to try).
//! 6. `data.ext4`: the empty `/data`; `postern.img`: genimage with `image/genimage.cfg`;
//!    `postern.qcow2`: the same disk for QEMU.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

/// The target of the image's binary; `RUSTFLAGS` adds `+crt-static` to it alone (not to build
/// scripts and proc macros, since `--target` is given).
pub(crate) const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The modules the initramfs loads (with their dependencies): the virtio PCI transport, disk,
/// network and random number generator; ext4 for /data (and the crc32c it asks for by a soft
/// dependency, which BusyBox does not follow); squashfs for the root; `qemu_fw_cfg`, through
/// which a VM's host can provision the first admin password (`opt/postern/admin-password`,
/// image/README.md); vfat with the code page and character set it asks for by default, for the
/// booted system to record its slot in GRUB's environment on the boot partition (`boot-slot`).
/// Modules stay loaded after the switch to the root, which has none of its own.
const MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "virtio_rng",
    "crc32c_generic",
    "ext4",
    "squashfs",
    "qemu_fw_cfg",
    "vfat",
    "nls_cp437",
    "nls_ascii",
];

/// The GRUB modules built into `core.img`: the BIOS disk and MBR partitions, the FAT boot
/// partition, the scripting `image/grub.cfg` uses (`normal`, `test`, `echo`, `loadenv` for
/// `grubenv`, `sleep`, `reboot`), the serial console, and `linux16`, which boots the kernel as
/// syslinux did (GRUB's 32-bit `linux` made the kernel start 8-10 s later under TCG). All of them
/// are in `core.img`, so the boot partition needs no `i386-pc/` folder of modules.
const GRUB_MODULES: &[&str] = &[
    "biosdisk",
    "part_msdos",
    "fat",
    "normal",
    "test",
    "echo",
    "loadenv",
    "sleep",
    "reboot",
    "serial",
    "terminal",
    "linux16",
];

/// Where `core.img` finds `grub.cfg` and `grubenv`: `/grub` on the first partition of the disk
/// it was loaded from (GRUB fills in the BIOS drive), whatever the disk's number.
const GRUB_PREFIX: &str = "(,msdos1)/grub";

/// The GRUB modules built into `BOOTX64.EFI`: as [`GRUB_MODULES`] without the BIOS disk and
/// serial driver (the firmware's console reaches the serial port), with `linux` (the EFI boot
/// protocol) and `efi_gop`, which hands the firmware's framebuffer to the kernel.
const GRUB_EFI_MODULES: &[&str] = &[
    "part_msdos",
    "fat",
    "normal",
    "test",
    "echo",
    "loadenv",
    "sleep",
    "reboot",
    "terminal",
    "linux",
    "efi_gop",
];

/// Where `BOOTX64.EFI` finds `grub.cfg` and `grubenv`: `/grub` on the partition the firmware
/// loaded it from.
const GRUB_EFI_PREFIX: &str = "/grub";

/// The parts of the kernel package that are extracted: the kernel, depmod's inputs, and the
/// module folders [`MODULES`] come from.
const KERNEL_PARTS: &[&str] = &[
    "./boot/vmlinuz-*",
    "./boot/config-*",
    "./lib/modules/*/modules.order",
    "./lib/modules/*/modules.builtin*",
    "./lib/modules/*/kernel/drivers/virtio/*",
    "./lib/modules/*/kernel/drivers/block/virtio_blk.ko*",
    "./lib/modules/*/kernel/drivers/net/virtio_net.ko*",
    "./lib/modules/*/kernel/drivers/net/net_failover.ko*",
    "./lib/modules/*/kernel/net/core/failover.ko*",
    "./lib/modules/*/kernel/drivers/char/hw_random/*",
    "./lib/modules/*/kernel/drivers/firmware/qemu_fw_cfg.ko*",
    "./lib/modules/*/kernel/crypto/*",
    "./lib/modules/*/kernel/lib/*",
    "./lib/modules/*/kernel/fs/*",
];

/// The SSH server and what it is linked against: Debian's dropbear is a dynamic executable (there
/// is no static build), so the image carries glibc's loader and the libraries its `NEEDED`
/// entries name, found in these packages ([`Dropbear::install`] fails on one it cannot find).
const SSH_PACKAGES: &[&str] = &[
    "dropbear-bin",
    "libc6",
    "libcrypt1",
    "libtomcrypt1",
    "libtommath1",
    "libgmp10",
    "zlib1g",
];

/// The programs of `dropbear-bin` the image runs: the server, and the key generator the first
/// boot makes the host keys with.
const SSH_PROGRAMS: &[&str] = &["usr/sbin/dropbear", "usr/bin/dropbearkey"];

/// The size of the empty data filesystem in a new image.
const DATA_SIZE: &str = "256M";

/// Which of Debian's x86_64 kernels the image boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// `linux-image-cloud-amd64`, the default: Debian's kernel for virtual machines. It has
    /// the virtio drivers and little else, and an LZ4-compressed image: under QEMU's software
    /// emulation it reaches init about 6 s sooner than `amd64`, whose XZ decompression alone
    /// takes 6.7 s there (1.4 s for this one).
    Cloud,
    /// `linux-image-amd64`: Debian's kernel for any PC. The initramfs still loads only the
    /// virtio drivers: for hardware, add its disk and network drivers to [`MODULES`].
    Generic,
}

impl Flavour {
    fn parse(name: &str) -> anyhow::Result<Self> {
        match name {
            "cloud-amd64" => Ok(Self::Cloud),
            "amd64" => Ok(Self::Generic),
            other => bail!("unknown kernel flavour '{other}'; use cloud-amd64 or amd64"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Cloud => "cloud-amd64",
            Self::Generic => "amd64",
        }
    }

    /// The flavour `manifest.txt` names; the default without one.
    fn of_last_build() -> Self {
        fs::read_to_string(dir().join("manifest.txt"))
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("kernel flavour "))
                    .and_then(|name| Self::parse(name.trim()).ok())
            })
            .unwrap_or(Self::Cloud)
    }

    /// The metapackage that depends on the current kernel of this flavour.
    fn metapackage(self) -> &'static str {
        match self {
            Self::Cloud => "linux-image-cloud-amd64",
            Self::Generic => "linux-image-amd64",
        }
    }
}

/// `cargo xtask image [--kernel cloud-amd64|amd64]`: build the disk and print what it is made
/// of and how big it is.
#[derive(Debug)]
pub(crate) struct Image {
    pub(crate) args: Vec<String>,
}

impl Image {
    pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
        if let Some(buildroot) = crate::buildroot::BuildrootImage::requested(&self.args)? {
            return buildroot.run(sh);
        }
        let flavour = match self.args.as_slice() {
            [] => Flavour::Cloud,
            [option, name] if option == "--kernel" => Flavour::parse(name)?,
            [one] if one.starts_with("--kernel=") => Flavour::parse(&one["--kernel=".len()..])?,
            _ => bail!("usage: cargo xtask image [--kernel cloud-amd64|amd64]"),
        };
        let started = Instant::now();
        let built = build(sh, flavour)?;
        let compressed = compress(sh, &built.raw)?;
        println!("{}", built.report);
        println!(
            "  {:<28}{:>10}   (xz -T2 -6; target <= 40 MB)",
            "postern.img.xz",
            mb(size(&compressed)?)
        );
        println!(
            "\nxtask: image built in {:.0} s: {}",
            started.elapsed().as_secs_f64(),
            built.raw.display()
        );
        Ok(())
    }
}

/// What [`build`] made.
#[derive(Debug)]
pub(crate) struct Built {
    /// `postern.img`: the raw disk, to `dd` onto a disk.
    pub(crate) raw: PathBuf,
    /// `postern.qcow2`: the same disk for QEMU.
    pub(crate) qcow2: PathBuf,
    /// The sizes table and the step times, for printing.
    pub(crate) report: String,
}

/// `target/image`: everything the image build makes, its cache, and the serial logs of QEMU.
pub(crate) fn dir() -> PathBuf {
    crate::target_dir().join("image")
}

/// Builds the release binary, then assembles the image again when the binary, `image/` or the
/// cached packages are newer than it. The disk's `/data` starts empty again after that.
pub(crate) fn build_if_stale(sh: &Shell) -> anyhow::Result<Built> {
    ensure_packages(sh)?;
    let binary = build_postern(sh)?;
    let out = dir();
    let (raw, qcow2) = (out.join("postern.img"), out.join("postern.qcow2"));
    let built_at = newest(&qcow2).ok().filter(|_| raw.exists());
    let inputs = [
        newest(&binary)?,
        newest(&crate::project_root().join("image"))?,
        newest(&out.join("cache")).unwrap_or(SystemTime::UNIX_EPOCH),
    ];
    match built_at {
        Some(at) if inputs.iter().all(|i| *i <= at) => Ok(Built {
            raw,
            qcow2,
            report: String::new(),
        }),
        Some(_) => {
            eprintln!(
                "xtask: the image is older than its inputs; building it again (/data starts empty)"
            );
            assemble(sh, &binary, Flavour::of_last_build())
        }
        None => assemble(sh, &binary, Flavour::of_last_build()),
    }
}

/// Builds the release binary and assembles the image.
pub(crate) fn build(sh: &Shell, flavour: Flavour) -> anyhow::Result<Built> {
    ensure_packages(sh)?;
    let binary = build_postern(sh)?;
    assemble(sh, &binary, flavour)
}

fn ensure_packages(sh: &Shell) -> anyhow::Result<()> {
    crate::deps::ensure(sh, crate::deps::BUILD_PACKAGES)?;
    crate::deps::ensure(sh, crate::deps::IMAGE_PACKAGES)?;
    // qemu-img, for the qcow2.
    crate::deps::ensure_qemu(sh)
}

/// `cargo build --release --locked` of `postern` as a static executable; its path.
fn build_postern(sh: &Shell) -> anyhow::Result<PathBuf> {
    let started = Instant::now();
    cmd!(
        sh,
        "cargo build --release --locked --package postern --target {TARGET}"
    )
    .env("RUSTFLAGS", "-C target-feature=+crt-static")
    .run()
    .context("building postern")?;
    let binary = crate::target_dir().join(TARGET).join("release/postern");
    let elf = fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
    if !is_static(&elf)? {
        bail!(
            "{} asks for a dynamic loader; the image has no C library",
            binary.display()
        );
    }
    eprintln!(
        "xtask: postern ({}) in {:.0} s",
        mb(elf.len() as u64),
        started.elapsed().as_secs_f64()
    );
    Ok(binary)
}

fn assemble(sh: &Shell, binary: &Path, flavour: Flavour) -> anyhow::Result<Built> {
    let started = Instant::now();
    let out = dir();
    let cache = out.join("cache");
    fs::create_dir_all(&cache)?;
    let kernel = Kernel::fetch(sh, &cache, flavour)?;
    let busybox = Busybox::fetch(sh, &cache)?;
    let dropbear = Dropbear::fetch(sh, &cache)?;
    let ca = CaBundle::fetch(sh, &cache)?;
    let grub = Grub::fetch(sh, &cache)?;
    let fetched = started.elapsed();

    let inputs = out.join("inputs");
    let staging = out.join("staging");
    for d in [&inputs, &staging] {
        let _ = fs::remove_dir_all(d);
        fs::create_dir_all(d)?;
    }
    let source = crate::project_root().join("image");
    let version = cmd!(sh, "{binary} --version").read()?;
    let version = version
        .split_whitespace()
        .nth(1)
        .context("postern --version printed no version")?
        .to_owned();

    sh.copy_file(kernel.vmlinuz(), inputs.join("bzImage"))?;
    initramfs(sh, &kernel, &busybox, &source, &staging, &inputs)?;
    let system = System {
        binary,
        version: &version,
        busybox: &busybox,
        dropbear: &dropbear,
        ca: &ca,
    };
    rootfs(sh, &system, &source, &staging, &inputs)?;
    let data = inputs.join("data.ext4");
    cmd!(
        sh,
        "mkfs.ext4 -q -F -L postern-data -E root_owner=0:0 {data} {DATA_SIZE}"
    )
    .run()?;
    let config = source.join("genimage.cfg");
    grub.boot_files(sh, &source, &inputs, &fs::read_to_string(&config)?)?;

    let (genimage_out, tmp, root) = (
        staging.join("genimage"),
        staging.join("genimage-tmp"),
        staging.join("genimage-root"),
    );
    fs::create_dir_all(&root)?;
    cmd!(
        sh,
        "genimage --loglevel 0 --config {config} --inputpath {inputs} --outputpath {genimage_out} --tmppath {tmp} --rootpath {root}"
    )
    .run()
    .context("genimage")?;
    let raw = out.join("postern.img");
    fs::rename(genimage_out.join("postern.img"), &raw)?;
    let qcow2 = out.join("postern.qcow2");
    cmd!(sh, "qemu-img convert -O qcow2 {raw} {qcow2}").run()?;

    let manifest = format!(
        "postern {version} ({TARGET}, static)\n\
         kernel flavour {}\nkernel {} from {}\nbusybox from {}\n\
         {} CA certificates from {}\n{}{}",
        flavour.name(),
        kernel.release,
        kernel.deb.display(),
        busybox.deb.display(),
        ca.count,
        ca.deb.display(),
        grub.debs
            .iter()
            .map(|d| format!("boot loader from {}\n", d.display()))
            .collect::<String>(),
        dropbear
            .debs
            .iter()
            .map(|d| format!("ssh from {}\n", d.display()))
            .collect::<String>()
    );
    fs::write(out.join("manifest.txt"), &manifest)?;

    let mut report = String::from("\nimage (target/image/):\n");
    let rows = [
        ("postern (static)", binary.to_owned()),
        ("bzImage (Debian kernel)", inputs.join("bzImage")),
        ("initrd.img", inputs.join("initrd.img")),
        ("rootfs.squashfs", inputs.join("rootfs.squashfs")),
        ("postern.img (raw)", raw.clone()),
        ("postern.qcow2", qcow2.clone()),
    ];
    for (name, path) in rows {
        writeln!(report, "  {name:<28}{:>10}", mb(size(&path)?))?;
    }
    writeln!(
        report,
        "  {:<28}{:>10}",
        "postern.img (allocated)",
        mb(allocated(&raw)?)
    )?;
    write!(
        report,
        "  kernel {}; packages fetched in {:.1} s, assembled in {:.1} s",
        kernel.release,
        fetched.as_secs_f64(),
        (started.elapsed() - fetched).as_secs_f64()
    )?;
    Ok(Built { raw, qcow2, report })
}

/// The Debian kernel: its package in the cache, and the parts of it the image uses, extracted
/// once into `cache/kernel-RELEASE/` with `modules.dep` made by `depmod -b`.
#[derive(Debug)]
struct Kernel {
    /// e.g. `6.1.0-56-amd64`.
    release: String,
    deb: PathBuf,
    root: PathBuf,
}

impl Kernel {
    fn fetch(sh: &Shell, cache: &Path, flavour: Flavour) -> anyhow::Result<Self> {
        let meta = download(sh, cache, flavour.metapackage())?;
        let depends = cmd!(sh, "dpkg-deb -f {meta} Depends").read()?;
        let package = depends
            .split([',', ' '])
            .find(|w| w.starts_with("linux-image-"))
            .with_context(|| format!("{} depends on no kernel: {depends}", meta.display()))?
            .to_owned();
        let release = package
            .strip_prefix("linux-image-")
            .unwrap_or(&package)
            .to_owned();
        let deb = download(sh, cache, &package)?;
        let root = cache.join(format!("kernel-{release}"));
        // The marker holds the parts extracted: a build that needs other parts extracts again.
        let done = root.join(".extracted");
        let parts = KERNEL_PARTS.join("\n");
        if fs::read_to_string(&done).ok().as_deref() != Some(parts.as_str()) {
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(&root)?;
            extract_parts(&deb, &root, KERNEL_PARTS)?;
            cmd!(sh, "depmod -b {root} {release}")
                .run()
                .context("depmod")?;
            fs::write(&done, parts)?;
        }
        Ok(Self { release, deb, root })
    }

    fn vmlinuz(&self) -> PathBuf {
        self.root.join(format!("boot/vmlinuz-{}", self.release))
    }

    fn modules(&self) -> PathBuf {
        self.root.join(format!("lib/modules/{}", self.release))
    }
}

/// BusyBox from `busybox-static`, extracted once into the cache.
#[derive(Debug)]
struct Busybox {
    deb: PathBuf,
    binary: PathBuf,
}

impl Busybox {
    fn fetch(sh: &Shell, cache: &Path) -> anyhow::Result<Self> {
        let deb = download(sh, cache, "busybox-static")?;
        let root = cache.join("busybox");
        let binary = root.join("bin/busybox");
        if !binary.exists() {
            let _ = fs::remove_dir_all(&root);
            cmd!(sh, "dpkg-deb -x {deb} {root}").run()?;
        }
        Ok(Self { deb, binary })
    }

    /// Installs BusyBox as `bin/busybox` under `root` with a symbolic link for each applet.
    fn install(&self, sh: &Shell, root: &Path) -> anyhow::Result<()> {
        let bin = root.join("bin");
        fs::create_dir_all(&bin)?;
        sh.copy_file(&self.binary, bin.join("busybox"))?;
        let busybox = &self.binary;
        let applets = cmd!(sh, "{busybox} --list-full").quiet().read()?;
        for applet in applets.lines() {
            let path = root.join(applet);
            // The list names `busybox` itself: a link there would replace the binary with a
            // link to itself, and the kernel would find no init.
            if path == bin.join("busybox") || path.exists() {
                continue;
            }
            fs::create_dir_all(path.parent().context("an applet at the root")?)?;
            std::os::unix::fs::symlink("/bin/busybox", &path)?;
        }
        Ok(())
    }
}

/// Dropbear from `dropbear-bin` and the libraries of [`SSH_PACKAGES`], extracted once into
/// `cache/ssh/`.
#[derive(Debug)]
struct Dropbear {
    debs: Vec<PathBuf>,
    root: PathBuf,
}

impl Dropbear {
    fn fetch(sh: &Shell, cache: &Path) -> anyhow::Result<Self> {
        let debs = SSH_PACKAGES
            .iter()
            .map(|p| download(sh, cache, p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let root = cache.join("ssh");
        let done = root.join(".extracted");
        let names: String = debs.iter().map(|d| format!("{}\n", d.display())).collect();
        if fs::read_to_string(&done).ok().as_deref() != Some(names.as_str()) {
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(&root)?;
            for deb in &debs {
                cmd!(sh, "dpkg-deb -x {deb} {root}").run()?;
            }
            fs::write(&done, names)?;
        }
        Ok(Self { debs, root })
    }

    /// Installs [`SSH_PROGRAMS`] under `to`, with glibc's loader and every shared library they
    /// need (their `NEEDED` entries, and those of the libraries, followed to the end).
    fn install(&self, sh: &Shell, to: &Path) -> anyhow::Result<()> {
        const LIBS: &[&str] = &["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"];
        let mut todo: Vec<PathBuf> = SSH_PROGRAMS.iter().map(|p| self.root.join(p)).collect();
        let mut libraries = HashSet::new();
        for program in SSH_PROGRAMS {
            let at = to.join(program);
            fs::create_dir_all(at.parent().context("a program at the root")?)?;
            fs::copy(self.root.join(program), &at)?;
        }
        while let Some(elf) = todo.pop() {
            let dynamic = cmd!(sh, "readelf -d {elf}").quiet().read()?;
            for line in dynamic.lines().filter(|l| l.contains("(NEEDED)")) {
                let name = line
                    .split('[')
                    .nth(1)
                    .and_then(|rest| rest.split(']').next())
                    .with_context(|| format!("readelf's NEEDED line: {line}"))?
                    .to_owned();
                if !libraries.insert(name.clone()) {
                    continue;
                }
                let dir = LIBS
                    .iter()
                    .find(|d| self.root.join(d).join(&name).exists())
                    .with_context(|| {
                        format!(
                            "{} needs {name}, which no package of SSH_PACKAGES has",
                            elf.display()
                        )
                    })?;
                // Copied as the file the name leads to (libz.so.1 -> libz.so.1.2.13).
                let from = fs::canonicalize(self.root.join(dir).join(&name))?;
                let lib = to.join("lib/x86_64-linux-gnu").join(&name);
                fs::create_dir_all(lib.parent().context("a library folder")?)?;
                fs::copy(&from, &lib)?;
                todo.push(from);
            }
        }
        // The program interpreter every x86_64 glibc executable names.
        let loader = "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
        fs::copy(self.root.join(loader), to.join(loader))?;
        fs::create_dir_all(to.join("lib64"))?;
        std::os::unix::fs::symlink(format!("/{loader}"), to.join("lib64/ld-linux-x86-64.so.2"))?;
        Ok(())
    }
}

/// The CA certificates `-Verify` deliveries and `tlsverify` check against: Mozilla's set from
/// Debian's `ca-certificates`, joined into one bundle as `update-ca-certificates` would make
/// `/etc/ssl/certs/ca-certificates.crt`, where Postern reads it.
#[derive(Debug)]
struct CaBundle {
    deb: PathBuf,
    pem: Vec<u8>,
    count: usize,
}

impl CaBundle {
    fn fetch(sh: &Shell, cache: &Path) -> anyhow::Result<Self> {
        let deb = download(sh, cache, "ca-certificates")?;
        let root = cache.join("ca");
        let done = root.join(".extracted");
        let name = deb.display().to_string();
        if fs::read_to_string(&done).ok().as_deref() != Some(name.as_str()) {
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(&root)?;
            extract_parts(&deb, &root, &["./usr/share/ca-certificates/mozilla/*"])?;
            fs::write(&done, &name)?;
        }
        let dir = root.join("usr/share/ca-certificates/mozilla");
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "crt"))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!(
                "{} has no CA certificates in {}",
                deb.display(),
                dir.display()
            );
        }
        let mut pem = Vec::new();
        for file in &files {
            let mut text = fs::read(file)?;
            if !text.ends_with(b"\n") {
                text.push(b'\n');
            }
            pem.extend(text);
        }
        Ok(Self {
            deb,
            pem,
            count: files.len(),
        })
    }
}

/// GRUB for BIOS PCs from `grub-pc-bin` and for UEFI from `grub-efi-amd64-bin`: their images
/// and modules (`usr/lib/grub/i386-pc`, `usr/lib/grub/x86_64-efi`), extracted once into
/// `cache/grub/`. The build host's `grub-mkimage` and `grub-editenv` (`grub-common`) put them
/// together.
#[derive(Debug)]
struct Grub {
    debs: Vec<PathBuf>,
    /// `.../usr/lib/grub/i386-pc`.
    modules: PathBuf,
    /// `.../usr/lib/grub/x86_64-efi`.
    efi_modules: PathBuf,
}

impl Grub {
    fn fetch(sh: &Shell, cache: &Path) -> anyhow::Result<Self> {
        let debs = ["grub-pc-bin", "grub-efi-amd64-bin"]
            .iter()
            .map(|p| download(sh, cache, p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let root = cache.join("grub");
        let done = root.join(".extracted");
        let names: String = debs.iter().map(|d| format!("{}\n", d.display())).collect();
        if fs::read_to_string(&done).ok().as_deref() != Some(names.as_str()) {
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(&root)?;
            for deb in &debs {
                extract_parts(deb, &root, &["./usr/lib/grub/*"])?;
            }
            fs::write(&done, names)?;
        }
        Ok(Self {
            debs,
            modules: root.join("usr/lib/grub/i386-pc"),
            efi_modules: root.join("usr/lib/grub/x86_64-efi"),
        })
    }

    /// Puts into `inputs` what genimage.cfg (`config`) asks for of the boot loader: `boot.img`,
    /// `core.img` (checked to fit before the boot partition), `BOOTX64.EFI`, `grub.cfg` and a
    /// new `grubenv`.
    fn boot_files(
        &self,
        sh: &Shell,
        source: &Path,
        inputs: &Path,
        config: &str,
    ) -> anyhow::Result<()> {
        let modules = &self.modules;
        sh.copy_file(modules.join("boot.img"), inputs.join("boot.img"))?;
        let core = inputs.join("core.img");
        cmd!(
            sh,
            "grub-mkimage -O i386-pc -d {modules} -o {core} -p {GRUB_PREFIX} {GRUB_MODULES...}"
        )
        .run()
        .context("grub-mkimage")?;
        // boot.img loads core.img from sector 1 (its default), up to the boot partition.
        let room = boot_partition_offset(config)?.saturating_sub(512);
        if size(&core)? > room {
            bail!(
                "GRUB's core.img ({}) does not fit between the MBR and the boot partition ({room} bytes)",
                mb(size(&core)?)
            );
        }
        let (efi_modules, efi) = (&self.efi_modules, inputs.join("BOOTX64.EFI"));
        cmd!(
            sh,
            "grub-mkimage -O x86_64-efi -d {efi_modules} -o {efi} -p {GRUB_EFI_PREFIX} {GRUB_EFI_MODULES...}"
        )
        .run()
        .context("grub-mkimage for UEFI")?;
        sh.copy_file(source.join("grub.cfg"), inputs.join("grub.cfg"))?;
        let env = inputs.join("grubenv");
        cmd!(sh, "grub-editenv {env} create")
            .run()
            .context("grub-editenv")?;
        cmd!(sh, "grub-editenv {env} set slot=a trial= tries=0")
            .run()
            .context("grub-editenv")?;
        Ok(())
    }
}

/// The package's `.deb` in `cache`, downloaded when there is none. A fresh machine's apt lists
/// may be empty: one `apt-get update` is tried then.
fn download(sh: &Shell, cache: &Path, package: &str) -> anyhow::Result<PathBuf> {
    let find = || -> anyhow::Result<Option<PathBuf>> {
        let prefix = format!("{package}_");
        Ok(fs::read_dir(cache)?.flatten().map(|e| e.path()).find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        }))
    };
    if let Some(deb) = find()? {
        return Ok(deb);
    }
    eprintln!("xtask: downloading {package} into {}", cache.display());
    let _dir = sh.push_dir(cache);
    // As root, apt's download sandbox user cannot write to the cache; it would only warn.
    let fetch = || {
        cmd!(
            sh,
            "apt-get -o APT::Sandbox::User=root download -q {package}"
        )
        .quiet()
        .run()
    };
    if fetch().is_err() {
        cmd!(sh, "apt-get -o DPkg::Lock::Timeout=300 update -qq").run()?;
        fetch().with_context(|| format!("apt-get download {package}"))?;
    }
    find()?.with_context(|| format!("apt-get download {package} left no .deb"))
}

/// Extracts the members of a `.deb` matching `patterns` (tar wildcards) into `root`:
/// `dpkg-deb --fsys-tarfile | tar -x`, which is a third of the time and space of all of it.
fn extract_parts(deb: &Path, root: &Path, patterns: &[&str]) -> anyhow::Result<()> {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting dpkg-deb")?;
    let tarfile = dpkg.stdout.take().context("dpkg-deb's output")?;
    let tar = Command::new("tar")
        .args(["-x", "-C"])
        .arg(root)
        .arg("--wildcards")
        .args(patterns)
        .stdin(tarfile)
        .status()
        .context("starting tar")?;
    let dpkg = dpkg.wait()?;
    if !tar.success() || !dpkg.success() {
        bail!("extracting {} failed ({dpkg}, tar {tar})", deb.display());
    }
    Ok(())
}

/// `initrd.img`: BusyBox, `/init`, and the modules of [`MODULES`] with `lib/modules/load-order`,
/// their paths in the order to load them; packed with cpio and LZ4 (the kernel's legacy LZ4
/// format): under QEMU's emulation the kernel unpacks it about 0.25 s sooner than the same
/// archive with zstd -19, for 0.35 MB more for the boot loader to read.
fn initramfs(
    sh: &Shell,
    kernel: &Kernel,
    busybox: &Busybox,
    source: &Path,
    staging: &Path,
    inputs: &Path,
) -> anyhow::Result<()> {
    let root = staging.join("initramfs");
    busybox.install(sh, &root)?;
    for d in ["dev", "proc", "sys", "run", "newroot"] {
        fs::create_dir_all(root.join(d))?;
    }
    let init = root.join("init");
    sh.copy_file(source.join("initramfs/init"), &init)?;
    fs::set_permissions(&init, fs::Permissions::from_mode(0o755))?;

    let modules = kernel.modules();
    let dep = fs::read_to_string(modules.join("modules.dep")).context("reading modules.dep")?;
    let builtin =
        fs::read_to_string(modules.join("modules.builtin")).context("reading modules.builtin")?;
    let builtin: HashSet<String> = builtin.lines().map(module_name).collect();
    let wanted: Vec<&str> = MODULES
        .iter()
        .copied()
        .filter(|m| !builtin.contains(*m))
        .collect();
    let order = load_order(&parse_modules_dep(&dep), &wanted)?;
    let mut list = String::new();
    for module in &order {
        let to = root.join(format!("lib/modules/{}/{module}", kernel.release));
        fs::create_dir_all(to.parent().context("a module path")?)?;
        fs::copy(modules.join(module), &to)?;
        writeln!(list, "/lib/modules/{}/{module}", kernel.release)?;
    }
    fs::write(root.join("lib/modules/load-order"), list)?;

    let cpio = cpio_archive(sh, &root)?;
    let out = inputs.join("initrd.img");
    cmd!(sh, "lz4 -l -9 -q -f - {out}").stdin(cpio).run()?;
    Ok(())
}

/// The files under `root` as a newc cpio archive owned by root, in a stable order.
fn cpio_archive(sh: &Shell, root: &Path) -> anyhow::Result<Vec<u8>> {
    let mut paths = Vec::new();
    walk(root, root, &mut paths)?;
    paths.sort();
    let list: Vec<u8> = paths
        .iter()
        .flat_map(|p| p.as_bytes().iter().copied().chain([0]))
        .collect();
    let _dir = sh.push_dir(root);
    Ok(
        cmd!(sh, "cpio --quiet --null -o -H newc --reproducible -R 0:0")
            .stdin(list)
            .output()?
            .stdout,
    )
}

/// Every path under `dir`, relative to `root`, folders before what they hold.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let relative = path
            .strip_prefix(root)?
            .to_str()
            .context("a path that is not UTF-8")?;
        out.push(relative.to_owned());
        if fs::symlink_metadata(&path)?.is_dir() {
            walk(root, &path, out)?;
        }
    }
    Ok(())
}

/// What goes into the root filesystem besides `image/rootfs-overlay`.
struct System<'a> {
    /// The static `postern`.
    binary: &'a Path,
    version: &'a str,
    busybox: &'a Busybox,
    dropbear: &'a Dropbear,
    ca: &'a CaBundle,
}

/// `rootfs.squashfs`: BusyBox, `postern`, dropbear, the overlay, the mount points,
/// `/etc/os-release`, and `/etc/shadow` as a link to the one the boot writes in `/run`.
fn rootfs(
    sh: &Shell,
    system: &System<'_>,
    source: &Path,
    staging: &Path,
    inputs: &Path,
) -> anyhow::Result<()> {
    let (binary, version) = (system.binary, system.version);
    let root = staging.join("rootfs");
    fs::create_dir_all(&root)?;
    let overlay = source.join("rootfs-overlay/.");
    cmd!(sh, "cp -a {overlay} {root}").run()?;
    system.busybox.install(sh, &root)?;
    system.dropbear.install(sh, &root)?;
    // The root is read-only and the admin's login password is set on the machine: the boot
    // writes the shadow file from /data into /run (`/usr/libexec/postern/login-password`).
    std::os::unix::fs::symlink("/run/postern/shadow", root.join("etc/shadow"))?;
    let bundle = root.join("etc/ssl/certs/ca-certificates.crt");
    fs::create_dir_all(bundle.parent().context("the CA bundle's folder")?)?;
    fs::write(&bundle, &system.ca.pem)?;
    for d in [
        "dev", "proc", "sys", "run", "tmp", "data", "root", "usr/bin",
    ] {
        fs::create_dir_all(root.join(d))?;
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::set_permissions(root.join("root"), fs::Permissions::from_mode(0o700))?;
    let postern = root.join("usr/bin/postern");
    sh.copy_file(binary, &postern)?;
    fs::set_permissions(&postern, fs::Permissions::from_mode(0o755))?;
    fs::write(
        root.join("etc/os-release"),
        format!(
            "NAME=Postern\nID=postern\nVERSION_ID={version}\nPRETTY_NAME=\"Postern {version}\"\n"
        ),
    )?;
    // Uncompressed: under QEMU's emulation every page of `postern` read at start would be
    // decompressed first (Postern was ready about 0.3 s later with zstd), and `postern.img.xz`
    // compresses the plain files better than it could the zstd blocks (35.7 against 39.1 MB).
    let out = inputs.join("rootfs.squashfs");
    cmd!(
        sh,
        "mksquashfs {root} {out} -noI -noD -noF -noX -all-root -noappend -quiet -no-progress"
    )
    .run()
    .context("mksquashfs")?;
    Ok(())
}

/// `postern.img.xz` beside the image: what a download of it weighs.
pub(crate) fn compress(sh: &Shell, raw: &Path) -> anyhow::Result<PathBuf> {
    let out = raw.with_extension("img.xz");
    let bytes = cmd!(sh, "xz -T2 -6 -c {raw}").output()?.stdout;
    fs::write(&out, bytes)?;
    Ok(out)
}

/// modules.dep as a map from a module's name (`virtio_net`; dashes read as underscores, as the
/// kernel does) to its path and the paths it depends on.
fn parse_modules_dep(text: &str) -> HashMap<String, (String, Vec<String>)> {
    text.lines()
        .filter_map(|line| {
            let (path, deps) = line.split_once(':')?;
            let deps = deps.split_whitespace().map(str::to_owned).collect();
            Some((module_name(path), (path.to_owned(), deps)))
        })
        .collect()
}

/// `kernel/drivers/net/virtio_net.ko` (or `.ko.xz`) -> `virtio_net`.
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

/// The paths of `wanted` and everything they depend on, each after its dependencies.
fn load_order(
    dep: &HashMap<String, (String, Vec<String>)>,
    wanted: &[&str],
) -> anyhow::Result<Vec<String>> {
    fn visit(
        name: &str,
        dep: &HashMap<String, (String, Vec<String>)>,
        seen: &mut HashSet<String>,
        order: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let (path, deps) = dep
            .get(name)
            .with_context(|| format!("no module {name} in modules.dep"))?;
        if !seen.insert(path.clone()) {
            return Ok(());
        }
        for d in deps {
            visit(&module_name(d), dep, seen, order)?;
        }
        order.push(path.clone());
        Ok(())
    }
    let (mut seen, mut order) = (HashSet::new(), Vec::new());
    for name in wanted {
        visit(&name.replace('-', "_"), dep, &mut seen, &mut order)?;
    }
    Ok(order)
}

/// For `qemu-test`: a qcow2 copy at `to` of the raw disk `raw` whose GRUB environment tries slot B
/// once (`slot=a trial=b tries=1`) and whose slot B root partition starts with a mebibyte of
/// zeros, so that no squashfs is found there: a new slot that cannot boot.
pub(crate) fn failing_trial_disk(sh: &Shell, raw: &Path, to: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::FileExt;
    let copy = to.with_extension("img");
    let env = to.with_extension("grubenv");
    cmd!(sh, "cp --sparse=always {raw} {copy}").run()?;
    let _ = fs::remove_file(&env);
    cmd!(sh, "grub-editenv {env} create").run()?;
    cmd!(sh, "grub-editenv {env} set slot=a trial=b tries=1").run()?;
    let config = fs::read_to_string(crate::project_root().join("image/genimage.cfg"))?;
    let fat = format!("{}@@{}", copy.display(), boot_partition_offset(&config)?);
    cmd!(sh, "mcopy -o -i {fat} {env} ::grub/grubenv")
        .run()
        .context("writing grubenv into the test disk's boot partition")?;
    let disk = fs::OpenOptions::new().read(true).write(true).open(&copy)?;
    let mut mbr = [0u8; 512];
    disk.read_exact_at(&mut mbr, 0)?;
    // Partition 3 (slot B) is the third entry of the table at byte 446; its first sector (LBA)
    // is at byte 8 of the entry.
    let entry = 446 + 2 * 16;
    let lba = u32::from_le_bytes(mbr[entry + 8..entry + 12].try_into()?);
    if lba == 0 {
        bail!("{} has no partition 3 (slot B)", copy.display());
    }
    disk.write_all_at(&vec![0u8; 1 << 20], u64::from(lba) * 512)?;
    drop(disk);
    cmd!(sh, "qemu-img convert -O qcow2 {copy} {to}").run()?;
    let _ = fs::remove_file(&copy);
    let _ = fs::remove_file(&env);
    Ok(())
}

/// The byte offset of the `boot` partition in genimage.cfg (`offset = 1M`), before which GRUB's
/// `core.img` must fit.
fn boot_partition_offset(config: &str) -> anyhow::Result<u64> {
    let section = config
        .split("partition boot {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .context("genimage.cfg has no `partition boot`")?;
    let value = section
        .lines()
        .find_map(|l| l.trim().strip_prefix("offset"))
        .and_then(|rest| rest.trim().strip_prefix('='))
        .map(str::trim)
        .context("the boot partition of genimage.cfg has no offset")?;
    let (number, unit) = match value.strip_suffix(['k', 'K', 'M', 'G']) {
        Some(n) => (n, value.chars().last().unwrap_or('B')),
        None => (value, 'B'),
    };
    let number: u64 = number
        .parse()
        .with_context(|| format!("the boot partition's offset {value}"))?;
    let scale = match unit.to_ascii_uppercase() {
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        _ => 1,
    };
    Ok(number * scale)
}

/// Whether an x86_64 ELF executable has no program interpreter (`PT_INTERP`), so it runs
/// without a dynamic loader and C library.
fn is_static(elf: &[u8]) -> anyhow::Result<bool> {
    const PT_INTERP: u32 = 3;
    let field = |at: usize, len: usize| -> anyhow::Result<u64> {
        let bytes = elf.get(at..at + len).context("a truncated ELF file")?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    };
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        bail!("not a 64-bit ELF file");
    }
    let (phoff, phentsize, phnum) = (field(0x20, 8)?, field(0x36, 2)?, field(0x38, 2)?);
    for i in 0..phnum {
        let at = usize::try_from(phoff + i * phentsize)?;
        if field(at, 4)? == u64::from(PT_INTERP) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The newest modification time of `path` or, for a folder, of anything under it.
fn newest(path: &Path) -> anyhow::Result<SystemTime> {
    let meta = fs::symlink_metadata(path).with_context(|| format!("{}", path.display()))?;
    let mut time = meta.modified()?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            time = time.max(newest(&entry?.path())?);
        }
    }
    Ok(time)
}

fn size(path: &Path) -> anyhow::Result<u64> {
    Ok(fs::metadata(path)
        .with_context(|| format!("{}", path.display()))?
        .len())
}

/// The bytes a sparse file occupies on disk.
fn allocated(path: &Path) -> anyhow::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(fs::metadata(path)?.blocks() * 512)
}

pub(crate) fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULES_DEP: &str = "\
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/fs/jbd2/jbd2.ko:
kernel/fs/mbcache.ko:
kernel/lib/crc16.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/char/hw_random/virtio-rng.ko:
";

    #[test]
    fn modules_load_after_their_dependencies_once() {
        let dep = parse_modules_dep(MODULES_DEP);
        let order = load_order(&dep, &["virtio_net", "ext4", "virtio-rng", "ext4"]).unwrap();
        assert_eq!(
            order,
            [
                "kernel/net/core/failover.ko",
                "kernel/drivers/net/net_failover.ko",
                "kernel/drivers/net/virtio_net.ko",
                "kernel/lib/crc16.ko",
                "kernel/fs/mbcache.ko",
                "kernel/fs/jbd2/jbd2.ko",
                "kernel/fs/ext4/ext4.ko",
                "kernel/drivers/char/hw_random/virtio-rng.ko",
            ]
        );
        assert!(load_order(&dep, &["overlay"]).is_err());
    }

    #[test]
    fn core_img_has_room_before_the_boot_partition() {
        let config = fs::read_to_string(crate::project_root().join("image/genimage.cfg")).unwrap();
        assert_eq!(boot_partition_offset(&config).unwrap(), 1 << 20);
        let other = "partition boot {\n\toffset = 2048k\n}\npartition x {\n\toffset = 1G\n}";
        assert_eq!(boot_partition_offset(other).unwrap(), 2 << 20);
    }

    /// Every command `image/grub.cfg` runs is in the GRUB images that run it: a missing module
    /// shows only at boot (`qemu-test` boots BIOS, nothing boots UEFI in a test).
    #[test]
    fn grub_images_hold_the_commands_of_grub_cfg() {
        // Command -> the module it needs in core.img (BIOS) and in BOOTX64.EFI (UEFI); None:
        // built into GRUB's kernel or normal mode, or not run on that platform.
        fn needs(command: &str) -> Option<(Option<&str>, Option<&str>)> {
            Some(match command {
                "set" | "boot" | "else" | "fi" => (None, None),
                "serial" => (Some("serial"), None),
                "terminal_input" | "terminal_output" => (Some("terminal"), None),
                "linux16" | "initrd16" => (Some("linux16"), None),
                "linux" | "initrd" => (None, Some("linux")),
                "load_env" | "save_env" => (Some("loadenv"), Some("loadenv")),
                "[" => (Some("test"), Some("test")),
                "echo" | "sleep" | "reboot" => (Some(command), Some(command)),
                _ => return None,
            })
        }
        let config = fs::read_to_string(crate::project_root().join("image/grub.cfg")).unwrap();
        let mut seen = HashSet::new();
        for line in config.lines().map(str::trim) {
            let mut words = line.split_whitespace();
            let command = match words.next() {
                None => continue,
                Some(w) if w.starts_with('#') => continue,
                Some("if" | "elif") => words.next().unwrap(),
                Some(w) => w,
            };
            let (bios, efi) = needs(command).unwrap_or_else(|| {
                panic!("grub.cfg runs `{command}`: say in this test which module it needs")
            });
            if let Some(module) = bios {
                assert!(GRUB_MODULES.contains(&module), "core.img lacks {module}");
            }
            if let Some(module) = efi {
                assert!(
                    GRUB_EFI_MODULES.contains(&module),
                    "BOOTX64.EFI lacks {module}"
                );
            }
            seen.insert(command);
        }
        for command in ["load_env", "save_env", "linux16", "linux", "["] {
            assert!(seen.contains(command), "grub.cfg no longer runs {command}");
        }
    }

    #[test]
    fn only_an_executable_without_interpreter_is_static() {
        // An ELF header with one program header at 64, of `kind`.
        let elf = |kind: u8| {
            let mut elf = vec![0u8; 64 + 56];
            elf[..5].copy_from_slice(b"\x7fELF\x02");
            elf[0x20] = 64;
            elf[0x36] = 56;
            elf[0x38] = 1;
            elf[64] = kind;
            elf
        };
        assert!(is_static(&elf(1)).unwrap());
        assert!(!is_static(&elf(3)).unwrap());
        // The test binary itself is linked against the host's C library.
        let me = fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(!is_static(&me).unwrap());
        assert!(is_static(b"#!/bin/sh\n").is_err());
    }
}
