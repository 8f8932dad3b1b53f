// Malformed messages from a raw peer over a socketpair: each is counted under its kind,
// logged once, closes only that connection (the peer sees EOF), and leaves no descriptor
// behind; a well-behaved connection served beside them all goes on working.

import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScratchDevice } from '../src/devices/scratch.ts';
import {
  encodeMessage,
  type MalformedKind,
  MPQEMU_CMD_BAR_READ,
  MPQEMU_CMD_BAR_WRITE,
  MPQEMU_CMD_DEVICE_RESET,
  MPQEMU_CMD_PCI_CFGREAD,
  MPQEMU_CMD_PCI_CFGWRITE,
  MPQEMU_CMD_RET,
  MPQEMU_CMD_SET_IRQFD,
  MPQEMU_CMD_SYNC_SYSMEM,
  type MpqemuMessage,
} from '../src/trap/mpqemu/codec.ts';
import { MpqemuLink } from '../src/trap/mpqemu/link.ts';
import { mpqemuAddon, mpqemuAddonMissing } from '../src/trap/mpqemu/native.ts';
import { type CloseInfo, type MpqemuConnection, MpqemuServer } from '../src/trap/mpqemu/server.ts';
import { SHM_ADDON } from '../src/channel/slot.ts';
import { createRequire } from 'node:module';
import { makeEdges, BufferMemory, IrqRecorder } from './helpers/qemu.ts';
import { missingFile, titled } from './helpers/requires.ts';

const skip = mpqemuAddonMissing() ?? missingFile(SHM_ADDON);

const F_SEAL_SEAL = 1, F_SEAL_SHRINK = 2, F_SEAL_GROW = 4;
const IO_BASE = 0xc000, MMIO_BASE = 0xfebf0000;

/** A header and body, exactly as given (no validation). */
function raw(cmd: number, size: bigint | number, body: Buffer = Buffer.alloc(Number(size))): Buffer {
  const b = Buffer.alloc(16 + body.length);
  b.writeInt32LE(cmd, 0);
  b.writeBigUInt64LE(BigInt(size), 8);
  body.copy(b, 16);
  return b;
}
const bytesOf = (m: MpqemuMessage): Buffer => encodeMessage(m).bytes;
const cfg = (cmd: 2 | 3, addr: number, len: number, val = 0): Buffer => {
  const body = Buffer.alloc(12);
  body.writeUInt32LE(addr, 0);
  body.writeUInt32LE(val, 4);
  body.writeInt32LE(len, 8);
  return raw(cmd, 12, body);
};
const bar = (cmd: 4 | 5, addr: number, size: number, memory: number, val = 0n): Buffer => {
  const body = Buffer.alloc(24);
  body.writeBigUInt64LE(BigInt(addr), 0);
  body.writeBigUInt64LE(val, 8);
  body.writeUInt32LE(size, 16);
  body.writeUInt8(memory, 20);
  return raw(cmd, 24, body);
};
const sysmem = (sections: Array<[gpa: bigint, size: bigint, offset: bigint]>): Buffer => {
  const body = Buffer.alloc(192);
  sections.forEach(([g, s, o], i) => {
    body.writeBigUInt64LE(g, 8 * i);
    body.writeBigUInt64LE(s, 64 + 8 * i);
    body.writeBigInt64LE(o, 128 + 8 * i);
  });
  return raw(MPQEMU_CMD_SYNC_SYSMEM, 192, body);
};
/** Valid config writes that program BAR0 (I/O) and BAR1 (MMIO) and turn decoding on. */
const programBars = (): Buffer[] => [cfg(MPQEMU_CMD_PCI_CFGWRITE, 0x10, 4, IO_BASE), cfg(MPQEMU_CMD_PCI_CFGWRITE, 0x14, 4, MMIO_BASE), cfg(MPQEMU_CMD_PCI_CFGWRITE, 0x04, 2, 3)];

interface Step {
  bytes: Buffer;
  /** Descriptors to send: made fresh for the step, closed by the test after sending. */
  fds?: () => number[];
}
interface Case {
  name: string;
  kind: MalformedKind;
  /** Valid messages first (each answered by a RET), then the bad one. */
  steps: Step[];
  /** Close the peer after sending (a message cut short). */
  hangUp?: boolean;
}

describe.skipIf(skip)(titled('mpqemu: malformed messages disconnect only their guest', skip), () => {
  const addon = skip ? null! : mpqemuAddon();
  const shm = skip ? null! : (createRequire(import.meta.url)(SHM_ADDON) as { memfd(name: string, size: number, seals: number): number });
  const efd = (): number => addon.eventfd();
  const sealedRam = (size = 0x10000): number => shm.memfd('ram', size, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  const logLines: Array<{ kind?: string; guest?: string; msg: string }> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void logLines.push(JSON.parse(s)) });
  const server = new MpqemuServer({ logger });
  const device = () => new ScratchDevice(makeEdges(new BufferMemory(0, 0x1000), new IrqRecorder()));
  let fdsBefore = 0;
  let good: MpqemuConnection;
  let goodPeer: MpqemuLink;
  const goodRets: Array<bigint | null> = [];

  const cases: Case[] = [
    { name: 'command 8', kind: 'unknown-command', steps: [{ bytes: raw(8, 0) }] },
    { name: 'command -1', kind: 'unknown-command', steps: [{ bytes: raw(-1, 0) }] },
    { name: 'command 0x7fffffff with a body', kind: 'unknown-command', steps: [{ bytes: raw(0x7fff_ffff, 12) }] },
    { name: 'PCI_CFGREAD of 8 body bytes', kind: 'bad-size', steps: [{ bytes: raw(MPQEMU_CMD_PCI_CFGREAD, 8) }] },
    { name: 'DEVICE_RESET with a body', kind: 'bad-size', steps: [{ bytes: raw(MPQEMU_CMD_DEVICE_RESET, 8) }] },
    { name: 'a header announcing 4096 body bytes', kind: 'bad-size', steps: [{ bytes: raw(MPQEMU_CMD_BAR_READ, 4096, Buffer.alloc(0)) }] },
    { name: 'a header announcing 2^64-1 body bytes', kind: 'bad-size', steps: [{ bytes: raw(MPQEMU_CMD_SYNC_SYSMEM, 0xffff_ffff_ffff_ffffn, Buffer.alloc(0)) }] },
    { name: 'SET_IRQFD with one fd', kind: 'bad-fds', steps: [{ bytes: raw(MPQEMU_CMD_SET_IRQFD, 0), fds: () => [efd()] }] },
    { name: 'SET_IRQFD with no fd', kind: 'bad-fds', steps: [{ bytes: raw(MPQEMU_CMD_SET_IRQFD, 0) }] },
    { name: 'BAR_READ with an fd', kind: 'bad-fds', steps: [...programBars().map((bytes) => ({ bytes })), { bytes: bar(MPQEMU_CMD_BAR_READ, IO_BASE, 4, 0), fds: () => [efd()] }] },
    { name: 'SYNC_SYSMEM without fds', kind: 'bad-fds', steps: [{ bytes: sysmem([[0n, 0x10000n, 0n]]) }] },
    { name: 'SYNC_SYSMEM with 8 fds', kind: 'bad-fds', steps: [{ bytes: sysmem([[0n, 0x10000n, 0n]]), fds: () => Array.from({ length: 8 }, () => sealedRam()) }] },
    { name: 'DEVICE_RESET with 9 fds (more than a message can carry)', kind: 'bad-fds', steps: [{ bytes: raw(MPQEMU_CMD_DEVICE_RESET, 0), fds: () => Array.from({ length: 9 }, efd) }] },
    { name: 'descriptors sent with the body', kind: 'bad-fds', steps: [{ bytes: cfg(MPQEMU_CMD_PCI_CFGREAD, 0, 4).subarray(0, 16) }, { bytes: cfg(MPQEMU_CMD_PCI_CFGREAD, 0, 4).subarray(16), fds: () => [efd()] }] },
    { name: 'BAR_READ of 3 bytes', kind: 'bad-access-size', steps: [...programBars().map((bytes) => ({ bytes })), { bytes: bar(MPQEMU_CMD_BAR_READ, IO_BASE, 3, 0) }] },
    { name: 'BAR_WRITE of 16 bytes', kind: 'bad-access-size', steps: [...programBars().map((bytes) => ({ bytes })), { bytes: bar(MPQEMU_CMD_BAR_WRITE, MMIO_BASE, 16, 1) }] },
    { name: 'BAR_READ of 0 bytes', kind: 'bad-access-size', steps: [{ bytes: bar(MPQEMU_CMD_BAR_READ, IO_BASE, 0, 0) }] },
    { name: 'PCI_CFGREAD of 3 bytes', kind: 'bad-access-size', steps: [{ bytes: cfg(MPQEMU_CMD_PCI_CFGREAD, 0, 3) }] },
    { name: 'PCI_CFGREAD at 0x100', kind: 'bad-field', steps: [{ bytes: cfg(MPQEMU_CMD_PCI_CFGREAD, 0x100, 4) }] },
    { name: 'PCI_CFGWRITE of 4 bytes at 0xfe', kind: 'bad-field', steps: [{ bytes: cfg(MPQEMU_CMD_PCI_CFGWRITE, 0xfe, 4, 1) }] },
    { name: 'BAR access with memory flag 2', kind: 'bad-field', steps: [...programBars().map((bytes) => ({ bytes })), { bytes: bar(MPQEMU_CMD_BAR_READ, MMIO_BASE, 4, 2) }] },
    { name: 'BAR_READ before any BAR is programmed', kind: 'bad-address', steps: [{ bytes: bar(MPQEMU_CMD_BAR_READ, IO_BASE, 1, 0) }] },
    { name: 'BAR_READ with BARs programmed but decoding off', kind: 'bad-address', steps: [...programBars().slice(0, 2).map((bytes) => ({ bytes })), { bytes: bar(MPQEMU_CMD_BAR_READ, IO_BASE, 1, 0) }] },
    { name: 'BAR_READ just past the I/O BAR', kind: 'bad-address', steps: [...programBars().map((bytes) => ({ bytes })), { bytes: bar(MPQEMU_CMD_BAR_READ, IO_BASE + 64, 1, 0) }] },
    { name: 'BAR_READ straddling the end of the I/O BAR', kind: 'bad-address', steps: [...programBars().map((bytes) => ({ bytes })), { bytes: bar(MPQEMU_CMD_BAR_READ, IO_BASE + 62, 4, 0) }] },
    { name: 'the MMIO BAR addressed as I/O', kind: 'bad-address', steps: [...programBars().map((bytes) => ({ bytes })), { bytes: bar(MPQEMU_CMD_BAR_WRITE, MMIO_BASE, 4, 0) }] },
    { name: 'BAR_READ at 2^64-1', kind: 'bad-address', steps: [...programBars().map((bytes) => ({ bytes })), { bytes: bar(MPQEMU_CMD_BAR_READ, 0, 1, 1).fill(0xff, 16, 24) }] },
    { name: 'RET sent to the remote', kind: 'unexpected-command', steps: [{ bytes: bytesOf({ cmd: MPQEMU_CMD_RET, value: 0n }) }] },
    { name: 'a header, then hang-up', kind: 'truncated', steps: [{ bytes: cfg(MPQEMU_CMD_PCI_CFGREAD, 0, 4).subarray(0, 16) }], hangUp: true },
    { name: 'half a header, then hang-up', kind: 'truncated', steps: [{ bytes: raw(MPQEMU_CMD_DEVICE_RESET, 0).subarray(0, 7) }], hangUp: true },
    { name: 'guest RAM in an unsealed memfd', kind: 'bad-memory', steps: [{ bytes: sysmem([[0n, 0x10000n, 0n]]), fds: () => [shm.memfd('ram', 0x10000, 0)] }] },
    { name: 'guest RAM past the end of its memfd', kind: 'bad-memory', steps: [{ bytes: sysmem([[0n, 0x20000n, 0n]]), fds: () => [sealedRam(0x10000)] }] },
    { name: 'guest RAM in an eventfd', kind: 'bad-memory', steps: [{ bytes: sysmem([[0n, 0x1000n, 0n]]), fds: () => [efd()] }] },
    { name: 'a RAM section of size 0', kind: 'bad-memory', steps: [{ bytes: sysmem([[0n, 0n, 0n]]), fds: () => [sealedRam()] }] },
    { name: 'a RAM section at a negative offset', kind: 'bad-memory', steps: [{ bytes: sysmem([[0n, 0x1000n, -4096n]]), fds: () => [sealedRam()] }] },
    {
      name: 'a second, bad SYNC_SYSMEM after a good one',
      kind: 'bad-memory',
      steps: [{ bytes: sysmem([[0n, 0x10000n, 0n]]), fds: () => [sealedRam()] }, { bytes: sysmem([[0n, 0x10000n, 0n], [0x100000n, 0x10000n, 0n]]), fds: () => [sealedRam(), shm.memfd('ram', 0x10000, 0)] }],
    },
  ];

  beforeAll(() => {
    fdsBefore = readdirSync('/proc/self/fd').length;
    const [ours, peer] = addon.socketpair();
    good = server.attach(ours, { name: 'good', device: device() });
    goodPeer = new MpqemuLink(peer, {
      message: (m) => void (m.cmd === MPQEMU_CMD_RET && goodRets.push(m.value)),
      malformed: () => {},
      end: () => {},
    });
  });

  afterAll(() => {
    server.close();
    goodPeer?.close();
  });

  for (const [i, c] of cases.entries()) {
    it(`${c.name}: ${c.kind}`, async () => {
      const before = server.counters.get(`malformed.${c.kind}`);
      const malformed = server.counters.get('malformed');
      const [ours, peerFd] = addon.socketpair();
      const conn = server.attach(ours, { name: `bad${i}`, device: device() });
      const closed = once(conn, 'close') as Promise<[CloseInfo]>;
      const rets: Array<bigint | null> = [];
      let eof!: () => void;
      const sawEof = new Promise<void>((r) => (eof = r));
      const peer = new MpqemuLink(peerFd, {
        message: (m) => void (m.cmd === MPQEMU_CMD_RET && rets.push(m.value)),
        malformed: () => eof(),
        end: () => eof(),
      });
      for (const step of c.steps) {
        const fds = step.fds?.() ?? [];
        peer.sendRaw(step.bytes, fds);
        for (const fd of fds) addon.close(fd);
      }
      if (c.hangUp) peer.close();
      const [info] = await closed;
      if (!c.hangUp) await sawEof; // the server closed the socket
      peer.close();
      expect(info.reason).toBe('malformed');
      expect((info.error as Error & { kind: string }).kind).toBe(c.kind);
      expect(server.counters.get(`malformed.${c.kind}`)).toBe(before + 1);
      expect(server.counters.get('malformed')).toBe(malformed + 1);
      const valid = c.steps.length - 1 - (c.name === 'descriptors sent with the body' ? 1 : 0);
      const answered = c.steps.slice(0, valid).filter((s) => s.bytes.readInt32LE(0) !== MPQEMU_CMD_SYNC_SYSMEM).length;
      if (!c.hangUp) expect(rets.length).toBe(answered);
      expect(logLines.filter((l) => l.guest === `bad${i}` && l.kind === c.kind)).toHaveLength(1);
      expect(server.connections()).toEqual([good]);
    });
  }

  it('the well-behaved guest was served throughout, and nothing leaked', async () => {
    goodPeer.send({ cmd: MPQEMU_CMD_PCI_CFGREAD, addr: 0, val: 0, len: 4 });
    goodPeer.send({ cmd: MPQEMU_CMD_DEVICE_RESET });
    await new Promise<void>((resolve) => {
      const t = setInterval(() => goodRets.length >= 2 && (clearInterval(t), resolve()), 1);
    });
    expect(goodRets).toEqual([0x0005_1b36n, null]);
    expect(good.closed).toBeNull();
    expect(server.counters.get('malformed')).toBe(cases.length);
    expect(server.counters.get('disconnects')).toBe(cases.length);
    server.close();
    goodPeer.close();
    expect(readdirSync('/proc/self/fd').length).toBe(fdsBefore);
  });
});
