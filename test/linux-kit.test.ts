// The Linux guest kit (native/linux-guest/build-kit.sh) under QEMU's own devices, no muxvisor
// yet: Debian's kernel boots our initramfs on TCG, /init loads the ATA/SCSI/ext4 modules and runs
// a workload named on the kernel command line. The disk workload makes an ext4 file system with
// the guest's files on a 64 MiB image and a raw pattern after it; the host then checks the image
// itself (e2fsck -fn, debugfs, the raw bytes) against content it generates on its own side,
// in DMA (MWDMA2) and in PIO (muxvisor.pio=1 → libata dma=0). Boot times are printed.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { checkImage, sha256 } from './helpers/linux-kit-check.ts';
import { LINUX_KIT_DIR, missing, titled } from './helpers/requires.ts';

const why = missing('qemu', 'linux-kit', 'e2fsprogs');

const IMAGE_BYTES = 64 * 1024 * 1024;
// Generous: TCG on two shared cores; a disk run takes about 15 s of CPU.
const BOOT_TIMEOUT_MS = 150_000;
const TEST_TIMEOUT_MS = 200_000;

interface Boot {
  /** The console, \r removed. */
  lines: string[];
  /** The words after "MUXVISOR-RESULT", or null when no result line came. */
  result: string[] | null;
  /** key=value pairs from every MUXVISOR-INFO line. */
  info: Map<string, string>;
  /** Host milliseconds from spawning QEMU to /init's first line. */
  initHostMs: number | null;
  /** The kernel's uptime (s) when /init printed its first line. */
  initUptime: number | null;
  /** Host milliseconds from spawning QEMU to its exit. */
  totalMs: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Boots the kit with `append` on `image` (QEMU's PIIX3 IDE), until QEMU exits (poweroff). */
function boot(append: string, image: string): Promise<Boot> {
  const args = [
    '-accel', 'tcg', '-m', '256', '-nographic', '-no-reboot',
    '-kernel', join(LINUX_KIT_DIR, 'bzImage'),
    '-initrd', join(LINUX_KIT_DIR, 'initramfs.cpio.gz'),
    '-append', `console=ttyS0 ${append}`,
    '-drive', `file=${image},if=ide,format=raw`,
  ];
  const t0 = performance.now();
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const b: Boot = { lines: [], result: null, info: new Map(), initHostMs: null, initUptime: null, totalMs: 0, code: null, signal: null };
  let partial = '';
  const take = (line: string): void => {
    b.lines.push(line);
    const init = /MUXVISOR-INIT uptime=([\d.]+)/.exec(line);
    if (init && b.initHostMs === null) {
      b.initHostMs = performance.now() - t0;
      b.initUptime = Number(init[1]);
    }
    const res = /MUXVISOR-RESULT (.*)$/.exec(line);
    if (res) b.result = res[1].trim().split(/\s+/);
    const info = /MUXVISOR-INFO (.*)$/.exec(line);
    if (info) for (const m of info[1].matchAll(/([\w+]+)=(\S+)/g)) b.info.set(m[1], m[2]);
  };
  child.stdout.setEncoding('latin1');
  child.stdout.on('data', (chunk: string) => {
    const parts = (partial + chunk).replace(/\r/g, '').split('\n');
    partial = parts.pop() ?? '';
    parts.forEach(take);
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c: string) => (stderr += c));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no poweroff within ${BOOT_TIMEOUT_MS} ms; console tail:\n${[...b.lines, partial].slice(-40).join('\n')}`));
    }, BOOT_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (partial) take(partial);
      b.totalMs = performance.now() - t0;
      b.code = code;
      b.signal = signal;
      if (stderr.trim()) b.lines.push(`[qemu stderr] ${stderr.trim()}`);
      resolve(b);
    });
  });
}

const tail = (b: Boot): string => b.lines.slice(-60).join('\n');

function report(name: string, b: Boot): void {
  // A line per boot in the test output: the figures the kit's README quotes.
  console.info(
    `${name}: /init at ${b.initUptime?.toFixed(2)} s kernel uptime, ${((b.initHostMs ?? NaN) / 1000).toFixed(2)} s after spawning QEMU; ` +
      `powered off after ${(b.totalMs / 1000).toFixed(2)} s; ${b.result?.join(' ')}; ${[...b.info].map(([k, v]) => `${k}=${v}`).join(' ')}`,
  );
}

describe.skipIf(why !== null)(titled("Linux guest kit on QEMU's own devices", why), () => {
  // Made in beforeAll: a skipped suite's body still runs, its hooks do not.
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'muxvisor-linux-kit-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const image = (name: string): string => {
    const p = join(dir, name);
    writeFileSync(p, '');
    truncateSync(p, IMAGE_BYTES); // sparse
    return p;
  };

  it('the manifest names the kernel and matches the built files', ({ expect }) => {
    const m = JSON.parse(readFileSync(join(LINUX_KIT_DIR, 'manifest.json'), 'utf8')) as {
      kernel: string;
      packages: { package: string; version: string }[];
      modules: string[];
      outputs: Record<string, { bytes: number; sha256: string }>;
    };
    expect(m.kernel).toMatch(/^\d+\.\d+\.\d+-\d+-amd64$/);
    expect(m.packages.map((p) => p.package)).toEqual(expect.arrayContaining([`linux-image-${m.kernel}`, 'busybox-static', 'e2fsprogs']));
    // Dependencies before their users.
    const at = (n: string): number => m.modules.indexOf(n);
    for (const [before, after] of [['scsi_mod', 'sd_mod'], ['libata', 'ata_piix'], ['jbd2', 'ext4'], ['crc32c_generic', 'ext4'], ['8390', 'ne2k_pci']]) {
      expect(at(before), before).toBeGreaterThanOrEqual(0);
      expect(at(before), `${before} before ${after}`).toBeLessThan(at(after));
    }
    for (const [name, o] of Object.entries(m.outputs)) {
      const data = readFileSync(join(LINUX_KIT_DIR, name));
      expect(data.length, name).toBe(o.bytes);
      expect(sha256(data), name).toBe(o.sha256);
    }
  });

  it.concurrent(
    'disk workload in DMA: ext4 with the guest files, e2fsck clean, raw pattern after it',
    async ({ expect }) => {
      const img = image('dma.img');
      const b = await boot('muxvisor.workload=disk muxvisor.guest=g1', img);
      report('disk/DMA', b);
      expect(b.result?.slice(0, 2), tail(b)).toEqual(['disk', 'ok']);
      expect(b.info.get('xfer'), tail(b)).toBe('MWDMA2');
      expect(b.info.get('scsi')).toBe('0:0:0:0');
      checkImage(expect, img, 'g1', 8, b);
    },
    TEST_TIMEOUT_MS,
  );

  it.concurrent(
    'disk workload in PIO (muxvisor.pio=1 passes libata dma=0)',
    async ({ expect }) => {
      const img = image('pio.img');
      const b = await boot('muxvisor.workload=disk muxvisor.guest=pio-guest muxvisor.pio=1', img);
      report('disk/PIO', b);
      expect(b.result?.slice(0, 2), tail(b)).toEqual(['disk', 'ok']);
      expect(b.info.get('xfer'), tail(b)).toBe('PIO4');
      checkImage(expect, img, 'pio-guest', 8, b);
    },
    TEST_TIMEOUT_MS,
  );

  it.concurrent(
    'probe and net workloads, and an unknown one',
    async ({ expect }) => {
      const img = image('probe.img');
      const p = await boot('muxvisor.workload=probe', img);
      report('probe', p);
      expect(p.result, tail(p)).toEqual([
        'probe', 'ok', 'dev=sda', 'scsi=0:0:0:0', `sectors=${IMAGE_BYTES / 512}`, `bytes=${IMAGE_BYTES}`,
        'model=QEMU_HARDDISK', 'serial=QM00001', 'xfer=MWDMA2',
      ]);
      const n = await boot('muxvisor.workload=net', img);
      report('net', n);
      // Without an address the NIC workload says what it needs (test/linux-nic.test.ts runs it).
      expect(n.result?.slice(0, 3), tail(n)).toEqual(['net', 'fail', 'muxvisor.ip=A.B.C.D/N']);
      const u = await boot('muxvisor.workload=nonesuch', img);
      expect(u.result?.slice(0, 3), tail(u)).toEqual(['nonesuch', 'fail', 'unknown']);
      // The image was never written.
      expect(readFileSync(img).every((x) => x === 0)).toBe(true);
    },
    TEST_TIMEOUT_MS,
  );
});
