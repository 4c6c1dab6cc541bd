#!/bin/sh
# Buildroot's post-build script (BR2_ROOTFS_POST_BUILD_SCRIPT): the last changes to the root
# filesystem, after image/rootfs-overlay has been copied in and before it becomes
# rootfs.squashfs. The offline assembly makes the same root (`rootfs` in xtask/src/image.rs).
set -eu
target=$1
repository=$BR2_EXTERNAL_POSTERN_PATH/..

# The root is read-only and the admin's login password is set on the machine: the boot writes
# the shadow file from /data into /run (/usr/libexec/postern/login-password).
rm -f "$target/etc/shadow"
ln -s /run/postern/shadow "$target/etc/shadow"

# The data partition's mount point (rcS mounts it).
mkdir -p "$target/data"

# The overlay's rcS starts what the appliance runs and inittab starts SSH; the S?? start
# scripts that packages install (dropbear's S50dropbear among them) would never run.
rm -f "$target"/etc/init.d/S[0-9][0-9]*

# Buildroot's example grub.cfg for BIOS: GRUB reads board/grub.cfg from the boot partition.
rm -rf "$target/boot/grub"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repository/Cargo.toml" | head -n 1)
if [ -z "$version" ]; then
    echo "post-build.sh: no version in $repository/Cargo.toml" >&2
    exit 1
fi
cat >"$target/usr/lib/os-release" <<OS_RELEASE
NAME=Postern
ID=postern
VERSION_ID=$version
PRETTY_NAME="Postern $version"
OS_RELEASE
ln -sf ../usr/lib/os-release "$target/etc/os-release"
