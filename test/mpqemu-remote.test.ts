// muxvisor as the remote of QEMU's multi-process protocol: a guest QEMU (qtest, CPU stopped,
// RAM in a shared memfd) whose x-pci-proxy-dev is served by MpqemuServer with the scratch
// device. The guest reads the function's config space, sizes and programs its BARs, reaches
// the device through them, and the device's DMA reaches the guest's RAM through the
// SYNC_SYSMEM descriptors (written and read back over qtest).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QtestClient } from '../src/backends/qtest.ts';
import { DMA_CMD_FILL, DMA_CMD_SUM, SCR_COOKIE, SCR_DATA0, SCR_DMA_ADDR, SCR_DMA_CMD, SCR_DMA_LEN, SCR_DMA_RESULT, SCR_DOORBELL, SCR_ID, SCR_IRQ_STATUS, SCR_REGS_SIZE, SCRATCH_MAGIC, ScratchDevice } from '../src/devices/scratch.ts';
import { GuestMemory } from '../src/trap/mpqemu/guest-memory.ts';
import { mpqemuAddon, mpqemuAddonMissing } from '../src/trap/mpqemu/native.ts';
import { type MpqemuConnection, MpqemuServer } from '../src/trap/mpqemu/server.ts';
import { cfgRead, cfgWrite, GUEST_RAM_MIB, readq, startGuest, writeq } from './helpers/mpqemu.ts';
import { IrqRecorder } from './helpers/qemu.ts';
import { missing, titled } from './helpers/requires.ts';

const skip = missing('qemu') ?? mpqemuAddonMissing();

const IO_BASE = 0xc000, MMIO_BASE = 0xfebf0000;

describe.skipIf(skip)(titled('mpqemu: muxvisor serves a guest QEMU\'s proxied function', skip), () => {
  let server: MpqemuServer;
  let conn: MpqemuConnection;
  let memory: GuestMemory;
  let irq: IrqRecorder;
  let q: QtestClient;

  beforeAll(async () => {
    const [ours, theirs] = mpqemuAddon().socketpair();
    server = new MpqemuServer();
    memory = new GuestMemory();
    irq = new IrqRecorder();
    const device = new ScratchDevice({ irq, dma: memory, clock: () => 0 });
    conn = server.attach(ours, { name: 'g1', device, memory });
    q = await startGuest(theirs);
  });

  afterAll(async () => {
    await q?.close();
    server?.close();
  });

  it('answers the proxy\'s set-up: RAM sections, irqfds, reset, identity', async () => {
    // The proxy read the ids before qtest could run a command; one config read orders us after it.
    expect(await cfgRead(q, 0x00, 2)).toBe(0x1b36);
    expect(await cfgRead(q, 0x02, 2)).toBe(0x0005);
    expect(await cfgRead(q, 0x08)).toBe(0x00ff_0000); // class 00ff00, revision 0
    expect(await cfgRead(q, 0x3d, 1)).toBe(1); // INTA
    const sections = memory.sections();
    const total = sections.reduce((s, x) => s + x.size, 0);
    expect(sections.some((s) => s.gpa === 0)).toBe(true);
    expect(total).toBeGreaterThan((GUEST_RAM_MIB - 1) * 2 ** 20);
    expect(conn.stats.sysmem).toBeGreaterThan(0);
    expect(conn.stats.resets).toBeGreaterThan(0);
    const pair = conn.irqfds!;
    expect(pair.irq).toBeGreaterThanOrEqual(0);
    expect(pair.resample).toBeGreaterThanOrEqual(0);
    mpqemuAddon().eventfdWrite(pair.irq, 1); // QEMU's EventNotifier; nothing listens under TCG
  });

  it('sizes, programs and reaches the BARs', async () => {
    await cfgWrite(q, 0x10, 4, 0xffff_ffff);
    expect(await cfgRead(q, 0x10)).toBe(0xffff_ffc1); // 64-byte I/O BAR (0x28 of registers, rounded up)
    await cfgWrite(q, 0x14, 4, 0xffff_ffff);
    expect(await cfgRead(q, 0x14)).toBe(0xffff_f000); // 4 KiB 32-bit memory BAR
    await cfgWrite(q, 0x18, 4, 0xffff_ffff);
    expect(await cfgRead(q, 0x18)).toBe(0); // no BAR2
    await cfgWrite(q, 0x10, 4, IO_BASE);
    await cfgWrite(q, 0x14, 4, MMIO_BASE);
    expect(conn.fn.bars()).toEqual([]); // decoding still off
    await cfgWrite(q, 0x04, 2, 0x7);
    expect(conn.fn.bars().map((b) => [b.index, b.base, b.size])).toEqual([[0, IO_BASE, 64], [1, MMIO_BASE, 4096]]);

    expect(await q.inl(IO_BASE + SCR_ID)).toBe(SCRATCH_MAGIC);
    await q.outl(IO_BASE + SCR_DATA0, 0x1122_3344);
    expect(await q.inl(IO_BASE + SCR_DATA0)).toBe(0x1122_3344);
    await q.outb(IO_BASE + SCR_DATA0 + 1, 0xaa);
    expect(await q.inw(IO_BASE + SCR_DATA0)).toBe(0xaa44);
    await q.writel(MMIO_BASE + 0x100, 0xdead_beef);
    expect(await q.readl(MMIO_BASE + 0x100)).toBe(0xdead_beef);
    await writeq(q, MMIO_BASE + 0x200, 0x0102_0304_0506_0708n);
    expect(await readq(q, MMIO_BASE + 0x200)).toBe(0x0102_0304_0506_0708n);
    expect(await q.readb(MMIO_BASE + 0x204)).toBe(0x04);

    // Inside the BAR, past the registers: a hole, counted, not a disconnect.
    expect(await q.inl(IO_BASE + SCR_REGS_SIZE)).toBe(0xffff_ffff);
    expect(conn.stats.barHoles).toBe(1);

    // The doorbell raises the device's line (delivery to the guest is someone else's part).
    await q.outl(IO_BASE + SCR_DOORBELL, 0x77);
    expect(await q.inl(IO_BASE + SCR_COOKIE)).toBe(0x77);
    expect(irq.level).toBe(true);
    await q.outl(IO_BASE + SCR_IRQ_STATUS, 1);
    expect(irq.level).toBe(false);
    expect(conn.closed).toBeNull();
  });

  it('reads and writes guest RAM through the SYNC_SYSMEM descriptors', async () => {
    const pattern = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7 + 3) & 0xff);
    await q.writeMem(0x20_0000, pattern);
    expect(memory.readSync(0x20_0000, pattern.length)).toEqual(pattern);
    const ours = Uint8Array.from({ length: 300 }, (_, i) => 255 - (i & 0xff));
    expect(memory.writeSync(0x30_0123, ours)).toBe(true);
    expect(await q.readMem(0x30_0123, ours.length)).toEqual(ours);
    // Below 1 MiB (the first section) and across nothing: the hole at 0xc0000-0xfffff is not RAM here.
    expect(memory.readSync(0xbff00, 0x100)).not.toBeNull();
    expect(memory.readSync(0xbff00, 0x200)).toBeNull();
    expect(memory.readSync(GUEST_RAM_MIB * 2 ** 20 - 8, 16)).toBeNull();
  });

  it('device DMA reaches guest RAM (scratch DMA engine: sum and fill)', async () => {
    const data = Uint8Array.from({ length: 256 }, (_, i) => i ^ 0x5a);
    await q.writeMem(0x40_0000, data);
    await q.outl(IO_BASE + SCR_DMA_ADDR, 0x40_0000);
    await q.outl(IO_BASE + SCR_DMA_LEN, data.length);
    await q.outl(IO_BASE + SCR_DMA_CMD, DMA_CMD_SUM);
    let result = 0;
    for (let i = 0; i < 100 && result === 0; i++) result = await q.inl(IO_BASE + SCR_DMA_RESULT);
    expect(result).toBe(data.reduce((s, b) => s + b, 0));

    await q.outl(IO_BASE + SCR_DATA0, 0xa5);
    await q.outl(IO_BASE + SCR_DMA_ADDR, 0x41_0000);
    await q.outl(IO_BASE + SCR_DMA_LEN, 4096);
    await q.outl(IO_BASE + SCR_DMA_CMD, DMA_CMD_FILL);
    result = 0;
    for (let i = 0; i < 100 && result !== 1; i++) result = await q.inl(IO_BASE + SCR_DMA_RESULT);
    expect(result).toBe(1);
    expect(await q.readMem(0x41_0000, 4096)).toEqual(new Uint8Array(4096).fill(0xa5));
  });

  it('round trip of one proxied BAR access (qtest inb, muxvisor as the remote)', async () => {
    // Interleaved with a port the guest's QEMU answers itself, so both see the same load; the
    // difference is what the proxy hop (two socket messages, two wake-ups) and our serving cost.
    const n = 500;
    const proxied: number[] = [], local: number[] = [], serving: number[] = [];
    const us = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1000;
    for (let i = 0; i < n; i++) {
      const s0 = conn.stats.serviceNs;
      let t0 = process.hrtime.bigint();
      await q.inb(IO_BASE + SCR_ID);
      proxied.push(us(t0));
      serving.push((conn.stats.serviceNs - s0) / 1000);
      t0 = process.hrtime.bigint();
      await q.inl(0xcf8);
      local.push(us(t0));
    }
    const pct = (a: number[], p: number): number => [...a].sort((x, y) => x - y)[Math.floor(a.length * p)];
    const diffs = proxied.map((p, i) => p - local[i]);
    console.log(
      `mpqemu remote: qtest inb of a proxied BAR median ${pct(proxied, 0.5).toFixed(1)} µs (p90 ${pct(proxied, 0.9).toFixed(1)}), ` +
        `of a port QEMU answers itself ${pct(local, 0.5).toFixed(1)} µs; the proxy round trip adds median ${pct(diffs, 0.5).toFixed(1)} µs, ` +
        `of which muxvisor from message to reply sent ${pct(serving, 0.5).toFixed(1)} µs (p90 ${pct(serving, 0.9).toFixed(1)})`,
    );
    expect(serving.every((s) => s > 0)).toBe(true);
  });

  it('the connection ends cleanly when the guest QEMU goes', async () => {
    const closed = new Promise((r) => conn.once('close', r));
    await q.close();
    expect(await closed).toEqual({ reason: 'eof', error: undefined });
    expect(server.connections()).toEqual([]);
    expect(server.counters.get('malformed')).toBe(0);
    expect(memory.sections()).toEqual([]);
  });
});
