// Side by side: the same guest binary, command line and disk size on QEMU (-accel kvm, QEMU's
// own IDE) and on muxvisor (KVM runner, MUX, our ATA model). Both must verify, report the
// same disk geometry and result, and leave byte-identical disks behind.

import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { runKvmGuest } from '../src/trap/kvm.ts';
import { runQemuGuest } from '../src/trap/kvm-qemu.ts';
import { qemuKvmSkipReason, tempDisk } from './helpers/kvm.ts';
import { type KvmMuxRig, kvmMuxRig } from './helpers/kvm-mux.ts';
import { titled } from './helpers/requires.ts';

const SECTORS = 96;

/** What the guest says that must not depend on the VMM (PCI addresses and model names may). */
function comparable(lines: string[]): string[] {
  return lines
    .filter((l) => !l.startsWith('PCI ') && !l.startsWith('ata-driver: booted'))
    .map((l) => l.replace(/model="[^"]*"/, 'model=*'));
}

describe.skipIf(qemuKvmSkipReason() !== null)(titled('same guest binary on QEMU and on muxvisor', qemuKvmSkipReason()), () => {
  let rig: KvmMuxRig | null = null;
  const disposers: (() => void)[] = [];
  afterEach(async () => {
    await rig?.close();
    rig = null;
    disposers.splice(0).forEach((d) => d());
  });

  for (const mode of ['pio', 'dma'] as const) {
    it(`${mode}: same output, same verification, identical disks`, async () => {
      const cmdline = `mode=${mode} tag=side-by-side`;
      const qdisk = tempDisk(SECTORS);
      disposers.push(qdisk.dispose);
      const qemu = await runQemuGuest({ disk: qdisk.path, accel: 'kvm', cmdline, timeoutMs: 50_000 });
      rig = await kvmMuxRig(1, SECTORS);
      const mine = await runKvmGuest({ name: rig.names[0], attach: rig.attach, cmdline, timeoutMs: 50_000 });

      expect(qemu.verified).toBe(true);
      expect(mine.verified).toBe(true);
      expect(mine.output.find((l) => l.startsWith('PCI piix-ide'))).toMatch(/bar4=0x[0-9a-f]+$/);
      expect(comparable(mine.output)).toEqual(comparable(qemu.output));
      expect(mine.result).toEqual(qemu.result);
      expect(readFileSync(rig.image).equals(readFileSync(qdisk.path))).toBe(true);
    });
  }
});
