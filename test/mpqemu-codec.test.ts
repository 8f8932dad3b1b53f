// The multi-process protocol codec and the proxied function's BAR bookkeeping, without QEMU:
// every valid message round-trips byte for byte; BAR sizing, programming and routing
// follow the config writes as QEMU's proxy and PCI core make them.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ScratchDevice } from '../src/devices/scratch.ts';
import {
  decodeMessage,
  encodeMessage,
  MPQEMU_CMD_BAR_READ,
  MPQEMU_CMD_BAR_WRITE,
  MPQEMU_CMD_DEVICE_RESET,
  MPQEMU_CMD_PCI_CFGREAD,
  MPQEMU_CMD_PCI_CFGWRITE,
  MPQEMU_CMD_RET,
  MPQEMU_CMD_SET_IRQFD,
  MPQEMU_CMD_SYNC_SYSMEM,
  MpqemuMalformed,
  type MpqemuMessage,
} from '../src/trap/mpqemu/codec.ts';
import { ProxiedFunction } from '../src/trap/mpqemu/function.ts';
import { BufferMemory, IrqRecorder, makeEdges } from './helpers/qemu.ts';

const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const fd = fc.integer({ min: 0, max: 1 << 20 });
const message: fc.Arbitrary<MpqemuMessage> = fc.oneof(
  fc.integer({ min: 1, max: 7 }).chain((n) =>
    fc.record({
      cmd: fc.constant(MPQEMU_CMD_SYNC_SYSMEM),
      gpas: fc.array(u64, { minLength: 8, maxLength: 8 }),
      sizes: fc.array(u64, { minLength: 8, maxLength: 8 }),
      offsets: fc.array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), { minLength: 8, maxLength: 8 }),
      fds: fc.array(fd, { minLength: n, maxLength: n }),
    }),
  ),
  fc.record({ cmd: fc.constant(MPQEMU_CMD_RET), value: fc.option(u64, { nil: null }) }),
  fc.record({
    cmd: fc.constantFrom(MPQEMU_CMD_PCI_CFGREAD, MPQEMU_CMD_PCI_CFGWRITE),
    addr: fc.integer({ min: 0, max: 0xffff_ffff }),
    val: fc.integer({ min: 0, max: 0xffff_ffff }),
    len: fc.constantFrom(1 as const, 2 as const, 4 as const),
  }),
  fc.record({ cmd: fc.constantFrom(MPQEMU_CMD_BAR_READ, MPQEMU_CMD_BAR_WRITE), addr: u64, val: u64, size: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const), memory: fc.boolean() }),
  fc.record({ cmd: fc.constant(MPQEMU_CMD_SET_IRQFD), fds: fc.tuple(fd, fd) }),
  fc.record({ cmd: fc.constant(MPQEMU_CMD_DEVICE_RESET) }),
) as fc.Arbitrary<MpqemuMessage>;

describe('mpqemu codec', () => {
  it('every valid message decodes to itself and re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(message, (m) => {
        const { bytes, fds } = encodeMessage(m);
        const back = decodeMessage({ bytes, fds });
        expect(back).toEqual(m);
        expect(encodeMessage(back).bytes.equals(bytes)).toBe(true);
      }),
    );
  });

  it('has the x86-64 layout of QEMU 7.2 (header 16, config 12, BAR 24, SYNC_SYSMEM 192)', () => {
    const size = (m: MpqemuMessage) => encodeMessage(m).bytes.length - 16;
    expect(size({ cmd: MPQEMU_CMD_PCI_CFGREAD, addr: 0, val: 0, len: 4 })).toBe(12);
    expect(size({ cmd: MPQEMU_CMD_BAR_READ, addr: 0n, val: 0n, size: 4, memory: true })).toBe(24);
    expect(size({ cmd: MPQEMU_CMD_SYNC_SYSMEM, gpas: [], sizes: [], offsets: [], fds: [3] })).toBe(192);
    expect(size({ cmd: MPQEMU_CMD_RET, value: 5n })).toBe(8);
    expect(size({ cmd: MPQEMU_CMD_RET, value: null })).toBe(0);
    const bar = encodeMessage({ cmd: MPQEMU_CMD_BAR_WRITE, addr: 0xc004n, val: 0x1234n, size: 2, memory: false }).bytes;
    expect(bar.toString('hex')).toBe('04000000000000001800000000000000' + '04c0000000000000' + '3412000000000000' + '02000000' + '00000000');
  });

  it('refuses what QEMU would (mpqemu_msg_valid), each with its kind', () => {
    const kind = (bytes: Buffer, fds: number[] = []): string => {
      try {
        decodeMessage({ bytes, fds });
        return 'valid';
      } catch (err) {
        return (err as MpqemuMalformed).kind;
      }
    };
    const enc = (m: MpqemuMessage) => encodeMessage(m).bytes;
    expect(kind(enc({ cmd: MPQEMU_CMD_SET_IRQFD, fds: [1, 2] }), [1])).toBe('bad-fds');
    expect(kind(enc({ cmd: MPQEMU_CMD_SYNC_SYSMEM, gpas: [], sizes: [], offsets: [], fds: [] }), [])).toBe('bad-fds');
    expect(kind(enc({ cmd: MPQEMU_CMD_SYNC_SYSMEM, gpas: [], sizes: [], offsets: [], fds: [] }), [1, 2, 3, 4, 5, 6, 7, 8])).toBe('bad-fds');
    expect(kind(enc({ cmd: MPQEMU_CMD_DEVICE_RESET }), [9])).toBe('bad-fds');
    const b = enc({ cmd: MPQEMU_CMD_BAR_READ, addr: 0n, val: 0n, size: 4, memory: true });
    b.writeUInt32LE(6, 32);
    expect(kind(b)).toBe('bad-access-size');
    const c = enc({ cmd: MPQEMU_CMD_PCI_CFGREAD, addr: 0, val: 0, len: 4 });
    c.writeInt32LE(-4, 24);
    expect(kind(c)).toBe('bad-access-size');
    const d = Buffer.alloc(16);
    d.writeInt32LE(MPQEMU_CMD_RET, 0);
    d.writeBigUInt64LE(4n, 8);
    expect(kind(Buffer.concat([d, Buffer.alloc(4)]))).toBe('bad-size');
    expect(kind(d)).toBe('truncated');
    d.writeInt32LE(8, 0);
    d.writeBigUInt64LE(0n, 8);
    expect(kind(d)).toBe('unknown-command');
    expect(() => decodeMessage({ bytes: enc({ cmd: MPQEMU_CMD_DEVICE_RESET }), fds: [], ctrunc: true })).toThrow(MpqemuMalformed);
  });
});

describe('mpqemu proxied function', () => {
  const fn = () => new ProxiedFunction(new ScratchDevice(makeEdges(new BufferMemory(0, 16), new IrqRecorder())));

  it('answers BAR sizing as QEMU\'s probe_pci_info reads it', () => {
    const f = fn();
    const sizes: number[] = [];
    for (let i = 0; i < 6; i++) {
      const reg = 0x10 + 4 * i;
      const orig = f.read(reg, 4);
      f.write(reg, 4, 0xffff_ffff);
      const v = f.read(reg, 4);
      f.write(reg, 4, orig);
      sizes.push(((~(v & 0xffff_fff0) >>> 0) + 1) % 2 ** 32); // the proxy's arithmetic
      expect(f.read(reg, 4)).toBe(orig);
    }
    expect(sizes).toEqual([64, 4096, 0, 0, 0, 0]);
    expect(f.bars()).toEqual([]);
  });

  it('routes by the programmed base once decoding is on; reset unmaps', () => {
    const f = fn();
    f.write(0x10, 4, 0xc040);
    f.write(0x14, 4, 0xfe00_0000);
    expect(f.route(0xc040n, 1, false)).toBeNull(); // decoding off
    f.write(0x04, 2, 0x1);
    expect(f.route(0xc044n, 4, false)).toMatchObject({ offset: 4, bar: { index: 0, region: 0 } });
    expect(f.route(0xc07fn, 1, false)).toMatchObject({ offset: 0x3f });
    expect(f.route(0xc07fn, 2, false)).toBeNull();
    expect(f.route(0xc044n, 4, true)).toBeNull(); // I/O BAR, memory access
    expect(f.route(0xfe00_0000n, 4, true)).toBeNull(); // memory decoding off
    f.write(0x04, 1, 0x3);
    expect(f.route(0xfe00_0ffcn, 4, true)).toMatchObject({ offset: 0xffc, bar: { index: 1, region: 1 } });
    f.write(0x14, 4, 0xffff_ffff); // sizing with decoding on: the BAR reaches 0xffffffff, unmapped as in QEMU
    expect(f.bars().map((b) => b.index)).toEqual([0]);
    f.reset();
    expect(f.bars()).toEqual([]);
    expect(f.read(0x10, 4)).toBe(0x1);
    expect(f.read(0x04, 2)).toBe(0);
  });
});
