#!/usr/bin/env bash
# Builds the Linux guest kit: a bootable kernel (bzImage) and an initramfs (busybox, the ATA/SCSI
# disk, ext4 and ne2k-pci modules, e2fsprogs' mke2fs/e2fsck, our /init and its workloads) from
# Debian's packages, without installing any of them.
#
#   bash native/linux-guest/build-kit.sh [--refresh]      (npm run guest-kit)
#
# Output in native/linux-guest/build/ (git ignores native/*/build/), or in $MUXVISOR_KIT_OUT:
#   bzImage, initramfs.cpio.gz, manifest.json (kernel version, every package's version and
#   sha256, the module load order, the outputs' sha256), debs/ (the downloaded packages).
#
# The .debs are cached in build/debs/: a rebuild uses them and needs neither apt nor the network,
# and the same .debs give byte-identical outputs (the initramfs is written by mkcpio.mjs with
# fixed owners, mtimes and inode numbers, gzip -n). --refresh drops the cache and asks apt again
# (the archive may have moved to a newer kernel). Host tools: apt-get/apt-cache (first build
# only), dpkg-deb, gzip, node, sha256sum; depmod, modinfo and the library resolution use the
# downloaded busybox and glibc, not the host's.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${MUXVISOR_KIT_OUT:-$HERE/build}
DEBS=$OUT/debs
WORK=$OUT/work

# What the guest needs, as module names (modules.dep gives their dependencies and the order).
ROOT_MODULES=(sd_mod ata_piix ext4 ne2k-pci)
# Soft dependencies a module's MODULE_SOFTDEP does not name: lib/crc64-rocksoft allocates the
# crypto algorithm "crc64-rocksoft" when it loads, but its softdep says "crc64". MODULE:ALIAS.
EXTRA_SOFTDEPS=(crc64_rocksoft:crypto-crc64-rocksoft)

die() { echo "build-kit: $*" >&2; exit 1; }
log() { echo "build-kit: $*" >&2; }

refresh=0
for a in "$@"; do
  case $a in
    --refresh) refresh=1 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) die "unknown argument $a (usage: build-kit.sh [--refresh])" ;;
  esac
done
for t in dpkg-deb gzip node sha256sum; do
  command -v "$t" >/dev/null || die "$t not found on PATH"
done

# ---- 1. the packages: from the cache, or resolved and downloaded with apt ----------------------
((refresh)) && rm -rf "$DEBS"
mkdir -p "$DEBS"

deb_of() { # the one cached .deb of package $1
  local m=("$DEBS/$1"_*.deb)
  [[ -e ${m[0]} ]] || return 1
  ((${#m[@]} == 1)) || die "several cached .debs for $1 in $DEBS (run with --refresh)"
  echo "${m[0]}"
}

cached=0
if [[ -s $DEBS/packages ]]; then
  cached=1
  while read -r p; do deb_of "$p" >/dev/null || cached=0; done <"$DEBS/packages"
fi

if ((cached)); then
  log "using the cached packages in $DEBS"
else
  command -v apt-get >/dev/null && command -v apt-cache >/dev/null || die "apt-get/apt-cache not found (a Debian host is needed for the first build)"
  kernel_pkg() { # the image package linux-image-amd64 depends on (linux-image-6.1.0-NN-amd64)
    apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { p = $2 } END { print p }'
  }
  kpkg=$(kernel_pkg)
  if [[ -z $kpkg ]]; then
    [[ $(id -u) -eq 0 ]] || die "apt-cache knows no linux-image-amd64; run 'apt-get update' as root first"
    log "apt-cache knows no linux-image-amd64: apt-get update"
    apt-get update -q >&2
    kpkg=$(kernel_pkg)
    [[ -n $kpkg ]] || die "linux-image-amd64 has no linux-image-* dependency after apt-get update"
  fi
  # mke2fs/e2fsck are dynamically linked: their libraries come from e2fsprogs' (Pre-)Depends.
  mapfile -t e2libs < <(apt-cache depends --important e2fsprogs | awk '$1 ~ /Depends:$/ && $2 ~ /^lib/ { print $2 }' | sort -u)
  ((${#e2libs[@]})) || die "apt-cache depends e2fsprogs named no libraries"
  pkgs=("$kpkg" busybox-static e2fsprogs "${e2libs[@]}")
  rm -f "$DEBS"/*.deb
  log "downloading ${pkgs[*]}"
  aptopts=()
  # As root apt drops to the _apt user, which cannot write here: download as root (no warning).
  [[ $(id -u) -eq 0 ]] && aptopts=(-o APT::Sandbox::User=root)
  (cd "$DEBS" && apt-get download -q "${aptopts[@]}" "${pkgs[@]}" >&2)
  printf '%s\n' "${pkgs[@]}" >"$DEBS/packages.tmp"
  mv "$DEBS/packages.tmp" "$DEBS/packages"
fi
mapfile -t PKGS <"$DEBS/packages"

# ---- 2. unpack everything into a scratch root (no install) -------------------------------------
rm -rf "$WORK"
mkdir -p "$WORK/root" "$WORK/initramfs"
trap 'rm -rf "$WORK"' EXIT
for p in "${PKGS[@]}"; do dpkg-deb -x "$(deb_of "$p")" "$WORK/root"; done
R=$WORK/root
BB=$R/bin/busybox
[[ -x $BB ]] || die "busybox-static has no /bin/busybox"

mapfile -t kvers < <(cd "$R" && ls -d lib/modules/*/ usr/lib/modules/*/ 2>/dev/null | xargs -rn1 basename | sort -u)
((${#kvers[@]} == 1)) || die "expected one kernel in the packages, found: ${kvers[*]:-none}"
KVER=${kvers[0]}
VMLINUZ=$R/boot/vmlinuz-$KVER
[[ -f $VMLINUZ ]] || die "no boot/vmlinuz-$KVER in ${PKGS[0]}"
MODDIR=$R/lib/modules/$KVER
[[ -d $MODDIR ]] || MODDIR=$R/usr/lib/modules/$KVER
if find "$MODDIR" -name '*.ko.*' -print -quit | grep -q .; then
  die "compressed modules (*.ko.xz/zst) in $KVER: not handled (busybox insmod loads plain .ko)"
fi

# ---- 3. modules: depmod, then the closure of the root modules in load order ---------------------
# Debian ships no modules.dep; busybox's depmod writes it (and modules.alias) from the .ko files.
# It reads BASE/lib/modules/VERSION; BASE is a link farm so usr/lib/modules works too.
mkdir -p "$WORK/modbase/lib/modules"
ln -s "$MODDIR" "$WORK/modbase/lib/modules/$KVER"
log "depmod -b ... $KVER (busybox)"
"$BB" depmod -b "$WORK/modbase" "$KVER"

declare -A DEPS PATHOF PROVIDERS
# Module names as the kernel knows them: the file's base name, "-" read as "_".
norm() { local n=${1##*/}; n=${n%.ko}; echo "${n//-/_}"; }
while read -r n p ds; do
  PATHOF[$n]=$p
  DEPS[$n]=$ds
done < <(awk -F': *' '
  function norm(s) { sub(/.*\//, "", s); sub(/\.ko$/, "", s); gsub(/-/, "_", s); return s }
  /:/ { line = norm($1) " " $1; n = split($2, d, / +/); for (i = 1; i <= n; i++) if (d[i] != "") line = line " " norm(d[i]); print line }
' "$MODDIR/modules.dep")
while read -r alias mod; do
  PROVIDERS[$alias]+="$mod "
done < <(awk '$1 == "alias" { m = $3; gsub(/-/, "_", m); print $2, m }' "$MODDIR/modules.alias")

# A softdep names a module or an alias (crypto-crc32c). Several modules may provide an alias
# (crc32c_intel, crc32c_generic): take the *_generic one, which needs no CPU feature (TCG's
# default CPU has no SSE4.2/PCLMUL).
provider() {
  local a=$1 p cands
  [[ -n ${PATHOF[$(norm "$a")]:-} ]] && { norm "$a"; return; }
  read -ra cands <<<"${PROVIDERS[$a]:-}"
  for p in "${cands[@]}"; do [[ $p == *_generic ]] && { echo "$p"; return; }; done
  ((${#cands[@]} == 1)) && { echo "${cands[0]}"; return; }
  log "warning: no single provider for softdep $a (${cands[*]:-none}); skipped"
}
softpre() { # the pre: soft dependencies of module $1, as module names
  local n=$1 f=$MODDIR/${PATHOF[$1]} s w pre=0 e
  s=$(tr '\0' '\n' <"$f" | sed -n 's/^softdep=//p')
  for e in "${EXTRA_SOFTDEPS[@]}"; do [[ ${e%%:*} == "$n" ]] && s+=" pre: ${e#*:}"; done
  for w in $s; do
    case $w in
      pre:) pre=1 ;;
      post:) pre=0 ;;
      *) ((pre)) && provider "$w" ;;
    esac
  done
  return 0
}
declare -A STATE
ORDER=()
visit() { # depth first: soft pre-dependencies, then hard ones, then the module itself
  local n=$1 d i ds
  [[ -n ${PATHOF[$n]:-} ]] || die "module $n is not in $KVER's modules.dep"
  case ${STATE[$n]:-} in
    done) return ;;
    active) die "module dependency cycle through $n" ;;
  esac
  STATE[$n]=active
  for d in $(softpre "$n"); do visit "$d"; done
  read -ra ds <<<"${DEPS[$n]}"
  for ((i = ${#ds[@]} - 1; i >= 0; i--)); do visit "${ds[i]}"; done
  STATE[$n]=done
  ORDER+=("$n")
}
for m in "${ROOT_MODULES[@]}"; do visit "$(norm "$m")"; done
log "modules (load order): ${ORDER[*]}"

# ---- 4. the initramfs tree, as a list for mkcpio.mjs ---------------------------------------------
I=$WORK/initramfs
LIST=$WORK/list
: >"$LIST"
dir() { echo "dir $1 0755" >>"$LIST"; }
file() { cp "$2" "$I/${1//\//_}"; echo "file $1 $I/${1//\//_} $3" >>"$LIST"; }
slink() { echo "slink $1 $2" >>"$LIST"; }
declare -A HAVE
for d in bin sbin usr usr/bin usr/sbin dev proc sys tmp mnt run etc lib lib64 lib/modules \
  lib/x86_64-linux-gnu workloads root; do
  dir "$d"
done
# The kernel opens /dev/console before /init runs (devtmpfs is mounted by /init).
echo "nod dev/console 0600 c 5 1" >>"$LIST"
echo "nod dev/null 0666 c 1 3" >>"$LIST"

file init "$HERE/init" 0755
for w in "$HERE"/workloads/*; do file "workloads/${w##*/}" "$w" 0755; done
dir lib/muxvisor
file lib/muxvisor/common.sh "$HERE/common.sh" 0644

# e2fsprogs: busybox's mke2fs makes ext2 only, and it has no e2fsck.
file sbin/mke2fs "$R/sbin/mke2fs" 0755
file sbin/e2fsck "$R/sbin/e2fsck" 0755
slink sbin/mkfs.ext4 mke2fs
slink sbin/fsck.ext4 e2fsck
HAVE[bin/busybox]=1 HAVE[sbin/mke2fs]=1 HAVE[sbin/e2fsck]=1 HAVE[sbin/mkfs.ext4]=1 HAVE[sbin/fsck.ext4]=1
file etc/mke2fs.conf "$R/etc/mke2fs.conf" 0644
slink etc/mtab /proc/mounts
# Their shared libraries, as the downloaded glibc's loader resolves them (what ldd does).
# (The package's lib64/ld-linux-x86-64.so.2 is an absolute link: to the host's loader, here.)
LDSO=$R/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
[[ -f $LDSO && ! -L $LDSO ]] || die "libc6 has no lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
in_root() { # follow the links of $1 inside the unpacked root, never out to the host's files
  local p=$1 t i
  for ((i = 0; i < 16; i++)); do
    [[ -L $p ]] || { echo "$p"; return; }
    t=$(readlink "$p")
    if [[ $t == /* ]]; then p=$R$t; else p=${p%/*}/$t; fi
  done
  die "$1: too many links"
}
declare -A LIBS
for b in sbin/mke2fs sbin/e2fsck; do
  while read -r soname arrow path _; do
    [[ $arrow == "=>" && $path == /* && $soname != */* ]] || continue
    [[ $path == "$R"/* ]] || die "$b needs $soname, found only outside the packages ($path)"
    LIBS[$soname]=$path
  done < <("$LDSO" --library-path "$R/lib/x86_64-linux-gnu:$R/usr/lib/x86_64-linux-gnu" --list "$R/$b")
  if "$LDSO" --library-path "$R/lib/x86_64-linux-gnu:$R/usr/lib/x86_64-linux-gnu" --list "$R/$b" | grep -q 'not found'; then
    die "$b: a library is missing from the packages"
  fi
done
for so in $(printf '%s\n' "${!LIBS[@]}" | sort); do
  file "lib/x86_64-linux-gnu/$so" "$(in_root "${LIBS[$so]}")" 0755
done
file lib64/ld-linux-x86-64.so.2 "$LDSO" 0755

# busybox and a link for each of its applets (e2fsprogs' programs win on disk, but this busybox
# sh runs its own applets before PATH: the workloads call /sbin/mke2fs and /sbin/e2fsck).
file bin/busybox "$BB" 0755
while read -r a; do
  [[ $a == */* && -z ${HAVE[$a]:-} ]] || continue
  slink "$a" /bin/busybox
done < <("$BB" --list-full | sort)

# The modules, flat, and the order /init loads them in.
for n in "${ORDER[@]}"; do file "lib/modules/$n.ko" "$MODDIR/${PATHOF[$n]}" 0644; done
printf '%s\n' "${ORDER[@]}" >"$I/load-order"
file lib/modules/load-order "$I/load-order" 0644
printf '%s\n' "$KVER" >"$I/kver"
file etc/muxvisor-kernel "$I/kver" 0644

# ---- 5. outputs, then the manifest ---------------------------------------------------------------
mkdir -p "$OUT"
SOURCE_DATE_EPOCH=0 node "$HERE/mkcpio.mjs" "$WORK/initramfs.cpio" <"$LIST"
gzip -n -9 <"$WORK/initramfs.cpio" >"$OUT/initramfs.cpio.gz.tmp"
cp "$VMLINUZ" "$OUT/bzImage.tmp"
mv "$OUT/bzImage.tmp" "$OUT/bzImage"
mv "$OUT/initramfs.cpio.gz.tmp" "$OUT/initramfs.cpio.gz"

sha() { sha256sum "$1" | cut -d' ' -f1; }
{
  echo '{'
  echo "  \"kernel\": \"$KVER\","
  echo '  "packages": ['
  for i in "${!PKGS[@]}"; do
    f=$(deb_of "${PKGS[i]}")
    sep=,; ((i == ${#PKGS[@]} - 1)) && sep=
    printf '    { "package": "%s", "version": "%s", "deb": "%s", "sha256": "%s" }%s\n' \
      "${PKGS[i]}" "$(dpkg-deb -f "$f" Version)" "${f##*/}" "$(sha "$f")" "$sep"
  done
  echo '  ],'
  printf '  "modules": [%s],\n' "$(printf '"%s", ' "${ORDER[@]}" | sed 's/, $//')"
  echo '  "outputs": {'
  echo "    \"bzImage\": { \"bytes\": $(stat -c %s "$OUT/bzImage"), \"sha256\": \"$(sha "$OUT/bzImage")\" },"
  echo "    \"initramfs.cpio.gz\": { \"bytes\": $(stat -c %s "$OUT/initramfs.cpio.gz"), \"sha256\": \"$(sha "$OUT/initramfs.cpio.gz")\" }"
  echo '  }'
  echo '}'
} >"$OUT/manifest.json.tmp"
mv "$OUT/manifest.json.tmp" "$OUT/manifest.json"
log "kernel $KVER; $OUT/bzImage, $OUT/initramfs.cpio.gz ($(stat -c %s "$OUT/initramfs.cpio.gz") bytes), $OUT/manifest.json"
