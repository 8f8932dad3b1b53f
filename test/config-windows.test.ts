// Guests kept apart by the configuration (src/config/windows.ts): overlapping disk windows,
// a window past the end of its disk, a raw range grant that reaches a disk whole, a device
// without a MUX reached by two guests, and a window nothing would apply are configuration
// errors naming the JSON paths, unless the grants say "shared": true. Checked when the
// config is parsed (what it says), loaded (image sizes) and when the devices are opened.

import { linkSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../src/config/load.ts';
import { muxRouterFactory } from '../src/mux/router-factory.ts';
import { Supervisor } from '../src/supervisor.ts';
import { startNbdkit } from './helpers/nbd-server.ts';
import { missing, titled } from './helpers/requires.ts';

type Grant = Record<string, unknown>;

function issues(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error('expected a ConfigError');
}

async function issuesAsync(p: Promise<unknown>): Promise<string[]> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  if (e === null) throw new Error('expected a ConfigError');
  expect(e).toBeInstanceOf(ConfigError);
  return (e as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
}

function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mvwin-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** One memory disk of 1 MiB (2048 sectors) and three guests with the given grants. */
const disk = (...grants: Grant[][]) => ({
  devices: [{ id: 'd0', kind: 'ata', backend: { type: 'memory', sizeMiB: 1 } }],
  guests: grants.map((g, i) => ({ name: `g${i}`, grants: g })),
});
const win = (startLba: number, sectors: number, extra: Grant = {}): Grant => ({ device: 'd0', window: { startLba, sectors }, ...extra });

describe('disk windows in the config', () => {
  it('overlapping windows of two guests name both grants', () => {
    const c = disk([{ irq: 14 }, win(0, 1024)], [win(1024, 512)], [win(1500, 100)]);
    expect(issues(() => parseConfig(c))).toEqual([
      'guests[2].grants[0].window: overlaps guests[1].grants[0].window (guest "g1", LBA 1024-1535) on disk "d0" (from LBA 1500): the guests would overwrite each other; make the windows disjoint, or mark both grants "shared": true',
    ]);
    // Adjacent windows do not overlap.
    expect(() => parseConfig(disk([win(0, 1024)], [win(1024, 1024)]))).not.toThrow();
  });

  it('"shared": true on both grants allows an overlap; on one of them it does not', () => {
    expect(() => parseConfig(disk([win(0, 1024, { shared: true })], [win(512, 1024, { shared: true })]))).not.toThrow();
    expect(issues(() => parseConfig(disk([win(0, 1024, { shared: true })], [win(512, 1024)])))).toEqual([
      expect.stringMatching(/^guests\[1\]\.grants\[0\]\.window: overlaps guests\[0\]\.grants\[0\]\.window \(guest "g0", LBA 0-1023\)/),
    ]);
  });

  it('a grant without a window is the whole disk: it overlaps every other guest', () => {
    expect(issues(() => parseConfig(disk([win(100, 10)], [{ device: 'd0' }])))).toEqual([
      'guests[1].grants[0]: overlaps guests[0].grants[0].window (guest "g0", LBA 100-109) on disk "d0" (from LBA 100): the guests would overwrite each other; make the windows disjoint, or mark both grants "shared": true',
    ]);
    expect(issues(() => parseConfig(disk([{ device: 'd0' }], [{ device: 'd0' }])))).toHaveLength(1);
    expect(() => parseConfig(disk([{ device: 'd0', shared: true }], [{ device: 'd0', shared: true }]))).not.toThrow();
    // One guest alone on the whole disk is fine.
    expect(() => parseConfig(disk([{ device: 'd0' }], [{ irq: 3 }]))).not.toThrow();
  });

  it('a device granted twice to one guest is ambiguous', () => {
    expect(issues(() => parseConfig(disk([win(0, 10), win(10, 10)])))).toEqual([
      'guests[0].grants[1]: device "d0" is granted to this guest twice (also guests[0].grants[0]): give one grant per device',
    ]);
  });

  it('a window past the end of a memory disk names its size', () => {
    expect(issues(() => parseConfig(disk([win(2000, 49)])))).toEqual([
      'guests[0].grants[0].window: window LBA 2000-2048 ends past the end of disk "d0", which has 2048 sectors (1 MiB, devices[0].backend.sizeMiB 1)',
    ]);
    expect(() => parseConfig(disk([win(2000, 48)]))).not.toThrow();
  });

  it('loadConfig checks windows against an existing image, or the size it creates', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'small.img'), Buffer.alloc(100 * 512 + 7)); // a trailing partial sector is not addressable
    const file = join(dir, 'c.json');
    const write = (backend: Grant, grants: Grant[]) =>
      writeFileSync(file, JSON.stringify({ devices: [{ id: 'd0', kind: 'ata', backend }], guests: [{ name: 'g', grants }] }));
    write({ type: 'file', path: 'small.img' }, [win(90, 11)]);
    expect(await issuesAsync(loadConfig(file))).toEqual([
      `guests[0].grants[0].window: window LBA 90-100 ends past the end of disk "d0", which has 100 sectors (0.049 MiB, image ${join(dir, 'small.img')})`,
    ]);
    // An existing image is used as it is, whatever sizeMiB says.
    write({ type: 'file', path: 'small.img', sizeMiB: 64, create: true }, [win(0, 101)]);
    expect((await issuesAsync(loadConfig(file)))[0]).toMatch(/which has 100 sectors/);
    write({ type: 'file', path: 'new.img', sizeMiB: 2, create: true }, [win(4000, 97)]);
    expect(await issuesAsync(loadConfig(file))).toEqual([
      'guests[0].grants[0].window: window LBA 4000-4096 ends past the end of disk "d0", which has 4096 sectors (2 MiB, devices[0].backend.sizeMiB 2, created)',
    ]);
    write({ type: 'file', path: 'new.img', sizeMiB: 2, create: true }, [win(4000, 96)]);
    await expect(loadConfig(file)).resolves.toBeTruthy();
    // A qemu backend's raw image.
    writeFileSync(file, JSON.stringify({ devices: [{ id: 'q', kind: 'qemu-ide', backend: { type: 'qemu', image: join(dir, 'small.img') } }], guests: [{ name: 'g', grants: [{ device: 'q', window: { startLba: 50, sectors: 51 } }] }] }));
    expect((await issuesAsync(loadConfig(file)))[0]).toMatch(/^guests\[0\]\.grants\[0\]\.window: window LBA 50-100 ends past the end of disk "q", which has 100 sectors/);
  });
});

describe('devices on one image', () => {
  const two = (b0: Grant, b1: Grant) => ({
    devices: [
      { id: 'd0', kind: 'ata', backend: b0 },
      { id: 'd1', kind: 'ata', backend: b1 },
    ],
    guests: [
      { name: 'a', grants: [{ device: 'd0' }] },
      { name: 'b', grants: [{ device: 'd1' }] },
    ],
  });

  it('two devices on one image file or NBD export are refused unless both are read-only', () => {
    expect(issues(() => parseConfig(two({ type: 'file', path: 'x.img' }, { type: 'file', path: './x.img' })))).toEqual([
      'devices[1].backend.path: device "d1" uses the image of device "d0" (devices[0].backend.path): the guests of each would overwrite the other\'s; give each device its own image, or make both read-only',
    ]);
    expect(() => parseConfig(two({ type: 'file', path: 'x.img', readOnly: true }, { type: 'file', path: 'x.img', readOnly: true }))).not.toThrow();
    expect(() => parseConfig(two({ type: 'file', path: 'x.img' }, { type: 'file', path: 'y.img' }))).not.toThrow();
    expect(issues(() => parseConfig(two({ type: 'nbd', socket: '/run/n.sock', exportName: 'e' }, { type: 'nbd', socket: '/run/n.sock', exportName: 'e' })))).toEqual([
      expect.stringMatching(/^devices\[1\]\.backend: device "d1" uses the image of device "d0"/),
    ]);
    expect(() => parseConfig(two({ type: 'nbd', socket: '/run/n.sock', exportName: 'e' }, { type: 'nbd', socket: '/run/n.sock', exportName: 'f' }))).not.toThrow();
  });

  it('loadConfig knows one image by two names (a hard link)', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'x.img'), Buffer.alloc(4096));
    linkSync(join(dir, 'x.img'), join(dir, 'y.img'));
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify(two({ type: 'file', path: 'x.img' }, { type: 'file', path: 'y.img' })));
    expect(await issuesAsync(loadConfig(file))).toEqual([expect.stringMatching(/^devices\[1\]\.backend\.path: device "d1" uses the image of device "d0"/)]);
  });
});

describe('when the devices are opened', () => {
  async function start(config: ReturnType<typeof parseConfig>, mux = true): Promise<Supervisor> {
    const sup = new Supervisor({ config, configSource: 'c.json', ...(mux ? { createRouter: await muxRouterFactory(config) } : {}) });
    onTestFinished(() => sup.close());
    await sup.start();
    return sup;
  }

  it('a window past the end of an image is found when the disk is opened (a config built without loadConfig)', async () => {
    const dir = tmp();
    const image = join(dir, 'd.img');
    writeFileSync(image, Buffer.alloc(64 * 512));
    const config = parseConfig({ devices: [{ id: 'd0', kind: 'ata', backend: { type: 'file', path: image } }], guests: [{ name: 'g', grants: [win(32, 64)] }] });
    const err = await start(config).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(
      'c.json: invalid configuration:\n  guests[0].grants[0].window: window LBA 32-95 ends past the end of disk "d0", which has 64 sectors (0.031 MiB, as opened: device d0)',
    );
  });

  it.skipIf(missing('nbdkit') !== null)(titled('a window past the end of an NBD export is refused before any guest attaches', missing('nbdkit')), async () => {
    const s = await startNbdkit(['memory', '1M']);
    onTestFinished(() => s.stop());
    const config = parseConfig({ devices: [{ id: 'd0', kind: 'ata', backend: { type: 'nbd', socket: s.socket } }], guests: [{ name: 'g', grants: [win(2040, 16)] }] });
    expect(await issuesAsync(start(config))).toEqual([expect.stringMatching(/^guests\[0\]\.grants\[0\]\.window: window LBA 2040-2055 ends past the end of disk "d0", which has 2048 sectors/)]);
  });

  it('a raw range grant over a disk\'s ports reaches the whole disk: it overlaps the windows', async () => {
    const config = parseConfig(disk([win(0, 1024)], [{ space: 'pio', start: '0x1f0', end: '0x1f7' }]));
    expect(await issuesAsync(start(config))).toEqual([
      'guests[1].grants[0]: overlaps guests[0].grants[0].window (guest "g0", LBA 0-1023) on disk "d0" (from LBA 0): the guests would overwrite each other; make the windows disjoint, or mark both grants "shared": true',
    ]);
    // A range that touches no region of the disk reaches nothing of it.
    await start(parseConfig(disk([win(0, 1024)], [{ space: 'pio', start: '0x80', end: '0x80' }])));
  });

  it('a device without a MUX reached by two guests is refused unless every grant is shared', async () => {
    const scratch = (...grants: Grant[][]) =>
      parseConfig({ devices: [{ id: 's', kind: 'scratch', map: { regs: '0x300' } }], guests: grants.map((g, i) => ({ name: `g${i}`, grants: g })) });
    expect(await issuesAsync(start(scratch([{ device: 's' }], [{ space: 'pio', start: '0x304', end: '0x307' }]), false))).toEqual([
      'guests[1].grants[0]: device "s" has no MUX (pass-through router) and is also reached by guests[0].grants[0] (guest "g0", the whole device): two guests would drive it at once; give a device without a MUX to one guest, or mark every grant of it "shared": true',
    ]);
    await start(scratch([{ device: 's', shared: true }], [{ space: 'pio', start: '0x304', end: '0x307', shared: true }]), false);
    await start(scratch([{ device: 's' }], [{ space: 'pio', start: '0x400', end: '0x407' }]), false);
  });

  it('a window on a disk without a MUX would not be applied: refused', async () => {
    const config = parseConfig(disk([win(0, 1024)]));
    expect(await issuesAsync(start(config, false))).toEqual([
      'guests[0].grants[0].window: device "d0" has no MUX (pass-through router), so nothing would apply this window: the guest would reach the whole device',
    ]);
    await start(config, true);
  });

  it('muxvisor run names the file and both grants', async () => {
    const dir = tmp();
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ socket: 's.sock', ...disk([win(0, 1024)], [{ space: 'pio', start: '0x1f0', end: '0x1f7' }]) }));
    const { spawnSync } = await import('node:child_process');
    const cli = join(import.meta.dirname, '../src/bin/muxvisor.mjs');
    const r = spawnSync(process.execPath, [cli, '--log-level', 'silent', 'run', file], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`${file}: invalid configuration:\n  guests[1].grants[0]: overlaps guests[0].grants[0].window (guest "g0", LBA 0-1023) on disk "d0"`);
  });
});
