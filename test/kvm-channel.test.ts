// The KVM runner with a real supervisor: MMIO exits (a guest's loads and stores at a
// device's MMIO BAR reach the device model with their widths, in both runner forms; the
// device is the scratch test device, whose BAR1 is plain memory), a refused hello, and the
// supervisor going away under a running helper.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.ts';
import { Supervisor } from '../src/supervisor.ts';
import { runKvmGuest, startKvmGuest } from '../src/trap/kvm.ts';
import { kvmSkipReason, tempDisk } from './helpers/kvm.ts';
import { titled } from './helpers/requires.ts';

const MMIO_BASE = 0xfe00_0000;

describe.skipIf(kvmSkipReason() !== null)(titled('KVM guest MMIO through the supervisor', kvmSkipReason()), () => {
  let sup: Supervisor;
  let socket: string;
  let dispose: () => void;
  beforeAll(async () => {
    const tmp = tempDisk(1);
    dispose = tmp.dispose;
    socket = join(tmp.dir, 'sock');
    const config = parseConfig(
      {
        socket,
        devices: [{ id: 'scr', kind: 'scratch', map: { mem: MMIO_BASE } }],
        // Two guests on one device without a MUX (pass-through): they say so (src/config/windows.ts).
        guests: ['inproc', 'helper', 'nogrant'].map((name) => ({ name, grants: name === 'nogrant' ? [] : [{ device: 'scr', shared: true }] })),
      },
      'mmio test config',
    );
    sup = new Supervisor({ config });
    await sup.listen({ path: socket });
  });
  afterAll(async () => {
    await sup.close();
    dispose();
  });

  const expected = 'MMIO readl=0x11223344 readw+2=0x00001122 readb+3=0x00000011 readl+4=0x0000a700 readl+8=0xbeef0000';

  it('in-process runner', async () => {
    const r = await runKvmGuest({ name: 'inproc', attach: sup.attachLocalGuest.bind(sup), cmdline: `probe=mmio addr=${MMIO_BASE}`, timeoutMs: 30_000 });
    expect(r.output).toContain(expected);
    expect(r.result?.ok).toBe(true);
    expect(r.counters!.mmio).toBe(8);
  });

  it('helper process', async () => {
    const r = await runKvmGuest({ name: 'helper', connect: socket, cmdline: `probe=mmio addr=${MMIO_BASE}`, timeoutMs: 30_000 });
    expect(r.output).toContain(expected);
    expect(r.result?.ok).toBe(true);
    expect(r.counters!.mmio).toBe(8);
  });

  it('a guest without the grant reads all-ones and its writes are dropped', async () => {
    const r = await runKvmGuest({ name: 'nogrant', connect: socket, cmdline: `probe=mmio addr=${MMIO_BASE}`, timeoutMs: 30_000 });
    expect(r.output).toContain('MMIO readl=0xffffffff readw+2=0x0000ffff readb+3=0x000000ff readl+4=0xffffffff readl+8=0xffffffff');
    expect(r.result?.ok).toBe(false);
    expect(sup.stats().guests.find((g) => g.guest === 'nogrant')?.denials).toBe(8);
  });

  it('a guest the configuration does not know is refused at hello', async () => {
    const r = await runKvmGuest({ name: 'stranger', connect: socket, cmdline: 'idle=1', timeoutMs: 30_000 });
    expect(r.exitReason).toBe('disconnected');
    // The refusal names no guest (peer-auth.ts): not even the one asked for.
    expect(r.stderr).toMatch(/hello refused: supervisor error unknown-guest: no guest of that name accepts this peer/);
    expect(r.output).toEqual([]);
  });
});

describe.skipIf(kvmSkipReason() !== null)(titled('KVM helper when the supervisor goes away', kvmSkipReason()), () => {
  it('stops with reason disconnected', async () => {
    const tmp = tempDisk(1);
    const socket = join(tmp.dir, 'sock');
    const config = parseConfig({ socket, guests: [{ name: 'lonely', grants: [] }] }, 'config');
    const sup = new Supervisor({ config });
    await sup.listen({ path: socket });
    try {
      const g = startKvmGuest({ name: 'lonely', connect: socket, cmdline: 'idle=1', timeoutMs: 30_000 });
      await g.waitForLine(/^IDLE$/);
      await sup.close();
      const r = await g.done;
      expect(r.exitReason).toBe('disconnected');
      expect(r.stderr).toMatch(/supervisor (said bye|hung up)/);
    } finally {
      await sup.close();
      tmp.dispose();
    }
  });
});
