// Helpers for tests that boot real KVM guests: the skip reason (printed, so a skip says why)
// and a temporary raw disk image.

import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary } from '../../src/backends/qtest.ts';
import { kvmUnavailableReason } from '../../src/trap/kvm.ts';
import { QEMU_BINARY } from '../../src/trap/kvm-qemu.ts';

/** Why KVM tests skip (also printed), or null when /dev/kvm and the runner are usable. */
export function kvmSkipReason(): string | null {
  const why = kvmUnavailableReason();
  if (why) console.warn(`skipping KVM tests: ${why}`);
  return why;
}

export function qemuKvmSkipReason(): string | null {
  const why = kvmSkipReason() ?? (findBinary(QEMU_BINARY) ? null : `${QEMU_BINARY} is not installed (Debian package qemu-system-x86)`);
  if (why) console.warn(`skipping QEMU comparison: ${why}`);
  return why;
}

/** A zero-filled sparse raw image of `sectors` sectors in a fresh temp dir. */
export function tempDisk(sectors: number): { path: string; dir: string; dispose: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'muxvisor-kvm-'));
  const path = join(dir, 'disk.img');
  writeFileSync(path, '');
  truncateSync(path, sectors * 512);
  return { path, dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
