import { afterEach, describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.ts';
import { Supervisor } from '../src/supervisor.ts';
import { DeviceRegistry } from '../src/devices/registry.ts';
import { PassthroughRouter } from '../src/passthrough.ts';
import { PeerClient, PeerClosedError } from '../src/channel/peer-client.ts';
import { SEAL, memfdCreate } from '../src/channel/peer-cred.ts';
import { encodeFrame, framePayload } from '../src/channel/codec.ts';
import { pack } from 'msgpackr';
import { pino } from 'pino';
import type { Access } from '../src/access.ts';
import type { Device, DevSize } from '../src/device.ts';
import type { DetachReason } from '../src/guest-link.ts';
import {
  DMA_CMD_FILL,
  DMA_CMD_SUM,
  SCRATCH_MAGIC,
  SCR_DATA0,
  SCR_DMA_ADDR,
  SCR_DMA_CMD,
  SCR_DMA_LEN,
  SCR_DMA_RESULT,
  SCR_DOORBELL,
  SCR_ID,
  SCR_IRQ_STATUS,
} from '../src/devices/scratch.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mvsup-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const baseConfig = (socket: string) =>
  parseConfig({
    socket,
    devices: [
      { id: 'scrA', kind: 'scratch', map: { regs: '0x300' }, properties: { irq: 5 } },
      { id: 'scrB', kind: 'scratch', map: { regs: '0x340' }, properties: { irq: 7 } },
    ],
    guests: [
      // a and c both reach scrA, which has no MUX here (pass-through): they say so.
      { name: 'a', grants: [{ device: 'scrA', shared: true }] },
      { name: 'b', grants: [{ device: 'scrB' }, { space: 'pio', start: '0x80', end: '0x80' }] },
      { name: 'c', grants: [{ space: 'pio', start: '0x300', end: '0x327', shared: true }] },
    ],
  });

async function started(opts: Partial<ConstructorParameters<typeof Supervisor>[0]> = {}) {
  const dir = tmp();
  const sock = join(dir, 'mv.sock');
  const sup = new Supervisor({ config: baseConfig(sock), ...opts });
  await sup.start();
  cleanups.push(() => sup.close());
  return { sup, sock, dir };
}

const rd = (addr: number, size: 1 | 2 | 4 | 8 = 4, space: Access['space'] = 'pio'): Access => ({ space, addr, size, dir: 'read' });
const wr = (addr: number, value: number | bigint, size: 1 | 2 | 4 | 8 = 4, space: Access['space'] = 'pio'): Access => ({ space, addr, size, dir: 'write', value });

describe('supervisor with in-process guests', () => {
  it('routes granted accesses to the device at offsets, denies the rest with all-ones and counts', async () => {
    const { sup } = await started();
    const a = sup.attachLocalGuest('a');
    const b = sup.attachLocalGuest('b');
    expect(await a.access(rd(0x300 + SCR_ID))).toEqual({ value: SCRATCH_MAGIC });
    await a.access(wr(0x300 + SCR_DATA0, 0xcafe));
    expect(await a.access(rd(0x300 + SCR_DATA0))).toEqual({ value: 0xcafe });
    // b may not reach scrA: reads all-ones, the write is dropped.
    expect(await b.access(rd(0x300 + SCR_DATA0))).toEqual({ value: 0xffff_ffff, error: 'denied' });
    expect(await b.access(wr(0x300 + SCR_DATA0, 1))).toEqual({ value: 0, error: 'denied' });
    expect(await b.access({ ...rd(0x300, 2), count: 3 })).toEqual({ value: 0xffff, data: new Uint8Array(6).fill(0xff), error: 'denied' });
    expect(await a.access(rd(0x300 + SCR_DATA0))).toEqual({ value: 0xcafe });
    // Granted but nothing mapped: all-ones, counted as unmapped, not as denial.
    expect(await b.access(rd(0x80, 1))).toEqual({ value: 0xff });
    const s = sup.stats();
    expect(s.guests.find((g) => g.guest === 'b')).toMatchObject({ denials: 3, unmapped: 1, accesses: 4 });
    expect(s.guests.find((g) => g.guest === 'a')).toMatchObject({ denials: 0, accesses: 4 });
    expect(s.unmapped.pio).toBe(1);
    expect(s.devices.find((d) => d.device === 'scrA')!.perGuest).toEqual([expect.objectContaining({ guest: 'a', accesses: 4 })]);
  });

  it('a raw range grant reaches the device but not beyond the range', async () => {
    const { sup } = await started();
    const c = sup.attachLocalGuest('c');
    expect(await c.access(rd(0x300 + SCR_ID))).toEqual({ value: SCRATCH_MAGIC });
    // 0x324 DMA_RESULT is inside [0x300, 0x327]; 0x326/4 straddles the end.
    expect(await c.access(rd(0x324))).toEqual({ value: 0 });
    expect((await c.access(rd(0x326))).error).toBe('denied');
    expect(c.irqs).toEqual([]);
  });

  it('delivers the IRQ to granted guests only, and DMA reaches the accessing guest memory', async () => {
    const { sup } = await started();
    const mem = new Uint8Array(256).map((_, i) => i);
    const a = sup.attachLocalGuest('a', { memory: { base: 0x10_0000, bytes: mem } });
    const c = sup.attachLocalGuest('c');
    const seenA: [number, boolean][] = [];
    const seenC: [number, boolean][] = [];
    a.onIrq((l, v) => seenA.push([l, v]));
    c.onIrq((l, v) => seenC.push([l, v]));
    expect(a.irqs).toEqual([5]);
    await a.access(wr(0x300 + SCR_DOORBELL, 0x77));
    expect(seenA).toEqual([[5, true]]);
    expect(a.irqLevel(5)).toBe(true);
    await a.access(wr(0x300 + SCR_IRQ_STATUS, 1));
    expect(seenA).toEqual([[5, true], [5, false]]);
    // c reaches scrA's ports but has no IRQ grant: nothing delivered, counted.
    expect(seenC).toEqual([]);
    // DMA sum of 16 bytes at 0x100010: 16+...+31.
    await a.access(wr(0x300 + SCR_DMA_ADDR, 0x10_0010));
    await a.access(wr(0x300 + SCR_DMA_LEN, 16));
    await a.access(wr(0x300 + SCR_DMA_CMD, DMA_CMD_SUM));
    await new Promise((r) => setTimeout(r, 20));
    expect(await a.access(rd(0x300 + SCR_DMA_RESULT))).toEqual({ value: 376 });
    // Outside the window: refused.
    await a.access(wr(0x300 + SCR_DMA_ADDR, 0x20_0000));
    await a.access(wr(0x300 + SCR_DMA_CMD, DMA_CMD_SUM));
    await new Promise((r) => setTimeout(r, 20));
    expect(await a.access(rd(0x300 + SCR_DMA_RESULT))).toEqual({ value: 0xffff_ffff });
    expect(sup.stats().devices.find((d) => d.device === 'scrA')!.perGuest.find((g) => g.guest === 'a')!.dmaRefused).toBe(1);
    expect(sup.stats().guests.find((g) => g.guest === 'c')!.irqDropped).toBeGreaterThan(0);
  });

  it('refuses unknown and duplicate guests', async () => {
    const { sup } = await started();
    sup.attachLocalGuest('a');
    expect(() => sup.attachLocalGuest('a')).toThrow(/duplicate-guest/);
    expect(() => sup.attachLocalGuest('zz')).toThrow(/unknown-guest: no guest "zz"/);
  });

  it('rejects overlapping regions at start, naming both devices', async () => {
    const config = parseConfig({ devices: [{ id: 'x', kind: 'scratch', map: { regs: 0x300 } }, { id: 'y', kind: 'scratch', map: { regs: 0x310 } }] });
    const sup = new Supervisor({ config });
    await expect(sup.start()).rejects.toThrow(/devices\[1\]\.map\.regs: region regs of "y", pio 0x310-0x337 overlaps region regs of "x", pio 0x300-0x327 \(devices\[0\]\.map\.regs\)/);
  });
});

/** A device whose reads wait until the test opens a gate: an access stays in flight. */
function gateKind() {
  const gates: (() => void)[] = [];
  const registry = new DeviceRegistry().register('gate', () => {
    const dev: Device = {
      describe: () => ({ kind: 'gate', regions: [{ name: 'r', space: 'pio', size: 4, legacyBase: 0x500 }], properties: [] }),
      read: (_r: number, _o: number, _s: DevSize) => new Promise<number>((resolve) => gates.push(() => resolve(0x42))),
      write: () => undefined,
      reset: () => undefined,
      metrics: () => ({}),
    };
    return dev;
  });
  return { registry, gates };
}

// No deadline of its own (2.5 s was one): a loaded machine may hold any step for seconds; the
// test's timeout bounds the wait.
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

describe('supervisor over a Unix socket', () => {
  it('serves a socket guest: hello, accesses, irq events, bye', async () => {
    const { sup, sock } = await started();
    await sup.listen();
    const a = await PeerClient.connect(sock, { guest: 'a' });
    expect(a.irqs).toEqual([5]);
    const irqs: [number, boolean][] = [];
    a.onIrq((l, v) => irqs.push([l, v]));
    expect(await a.access(rd(0x300 + SCR_ID))).toEqual({ value: SCRATCH_MAGIC });
    await a.access(wr(0x300 + SCR_DATA0, 0x1122_3344_5566_7788n, 8));
    expect(await a.access(rd(0x300 + SCR_DATA0, 8))).toEqual({ value: 0x1122_3344_5566_7788n });
    const str = await a.access({ ...rd(0x300 + SCR_DATA0, 1), count: 4 });
    expect([...str.data!]).toEqual([0x88, 0x88, 0x88, 0x88]);
    await a.access(wr(0x300 + SCR_DOORBELL, 1));
    await until(() => irqs.length === 1);
    expect(irqs).toEqual([[5, true]]);
    expect((await a.access(rd(0x340))).error).toBe('denied');
    await a.bye('done');
    await until(() => !sup.stats().guests.find((g) => g.guest === 'a')!.connected);
  });

  it('protocol errors close that connection only, with err naming the problem', async () => {
    const { sup, sock } = await started();
    await sup.listen();
    const a = await PeerClient.connect(sock, { guest: 'a' });
    await expect(PeerClient.connect(sock, { guest: 'nobody' })).rejects.toThrow(/unknown-guest/);
    await expect(PeerClient.connect(sock, { guest: 'a' })).rejects.toThrow(/duplicate-guest/);
    await expect(PeerClient.connect(sock, { guest: 'b', version: 2 })).rejects.toThrow(/version 2 is not supported/);
    const b = await PeerClient.connect(sock, { guest: 'b' });
    b.sendRaw(framePayload(Buffer.from([0xc1])));
    await b.closed;
    expect(b.lastError?.code).toBe('malformed');
    // An access before hello, on a raw connection.
    const { connect } = await import('node:net');
    const raw = connect(sock);
    const got: Buffer[] = [];
    raw.on('data', (d) => got.push(d));
    await new Promise((r) => raw.once('connect', r));
    raw.write(encodeFrame({ t: 'acc', id: 1, sp: 'pio', a: 0x300, s: 4, d: 'r' }));
    await new Promise((r) => raw.once('close', r));
    expect(Buffer.concat(got).toString('latin1')).toMatch(/no-hello.*access before hello/);
    // Accesses pipelined right behind the hello are answered after the welcome.
    const { FrameDecoder } = await import('../src/channel/codec.ts');
    const { validateSupervisorMessage } = await import('../src/channel/messages.ts');
    const piped = connect(sock);
    const dec = new FrameDecoder(validateSupervisorMessage);
    const seen: unknown[] = [];
    piped.on('data', (d) => seen.push(...dec.push(d)));
    await new Promise((r) => piped.once('connect', r));
    piped.write(Buffer.concat([encodeFrame({ t: 'hello', v: 1, guest: 'c', caps: ['pio'] }), encodeFrame({ t: 'acc', id: 9, sp: 'pio', a: 0x300 + SCR_ID, s: 4, d: 'r' })]));
    await until(() => seen.length === 2);
    expect(seen).toEqual([{ t: 'welcome', v: 1, guest: 'c', irqs: [] }, { t: 'rep', id: 9, v: SCRATCH_MAGIC }]);
    piped.end(encodeFrame({ t: 'bye' }));
    // The supervisor and guest a go on.
    expect(await a.access(rd(0x300 + SCR_ID))).toEqual({ value: SCRATCH_MAGIC });
    expect(sup.stats().protocolErrors).toMatchObject({ 'unknown-guest': 1, 'duplicate-guest': 1, version: 1, malformed: 1, 'no-hello': 1 });
    // b may reconnect after its connection was closed.
    const b2 = await PeerClient.connect(sock, { guest: 'b' });
    expect(b2.irqs).toEqual([7]);
    await b2.bye();
    await a.bye();
  });

  it('names the guest in the log of a protocol error that follows its hello in the same write', async () => {
    const lines: Array<{ msg: string; guest?: string | null; code?: string }> = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const { sup, sock } = await started({ logger });
    await sup.listen();
    const { connect } = await import('node:net');
    const raw = connect(sock);
    await new Promise((r) => raw.once('connect', r));
    // hello for b, then a frame of an unknown type before the welcome could be sent.
    raw.resume(); // read (and drop) the err, so the close arrives
    raw.write(Buffer.concat([encodeFrame({ t: 'hello', v: 1, guest: 'b', caps: ['pio'] }), framePayload(pack({ t: 'nonsense' }))]));
    await new Promise((r) => raw.once('close', r));
    const err = lines.find((l) => /^protocol error/.test(l.msg));
    expect(err).toMatchObject({ guest: 'b', code: 'unknown-type' });
  });

  it('refuses, with a reason and a count, an access slot offered over TCP or without the capability', async () => {
    const lines: Array<{ msg: string; err?: string }> = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const { sup } = await started({ logger });
    const addr = (await sup.listen({ host: '127.0.0.1', port: 0 })) as import('node:net').AddressInfo;
    const { connect } = await import('node:net');
    const { FrameDecoder } = await import('../src/channel/codec.ts');
    const { validateSupervisorMessage } = await import('../src/channel/messages.ts');
    for (const [guest, caps] of [['a', ['pio', 'slot']], ['b', ['pio']]] as const) {
      const sock = connect(addr.port, '127.0.0.1');
      const dec = new FrameDecoder(validateSupervisorMessage);
      const seen: Array<Record<string, unknown>> = [];
      sock.on('data', (d) => seen.push(...(dec.push(d) as unknown as Array<Record<string, unknown>>)));
      await new Promise((r) => sock.once('connect', r));
      // Over TCP no uid can be told: the guest is opened by a token (peer-auth.ts).
      sock.write(encodeFrame({ t: 'hello', v: 1, guest, caps: [...caps], slot: { fd: 3, size: 8192 }, token: sup.issueToken(guest) } as never));
      await until(() => seen.length > 0);
      expect(seen[0]).toMatchObject({ t: 'welcome', guest });
      expect(seen[0].slot).toBeUndefined(); // the socket path it is
      sock.end(encodeFrame({ t: 'bye' }));
    }
    expect(lines.filter((l) => l.msg === 'access slot refused: accesses go over the socket').map((l) => l.err)).toEqual([
      'a TCP peer cannot share memory',
      'hello carries a slot but not the capability "slot"',
    ]);
    expect((sup.stats() as unknown as { channel: Record<string, number> }).channel.slotRefused).toBe(2);
  });

  it('survives a guest disconnecting mid-access; the router is told', async () => {
    const { registry, gates } = gateKind();
    const detached: [string, string, DetachReason][] = [];
    const dir = tmp();
    const sock = join(dir, 'mv.sock');
    const config = parseConfig({
      socket: sock,
      devices: [{ id: 'g0', kind: 'gate' }],
      guests: [{ name: 'x', grants: [{ device: 'g0', shared: true }] }, { name: 'y', grants: [{ device: 'g0', shared: true }] }],
    });
    const sup = new Supervisor({
      config,
      registry,
      createRouter: (id, kind) => {
        const r = new PassthroughRouter(id, kind);
        const detach = r.detach.bind(r);
        r.detach = (guest, reason) => {
          detached.push([id, guest, reason]);
          detach(guest, reason);
        };
        return r;
      },
    });
    cleanups.push(() => sup.close());
    await sup.listen();
    const x = await PeerClient.connect(sock, { guest: 'x' });
    const inFlight = x.access(rd(0x500));
    await until(() => gates.length === 1);
    x.destroy();
    await expect(inFlight).rejects.toBeInstanceOf(PeerClosedError);
    await until(() => detached.length === 1);
    expect(detached).toEqual([['g0', 'x', 'disconnect']]);
    // The device answers after the guest is gone: the reply goes nowhere, nothing throws.
    gates.shift()!();
    await new Promise((r) => setTimeout(r, 20));
    // Another guest still works, and x can come back.
    const y = await PeerClient.connect(sock, { guest: 'y' });
    const ry = y.access(rd(0x500));
    await until(() => gates.length === 1);
    gates.shift()!();
    expect(await ry).toEqual({ value: 0x42 });
    const x2 = await PeerClient.connect(sock, { guest: 'x' });
    await x2.bye();
    await y.bye();
    expect(detached.map((d) => d[2])).toEqual(['disconnect', 'bye', 'bye']);
  });

  it('DMA through dmar/dmaw messages and through a shared memfd', async () => {
    const { sup, sock } = await started();
    await sup.listen();
    const mem = new Uint8Array(64).fill(3);
    const a = await PeerClient.connect(sock, { guest: 'a', memory: { base: 0x1000, bytes: mem } });
    const irqs: boolean[] = [];
    a.onIrq((_l, v) => irqs.push(v));
    await a.access(wr(0x300 + SCR_DMA_ADDR, 0x1000));
    await a.access(wr(0x300 + SCR_DMA_LEN, 10));
    await a.access(wr(0x300 + SCR_DMA_CMD, DMA_CMD_SUM));
    await until(() => irqs.length === 1);
    expect(await a.access(rd(0x300 + SCR_DMA_RESULT))).toEqual({ value: 30 });
    await a.access(wr(0x300 + SCR_IRQ_STATUS, 1));
    await a.access(wr(0x300 + SCR_DATA0, 0xab));
    await a.access(wr(0x300 + SCR_DMA_CMD, DMA_CMD_FILL));
    await until(() => irqs.length === 3);
    expect([...mem.subarray(0, 11)]).toEqual([...new Array(10).fill(0xab), 3]);
    await a.bye();

    // A sealed memfd of the peer's own, offered by its descriptor number (PROTOCOL.md "DMA memory").
    const fd = memfdCreate('test-dma', 4096, SEAL.SHRINK | SEAL.GROW | SEAL.SEAL);
    cleanups.push(() => closeSync(fd));
    writeSync(fd, Buffer.alloc(4096, 1), 0, 4096, 0);
    const b = await PeerClient.connect(sock, { guest: 'a', dmaFd: { fd, base: 0x8000, size: 4096 } });
    // The line was left high by the fill above: the new connection sees it high.
    await until(() => b.irqLevel(5));
    await b.access(wr(0x300 + SCR_IRQ_STATUS, 1));
    await until(() => !b.irqLevel(5));
    await b.access(wr(0x300 + SCR_DATA0, 0x5a));
    await b.access(wr(0x300 + SCR_DMA_ADDR, 0x8010));
    await b.access(wr(0x300 + SCR_DMA_LEN, 4));
    await b.access(wr(0x300 + SCR_DMA_CMD, DMA_CMD_FILL));
    await until(() => b.irqLevel(5));
    const got = Buffer.alloc(6);
    readSync(fd, got, 0, 6, 0x0f);
    expect([...got]).toEqual([1, 0x5a, 0x5a, 0x5a, 0x5a, 1]);
    await b.bye();
    // Refused offers (a path, a foreign or shared memfd, ...): test/dma-memory-hostile.test.ts.
  });
});

describe('supervisor under garbage', () => {
  it('random bytes and oversized frames on many connections leave it serving', async () => {
    const { sup, sock } = await started();
    await sup.listen();
    const { connect } = await import('node:net');
    const fc = (await import('fast-check')).default;
    const blobs = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 300 }), { numRuns: 30, seed: 42 });
    const big = Buffer.alloc(4);
    big.writeUInt32LE(2 * 1024 * 1024);
    blobs.push(big);
    await Promise.all(
      blobs.map(
        (blob) =>
          new Promise<void>((resolve) => {
            const s = connect(sock);
            s.on('error', () => undefined);
            s.resume(); // read the err frames, so 'close' can follow
            s.on('close', () => resolve());
            s.on('connect', () => s.end(blob));
          }),
      ),
    );
    const a = await PeerClient.connect(sock, { guest: 'a' });
    expect(await a.access(rd(0x300 + SCR_ID))).toEqual({ value: SCRATCH_MAGIC });
    await a.bye();
    const errors = sup.stats().protocolErrors;
    expect(errors.oversized).toBeGreaterThanOrEqual(1);
    expect(Object.values(errors).reduce((x, y) => x + y, 0)).toBeGreaterThan(10);
  });
});

describe('supervisor and a faulty device', () => {
  it('a device that throws or returns garbage faults the access, not the supervisor', async () => {
    const registry = new DeviceRegistry().register('bad', () => ({
      describe: () => ({ kind: 'bad', regions: [{ name: 'r', space: 'pio' as const, size: 4, legacyBase: 0x600 }], properties: [] }),
      read: (_r: number, o: number) => (o === 0 ? Promise.reject(new Error('backend gone')) : o === 1 ? NaN : 1),
      write: () => {
        throw new Error('sync boom');
      },
      reset: () => undefined,
      metrics: () => ({}),
    }));
    const dir = tmp();
    const config = parseConfig({ socket: join(dir, 's'), devices: [{ id: 'b0', kind: 'bad' }], guests: [{ name: 'x', grants: [{ device: 'b0' }] }] });
    const sup = new Supervisor({ config, registry });
    cleanups.push(() => sup.close());
    await sup.listen();
    const x = await PeerClient.connect(config.socket, { guest: 'x' });
    expect(await x.access(rd(0x600, 1))).toEqual({ value: 0xff, error: 'device b0 failed: backend gone' });
    expect(await x.access(wr(0x600, 1, 1))).toEqual({ value: 0, error: 'device b0 failed: sync boom' });
    expect(sup.stats().guests[0]).toMatchObject({ guest: 'x', faults: 2 });
    // NaN masks to 0 in the bus: still a number on the wire.
    expect(await x.access(rd(0x601, 1))).toEqual({ value: 0 });
    expect(await x.access(rd(0x602, 1))).toEqual({ value: 1 });
    await x.bye();
  });
});
