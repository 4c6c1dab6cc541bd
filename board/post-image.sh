#!/bin/sh
# Buildroot's post-image script (BR2_ROOTFS_POST_IMAGE_SCRIPT): from rootfs.squashfs, bzImage
# and GRUB's images in output/images, the Postern disk, images/postern.img, laid out by
# board/genimage.cfg. On the way:
#   initrd.img     the shared boot initramfs (image/initramfs/init) with the target's BusyBox
#   postern-boot/  what goes on the FAT boot partition besides the kernels: grub.cfg (from
#                  image/grub.cfg) and grubenv for GRUB's /grub, and EFI/BOOT/bootx64.efi
#   boot.img       GRUB's MBR boot code
#   data.ext4      the empty /data
set -eu
images=$1
board=$BR2_EXTERNAL_POSTERN_PATH
shared=$board/../image

fail() {
    echo "post-image.sh: $*" >&2
    exit 1
}

# The shared libraries an ELF file names (NEEDED). readelf is the build machine's binutils,
# which Buildroot requires.
needed() {
    readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'
}

# --- initrd.img -----------------------------------------------------------------------------
# image/initramfs/init, run by the target's BusyBox: its applet links and the C library it is
# linked against (Buildroot's BusyBox is a dynamic executable). This kernel has its drivers
# built in (board/linux.config), so the list of modules to load is empty.
initramfs=$BUILD_DIR/postern-initramfs
rm -rf "$initramfs"
mkdir -p "$initramfs/bin" "$initramfs/lib/modules"
for dir in dev proc sys run newroot; do
    mkdir -p "$initramfs/$dir"
done
ln -s lib "$initramfs/lib64"
cp "$TARGET_DIR/bin/busybox" "$initramfs/bin/busybox"
chmod 0755 "$initramfs/bin/busybox"
for dir in bin sbin usr/bin usr/sbin; do
    for link in "$TARGET_DIR/$dir"/*; do
        [ -L "$link" ] || continue
        case $(readlink "$link") in
        *busybox)
            mkdir -p "$initramfs/$dir"
            ln -sf /bin/busybox "$initramfs/$dir/${link##*/}"
            ;;
        esac
    done
done
# -L: the links lead to /bin/busybox of the initramfs, not of this machine.
[ -L "$initramfs/bin/sh" ] || fail "BusyBox in $TARGET_DIR has no sh applet"

# The loader, where BusyBox names it (/lib64 leads to /lib, as in Buildroot's root), unless
# BusyBox is static (BR2_STATIC_LIBS).
interpreter=$(readelf -l "$TARGET_DIR/bin/busybox" |
    sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p')
if [ -n "$interpreter" ]; then
    cp -L "$TARGET_DIR$interpreter" "$initramfs/lib/${interpreter##*/}"
fi
todo=$(needed "$TARGET_DIR/bin/busybox")
while [ -n "$todo" ]; do
    set -- $todo
    library=$1
    shift
    todo=$*
    [ -e "$initramfs/lib/$library" ] && continue
    found=
    for dir in lib usr/lib; do
        if [ -e "$TARGET_DIR/$dir/$library" ]; then
            found=$TARGET_DIR/$dir/$library
            break
        fi
    done
    [ -n "$found" ] || fail "BusyBox needs $library, which is not in $TARGET_DIR/lib or usr/lib"
    cp -L "$found" "$initramfs/lib/$library"
    todo="$todo $(needed "$found")"
done

cp "$shared/initramfs/init" "$initramfs/init"
chmod 0755 "$initramfs/init"
: >"$initramfs/lib/modules/load-order"
(cd "$initramfs" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) |
    gzip -9 -n >"$images/initrd.img"

# --- GRUB -----------------------------------------------------------------------------------
# GRUB for BIOS and for UEFI both read /grub/grub.cfg and /grub/grubenv (grub-early.cfg), the
# offline assembly's files: image/grub.cfg as it is (it boots with linux16 and initrd16 on BIOS,
# the 16-bit protocol that is faster under QEMU's emulation, and linux and initrd on UEFI, by
# $grub_platform), and a new environment block, as `cargo xtask image` makes it.
boot=$images/postern-boot
rm -rf "$boot"
mkdir -p "$boot/EFI/BOOT"
[ -f "$shared/grub.cfg" ] || fail "no $shared/grub.cfg, the boot loader configuration both images share"
for command in "linux16 /bzImage-" "initrd16 /initrd-" "linux /bzImage-" "initrd /initrd-"; do
    grep -q "^[[:space:]]*$command" "$shared/grub.cfg" ||
        fail "$shared/grub.cfg has no '$command' line: it must boot on BIOS and on UEFI (board/README.md)"
done
cp "$shared/grub.cfg" "$boot/grub.cfg"
grub-editenv "$boot/grubenv" create
grub-editenv "$boot/grubenv" set slot=a trial= tries=0
[ -f "$images/efi-part/EFI/BOOT/bootx64.efi" ] ||
    fail "no $images/efi-part/EFI/BOOT/bootx64.efi: BR2_TARGET_GRUB2_X86_64_EFI is not set?"
cp "$images/efi-part/EFI/BOOT/bootx64.efi" "$boot/EFI/BOOT/bootx64.efi"

# boot.img is not copied to output/images by the grub2 package (only the core image,
# grub.img, is): it is taken from GRUB's i386-pc build.
boot_img=
for candidate in "$BUILD_DIR"/grub2-*/build-i386-pc/grub-core/boot.img; do
    [ -f "$candidate" ] && boot_img=$candidate
done
[ -n "$boot_img" ] || fail "no $BUILD_DIR/grub2-*/build-i386-pc/grub-core/boot.img:" \
    "BR2_TARGET_GRUB2_I386_PC is not set?"
cp "$boot_img" "$images/boot.img"
[ -f "$images/grub.img" ] || fail "no $images/grub.img, GRUB's core image for BIOS"

# --- /data and the disk ---------------------------------------------------------------------
rm -f "$images/data.ext4"
mkfs.ext4 -q -F -L postern-data -E root_owner=0:0 "$images/data.ext4" 256M

# genimage copies its root path: give it an empty one, the filesystems are made already.
genimage_tmp=$BUILD_DIR/genimage.tmp
genimage_root=$BUILD_DIR/genimage.root
rm -rf "$genimage_tmp" "$genimage_root"
mkdir -p "$genimage_root"
genimage \
    --rootpath "$genimage_root" \
    --tmppath "$genimage_tmp" \
    --inputpath "$images" \
    --outputpath "$images" \
    --config "$board/genimage.cfg"
echo "post-image.sh: $images/postern.img"
