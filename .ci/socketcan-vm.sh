#!/usr/bin/env bash
# Tests the SocketCAN backend against a real Linux CAN stack: boots Debian's stock
# kernel under QEMU (software emulation), loads can-dev, vcan, can, can-raw, creates
# vcan0 with busybox, and runs the statically linked `socketcan-selftest` on it. The
# guest reports through QEMU's isa-debug-exit device (exit code 1 = pass, 3 = fail).
#
# Needs the Debian packages qemu-system-x86, busybox-static, cpio and the kernel image
# that linux-image-amd64 points to (resolved at run time, cached in target/vm-cache).
# Where they cannot be had, it says so and exits 77 (skipped); `--require` makes that
# a failure (CI uses it).
set -euo pipefail
cd "$(dirname "$0")/.."
require=0
[ "${1:-}" = "--require" ] && require=1
skip() {
    echo "SKIPPED socketcan-vm: $*"
    if [ "$require" = 1 ]; then exit 1; fi
    exit 77
}
cache=target/vm-cache
mkdir -p "$cache"
if ! command -v qemu-system-x86_64 >/dev/null || ! command -v busybox >/dev/null || ! command -v cpio >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends qemu-system-x86 busybox-static cpio >/dev/null || skip "apt-get could not install qemu-system-x86 busybox-static cpio"
    else
        skip "qemu-system-x86_64, busybox (static) and cpio are needed"
    fi
fi
kdir=$(ls -d "$cache"/kernel/lib/modules/*/ 2>/dev/null | head -n1 || true)
if [ -z "$kdir" ]; then
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    [ -n "$pkg" ] || skip "cannot resolve the kernel package behind linux-image-amd64 (apt-get update?)"
    (cd "$cache" && rm -f linux-image-*.deb && apt-get download -qq "$pkg" 2>/dev/null) || skip "cannot download $pkg"
    rm -rf "$cache/kernel" && dpkg-deb -x "$cache"/linux-image-*.deb "$cache/kernel"
    kdir=$(ls -d "$cache"/kernel/lib/modules/*/ | head -n1)
fi
kver=$(basename "$kdir")
vmlinuz="$cache/kernel/boot/vmlinuz-$kver"

# The self-test, statically linked so the initramfs needs no libraries.
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release --locked \
    -p capsule-links --bin socketcan-selftest --target x86_64-unknown-linux-gnu --target-dir target/vm-build
bin=target/vm-build/x86_64-unknown-linux-gnu/release/socketcan-selftest

root="$cache/initramfs"
rm -rf "$root" && mkdir -p "$root"/{bin,sbin,proc,sys,dev,lib/modules}
cp "$(command -v busybox)" "$root/bin/busybox"
for m in kernel/drivers/net/can/dev/can-dev.ko kernel/drivers/net/can/vcan.ko kernel/net/can/can.ko kernel/net/can/can-raw.ko; do
    cp "$kdir/$m" "$root/lib/modules/"
done
cp "$bin" "$root/bin/socketcan-selftest"
cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in can-dev vcan can can-raw; do insmod /lib/modules/$m.ko || echo "insmod $m failed"; done
ip link add dev vcan0 type vcan && ip link set vcan0 up
if /bin/socketcan-selftest vcan0; then code='\000'; else code='\001'; fi
# isa-debug-exit at 0xf4: QEMU exits with (value << 1) | 1.
printf "$code" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$cache/initramfs.gz"

set +e
timeout 240 qemu-system-x86_64 -machine q35,accel=tcg -m 256M -smp 1 -nographic -no-reboot \
    -kernel "$vmlinuz" -initrd "$cache/initramfs.gz" \
    -append "console=ttyS0 panic=-1 quiet" \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 > "$cache/console.log" 2>&1
rc=$?
set -e
grep -E "SOCKETCAN SELFTEST|insmod|Kernel panic" "$cache/console.log" || true
if [ "$rc" = 1 ] && grep -q "SOCKETCAN SELFTEST PASS" "$cache/console.log"; then
    echo "socketcan-vm: PASS (kernel $kver)"
    exit 0
fi
echo "socketcan-vm: FAIL (qemu exit $rc); console log: $cache/console.log"
tail -n 30 "$cache/console.log"
exit 1
