#!/usr/bin/env node
// Writes a newc ("070701") cpio archive, the format the kernel unpacks as an initramfs, from a
// list read on stdin, in the spirit of the kernel's usr/gen_init_cpio:
//
//   dir   NAME MODE
//   file  NAME SOURCE MODE
//   slink NAME TARGET
//   nod   NAME MODE c|b MAJOR MINOR
//
// (MODE in octal, permission bits only). Why not cpio(1): the output must be the same bytes for
// the same inputs on any host and without root, so every entry is owned by 0:0, carries the same
// mtime (SOURCE_DATE_EPOCH, default 0), gets inode numbers in archive order, and the entries are
// written sorted by name (a folder always before what it holds). A device node (/dev/console, so
// the kernel can open the initial console before /init mounts devtmpfs) needs no mknod here.
//
// Usage: node mkcpio.mjs OUT.cpio < list

import { readFileSync, writeFileSync } from 'node:fs';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

const out = process.argv[2];
if (!out) {
  console.error('usage: node mkcpio.mjs OUT.cpio < list');
  process.exit(2);
}
const mtime = Number(process.env.SOURCE_DATE_EPOCH ?? 0);
if (!Number.isInteger(mtime) || mtime < 0) throw new Error(`SOURCE_DATE_EPOCH=${process.env.SOURCE_DATE_EPOCH} is not a whole number of seconds`);

const entries = [];
const seen = new Set();
for (const [i, raw] of readFileSync(0, 'utf8').split('\n').entries()) {
  const line = raw.trim();
  if (!line || line.startsWith('#')) continue;
  const f = line.split(/\s+/);
  const where = `stdin line ${i + 1}`;
  const name = f[1]?.replace(/^\/+/, '');
  if (!name) throw new Error(`${where}: no name`);
  if (seen.has(name)) throw new Error(`${where}: ${name} listed twice`);
  seen.add(name);
  const perm = (s) => {
    if (!/^[0-7]{3,4}$/.test(s ?? '')) throw new Error(`${where}: mode ${s} is not octal permission bits`);
    return parseInt(s, 8);
  };
  switch (f[0]) {
    case 'dir':
      entries.push({ name, mode: S_IFDIR | perm(f[2]), nlink: 2, data: Buffer.alloc(0) });
      break;
    case 'file':
      entries.push({ name, mode: S_IFREG | perm(f[3]), nlink: 1, data: readFileSync(f[2]) });
      break;
    case 'slink':
      entries.push({ name, mode: S_IFLNK | 0o777, nlink: 1, data: Buffer.from(f[2] ?? '') });
      break;
    case 'nod': {
      const type = f[3] === 'c' ? S_IFCHR : f[3] === 'b' ? S_IFBLK : null;
      if (type === null) throw new Error(`${where}: device type ${f[3]} is not c or b`);
      entries.push({ name, mode: type | perm(f[2]), nlink: 1, data: Buffer.alloc(0), rmaj: Number(f[4]), rmin: Number(f[5]) });
      break;
    }
    default:
      throw new Error(`${where}: unknown entry type ${f[0]}`);
  }
}
// Plain code-unit order: a prefix sorts first, so a folder precedes its contents.
entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

const hex = (n) => n.toString(16).padStart(8, '0');
const pad4 = (n) => Buffer.alloc((4 - (n % 4)) % 4);
const parts = [];
const put = (e, ino) => {
  const name = Buffer.from(`${e.name}\0`);
  const header =
    '070701' +
    [ino, e.mode, 0, 0, e.nlink, mtime, e.data.length, 0, 0, e.rmaj ?? 0, e.rmin ?? 0, name.length, 0].map(hex).join('');
  parts.push(Buffer.from(header, 'ascii'), name, pad4(110 + name.length), e.data, pad4(e.data.length));
};
entries.forEach((e, i) => put(e, i + 1));
put({ name: 'TRAILER!!!', mode: 0, nlink: 1, data: Buffer.alloc(0) }, 0);
writeFileSync(out, Buffer.concat(parts));
