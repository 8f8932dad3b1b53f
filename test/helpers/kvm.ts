// Helpers for tests that boot real KVM guests: the skip reason and a temporary raw disk image.

import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missing } from './requires.ts';

/** Why KVM tests skip, or null when /dev/kvm and the runner are usable. */
export function kvmSkipReason(): string | null {
  return missing('kvm');
}

/** Why tests that boot the same guest under QEMU with KVM skip, or null. */
export function qemuKvmSkipReason(): string | null {
  return missing('kvm', 'qemu');
}

/** A zero-filled sparse raw image of `sectors` sectors in a fresh temp dir. */
export function tempDisk(sectors: number): { path: string; dir: string; dispose: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'muxvisor-kvm-'));
  const path = join(dir, 'disk.img');
  writeFileSync(path, '');
  truncateSync(path, sectors * 512);
  return { path, dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
