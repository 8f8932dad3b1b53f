import { describe, expect, it } from 'vitest';
import { Packr, Unpackr } from 'msgpackr';
import { FrameDecoder, encodeFrame as encodeTyped, framePayload } from '../src/channel/codec.ts';

// Tests also encode deliberately wrong messages.
const encodeFrame = (m: object) => encodeTyped(m as Record<string, unknown>);
import {
  type AccMsg,
  MAX_FRAME,
  ProtocolError,
  accToAccess,
  accessToAcc,
  repToReply,
  replyToRep,
  validatePeerMessage,
  validateSupervisorMessage,
} from '../src/channel/messages.ts';

const peerDecoder = () => new FrameDecoder(validatePeerMessage);
const supDecoder = () => new FrameDecoder(validateSupervisorMessage);
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** Plain data for deep comparison: Buffers and Uint8Arrays as number arrays. */
function plain(x: unknown): unknown {
  if (x instanceof Uint8Array) return [...x];
  if (Array.isArray(x)) return x.map(plain);
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)]));
  return x;
}

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    return (e as ProtocolError).code;
  }
  throw new Error('expected a ProtocolError');
}

describe('codec round trip', () => {
  it('round-trips every peer message type', () => {
    const msgs = [
      { t: 'hello', v: 1, guest: 'g0', caps: ['pio', 'irq'], dma: { path: '/dev/shm/x', base: 0x10_0000, size: 4096 } },
      { t: 'acc', id: 1, sp: 'pio', a: 0x1f7, s: 1, d: 'r' },
      { t: 'acc', id: 2, sp: 'pio', a: 0x1f7, s: 1, d: 'w', v: 0xec },
      { t: 'acc', id: 3, sp: 'mmio', a: 0xfe00_0000_0000, s: 8, d: 'w', v: 0xffff_ffff_ffff_fff0n },
      { t: 'acc', id: 4, sp: 'pio', a: 0x1f0, s: 2, d: 'w', n: 3, b: new Uint8Array([1, 2, 3, 4, 5, 6]) },
      { t: 'acc', id: 2n ** 60n, sp: 'pcicfg', a: 0x800, s: 4, d: 'r', n: 256 },
      { t: 'dmad', id: 9, b: new Uint8Array([7]) },
      { t: 'dmad', id: 9, e: 'outside' },
      { t: 'dmak', id: 10 },
      { t: 'err', code: 'malformed', msg: 'x' },
      { t: 'bye', reason: 'done' },
      { t: 'bye' },
    ];
    const d = peerDecoder();
    const wire = Buffer.concat(msgs.map((m) => encodeFrame(m)));
    const out = d.push(wire);
    expect(out.map(plain)).toEqual(msgs.map(plain));
  });

  it('round-trips supervisor messages, byte by byte too', () => {
    const msgs = [
      { t: 'welcome', v: 1, guest: 'g', irqs: [14, 15] },
      { t: 'rep', id: 1, v: 0x50 },
      { t: 'rep', id: 2, v: 0xffff_ffff_ffff_ffffn, e: 'denied' },
      { t: 'rep', id: 3, v: 0, b: new Uint8Array(512).fill(3) },
      { t: 'irq', line: 14, level: 1 },
      { t: 'dmar', id: 5, a: 0x1_0000_0000, n: 512 },
      { t: 'dmaw', id: 6, a: 0x1000, b: new Uint8Array([1, 2]) },
      { t: 'reset', dev: 'ide0', reason: 'watchdog' },
    ];
    const wire = Buffer.concat(msgs.map((m) => encodeFrame(m)));
    const d = supDecoder();
    const out: unknown[] = [];
    for (const byte of wire) out.push(...d.push(Uint8Array.of(byte)));
    expect(out).toHaveLength(msgs.length);
    expect(out[2]).toEqual({ t: 'rep', id: 2, v: 0xffff_ffff_ffff_ffffn, e: 'denied' });
    expect(out[5]).toEqual({ t: 'dmar', id: 5, a: 0x1_0000_0000, n: 512 });
    expect(plain((out[3] as { b: Uint8Array }).b)).toEqual([...new Uint8Array(512).fill(3)]);
    expect(d.pending).toBe(false);
  });

  it('writes every integer as a msgpack uint of the smallest width', () => {
    const hexOf = (v: number | bigint) => encodeFrame({ t: 'rep', id: 0, v }).subarray(4).toString('hex');
    // 0x83 map(3), a1 74 "t", a3 726570 "rep", a2 6964 "id", 00, a1 76 "v", <value>
    const prefix = '83a174a3726570a2696400a176';
    expect(hexOf(5)).toBe(prefix + '05');
    expect(hexOf(0xff)).toBe(prefix + 'ccff');
    expect(hexOf(0x1234)).toBe(prefix + 'cd1234');
    expect(hexOf(0xffff_ffff)).toBe(prefix + 'ceffffffff');
    expect(hexOf(0x1_0000_0000)).toBe(prefix + 'cf0000000100000000');
    expect(hexOf(0x1_0000_0000n)).toBe(prefix + 'cf0000000100000000');
    expect(hexOf(7n)).toBe(prefix + '07');
    expect(() => encodeFrame({ t: 'rep', id: 0, v: -1 })).toThrow(TypeError);
  });

  it('reads what msgpackr writes, and msgpackr reads what we write', () => {
    const d = peerDecoder();
    const frame = framePayload(packr.pack({ t: 'acc', id: 7, sp: 'mmio', a: 0xfebf_0000, s: 4, d: 'w', v: 0xdead_beef, extra: 'ignored' }));
    expect(d.push(frame)).toEqual([{ t: 'acc', id: 7, sp: 'mmio', a: 0xfebf_0000, s: 4, d: 'w', v: 0xdead_beef }]);
    const ours = encodeFrame({ t: 'welcome', v: 1, guest: 'g', irqs: [1] });
    expect(new Unpackr({ mapsAsObjects: true }).unpack(ours.subarray(4))).toEqual({ t: 'welcome', v: 1, guest: 'g', irqs: [1] });
  });

  it('converts between Access/Reply and acc/rep', () => {
    const acc = { space: 'pio' as const, addr: 0x1f0, size: 2 as const, dir: 'write' as const, count: 2, data: new Uint8Array([1, 2, 3, 4]) };
    const d = peerDecoder();
    const [m] = d.push(encodeFrame(accessToAcc(3, acc)));
    expect(plain(accToAccess(m as AccMsg))).toEqual(plain(acc));
    const [r] = supDecoder().push(encodeFrame(replyToRep(3, { value: 0x12n, error: 'x' })));
    expect(repToReply(r as never, 8)).toEqual({ value: 0x12n, error: 'x' });
  });
});

describe('codec errors', () => {
  it('names malformed, oversized, unknown and misdirected frames', () => {
    expect(codeOf(() => peerDecoder().push(Buffer.from([0, 0, 0, 0])))).toBe('malformed');
    const big = Buffer.alloc(4);
    big.writeUInt32LE(MAX_FRAME + 1);
    expect(codeOf(() => peerDecoder().push(big))).toBe('oversized');
    expect(codeOf(() => peerDecoder().push(framePayload(Buffer.from([0xc1]))))).toBe('malformed');
    expect(codeOf(() => peerDecoder().push(framePayload(packr.pack([1, 2]))))).toBe('malformed');
    expect(codeOf(() => peerDecoder().push(framePayload(packr.pack({ t: 'jump' }))))).toBe('unknown-type');
    expect(codeOf(() => peerDecoder().push(encodeFrame({ t: 'rep', id: 1, v: 0 })))).toBe('unknown-type');
    expect(codeOf(() => supDecoder().push(encodeFrame({ t: 'acc', id: 1, sp: 'pio', a: 1, s: 1, d: 'r' })))).toBe('unknown-type');
    expect(codeOf(() => peerDecoder().push(encodeFrame({ t: 'acc', id: 1, sp: 'io', a: 1, s: 1, d: 'r' })))).toBe('malformed');
    expect(codeOf(() => peerDecoder().push(encodeFrame({ t: 'acc', id: 1, sp: 'pio', a: 1, s: 3, d: 'r' })))).toBe('malformed');
    expect(codeOf(() => peerDecoder().push(encodeFrame({ t: 'acc', id: 1, sp: 'pio', a: 1, s: 1, d: 'w', v: 256 })))).toBe('malformed');
    expect(codeOf(() => peerDecoder().push(encodeFrame({ t: 'acc', id: 1, sp: 'pio', a: 1, s: 1, d: 'w' })))).toBe('malformed');
    expect(codeOf(() => peerDecoder().push(encodeFrame({ t: 'acc', id: 1, sp: 'pio', a: 1, s: 2, d: 'w', n: 2, b: new Uint8Array(3) })))).toBe('malformed');
    expect(codeOf(() => peerDecoder().push(encodeFrame({ t: 'acc', id: 1, sp: 'pio', a: 1, s: 4, d: 'r', n: 300_000 })))).toBe('malformed');
    expect(codeOf(() => peerDecoder().push(encodeFrame({ t: 'hello', v: 1, guest: 3, caps: [] })))).toBe('malformed');
    // Trailing bytes after the map inside one frame.
    expect(codeOf(() => peerDecoder().push(framePayload(Buffer.concat([packr.pack({ t: 'bye' }), Buffer.from([1])]))))).toBe('malformed');
  });

  it('yields the good frames before a bad one, then stays failed', () => {
    const d = peerDecoder();
    const got: unknown[] = [];
    expect(() => {
      for (const m of d.feed(Buffer.concat([encodeFrame({ t: 'bye' }), Buffer.from([0, 0, 0, 0])]))) got.push(m);
    }).toThrow(ProtocolError);
    expect(got).toEqual([{ t: 'bye' }]);
    expect(codeOf(() => d.push(encodeFrame({ t: 'bye' })))).toBe('malformed');
  });

  it('error messages name the problem', () => {
    expect(() => peerDecoder().push(encodeFrame({ t: 'acc', id: 1, sp: 'pio', a: 1, s: 5, d: 'r' }))).toThrow(/acc: field s must be 1, 2, 4 or 8/);
    expect(() => peerDecoder().push(framePayload(packr.pack({ t: 'jump' })))).toThrow(/unknown message type "jump"/);
  });
});
