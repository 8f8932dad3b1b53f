// The host's check of a kit guest's disk after the disk workload (native/linux-guest/workloads/
// disk), on a window of a shared image: extracted to a file, then e2fsck -fn (Debian's
// e2fsprogs) must find it clean, the root must hold exactly the guest's files with the content
// generated here and a manifest that says so, and the raw region after the file system must
// hold the pattern. Returns the problems found (none: the guest's work is all there).

import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary } from '../../backends/qtest.ts';
import type { KitRun } from './console.ts';
import { kitFileContent, kitRawContent, sha256 } from './content.ts';

const MIB = 1024 * 1024;

/** An e2fsprogs program: on PATH, or in /usr/sbin or /sbin (not on a user's PATH). */
export function e2fsProgram(name: string): string | null {
  return findBinary(name) ?? findBinary(join('/usr/sbin', name)) ?? findBinary(join('/sbin', name));
}

export interface KitWindow {
  image: string;
  /** Where the guest's disk starts in the image, and its size (bytes). */
  offset: number;
  bytes: number;
  guest: string;
  files: number;
  /** The guest's console, parsed: its result line and the layout it printed. */
  run: KitRun;
}

/** Copies `bytes` at `offset` of `image` into a new file (the window as the guest's whole disk). */
function extract(image: string, offset: number, bytes: number, to: string): void {
  const src = openSync(image, 'r');
  const dst = openSync(to, 'w');
  try {
    const buf = Buffer.alloc(4 * MIB);
    for (let done = 0; done < bytes; ) {
      const n = readSync(src, buf, 0, Math.min(buf.length, bytes - done), offset + done);
      if (n <= 0) throw new Error(`${image} ends at byte ${offset + done}, inside the window (${offset}+${bytes})`);
      writeSync(dst, buf, 0, n);
      done += n;
    }
  } finally {
    closeSync(src);
    closeSync(dst);
  }
}

export function checkKitWindow(w: KitWindow): string[] {
  const problems: string[] = [];
  const tools = Object.fromEntries(['e2fsck', 'debugfs'].map((t) => [t, e2fsProgram(t)]));
  const absent = Object.entries(tools).filter(([, p]) => !p).map(([t]) => t);
  if (absent.length) return [`${absent.join(', ')} not found (apt-get install e2fsprogs): the window cannot be checked`];
  if (w.run.result?.[0] !== 'disk' || w.run.result[1] !== 'ok') return [`the guest's workload did not end ok: ${w.run.result?.join(' ') ?? 'no result line'}`];
  const dir = mkdtempSync(join(tmpdir(), `muxvisor-check-${w.guest}-`));
  const file = join(dir, 'window.img');
  try {
    extract(w.image, w.offset, w.bytes, file);
    try {
      execFileSync(tools.e2fsck!, ['-fn', file], { stdio: 'pipe' });
    } catch (e) {
      const err = e as { status?: number; stdout?: Buffer };
      problems.push(`e2fsck -fn exited ${err.status}: ${err.stdout?.toString().trim().split('\n').slice(0, 8).join(' | ')}`);
    }
    const debugfs = (cmd: string): Buffer => execFileSync(tools.debugfs!, ['-R', cmd, file], { maxBuffer: 256 * MIB, stdio: ['ignore', 'pipe', 'pipe'] });
    const names = debugfs('ls -p /')
      .toString()
      .split('\n')
      .map((l) => l.split('/')[5])
      .filter((n): n is string => n !== undefined && n !== '' && n !== '.' && n !== '..')
      .sort();
    const files = Array.from({ length: w.files }, (_, k) => `${w.guest}-${String(k).padStart(2, '0')}.dat`);
    const want = ['MANIFEST.sha256', 'lost+found', ...files].sort();
    if (names.join(' ') !== want.join(' ')) problems.push(`the root holds ${names.join(' ') || 'nothing'}, not ${want.join(' ')}`);
    const manifest = new Map(
      debugfs('cat /MANIFEST.sha256')
        .toString()
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/).reverse() as [string, string]),
    );
    files.forEach((name, k) => {
      const sum = sha256(kitFileContent(w.guest, k));
      if (!names.includes(name)) return;
      if (sha256(debugfs(`cat /${name}`)) !== sum) problems.push(`${name} differs from what the guest wrote`);
      if (manifest.get(name) !== sum) problems.push(`MANIFEST.sha256 has ${manifest.get(name) ?? 'no line'} for ${name}`);
    });
    const rawStart = Number(w.run.info.get('raw_start'));
    const rawBytes = Number(w.run.info.get('raw_bytes'));
    if (!(rawStart > 0 && rawBytes > 0 && rawStart + rawBytes <= w.bytes)) problems.push(`the console names no raw region inside the disk (raw_start=${rawStart} raw_bytes=${rawBytes})`);
    else {
      const raw = Buffer.alloc(rawBytes);
      const fd = openSync(file, 'r');
      try {
        readSync(fd, raw, 0, rawBytes, rawStart);
      } finally {
        closeSync(fd);
      }
      if (sha256(raw) !== sha256(kitRawContent(w.guest, rawStart / 512, rawBytes / 512))) problems.push(`the raw region (byte ${rawStart}, ${rawBytes} bytes) differs from the pattern`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return problems;
}
