// Fuzzing the decoder: random bytes and mutated valid frames never throw anything but
// ProtocolError, and every feed returns (no hang: each byte is consumed once).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameDecoder, encodeFrame, framePayload } from '../src/channel/codec.ts';
import { ProtocolError, validatePeerMessage, validateSupervisorMessage } from '../src/channel/messages.ts';

function feedAll(chunks: Uint8Array[], validate: (raw: unknown) => unknown): { messages: number; error?: ProtocolError } {
  const d = new FrameDecoder(validate);
  let messages = 0;
  try {
    for (const c of chunks) for (const _ of d.feed(c)) messages++;
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    return { messages, error: e };
  }
  return { messages };
}

const validFrames = fc.constantFrom(
  encodeFrame({ t: 'hello', v: 1, guest: 'g0', caps: ['pio', 'dma'], dma: { path: '/dev/shm/g0', base: 0, size: 65536 } }),
  encodeFrame({ t: 'acc', id: 1, sp: 'pio', a: 0x1f7, s: 1, d: 'r' }),
  encodeFrame({ t: 'acc', id: 2, sp: 'mmio', a: 0xfebf_0000, s: 8, d: 'w', v: 0x1234_5678_9abc_def0n }),
  encodeFrame({ t: 'acc', id: 3, sp: 'pio', a: 0x1f0, s: 2, d: 'w', n: 4, b: new Uint8Array(8).fill(0x55) }),
  encodeFrame({ t: 'dmad', id: 4, b: new Uint8Array(32) }),
  encodeFrame({ t: 'dmak', id: 5, e: 'no' }),
  encodeFrame({ t: 'rep', id: 6, v: 0xffn, b: new Uint8Array(3) }),
  encodeFrame({ t: 'welcome', v: 1, guest: 'g', irqs: [1, 2] }),
  encodeFrame({ t: 'bye', reason: 'x' }),
);

/** Split bytes into chunks at the given cut points. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

describe('decoder fuzzing', () => {
  it('random bytes: only ProtocolError, never a hang', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.array(fc.nat(4096), { maxLength: 8 }), fc.boolean(), (bytes, cuts, peer) => {
        feedAll(split(bytes, cuts), peer ? validatePeerMessage : validateSupervisorMessage);
      }),
      { numRuns: 2000 },
    );
  });

  it('random payloads inside a correct length prefix: only ProtocolError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 512 }), fc.boolean(), (payload, peer) => {
        feedAll([framePayload(payload)], peer ? validatePeerMessage : validateSupervisorMessage);
      }),
      { numRuns: 3000 },
    );
  });

  it('mutated valid frames: only ProtocolError; unmutated frames all decode', () => {
    fc.assert(
      fc.property(
        fc.array(validFrames, { minLength: 1, maxLength: 6 }),
        fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { maxLength: 4 }),
        fc.array(fc.nat(4096), { maxLength: 6 }),
        fc.boolean(),
        (frames, flips, cuts, peer) => {
          const wire = Buffer.concat(frames);
          const validate = peer ? validatePeerMessage : validateSupervisorMessage;
          if (flips.length === 0) {
            const r = feedAll(split(wire, cuts), validate);
            // A valid frame of the other direction is an unknown-type error, nothing else.
            if (r.error) expect(r.error.code).toBe('unknown-type');
            return;
          }
          const mutated = Buffer.from(wire);
          for (const f of flips) mutated[f.at % mutated.length] = f.byte;
          feedAll(split(mutated, cuts), validate);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('a huge claimed array or string inside a frame is a ProtocolError', () => {
    // fixmap(1) "t" then array32 with 2^32-1 elements, and str32 longer than the frame.
    const hugeArray = Buffer.from('81a174ddffffffff', 'hex');
    const hugeStr = Buffer.from('81a174dbffffffff41', 'hex');
    expect(feedAll([framePayload(hugeArray)], validatePeerMessage).error).toBeInstanceOf(ProtocolError);
    expect(feedAll([framePayload(hugeStr)], validatePeerMessage).error).toBeInstanceOf(ProtocolError);
  });
});
