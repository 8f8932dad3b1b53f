// The same bare-metal guest binary (native/guests/build/ata-driver.elf) booted by QEMU as a
// multiboot kernel against QEMU's own PIIX IDE: it must pass its own verification there,
// with PIO and with bus-master DMA, under KVM and under TCG. This is the reference side of
// the muxvisor-vs-QEMU comparison (test/qemu-compare-mux.test.ts runs the other side).

import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { runQemuGuest } from '../src/trap/kvm-qemu.ts';
import { tempDisk } from './helpers/kvm.ts';
import { missing, titled } from './helpers/requires.ts';

const SECTORS = 256; // 128 KiB: PIO writes cost one exit per word, keep it small

/** -accel kvm needs /dev/kvm; -accel tcg only QEMU, so those cases run on a machine without KVM. */
const skipReason = (accel: 'kvm' | 'tcg'): string | null => (accel === 'kvm' ? missing('kvm', 'qemu') : missing('qemu'));

describe('ATA guest under QEMU with QEMU IDE', () => {
  const disks: { dispose: () => void }[] = [];
  afterAll(() => disks.forEach((d) => d.dispose()));

  const cases = [
    { accel: 'kvm', mode: 'pio', extra: '' },
    { accel: 'kvm', mode: 'dma', extra: '' },
    { accel: 'kvm', mode: 'dma', extra: ' irq=1' },
    { accel: 'tcg', mode: 'pio', extra: '' },
    { accel: 'tcg', mode: 'dma', extra: ' irq=1' },
  ] as const;

  for (const c of cases) {
    const reason = skipReason(c.accel);
    it.skipIf(reason !== null)(titled(`verifies the whole disk: -accel ${c.accel}, ${c.mode}${c.extra}`, reason), async () => {
      const disk = tempDisk(SECTORS);
      disks.push(disk);
      const tag = `q-${c.accel}-${c.mode}`;
      const r = await runQemuGuest({ disk: disk.path, accel: c.accel, cmdline: `mode=${c.mode} tag=${tag}${c.extra}`, timeoutMs: 50_000 });
      expect(r.timedOut).toBe(false);
      expect(r.output).toContain(`IDENTIFY model="QEMU HARDDISK" sectors=${SECTORS}`);
      expect(r.result).toMatchObject({ ok: true, fields: { sectors: String(SECTORS), mode: c.mode } });
      expect(r.verified).toBe(true);
      // The guest's pattern really reached QEMU's disk: word 0 of sector n is n, word 1 its seed.
      const img = readFileSync(disk.path);
      for (const lba of [0, 1, SECTORS - 1]) expect(img.readUInt32LE(lba * 512)).toBe(lba);
      expect(new Set([0, 100, SECTORS - 1].map((lba) => img.readUInt32LE(lba * 512 + 4))).size).toBe(1);
    });
  }

  // TCG, so that it runs wherever QEMU does: what it checks is the guest's own verification.
  it.skipIf(skipReason('tcg') !== null)(titled('detects data that is not its own: a guest with another tag fails at LBA 0', skipReason('tcg')), async () => {
    const disk = tempDisk(64);
    disks.push(disk);
    const alpha = await runQemuGuest({ disk: disk.path, accel: 'tcg', cmdline: 'mode=dma tag=alpha', timeoutMs: 30_000 });
    expect(alpha.verified).toBe(true);
    const beta = await runQemuGuest({ disk: disk.path, accel: 'tcg', cmdline: 'mode=dma tag=beta verify=only', timeoutMs: 30_000 });
    expect(beta.result).toMatchObject({ ok: false, fields: { lba: '0', word: '1' } });
    expect(beta.verified).toBe(false);
  });
});
