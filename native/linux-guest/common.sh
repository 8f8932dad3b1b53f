# Helpers the workloads source (/lib/muxvisor/common.sh in the initramfs).
WL=${0##*/}
# This busybox sh runs its own applets before looking at PATH (its mke2fs makes ext2 only):
# e2fsprogs' programs by their full paths.
MKE2FS=/sbin/mke2fs
E2FSCK=/sbin/e2fsck

result() { echo "MUXVISOR-RESULT $WL $*"; }
info() { echo "MUXVISOR-INFO $WL $*"; }
# Seconds since boot, to two decimals.
now() { cut -d' ' -f1 /proc/uptime; }
fail() {
  dmesg | tail -n 40 | sed 's/^/  dmesg: /'
  result "fail $*"
  exit 1
}

# Sets G to the guest's name (muxvisor.guest=), checked: it goes into file names and patterns.
guest_name() {
  case $MUXVISOR_GUEST in
    *[!A-Za-z0-9_-]*|'') fail "bad guest name '$MUXVISOR_GUEST' (want [A-Za-z0-9_-], 1-16 chars)" ;;
  esac
  [ ${#MUXVISOR_GUEST} -le 16 ] || fail "guest name '$MUXVISOR_GUEST' is longer than 16 chars"
  G=$MUXVISOR_GUEST
}

# The SCSI disks as "ADDRESS NAME" lines, lowest address first (sda/sdb can swap between boots;
# the address H:C:T:L follows the controller and the drive's position).
scsi_disks() {
  for b in /sys/block/sd*; do
    [ -e "$b/device" ] || continue
    echo "$(basename "$(readlink "$b/device")") ${b##*/}"
  done | awk -F'[: ]' 'NF == 5 { printf "%06d%06d%06d%06d %s:%s:%s:%s %s\n", $1, $2, $3, $4, $1, $2, $3, $4, $5 }' |
    sort | cut -d' ' -f2-
}

# Sets DISK (sdX) and ADDR: the disk at SCSI address $MUXVISOR_DISK, or the lowest one; waits up
# to muxvisor.disk_wait=S ($MUXVISOR_DISK_WAIT) seconds of uptime (120) for libata's asynchronous probe and the SCSI
# scan. On a shared disk the probe's IDENTIFY waits while another guest's command holds the
# device (a long PIO command through the proxy takes seconds); libata then times out and retries
# it (5, 10, then 30 s: ata_eh_identify_timeouts), so the wait covers all of its tries.
find_disk() {
  until=$(awk -v t="$(now)" -v w="${MUXVISOR_DISK_WAIT:-120}" 'BEGIN { printf "%d", t + w }')
  while :; do
    line=$(scsi_disks | if [ -n "$MUXVISOR_DISK" ]; then grep "^$MUXVISOR_DISK " ; else head -n 1; fi)
    if [ -n "$line" ]; then
      ADDR=${line% *}
      DISK=${line#* }
      [ "$(cat "/sys/block/$DISK/size")" -gt 0 ] && return 0
    fi
    [ "$(now | cut -d. -f1)" -ge "$until" ] && fail "no disk${MUXVISOR_DISK:+ at SCSI address $MUXVISOR_DISK} (have: $(scsi_disks | tr '\n' ' '))"
    usleep 100000
  done
}

# The transfer mode libata configured for $DISK (PIO4, MWDMA2, UDMA5, ...): ataN in the
# device's path, the drive (master 0, slave 1) is its SCSI target.
ata_dev() {
  ata=$(readlink -f "/sys/block/$DISK/device" | sed -n 's,.*/ata\([0-9]*\)/.*,\1,p')
  [ -n "$ata" ] && echo "/sys/class/ata_device/dev$ata.$(echo "$ADDR" | cut -d: -f3)"
}
xfer_mode() {
  d=$(ata_dev)
  # sysfs says XFER_MW_DMA_2, XFER_PIO_4, XFER_UDMA_5; libata's log says MWDMA2, PIO4, UDMA5.
  if [ -n "$d" ] && [ -r "$d/xfer_mode" ]; then
    sed 's/^XFER_//; s/^MW_DMA_/MWDMA/; s/^UDMA_/UDMA/; s/^PIO_/PIO/; s/^SW_DMA_/SWDMA/' "$d/xfer_mode"
  else
    echo unknown
  fi
}
