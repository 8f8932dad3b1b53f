// The native layer's one msgpack codec (native/common/msgpack.c, used by the trap shim and the
// KVM helper) against msgpackr, the encoder the supervisor uses: every width msgpackr picks for
// integers (and the float64 it writes above 2^32), booleans, strings, binaries and arrays are read
// as written, and what the codec writes decodes in msgpackr to the same values.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pack, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { missingFile, titled } from './helpers/requires.ts';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../native/common/build/msgpack-cli');
const skip = missingFile(CLI, 'npm install builds it (make -C native)');

function roundTrip(value: Record<string, unknown>): { status: number | null; out: unknown } {
  const r = spawnSync(CLI, { input: pack(value) });
  // msgpackr reads a uint64 as a BigInt: compare numbers.
  const out = r.status === 0 ? (unpack(r.stdout) as Record<string, unknown>) : null;
  if (out) for (const [k, v] of Object.entries(out)) if (typeof v === 'bigint') out[k] = Number(v);
  return { status: r.status, out };
}

describe.skipIf(skip !== null || !existsSync(CLI))(titled('native msgpack codec', skip), () => {
  it('reads every integer width msgpackr writes, and writes them back', () => {
    const ints = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff, 0x100000000, 2 ** 53 - 1];
    const value = Object.fromEntries(ints.map((n) => [`n${n}`, n]));
    const r = roundTrip(value);
    expect(r.status).toBe(0);
    expect(r.out).toEqual(value);
  });

  it('reads booleans as 0 and 1, negatives as 0, an integral float as its integer', () => {
    const r = roundTrip({ t: true, f: false, neg: -5, big: -70000, fl: 3.0 * 2 ** 40 });
    expect(r.status).toBe(0);
    expect(r.out).toEqual({ t: 1, f: 0, neg: 0, big: 0, fl: 3 * 2 ** 40 });
  });

  it('passes strings of each header size and binaries through unchanged', () => {
    const bin = Buffer.alloc(60_000);
    for (let i = 0; i < bin.length; i++) bin[i] = (i * 7) & 0xff;
    const value = { short: 'acc', mid: 'x'.repeat(200), tiny: Buffer.from([1, 2, 3]), large: bin };
    const r = roundTrip(value);
    expect(r.status).toBe(0);
    const out = r.out as Record<string, unknown>;
    expect(out.short).toBe('acc');
    expect(out.mid).toBe('x'.repeat(200));
    expect(Buffer.from(out.tiny as Uint8Array)).toEqual(Buffer.from([1, 2, 3]));
    expect(Buffer.from(out.large as Uint8Array).equals(bin)).toBe(true);
  });

  it('skips arrays element by element and marks what is not an integer', () => {
    const r = roundTrip({ caps: ['dma', 'irq', 'slot'], nil: null });
    expect(r.status).toBe(0);
    expect(r.out).toEqual({ caps: [3], nil: '?' });
  });

  it('refuses a truncated message instead of reading past its end', () => {
    const whole = pack({ key: 'value', n: 0x12345678 });
    for (let cut = 1; cut < whole.length; cut++) {
      const r = spawnSync(CLI, { input: whole.subarray(0, cut) });
      expect(r.status, `cut at ${cut}`).toBe(2);
    }
  });
});
