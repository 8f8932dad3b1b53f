// runKvmDisk (the body of `muxvisor demo --trap kvm`): KVM guests share one disk through the
// MUX on each physical backend: our ATA model on a file, the model on an nbdkit export, and
// QEMU's own IDE over qtest.

import { describe, expect, it } from 'vitest';
import { runKvmDisk } from '../src/demo/kvm-disk.ts';
import { missing, titled } from './helpers/requires.ts';

const noKvm = missing('kvm');
const noNbdkit = missing('nbdkit');
const noQemu = missing('qemu');

describe.skipIf(noKvm !== null)(titled('runKvmDisk', noKvm), () => {
  it('model backend, mixed PIO/DMA: every guest verified, no unsafe switch', async () => {
    const r = await runKvmDisk({ guests: 3, backend: 'model', mode: 'mixed', windowSectors: 64 });
    const d = r.summary.devices[0];
    expect(d.unsafeSwitches).toBe(0);
    expect(d.perGuest.map((g) => [g.guest, g.verified, g.bytes])).toEqual([
      ['kvm1', true, 64 * 512],
      ['kvm2', true, 64 * 512],
      ['kvm3', true, 64 * 512],
    ]);
    expect(r.results.map((g) => g.result?.fields.mode)).toEqual(['pio', 'dma', 'pio']);
  });

  it.skipIf(noNbdkit !== null)(titled('nbd backend (nbdkit file plugin), helper processes', noNbdkit), async () => {
    const r = await runKvmDisk({ guests: 2, backend: 'nbd', mode: 'dma', windowSectors: 128, helper: true });
    expect(r.summary.devices[0].perGuest.every((g) => g.verified)).toBe(true);
    expect(r.summary.devices[0].unsafeSwitches).toBe(0);
  });

  it.skipIf(noQemu !== null)(titled("QEMU's IDE over qtest as the physical disk", noQemu), async () => {
    const r = await runKvmDisk({ guests: 2, backend: 'qemu', mode: 'dma', windowSectors: 128 });
    expect(r.summary.devices[0].perGuest.every((g) => g.verified)).toBe(true);
    expect(r.summary.devices[0].unsafeSwitches).toBe(0);
  });
});
