// The host's side of the Linux guest kit's disk workload (native/linux-guest/workloads/disk):
// the content it writes, generated here independently, and the checks of an image (or a window
// extracted from a shared image) after a run: e2fsck -fn, dumpe2fs, debugfs, the raw pattern.

import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import type { ExpectStatic } from 'vitest';
import { type KitRun, parseKitConsole } from '../../src/guests/linux-kit/console.ts';
import { kitFileContent as fileContent, kitRawContent as rawContent, sha256 } from '../../src/guests/linux-kit/content.ts';
import { e2fsTool } from './requires.ts';

export { type KitRun, parseKitConsole, sha256 };

function tool(name: string): string {
  const p = e2fsTool(name);
  if (!p) throw new Error(`${name} not found`);
  return p;
}

/** e2fsprogs on the image, from the host; stdout as bytes. */
function e2(name: string, args: string[]): Buffer {
  return execFileSync(tool(name), args, { maxBuffer: 256 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Checks the image as the host sees it after a disk run of `guest` with `nfiles` files.
 * `diskBytes`: the disk's size as the guest saw it (its window): the last 4 MiB are the raw
 * region on a disk of at least 32 MiB, the last 1 MiB below that.
 */
export function checkImage(expect: ExpectStatic, image: string, guest: string, nfiles: number, b: KitRun, diskBytes = 64 * 1024 * 1024): void {
  // A clean file system: e2fsck -n exits 0 only when it found nothing to fix.
  const fsck = (() => {
    try {
      execFileSync(tool('e2fsck'), ['-fn', image], { stdio: 'pipe' });
      return 0;
    } catch (e) {
      const err = e as { status?: number; stdout?: Buffer };
      return `${err.status}: ${err.stdout?.toString()}`;
    }
  })();
  expect(fsck).toBe(0);

  // It ends where the raw region begins.
  const fsBytes = Number(b.info.get('fs_bytes'));
  const rawStart = Number(b.info.get('raw_start'));
  const rawBytes = Number(b.info.get('raw_bytes'));
  const wantRaw = (diskBytes >= 32 * 1024 * 1024 ? 4 : 1) * 1024 * 1024;
  expect(fsBytes).toBe(diskBytes - wantRaw);
  expect(rawStart).toBe(fsBytes);
  expect(rawBytes).toBe(wantRaw);
  const head = e2('dumpe2fs', ['-h', image]).toString();
  const field = (n: string): number => Number(new RegExp(`^${n}:\\s+(\\d+)`, 'm').exec(head)?.[1]);
  expect(field('Block count') * field('Block size')).toBe(fsBytes);
  expect(/^Filesystem volume name:\s+(\S+)/m.exec(head)?.[1]).toBe(guest);
  expect(head).toMatch(/^Filesystem features:.*\bextent\b/m); // ext4, not ext2

  // Exactly the guest's files in the root, with the content generated here, and a manifest that says so.
  const names = e2('debugfs', ['-R', 'ls -p /', image])
    .toString()
    .split('\n')
    .map((l) => l.split('/')[5])
    .filter((n): n is string => n !== undefined && n !== '.' && n !== '..');
  const files = Array.from({ length: nfiles }, (_, k) => `${guest}-${String(k).padStart(2, '0')}.dat`);
  expect(names.sort()).toEqual(['MANIFEST.sha256', 'lost+found', ...files].sort());
  const manifest = new Map(
    e2('debugfs', ['-R', 'cat /MANIFEST.sha256', image])
      .toString()
      .trim()
      .split('\n')
      .map((l) => {
        const [sum, name] = l.split(/\s+/);
        return [name, sum] as const;
      }),
  );
  expect([...manifest.keys()].sort()).toEqual([...files].sort());
  let bytes = 0;
  files.forEach((name, k) => {
    const want = fileContent(guest, k);
    const got = e2('debugfs', ['-R', `cat /${name}`, image]);
    expect(got.length, name).toBe(want.length);
    expect(sha256(got), name).toBe(sha256(want));
    expect(manifest.get(name), name).toBe(sha256(want));
    bytes += got.length;
  });
  expect(b.result).toEqual(['disk', 'ok', `files=${nfiles}`, `bytes=${bytes}`]);

  // The raw region holds the pattern, each sector naming its own LBA.
  const raw = Buffer.alloc(rawBytes);
  const fd = openSync(image, 'r');
  try {
    expect(readSync(fd, raw, 0, rawBytes, rawStart)).toBe(rawBytes);
  } finally {
    closeSync(fd);
  }
  expect(sha256(raw)).toBe(sha256(rawContent(guest, rawStart / 512, rawBytes / 512)));
}

