// The user-mode trap shim against a scripted supervisor over the real channel codec:
// unmodified lspci through conf1 ports, interrupts through the UIO fd (also between an
// access and its answer), shared DMA memory and dmaw/dmar, a sysfs BAR, string I/O split
// over several accesses, and a lost channel. Each runs twice: accesses as `acc` frames
// (the socket path), and through the shared-memory access slot, where every answer is
// given later (the stalled-answer path) while irq/dma frames still use the socket.
import { readdirSync, readSync, writeSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AccMsg } from '../src/channel/messages.ts';
import { runTrapped as runTrappedRaw, TRAP_BUILD_DIR, TRAP_EXIT_CHANNEL_LOST } from '../src/trap/user.ts';
import { buildTrap } from './helpers/trap-build.ts';
import { type AccAnswer, fakeConf1, type PeerConn, TrapPeer } from './helpers/trap-peer.ts';
import { missing, titled } from './helpers/requires.ts';

const noLspci = missing('lspci');
const CHAN = `${TRAP_BUILD_DIR}/test-chan`;
const BAR0 = 0xfebf_0000;

const conf1 = fakeConf1([
  // PIIX3 ISA bridge: function 0 must exist and be multi-function for 00:01.1 to be scanned.
  { bus: 0, dev: 1, fn: 0, vendor: 0x8086, device: 0x7000, classCode: 0x060100, headerType: 0x80 },
  { bus: 0, dev: 1, fn: 1, vendor: 0x8086, device: 0x7010, classCode: 0x010180, bars: [0, 0, 0, 0, 0xc001] },
  { bus: 0, dev: 3, fn: 0, vendor: 0x1234, device: 0x1111, classCode: 0x030000, bars: [BAR0] },
]);

function dmaFile(conn: PeerConn): { at(bus: number, n: number): Buffer; put(bus: number, data: Buffer): void } {
  const dma = conn.hello.dma!;
  const fd = conn.dmaFd!;
  return {
    at(bus, n) {
      const b = Buffer.alloc(n);
      readSync(fd, b, 0, n, bus - dma.base);
      return b;
    },
    put(bus, data) {
      writeSync(fd, data, 0, data.length, bus - dma.base);
    },
  };
}

// The scripted device behind ports 0x510.. (see native/trap/test-chan.c), a BAR and 0x1F0.
function scripted(): (acc: AccMsg, conn: PeerConn) => Promise<AccAnswer> {
  const mmio = new Map<number, number | bigint>();
  let stringReads = 0;
  return async (acc, conn) => {
    const c = conf1(acc);
    if (c) return c;
    const v = Number(acc.v ?? 0);
    if (acc.sp === 'pio' && acc.a === 0x510 && acc.d === 'w') {
      setTimeout(() => conn.send({ t: 'irq', line: 14, level: 1 }), 30);
      return {};
    }
    if (acc.sp === 'pio' && acc.a === 0x511) {
      conn.send({ t: 'irq', line: 14, level: 0 });
      conn.send({ t: 'irq', line: 14, level: 1 });
      return { v: 0x11 };
    }
    if (acc.sp === 'pio' && acc.a === 0x520 && acc.d === 'w') {
      const mem = dmaFile(conn);
      if (mem.at(v, 9).toString() === 'hello dma') mem.put(v + 0x100, Buffer.from('from peer'));
      return {};
    }
    if (acc.sp === 'pio' && acc.a === 0x524) {
      const base = conn.hello.dma!.base;
      conn.send({ t: 'dmaw', id: 1, a: base + 0x300, b: Buffer.from('via dmaw') });
      const k = await conn.nextDmaAnswer();
      conn.send({ t: 'dmar', id: 2, a: base + 0x100, n: 9 });
      const d = await conn.nextDmaAnswer();
      const ok = k.t === 'dmak' && k.e === undefined && d.t === 'dmad' && Buffer.from(d.b ?? []).toString() === 'hello dma';
      return { v: ok ? 1 : 0 };
    }
    if (acc.sp === 'mmio') {
      if (acc.d === 'w') mmio.set(acc.a, acc.v ?? 0);
      if (acc.a === BAR0 + 0x10) return { v: 0x12345678 };
      if (acc.a === BAR0 + 0x18 && acc.s === 8) return { v: 0x8877665544332211n };
      return { v: mmio.get(acc.a) ?? 0 };
    }
    if (acc.sp === 'pio' && acc.a === 0x1f0 && acc.d === 'r' && (acc.n ?? 1) > 1) {
      const words = Buffer.alloc(acc.n! * 2);
      for (let i = 0; i < acc.n!; i++) words.writeUInt16LE(((stringReads + i) * 3) & 0xffff, 2 * i);
      stringReads += acc.n!;
      return { b: words };
    }
    return acc.d === 'r' ? { v: 0xff, e: 'nothing here' } : {};
  };
}

describe.each(['socket', 'slot'] as const)('user-mode trap shim over the channel (%s)', (path) => {
  const start = (h: Parameters<typeof TrapPeer.start>[0]): Promise<TrapPeer> => TrapPeer.start(h, [14], { slot: path === 'slot' });
  // 'always': every access through the slot (the doorbell rings whenever the peer is not polling).
  const runTrapped = (...[prog, args, opts]: Parameters<typeof runTrappedRaw>): ReturnType<typeof runTrappedRaw> =>
    runTrappedRaw(prog, args, { ...opts, ...(path === 'slot' ? { slot: 'always' as const } : {}) });
  /** Accesses went the way this run says, and not the other. */
  const wentThrough = (p: TrapPeer): void => {
    if (path === 'slot') expect(p.slotAccesses).toBe(p.accesses.length);
    else expect(p.slotAccesses).toBe(0);
    expect(p.accesses.length).toBeGreaterThan(0);
  };
  let peer: TrapPeer | null = null;
  beforeAll(() => buildTrap());
  afterEach(async () => {
    await peer?.close();
    peer = null;
  });

  it.skipIf(noLspci !== null)(titled('runs unmodified lspci -A intel-conf1 through trapped conf1 ports', noLspci), async () => {
    peer = await start(scripted());
    const r = await runTrapped('lspci', ['-A', 'intel-conf1', '-nn'], { socket: peer.path, guest: 'lspci' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    wentThrough(peer);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^00:01\.0 .*\[8086:7000\]/);
    expect(lines[1]).toMatch(/^00:01\.1 IDE interface \[0101\]: .*\[8086:7010\]/);
    expect(lines[2]).toMatch(/^00:03\.0 .*\[1234:1111\]/);
    expect(peer.conns[0].hello.guest).toBe('lspci');
    expect(peer.conns[0].hello.caps).toEqual(expect.arrayContaining(['pio', 'mmio', 'irq', 'string', 'dma']));
    expect(peer.accesses.some((a) => a.a === 0xcf8 && a.d === 'w')).toBe(true);
    expect(peer.protocolErrors).toEqual([]);
  });

  it('delivers interrupts through the UIO fd, also when they arrive inside an access', async () => {
    peer = await start(scripted());
    const r = await runTrapped(CHAN, ['uio'], { socket: peer.path, guest: 'g1' });
    expect(r.stdout).not.toContain('FAIL');
    expect(r.stdout).toContain('ok second interrupt count');
    expect(r.code).toBe(0);
    wentThrough(peer);
  });

  it('shares DMA memory announced in hello, and answers dmaw/dmar', async () => {
    peer = await start(scripted());
    const r = await runTrapped(CHAN, ['dma'], { socket: peer.path, guest: 'g2', dmaBase: 0x2000_0000, dmaSize: 0x10000 });
    expect(r.stdout).not.toContain('FAIL');
    expect(r.code).toBe(0);
    wentThrough(peer);
    const dma = peer.conns[0].hello.dma!;
    expect(dma).toMatchObject({ base: 0x2000_0000, size: 0x10000 });
    // A memfd offered by its number: no name that anybody could swap or that could be left behind.
    expect(dma.fd).toBeTypeOf('number');
    expect(dma.path).toBeUndefined();
    expect(readdirSync('/dev/shm').filter((f) => f.startsWith('muxvisor-dma-'))).toEqual([]);
  });

  it('maps a sysfs BAR at the address from PCI config and forwards 4- and 8-byte MMIO', async () => {
    peer = await start(scripted());
    const r = await runTrapped(CHAN, ['resource'], { socket: peer.path, guest: 'g3' });
    expect(r.stdout).not.toContain('FAIL');
    expect(r.code).toBe(0);
    wentThrough(peer);
    const mmio = peer.accesses.filter((a) => a.sp === 'mmio').map((a) => [a.d, a.a - BAR0, a.s]);
    expect(mmio).toEqual([['r', 0x10, 4], ['r', 0x18, 8], ['w', 0x40, 4], ['r', 0x40, 4]]);
  });

  it('splits long string I/O into accesses of at most 4 KiB with the data intact', async () => {
    peer = await start(scripted());
    const r = await runTrapped(CHAN, ['string'], { socket: peer.path, guest: 'g4' });
    expect(r.stdout).not.toContain('FAIL');
    expect(r.code).toBe(0);
    wentThrough(peer);
    const writes = peer.accesses.filter((a) => a.a === 0x1f0 && a.d === 'w');
    expect(writes.map((a) => a.n)).toEqual([2048, 2048, 904]);
    const all = Buffer.concat(writes.map((a) => Buffer.from(a.b!)));
    for (const i of [0, 1, 2047, 2048, 4999]) expect(all.readUInt16LE(2 * i)).toBe((i * 7 + 1) & 0xffff);
  });

  it('exits with a clear message when the supervisor goes away', async () => {
    peer = await start((acc, conn) => {
      conn.socket.destroy();
      return new Promise(() => {});
    });
    const r = await runTrapped(CHAN, ['inb'], { socket: peer.path, guest: 'g5' });
    expect(r.code).toBe(TRAP_EXIT_CHANNEL_LOST);
    expect(r.stderr).toContain('muxtrap: channel to the supervisor lost');
  });

  it.skipIf(noLspci !== null)(titled('connects only the process that reaches for hardware, not the shell that inherits the shim', noLspci), async () => {
    peer = await start(scripted());
    const r = await runTrapped('sh', ['-c', 'true; lspci -A intel-conf1 -n; true'], { socket: peer.path, guest: 'sh' });
    expect(r.code).toBe(0);
    wentThrough(peer);
    expect(r.stdout).toContain('8086:7010');
    expect(peer.conns).toHaveLength(1); // one hello: lspci's, not sh's
  });

  it('answers each of several threads trapping at once (irqs arriving inside their accesses)', async () => {
    peer = await start(scripted());
    const r = await runTrapped(CHAN, ['threads'], { socket: peer.path, guest: 'threads' });
    expect(r.stdout).not.toContain('FAIL');
    expect(r.stdout).toContain('ok wrong answers over 4 threads x 300 inb');
    expect(r.code).toBe(0);
    wentThrough(peer);
    expect(peer.accesses.filter((a) => a.a === 0x511)).toHaveLength(1200);
  });

  it('gives a fork()ed child its own connection instead of sharing the parent\'s', async () => {
    peer = await start(scripted());
    const r = await runTrapped(CHAN, ['fork'], { socket: peer.path, guest: 'forker' });
    expect(r.stdout).not.toContain('FAIL');
    expect(r.code).toBe(0);
    wentThrough(peer);
    expect(peer.conns.map((c) => c.hello.guest)).toEqual(['forker', 'forker']);
    // Each offers DMA memory of its own (a memfd: the child's, not the parent's), named nowhere.
    expect(peer.conns.map((c) => c.dmaInode !== null && c.hello.dma?.path === undefined)).toEqual([true, true]);
    expect(peer.conns[0].dmaInode).not.toBe(peer.conns[1].dmaInode);
    expect(readdirSync('/dev/shm').filter((f) => f.startsWith('muxvisor-dma-'))).toEqual([]);
    // The shim offers its slot (a memfd: nothing named to leave behind) to either peer.
    expect(peer.conns.map((c) => c.hello.slot?.size)).toEqual([8192, 8192]);
    expect(peer.protocolErrors).toEqual([]);
  });

  it('ends the program with a message when the supervisor sends a malformed frame', async () => {
    peer = await start((acc, conn) => {
      conn.socket.write(Buffer.from([3, 0, 0, 0, 0x81, 0xa1, 0x74])); // a map whose value is cut off
      return new Promise(() => {});
    });
    const r = await runTrapped(CHAN, ['inb'], { socket: peer.path, guest: 'g7' });
    expect(r.code).toBe(TRAP_EXIT_CHANNEL_LOST);
    expect(r.signal).toBeNull();
    expect(r.stderr).toContain('muxtrap: channel to the supervisor lost (malformed frame from the supervisor)');
  });

  it('stops the program at its first hardware use when the supervisor socket is unreachable', async () => {
    const r = await runTrapped(CHAN, ['inb'], { socket: '/nonexistent/muxvisor.sock', guest: 'g6' });
    expect(r.code).toBe(TRAP_EXIT_CHANNEL_LOST);
    expect(r.stderr).toMatch(/muxtrap: connect \/nonexistent\/muxvisor.sock: No such file or directory/);
    expect(r.stdout).toBe('');
  });
});
