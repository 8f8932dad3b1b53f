// Hole 3, closed: a socket guest's DMA memory is a memfd of its own, offered by descriptor
// number (hello.dma.fd) and checked on the descriptor the supervisor opened (PROTOCOL.md
// "DMA memory", src/channel/dma-memory.ts). Every other offer is refused with the reason,
// counted, and opens nothing: no FIFO, device, symlink or named file is ever opened on a
// peer's word (each case counts this process's descriptors on the offered file before and
// after). A property test draws offers at random and checks the rule both ways.

import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants as fsc,
  fchownSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseConfig } from '../src/config/load.ts';
import { Supervisor } from '../src/supervisor.ts';
import { PeerClient } from '../src/channel/peer-client.ts';
import { SEAL, memfdCreate } from '../src/channel/peer-cred.ts';
import { DMA_CMD_FILL, SCR_DATA0, SCR_DMA_ADDR, SCR_DMA_CMD, SCR_DMA_LEN, SCR_IRQ_STATUS } from '../src/devices/scratch.ts';
import { RawPeer } from './helpers/raw-peer.ts';
import { missing, titled } from './helpers/requires.ts';

const REGS = 0x300;
const IRQ = 5;
const BASE = 0x4000_0000;
const SEALED = SEAL.SHRINK | SEAL.GROW | SEAL.SEAL; // what the shim and the KVM runner add
const O_PATH = 0o10000000; // linux: not in fs.constants
const noRoot = missing('root');

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'mv-memfd-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A descriptor of this process, closed after the test. */
function held(fd: number): number {
  cleanups.push(() => closeSync(fd));
  return fd;
}

function memfd(size: number, seals: number): number {
  return held(memfdCreate('mv-test-dma', size, seals));
}

async function supervisor(lines?: Array<Record<string, unknown>>) {
  const dir = tmp();
  const sock = join(dir, 'mv.sock');
  const grants = [{ device: 'scr', shared: true }];
  const config = parseConfig({
    socket: sock,
    devices: [{ id: 'scr', kind: 'scratch', map: { regs: REGS }, properties: { irq: IRQ } }],
    guests: [
      { name: 'alpha', grants },
      { name: 'bravo', grants },
    ],
  });
  const logger = lines ? pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l)) }) : undefined;
  const sup = new Supervisor({ config, ...(logger ? { logger } : {}) });
  await sup.listen();
  cleanups.push(() => sup.close());
  return { sup, sock, dir };
}

/** How many of this process's descriptors refer to the file `st` (dev/ino) right now. */
function descriptorsOn(st: { dev: number; ino: number }): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const s = statSync(`/proc/self/fd/${fd}`);
      if (s.dev === st.dev && s.ino === st.ino) n++;
    } catch {
      // closed meanwhile (the readdir's own descriptor, a socket going away)
    }
  }
  return n;
}

/** Offers `fd` (this process's) as DMA memory of `size` bytes; the reply, and whether it opened anything. */
async function offer(sock: string, guest: string, fd: number | unknown, size: number): Promise<{ reply: Record<string, unknown> | null; peer: RawPeer }> {
  const p = await RawPeer.connect(sock);
  cleanups.push(() => p.close());
  const reply = await p.hello({ guest, dma: { fd, base: BASE, size } });
  return { reply, peer: p };
}

/** Has the scratch device fill `len` bytes at bus address `at` with `byte` through guest `p`. */
async function fill(p: RawPeer, at: number, len: number, byte: number): Promise<void> {
  await p.pio(REGS + SCR_DATA0, 'w', byte);
  await p.pio(REGS + SCR_DMA_ADDR, 'w', at);
  await p.pio(REGS + SCR_DMA_LEN, 'w', len);
  await p.pio(REGS + SCR_DMA_CMD, 'w', DMA_CMD_FILL);
  await p.irq(IRQ, 1);
  await p.pio(REGS + SCR_IRQ_STATUS, 'w', 1);
  await p.irq(IRQ, 0);
}

function bytesAt(fd: number, pos: number, n: number): number[] {
  const b = Buffer.alloc(n);
  readSync(fd, b, 0, n, pos);
  return [...b];
}

describe('DMA memory offered by descriptor (hole 3)', () => {
  it('takes a sealed memfd of the peer, larger than the window or exactly it; the device writes there and only inside the window', async () => {
    const { sup, sock } = await supervisor();
    for (const [size, window] of [[4096, 4096], [3 * 4096, 5000]]) {
      const fd = memfd(size, SEAL.SHRINK); // shrinking is the seal that matters
      const { reply, peer } = await offer(sock, 'alpha', fd, window);
      expect(reply).toMatchObject({ t: 'welcome', guest: 'alpha' });
      await fill(peer, BASE + window - 8, 8, 0x5a);
      expect(bytesAt(fd, window - 9, 10)).toEqual([0, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0]);
      // One byte past the window: the device's DMA is refused, the memfd unchanged.
      await fill(peer, BASE + window - 4, 8, 0x77);
      expect(bytesAt(fd, window - 4, 4)).toEqual([0x5a, 0x5a, 0x5a, 0x5a]);
      await peer.close();
    }
    expect(sup.stats().channel.dmaRefused ?? 0).toBe(0);
  });

  // Each case: what to offer (made in this process), the announced window, the reason.
  const cases: Array<[string, () => { fd: number; path?: string }, number, RegExp, string | null]> = [
    ['an unsealed memfd', () => ({ fd: memfd(4096, 0) }), 4096, /not sealed against shrinking/, null],
    ['a memfd sealed against growing only', () => ({ fd: memfd(4096, SEAL.GROW | SEAL.SEAL) }), 4096, /not sealed against shrinking/, null],
    ['a memfd sealed against writing', () => ({ fd: memfd(4096, SEAL.SHRINK | SEAL.WRITE) }), 4096, /sealed against writing/, null],
    ['a memfd sealed against future writes', () => ({ fd: memfd(4096, SEAL.SHRINK | SEAL.FUTURE_WRITE) }), 4096, /sealed against writing/, null],
    ['a memfd smaller than the window', () => ({ fd: memfd(4095, SEALED) }), 4096, /holds 4095 bytes; the window announces 4096/, null],
    [
      "a memfd of another user's",
      () => {
        const fd = memfd(4096, SEALED);
        fchownSync(fd, 65534, 65534);
        return { fd };
      },
      4096,
      /belongs to uid 65534, and the peer runs as uid 0/,
      noRoot,
    ],
    [
      'a named file',
      () => {
        const p = join(tmp(), 'named');
        writeFileSync(p, Buffer.alloc(4096));
        return { fd: held(openSync(p, 'r+')), path: p };
      },
      4096,
      /is a file with a name \(.*named, 1 link\), not a memfd/,
      null,
    ],
    [
      'an unlinked file (not a memfd)',
      () => {
        const p = join(tmp(), 'gone');
        writeFileSync(p, Buffer.alloc(4096));
        const fd = held(openSync(p, 'r+'));
        unlinkSync(p);
        return { fd };
      },
      4096,
      /not a memfd \(it cannot carry seals\)|not sealed against shrinking/,
      null,
    ],
    [
      'a FIFO',
      () => {
        const p = join(tmp(), 'fifo');
        execFileSync('mkfifo', [p]);
        return { fd: held(openSync(p, fsc.O_RDWR | fsc.O_NONBLOCK)), path: p };
      },
      4096,
      /is a FIFO/,
      null,
    ],
    ['a character device', () => ({ fd: held(openSync('/dev/null', 'r+')), path: '/dev/null' }), 4096, /is a character device/, null],
    [
      'a symbolic link (an O_PATH descriptor of the link itself)',
      () => {
        const d = tmp();
        writeFileSync(join(d, 'victim'), Buffer.alloc(4096));
        symlinkSync(join(d, 'victim'), join(d, 'link'));
        return { fd: held(openSync(join(d, 'link'), O_PATH | fsc.O_NOFOLLOW)) };
      },
      4096,
      /is a symbolic link/,
      null,
    ],
    ['a directory', () => ({ fd: held(openSync(tmp(), 'r')) }), 4096, /is a directory/, null],
    ['a descriptor the peer does not have', () => ({ fd: 999_999 }), 4096, /the peer has no descriptor 999999/, null],
    ['an empty window', () => ({ fd: memfd(4096, SEALED) }), 0, /the window is empty/, null],
  ];

  for (const [what, make, window, why, skip] of cases) {
    it.skipIf(skip !== null)(titled(`refuses ${what}, opening nothing, counted; the supervisor serves on`, skip), async () => {
      const { sup, sock } = await supervisor();
      const { fd, path } = make();
      const st = fd === 999_999 ? null : (path && !path.startsWith('/dev/') ? statSync(path) : fstatSync(fd));
      const before = st ? descriptorsOn(st) : 0;
      const { reply } = await offer(sock, 'alpha', fd, window);
      expect(reply).toMatchObject({ t: 'err', code: 'refused' });
      expect(reply!.msg).toMatch(new RegExp(`^hello\\.dma\\.fd ${fd}: `));
      expect(reply!.msg).toMatch(why);
      if (st) expect(descriptorsOn(st)).toBe(before);
      expect(sup.stats().channel.dmaRefused).toBe(1);
      expect(sup.stats().guests.find((g) => g.guest === 'alpha')!.connected).toBe(false);
      const next = await PeerClient.connect(sock, { guest: 'alpha' });
      await next.bye();
    });
  }

  it('refuses a dma.fd that is not a descriptor number, and one offered over TCP', async () => {
    const { sup } = await supervisor();
    const tcp = (await sup.listen({ host: '127.0.0.1', port: 0 })) as import('node:net').AddressInfo;
    const { sock } = await supervisor();
    for (const bad of [-1, 'three', 2 ** 40, 1.5]) {
      const { reply } = await offer(sock, 'alpha', bad, 4096);
      expect(reply).toMatchObject({ t: 'err', code: 'refused' });
      expect(reply!.msg).toMatch(/^hello\.dma\.fd (-1|1099511627776): not a descriptor number \(a uint\)$/);
    }
    const fd = memfd(4096, SEALED);
    const p = await RawPeer.connect({ port: tcp.port });
    cleanups.push(() => p.close());
    const reply = await p.hello({ guest: 'alpha', dma: { fd, base: BASE, size: 4096 }, token: sup.issueToken('alpha') });
    expect(reply).toMatchObject({ t: 'err', code: 'refused', msg: `hello.dma.fd ${fd}: a TCP peer cannot share memory` });
  });

  it("one memfd is one guest's: a second guest offering it is refused without the first one's name, until the first has left", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const { sock } = await supervisor(lines);
    const fd = memfd(8192, SEALED);
    const first = await offer(sock, 'alpha', fd, 8192);
    expect(first.reply?.t).toBe('welcome');
    const second = await offer(sock, 'bravo', fd, 4096);
    expect(second.reply).toMatchObject({ t: 'err', code: 'refused', msg: `hello.dma.fd ${fd}: is already the DMA memory of another guest` });
    expect(String(second.reply!.msg)).not.toContain('alpha');
    expect(lines.find((l) => String(l.msg).startsWith('DMA memory refused'))).toMatchObject({ guest: 'bravo', holder: 'alpha' });
    // Not through another descriptor of the same memfd either (the inode is what counts).
    const again = held(openSync(`/proc/self/fd/${fd}`, 'r+'));
    expect((await offer(sock, 'bravo', again, 4096)).reply).toMatchObject({ t: 'err', code: 'refused' });
    await first.peer.close();
    for (let i = 0; ; i++) {
      const r = await offer(sock, 'bravo', fd, 4096);
      if (r.reply?.t === 'welcome') break;
      expect(i).toBeLessThan(100); // alpha's session is closed (and the memfd released) a turn after its bye
      await new Promise((res) => setTimeout(res, 10));
    }
  });

  it('offers that pass every check are taken, all others refused: random memfds, files and owners', async () => {
    const { sup, sock } = await supervisor();
    const dir = tmp();
    const kinds = ['memfd', 'named', 'fifo', 'device'] as const;
    const sealSets = [0, SEAL.SHRINK, SEALED, SEAL.GROW | SEAL.SEAL, SEAL.SHRINK | SEAL.WRITE, SEAL.SHRINK | SEAL.FUTURE_WRITE];
    let made = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          kind: fc.constantFrom(...kinds),
          seals: fc.constantFrom(...sealSets),
          foreign: noRoot === null ? fc.boolean() : fc.constant(false),
          window: fc.constantFrom(1, 512, 4096, 8197),
          extra: fc.constantFrom(-4096, -1, 0, 1, 4096),
        }),
        async ({ kind, seals, foreign, window, extra }) => {
          const size = Math.max(0, window + extra);
          let fd: number;
          if (kind === 'memfd') fd = memfdCreate('mv-prop', size, seals);
          else if (kind === 'named') {
            const p = join(dir, `f${made++}`);
            writeFileSync(p, Buffer.alloc(size));
            fd = openSync(p, 'r+');
          } else if (kind === 'fifo') {
            const p = join(dir, `p${made++}`);
            execFileSync('mkfifo', [p]);
            fd = openSync(p, fsc.O_RDWR | fsc.O_NONBLOCK);
          } else fd = openSync('/dev/zero', 'r+');
          try {
            if (foreign && kind !== 'device') fchownSync(fd, 65534, 65534);
            const st = fstatSync(fd);
            const before = descriptorsOn(st);
            const ok = kind === 'memfd' && (seals & SEAL.SHRINK) !== 0 && (seals & (SEAL.WRITE | SEAL.FUTURE_WRITE)) === 0 && !foreign && size >= window;
            const { reply, peer } = await offer(sock, 'alpha', fd, window);
            expect(reply?.t).toBe(ok ? 'welcome' : 'err');
            if (ok) {
              await fill(peer, BASE + window - 1, 1, 0xa5);
              expect(bytesAt(fd, window - 1, 1)).toEqual([0xa5]);
            } else expect(descriptorsOn(st)).toBe(before);
            await peer.close();
            while (sup.stats().guests.find((g) => g.guest === 'alpha')!.connected) await new Promise((r) => setTimeout(r, 2));
          } finally {
            closeSync(fd);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
