#!/usr/bin/env bash
# The set-up test: a new user's machine has Node, a C compiler and make, and none of the
# optional tools. A clean clone of this checkout's HEAD runs `npm ci`, `npm start` and
# `npm test` with a PATH of links to everything on this machine except nasm, QEMU, nbdkit,
# nbd-server, strace, lspci, chromium and tcpdump, and with KVM hidden from the tests
# (MUXVISOR_TEST_HIDE=kvm). All three must exit 0, npm must print no warning, and the test
# output must list each skipped test with its reason. .ci/run runs it after the suite.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/muxvisor-fresh-XXXXXX)
trap 'rm -rf "$work"' EXIT

HIDDEN='nasm qemu-system-x86_64 qemu-system-i386 qemu-img nbdkit nbd-server strace lspci chromium tcpdump'
mkdir "$work/bin"
IFS=: read -r -a dirs <<<"$PATH"
for d in "${dirs[@]}" /usr/local/bin /usr/bin /bin /usr/sbin /sbin; do
  [[ -d $d ]] || continue
  for f in "$d"/*; do
    b=${f##*/}
    [[ -x $f && ! -e $work/bin/$b ]] || continue
    [[ " $HIDDEN " == *" $b "* ]] && continue
    ln -s "$f" "$work/bin/$b"
  done
done

git clone -q "$repo" "$work/clone"
cd "$work/clone"
export PATH="$work/bin" MUXVISOR_TEST_HIDE=kvm
unset MUXVISOR_FORBID_SKIPS
for b in $HIDDEN; do
  if command -v "$b" >/dev/null; then echo "fresh-machine: $b is still on PATH" >&2; exit 1; fi
done

step() { # name, command...: run it, keep its output, fail with the tail of it
  local name=$1; shift
  echo "fresh-machine: $name"
  if ! "$@" >"$work/$name.log" 2>&1; then
    tail -40 "$work/$name.log" >&2
    echo "fresh-machine: '$*' failed (log above)" >&2
    exit 1
  fi
}
step npm-ci npm ci
if grep -iE '^npm (warn|WARN)' "$work/npm-ci.log"; then echo 'fresh-machine: npm ci printed warnings' >&2; exit 1; fi
step npm-start npm start
step npm-test npm test
log="$work/npm-test.log"
grep -q '^Skipped tests (' "$log" || { echo 'fresh-machine: the test output lists no skipped tests' >&2; exit 1; }
if grep -q 'no reason given' "$log"; then grep 'no reason given' "$log" >&2; echo 'fresh-machine: a skip without a reason' >&2; exit 1; fi
for why in 'qemu-system-x86_64 not installed' 'nbdkit not installed' 'strace not installed' 'lspci not installed' 'kvm hidden'; do
  grep -q "$why" "$log" || { echo "fresh-machine: no skip says '$why'" >&2; exit 1; }
done
grep '^skipped: [0-9]' "$log"
git status --porcelain | grep . && { echo 'fresh-machine: the steps left the clone changed' >&2; exit 1; }
echo 'fresh-machine: npm ci, npm start and npm test passed without the optional tools'
