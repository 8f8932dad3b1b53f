// Hole 3, as the hostile guest found it: a hello naming its DMA memory by path
// (`hello.dma.path`) made the supervisor resolve the name, then open it again (a symlink
// swapped in between pointed the second open at any file), follow symlinks, and take a file
// another user owns or another guest uses. The device then wrote guest-chosen bytes there.
// Each attack here drives the scratch device's DMA fill into the named memory and checks the
// bytes of the file it aimed at. On the code before the fix each hello was welcomed (and the
// victim written); now a path is refused, whatever it names, and nothing is written.
//
// Only raw frames are used, so this file runs unchanged against the code before the fix.

import { afterEach, describe, expect, it } from 'vitest';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.ts';
import { Supervisor } from '../src/supervisor.ts';
import { DMA_CMD_FILL, SCR_DATA0, SCR_DMA_ADDR, SCR_DMA_CMD, SCR_DMA_LEN, SCR_IRQ_STATUS } from '../src/devices/scratch.ts';
import { RawPeer } from './helpers/raw-peer.ts';
import { missing, titled } from './helpers/requires.ts';

const REGS = 0x300;
const IRQ = 5;
const BASE = 0x8000;
const SIZE = 4096;
const noRoot = missing('root');

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function supervisor(): Promise<{ sup: Supervisor; sock: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'mv-dmapath-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const sock = join(dir, 'mv.sock');
  const grants = [{ device: 'scr', shared: true }];
  const config = parseConfig({
    socket: sock,
    devices: [{ id: 'scr', kind: 'scratch', map: { regs: REGS }, properties: { irq: IRQ } }],
    guests: [
      { name: 'a', grants },
      { name: 'b', grants },
    ],
  });
  const sup = new Supervisor({ config });
  await sup.listen();
  cleanups.push(() => sup.close());
  return { sup, sock, dir };
}

/** A /dev/shm file of SIZE bytes of `fill`, removed after the test. */
function shmFile(name: string, fill: number): string {
  const p = join('/dev/shm', `mv-test-${process.pid}-${name}`);
  writeFileSync(p, Buffer.alloc(SIZE, fill));
  cleanups.push(() => rmSync(p, { force: true }));
  return p;
}

/**
 * Says hello as `guest` with DMA memory named `path`; when welcomed, has the device fill the
 * first 16 bytes of that memory with 0x5a (what a guest would have it write there).
 */
async function attack(sock: string, guest: string, path: string): Promise<{ welcomed: boolean; err?: string }> {
  const p = await RawPeer.connect(sock);
  try {
    const r = await p.hello({ guest, dma: { path, base: BASE, size: SIZE } });
    if (r?.t !== 'welcome') return { welcomed: false, err: r ? `${r.code}: ${r.msg}` : 'closed' };
    await p.pio(REGS + SCR_DATA0, 'w', 0x5a);
    await p.pio(REGS + SCR_DMA_ADDR, 'w', BASE);
    await p.pio(REGS + SCR_DMA_LEN, 'w', 16);
    await p.pio(REGS + SCR_DMA_CMD, 'w', DMA_CMD_FILL);
    await p.irq(IRQ, 1);
    await p.pio(REGS + SCR_IRQ_STATUS, 'w', 1);
    await p.irq(IRQ, 0);
    return { welcomed: true };
  } finally {
    await p.close();
  }
}

describe('DMA memory named by path (hole 3)', () => {
  it('a symlink swapped in between the check and the open does not make the device write into another file', async () => {
    const { sock, dir } = await supervisor();
    const victim = join(dir, 'victim'); // outside /dev/shm: the old check would refuse it by name
    writeFileSync(victim, Buffer.alloc(SIZE, 0x11));
    const target = join('/dev/shm', `mv-test-${process.pid}-swap`);
    cleanups.push(() => rmSync(target, { force: true }));
    // The swapper: the name is a plain /dev/shm file one moment, a symlink to the victim the next.
    const swapper: ChildProcess = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('fs'); const [t, v] = process.argv.slice(1);
         for (let i = 0; ; i++) {
           fs.writeFileSync(t + '.f', Buffer.alloc(${SIZE})); fs.renameSync(t + '.f', t);
           try { fs.unlinkSync(t + '.l'); } catch {} fs.symlinkSync(v, t + '.l'); fs.renameSync(t + '.l', t);
         }`,
        target,
        victim,
      ],
      { stdio: 'ignore' },
    );
    cleanups.push(() => {
      swapper.kill('SIGKILL');
      rmSync(`${target}.f`, { force: true });
      rmSync(`${target}.l`, { force: true });
    });
    while (!existsSync(target)) await new Promise((r) => setTimeout(r, 5)); // the swapper has started
    const outcomes: { welcomed: boolean; err?: string }[] = [];
    for (let i = 0; i < 100 && readFileSync(victim)[0] === 0x11; i++) outcomes.push(await attack(sock, 'a', target));
    expect(readFileSync(victim).equals(Buffer.alloc(SIZE, 0x11))).toBe(true);
    expect(outcomes.filter((o) => o.welcomed)).toEqual([]);
    for (const o of outcomes) expect(o.err).toMatch(/^refused: hello\.dma\.path is not accepted/);
  });

  it.skipIf(noRoot !== null)(titled("a file another user owns (another guest's DMA file) is not taken", noRoot), async () => {
    const { sock } = await supervisor();
    const theirs = shmFile('nobody', 0x22);
    chownSync(theirs, 65534, 65534);
    chmodSync(theirs, 0o600);
    const r = await attack(sock, 'a', theirs);
    expect(r.welcomed).toBe(false);
    expect(r.err).toMatch(/^refused: /);
    expect(readFileSync(theirs).equals(Buffer.alloc(SIZE, 0x22))).toBe(true);
  });

  it('a symlink in /dev/shm to another guest\'s file is not followed', async () => {
    const { sock } = await supervisor();
    const theirs = shmFile('other', 0x33);
    const link = join('/dev/shm', `mv-test-${process.pid}-link`);
    symlinkSync(theirs, link);
    cleanups.push(() => rmSync(link, { force: true }));
    const r = await attack(sock, 'a', link);
    expect(r.welcomed).toBe(false);
    expect(readFileSync(theirs).equals(Buffer.alloc(SIZE, 0x33))).toBe(true);
  });

  it('one file is not the DMA memory of two guests', async () => {
    const { sock } = await supervisor();
    const shared = shmFile('shared', 0x44);
    const held = await RawPeer.connect(sock);
    cleanups.push(() => held.close());
    const first = await held.hello({ guest: 'b', dma: { path: shared, base: BASE, size: SIZE } });
    const second = await attack(sock, 'a', shared);
    // Neither may have it (a path is refused); before the fix both had it, and a's fill reached b's memory.
    expect([first?.t, second.welcomed]).toEqual(['err', false]);
    expect(readFileSync(shared).equals(Buffer.alloc(SIZE, 0x44))).toBe(true);
  });

  it('a refused DMA offer is counted and ends that hello only: the supervisor serves the next guest', async () => {
    const { sup, sock } = await supervisor();
    const r = await attack(sock, 'a', shmFile('plain', 0x55));
    expect(r.welcomed).toBe(false);
    const p = await RawPeer.connect(sock);
    cleanups.push(() => p.close());
    expect((await p.hello({ guest: 'a' }))?.t).toBe('welcome');
    expect(sup.stats().channel.dmaRefused).toBe(1);
  });
});
