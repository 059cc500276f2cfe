#!/bin/sh
# lvslab's guest /init (PID 1 of the VM tier's guest). There is no udev and no systemd: mount the
# kernel's file systems, load the modules the lab needs, run the scenario, print its exit status
# on the serial console and power off. The host reads that console.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The console is a serial line read by a program: no colours.
export HOME=/root LANG=C.UTF-8 TERM=dumb NO_COLOR=1 LVSLAB_VM=1

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
# The unified cgroup hierarchy: systemd-nspawn (the systemd lab nodes) needs one.
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# Kernel messages would cut through the scenario's lines on the console: keep only emergencies.
dmesg -n 1
hostname lvslab-vm

# Order matters without udev: virtio_pci before any virtio device driver; crc32c_generic before
# ip_vs (libcrc32c's soft dependency, "unknown symbol in module" otherwise).
for module in virtio_pci virtio_net crc32c_generic ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sh \
    ip_vs_dh veth bridge overlay sch_ingress cls_bpf macvlan; do
    modprobe "$module" || echo "LVSLAB-VM-WARN modprobe $module failed"
done
# ipvsadm refuses DR real servers ("address not unicast") while no interface is up.
ip link set lo up

echo "LVSLAB-VM-READY $(uname -r) uptime $(cut -d' ' -f1 /proc/uptime)s"
cd /root || cd /
scenario=/lvslab-vm/scenario
if [ "$(head -c 2 "$scenario")" = '#!' ]; then
    "$scenario" </dev/null
else
    sh "$scenario" </dev/null
fi
status=$?
echo "LVSLAB-VM-EXIT $status uptime $(cut -d' ' -f1 /proc/uptime)s"
sync
# No systemd, so no poweroff(8). If sysrq failed, PID 1 exiting panics the kernel, and with
# panic=-1 and qemu's -no-reboot that ends the VM as well.
echo o >/proc/sysrq-trigger
sleep 10
exit "$status"
