// What bounds the memory a peer can make the supervisor hold (src/channel/flow.ts,
// admission.ts, PROTOCOL.md "Limits"), each shown with a raw peer on an in-process server:
// the per-access cap, the frame caps, reading stopped while replies are unread or accesses
// are in flight (and resumed), a peer that reads nothing closed, the hello and frame
// deadlines, the bound on connections before their hello, and a burst of 1000 connects.

import { type Socket, connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Access, Reply } from '../src/access.ts';
import { FrameDecoder, encodeFrame } from '../src/channel/codec.ts';
import { DEFAULT_LIMITS, FRAMES_PER_TURN, type ChannelLimits, hardUnread } from '../src/channel/flow.ts';
import { MAX_FRAME, MAX_HELLO_FRAME, MAX_STRING_BYTES, type SupervisorMessage, validateSupervisorMessage } from '../src/channel/messages.ts';
import { PeerClient } from '../src/channel/peer-client.ts';
import { type ChannelSession, ChannelServer, type PeerConnection } from '../src/channel/server.ts';
import { AccessSlot, SLOT_MAGIC, SLOT_SIZE } from '../src/channel/slot.ts';
import { parseConfig } from '../src/config/load.ts';
import { Supervisor } from '../src/supervisor.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

interface Rig {
  server: ChannelServer;
  sock: string;
  /** Accesses that reached the session, and the connections that said hello. */
  accesses: Access[];
  conns: PeerConnection[];
}

/** A server whose sessions answer with `answer` (a string read: its bytes). */
async function rig(limits: Partial<ChannelLimits> = {}, answer: (a: Access) => Reply | Promise<Reply> = (a) => ({ value: 0, data: a.count ? new Uint8Array(a.count * a.size) : undefined })): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'mvlim-'));
  const sock = join(dir, 's');
  const r: Rig = { server: null as never, sock, accesses: [], conns: [] };
  r.server = new ChannelServer(
    {
      hello: (_m, conn): ChannelSession => {
        r.conns.push(conn);
        return { irqs: [], access: (a) => (r.accesses.push(a), answer(a)), close() {} };
      },
    },
    undefined,
    { limits },
  );
  await r.server.listen({ path: sock });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => r.server.close());
  return r;
}

/** A raw peer: writes what it is told, reads only when asked. */
function raw(sock: string, read = true): Promise<{ s: Socket; msgs: SupervisorMessage[]; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const s = connect(sock);
    const msgs: SupervisorMessage[] = [];
    const dec = new FrameDecoder(validateSupervisorMessage, 1 << 20);
    const closed = new Promise<void>((res) => s.once('close', () => res()));
    s.on('error', () => undefined);
    s.on('data', (c) => {
      try {
        for (const m of dec.feed(c)) msgs.push(m);
      } catch {
        // a broken frame from the supervisor would fail an assertion below
      }
    });
    if (!read) s.pause();
    s.once('connect', () => {
      cleanups.push(() => s.destroy());
      resolve({ s, msgs, closed });
    });
    s.once('error', reject);
  });
}

const hello = (guest = 'g') => encodeFrame({ t: 'hello', v: 1, guest, caps: ['pio', 'string'] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('the size of one access and of a frame', () => {
  it('a string access over 64 KiB is a protocol error before it reaches the device; 64 KiB is served', async () => {
    const r = await rig();
    const p = await raw(r.sock);
    p.s.write(hello());
    p.s.write(encodeFrame({ t: 'acc', id: 1, sp: 'pio', a: 0x1f0, s: 2, d: 'r', n: MAX_STRING_BYTES / 2 }));
    await until(() => p.msgs.some((m) => m.t === 'rep'), 'the 64 KiB read');
    expect((p.msgs.find((m) => m.t === 'rep') as { b: Uint8Array }).b.length).toBe(MAX_STRING_BYTES);
    p.s.write(encodeFrame({ t: 'acc', id: 2, sp: 'pio', a: 0x1f0, s: 2, d: 'r', n: 512 * 1024 }));
    await p.closed;
    expect(p.msgs.at(-1)).toEqual({ t: 'err', code: 'malformed', msg: 'acc: string access of 524288x2 bytes exceeds the limit of 65536 bytes per access' });
    expect(r.accesses).toHaveLength(1);
    expect(r.server.protocolErrors.get('malformed')).toBe(1);
  });

  it('a frame over 64 KiB + 1 KiB (a capped string write and its fields) is oversized; a first frame over 8 KiB too', async () => {
    const r = await rig();
    const p = await raw(r.sock);
    p.s.write(hello());
    // The largest string write fits a frame.
    p.s.write(encodeFrame({ t: 'acc', id: 1, sp: 'pio', a: 0x1f0, s: 4, d: 'w', n: MAX_STRING_BYTES / 4, b: new Uint8Array(MAX_STRING_BYTES) }));
    await until(() => r.accesses.length === 1, 'the 64 KiB write');
    const h = Buffer.alloc(4);
    h.writeUInt32LE(MAX_FRAME + 1);
    p.s.write(h);
    await p.closed;
    expect(p.msgs.at(-1)).toMatchObject({ t: 'err', code: 'oversized' });
    const q = await raw(r.sock);
    h.writeUInt32LE(MAX_HELLO_FRAME + 1);
    q.s.write(h);
    await q.closed;
    expect(q.msgs.at(-1)).toEqual({ t: 'err', code: 'oversized', msg: `frame length ${MAX_HELLO_FRAME + 1} exceeds ${MAX_HELLO_FRAME}` });
  });

  it('DMA through messages larger than 64 KiB goes in 64 KiB messages, so every answer fits a frame', async () => {
    const r = await rig();
    const bytes = new Uint8Array(300_000);
    const peer = await PeerClient.connect(r.sock, { guest: 'g', caps: ['pio', 'dma'], memory: { base: 0x10_0000, bytes } });
    const data = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 7) & 0xff);
    expect(await r.conns[0].dmaWrite(0x10_0000 + 1000, data)).toBe(true);
    expect(Buffer.from(bytes.subarray(1000, 201_000)).equals(Buffer.from(data))).toBe(true);
    expect(Buffer.from((await r.conns[0].dmaRead(0x10_0000 + 1000, 200_000))!).equals(Buffer.from(data))).toBe(true);
    expect(r.server.protocolErrors.snapshot()).toEqual({});
    await peer.bye();
  });

  it('an in-process guest asking for more than 64 KiB is refused with no data, counted and logged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mvlim-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const sup = new Supervisor({ config: parseConfig({ socket: join(dir, 's'), devices: [{ id: 's', kind: 'scratch', map: { regs: '0x300' } }], guests: [{ name: 'g', grants: [{ device: 's' }] }] }) });
    await sup.start();
    cleanups.push(() => sup.close());
    const g = sup.attachLocalGuest('g');
    expect(await g.access({ space: 'pio', addr: 0x300, size: 4, dir: 'read', count: MAX_STRING_BYTES / 4 + 1 })).toEqual({
      value: 0xffff_ffff,
      error: 'string access of 16385x4 bytes exceeds the limit of 65536 bytes per access',
    });
    expect(sup.stats().guests[0]).toMatchObject({ oversized: 1, accesses: 1 });
  });
});

describe('a peer that does not read its replies', () => {
  it('is not read while 256 KiB are unread, and is read again when it reads', async () => {
    const r = await rig();
    const p = await raw(r.sock, false);
    p.s.write(hello());
    const read64k = encodeFrame({ t: 'acc', id: 1, sp: 'pio', a: 0x1f0, s: 2, d: 'r', n: MAX_STRING_BYTES / 2 });
    const n = 1000;
    p.s.write(Buffer.concat(Array.from({ length: n }, () => read64k)));
    await until(() => r.server.counters.get('readStopped.unread') === 1, 'reading to stop');
    await sleep(200);
    // Served: what fits the bound (and the socket's own buffers), not 1000 x 64 KiB.
    const served = r.accesses.length;
    expect(served).toBeLessThan(Math.ceil(DEFAULT_LIMITS.maxUnread / MAX_STRING_BYTES) + 8);
    // It reads: everything is served and answered, in order.
    p.s.resume();
    await until(() => p.msgs.filter((m) => m.t === 'rep').length === n, 'all replies', 20_000);
    expect(r.accesses).toHaveLength(n);
    expect(r.server.counters.get('readStopped.unread')).toBeGreaterThan(1);
  });

  it('is closed when it owes more than its accesses in flight can explain (frames it did not ask for pile up)', async () => {
    const r = await rig();
    const p = await raw(r.sock, false);
    p.s.write(hello());
    await until(() => r.conns.length === 1, 'the hello');
    const conn = r.conns[0];
    // A guest that never reads while its virtual IRQ line toggles.
    for (let i = 0; i < 200_000 && !conn.isClosed; i++) conn.sendIrq(5, i % 2 === 0);
    expect(conn.isClosed).toBe(true);
    expect(r.server.protocolErrors.get('refused')).toBe(1);
    p.s.resume(); // it sees the close when it reads
    await p.closed;
    expect(hardUnread(DEFAULT_LIMITS)).toBeLessThan(1024 * 1024);
  });

  it('has at most maxInflight accesses served at once; each answer lets one more in', async () => {
    const waiting: (() => void)[] = [];
    const r = await rig({}, () => new Promise<Reply>((res) => waiting.push(() => res({ value: 7 }))));
    const p = await raw(r.sock);
    p.s.write(hello());
    p.s.write(Buffer.concat(Array.from({ length: 50 }, (_, i) => encodeFrame({ t: 'acc', id: i, sp: 'pio', a: 0x80, s: 1, d: 'r' }))));
    await until(() => r.accesses.length === DEFAULT_LIMITS.maxInflight, 'the first accesses');
    await sleep(100);
    expect(r.accesses).toHaveLength(DEFAULT_LIMITS.maxInflight);
    waiting.shift()!();
    await until(() => r.accesses.length === DEFAULT_LIMITS.maxInflight + 1, 'one more');
    while (r.accesses.length < 50 || waiting.length) {
      waiting.shift()?.();
      await sleep(1);
    }
    await until(() => p.msgs.filter((m) => m.t === 'rep').length === 50, 'all replies');
    expect(r.server.counters.get('readStopped.inflight')).toBeGreaterThan(0);
  });
});

describe('a peer that sends many small frames', () => {
  it('has FRAMES_PER_TURN of them handled per turn of the event loop: another peer is served in between', async () => {
    // Turns of the event loop, counted by a setImmediate chain; each access notes its turn.
    let turn = 0;
    let ticking = true;
    const tick = () => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    tick();
    cleanups.push(() => (ticking = false));
    const perTurn = new Map<number, number>();
    const r = await rig({}, () => (perTurn.set(turn, (perTurn.get(turn) ?? 0) + 1), { value: 0 }));
    const honest = await PeerClient.connect(r.sock, { guest: 'h' });
    const p = await raw(r.sock);
    p.s.write(hello('flood'));
    await until(() => r.conns.length === 2, 'the flooder');
    const n = 20_000;
    p.s.write(Buffer.concat(Array.from({ length: n }, (_, i) => encodeFrame({ t: 'acc', id: i, sp: 'pio', a: 0x80, s: 1, d: 'r' }))));
    await until(() => p.msgs.some((m) => m.t === 'rep'), 'the first replies');
    expect(await honest.access({ space: 'pio', addr: 0x80, size: 1, dir: 'read' })).toEqual({ value: 0 });
    const seen = p.msgs.filter((m) => m.t === 'rep').length;
    expect(seen).toBeLessThan(n / 2);
    await until(() => p.msgs.filter((m) => m.t === 'rep').length === n, 'all the flood\'s replies', 30_000);
    // A turn's poll phase and its check phase (where a yielded peer goes on) each handle at most FRAMES_PER_TURN.
    expect(Math.max(...perTurn.values())).toBeLessThanOrEqual(2 * FRAMES_PER_TURN + 1);
    await honest.bye();
  });
});

describe('the access slot of a peer that is not read', () => {
  it('is not served while held (its requests wait, as frames in its socket do), and polls go on when released', () => {
    const buf = new ArrayBuffer(SLOT_SIZE);
    const words = new Int32Array(buf, 0, 8);
    words[0] = SLOT_MAGIC | 0;
    const served: Access[] = [];
    const shm = { mapFd: () => buf, unmap: () => true, peerCred: () => ({ pid: 1, uid: 0, gid: 0 }), wake: () => 0 };
    const slot = new AccessSlot(buf, shm, (a, answer) => (served.push(a), answer({ value: 0x5a })));
    // The peer posts a 1-byte read of port 0x80.
    const bytes = new Uint8Array(buf);
    bytes[32] = 0; bytes[33] = 1; bytes[34] = 0;
    new DataView(buf).setUint32(36, 1, true);
    new DataView(buf).setUint32(40, 0x80, true);
    Atomics.store(words, 1, 1);
    slot.held = true;
    expect(slot.hasRequest).toBe(false);
    expect(slot.poll()).toBe(false);
    expect(slot.sleep()).toBe(true); // asleep, and no busy re-poll for the held request
    expect(served).toEqual([]);
    slot.held = false;
    expect(slot.hasRequest).toBe(true);
    expect(slot.poll()).toBe(true);
    expect(served).toEqual([{ space: 'pio', addr: 0x80, size: 1, dir: 'read' }]);
    expect(Atomics.load(words, 2)).toBe(1); // answered
  });
});

describe('deadlines', () => {
  it('a connection that says nothing is closed after the hello deadline, counted as timeout', async () => {
    const r = await rig({ helloDeadlineMs: 150 });
    const p = await raw(r.sock);
    await p.closed;
    expect(p.msgs).toEqual([{ t: 'err', code: 'timeout', msg: 'no hello within 150 ms of the connect' }]);
    expect(r.server.protocolErrors.get('timeout')).toBe(1);
  });

  it('a frame that has started to arrive must be complete within the frame deadline; others go on', async () => {
    const r = await rig({ frameDeadlineMs: 1000 });
    const p = await raw(r.sock);
    p.s.write(hello());
    const frame = encodeFrame({ t: 'acc', id: 1, sp: 'pio', a: 0x80, s: 1, d: 'r' });
    p.s.write(frame.subarray(0, 6));
    const honest = await PeerClient.connect(r.sock, { guest: 'h' });
    await p.closed;
    expect(p.msgs.at(-1)).toEqual({ t: 'err', code: 'timeout', msg: 'a frame started 1000 ms ago is not complete' });
    expect(await honest.access({ space: 'pio', addr: 0x80, size: 1, dir: 'read' })).toEqual({ value: 0 });
    await honest.bye();
    // A frame sent slowly but completed in time is fine.
    const q = await raw(r.sock);
    q.s.write(hello());
    for (const b of frame) {
      q.s.write(Buffer.from([b]));
      await sleep(10);
    }
    await until(() => q.msgs.some((m) => m.t === 'rep'), 'the slow frame');
  });
});

describe('connections before their hello', () => {
  it('1000 simultaneous connects are all accepted; silent ones are closed, an honest peer among them is welcomed', async () => {
    const r = await rig();
    const results = await Promise.allSettled(Array.from({ length: 1000 }, () => raw(r.sock)));
    const refused = results.filter((x) => x.status === 'rejected');
    expect(refused.map((x) => String((x as PromiseRejectedResult).reason))).toEqual([]);
    // An honest peer connects behind them (its hello comes with its connect).
    const honest = await PeerClient.connect(r.sock, { guest: 'h' });
    expect(await honest.access({ space: 'pio', addr: 0x80, size: 1, dir: 'read' })).toEqual({ value: 0 });
    await honest.bye();
    // The silent ones were closed to make room: at most maxHelloReaders + maxHelloQueue wait.
    expect(r.server.counters.get('helloEvicted')).toBeGreaterThan(0);
    expect(r.server.gate.size).toBeLessThanOrEqual(DEFAULT_LIMITS.maxHelloReaders + DEFAULT_LIMITS.maxHelloQueue);
  });

  it('a reader gets helloGraceMs to say hello before a waiting connection takes its place', async () => {
    const r = await rig({ maxHelloReaders: 2, maxHelloQueue: 100, helloGraceMs: 400, helloDeadlineMs: 60_000 });
    const slow = await raw(r.sock); // read at once; its hello comes late, within the grace
    await Promise.all(Array.from({ length: 10 }, () => raw(r.sock)));
    await sleep(150);
    slow.s.write(hello('slow'));
    await until(() => slow.msgs.some((m) => m.t === 'welcome'), 'the late hello to be welcomed');
    expect(slow.s.destroyed).toBe(false);
    await until(() => r.server.gate.size === 2, 'the silent ones to be closed in turn');
    expect(r.server.counters.get('helloEvicted')).toBe(8); // 10 silent, 2 still read
  });

  it('at most maxHelloReaders are read and maxHelloQueue wait (paused); the silent ones are closed in turn, each counted', async () => {
    const r = await rig({ maxHelloReaders: 4, maxHelloQueue: 8, helloGraceMs: 50, helloDeadlineMs: 60_000 });
    const silent = await Promise.all(Array.from({ length: 20 }, () => raw(r.sock)));
    // The sweeps close the oldest readers silent for helloGraceMs while others wait (or a
    // connect finds the queue full and is refused at once), until maxHelloReaders are left.
    await until(() => r.server.gate.size === 4, 'the queue to drain');
    const c = r.server.counters;
    expect(c.get('helloEvicted') + c.get('helloRefused')).toBe(16);
    await until(() => silent.filter((p) => p.msgs.some((m) => m.t === 'err')).length === 16, 'the err of each closed one');
    const honest = await PeerClient.connect(r.sock, { guest: 'h' });
    expect(await honest.access({ space: 'pio', addr: 0x80, size: 1, dir: 'read' })).toEqual({ value: 0 });
    await honest.bye();
  });
});
