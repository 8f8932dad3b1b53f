// A verifying disk workload for one scripted guest: random reads and writes over the
// disk the guest sees (its partition window), each sector stamped with the guest's tag,
// its LBA and a generation, so a read that returns another guest's or an old sector is caught.

import { AtaDriver, AtaDriverError } from './ata-driver.ts';
import { prng } from '../util/prng.ts';

export { prng };

export type TransferMode = 'pio' | 'dma' | 'mixed';

export interface WorkloadOptions {
  guest: string;
  seed: number;
  mode: TransferMode;
  /** Stop after this many operations, or when `until()` says so, whichever first. */
  maxOps?: number;
  until?: () => boolean;
  /** Largest transfer in sectors. */
  maxSectors?: number;
  /** Only the first `spanSectors` of the disk are used (0 = whole disk). */
  spanSectors?: number;
  flushEvery?: number;
  onProgress?: (p: WorkloadProgress) => void;
}

export interface WorkloadProgress {
  guest: string;
  ops: number;
  bytes: number;
  errors: number;
  mismatches: number;
  sectors: number;
  /**
   * `run`: the random reads and writes; `verify`: the final read-back of everything written
   * (`checked` of `toCheck` sectors so far); `done`. Absent before the first operation.
   */
  phase?: 'run' | 'verify' | 'done';
  checked?: number;
  toCheck?: number;
}

export interface WorkloadResult extends WorkloadProgress {
  verified: boolean;
  firstError?: string;
}


function tagOf(guest: string): number {
  let h = 2166136261;
  for (const c of guest) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return h >>> 0;
}

/** Fill one sector with a stamp: tag, lba, generation, then bytes derived from them. */
export function stampSector(out: Uint8Array, at: number, tag: number, lba: number, gen: number): void {
  const v = new DataView(out.buffer, out.byteOffset + at, 512);
  v.setUint32(0, tag, true);
  v.setUint32(4, lba >>> 0, true);
  v.setUint32(8, gen, true);
  let x = (tag ^ Math.imul(lba + 1, 2654435761) ^ Math.imul(gen + 1, 40503)) >>> 0;
  for (let i = 12; i < 512; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    v.setUint32(i, x >>> 0, true);
  }
}

export async function runWorkload(driver: AtaDriver, opts: WorkloadOptions): Promise<WorkloadResult> {
  const rand = prng(opts.seed);
  const tag = tagOf(opts.guest);
  const id = driver.identity ?? (await driver.identify());
  const disk = opts.spanSectors ? Math.min(opts.spanSectors, id.sectors) : id.sectors;
  const maxSectors = Math.max(1, Math.min(opts.maxSectors ?? 16, disk));
  const written = new Map<number, number>(); // lba -> generation last written
  const p: WorkloadProgress = { guest: opts.guest, ops: 0, bytes: 0, errors: 0, mismatches: 0, sectors: disk, phase: 'run' };
  let firstError: string | undefined;
  let gen = 0;
  const fail = (msg: string): void => {
    p.errors++;
    firstError ??= msg;
  };
  const useDma = (): boolean =>
    driver.hasDma && (opts.mode === 'dma' || (opts.mode === 'mixed' && rand() < 0.5));

  while ((opts.maxOps === undefined || p.ops < opts.maxOps) && !(opts.until?.() ?? false)) {
    const count = 1 + Math.floor(rand() * maxSectors);
    const lba = Math.floor(rand() * (disk - count + 1));
    const dma = useDma();
    try {
      if (rand() < 0.5) {
        gen++;
        const data = new Uint8Array(count * 512);
        for (let i = 0; i < count; i++) stampSector(data, i * 512, tag, lba + i, gen);
        if (dma) await driver.writeDma(lba, data);
        else await driver.writePio(lba, data);
        for (let i = 0; i < count; i++) written.set(lba + i, gen);
      } else {
        const data = dma ? await driver.readDma(lba, count) : await driver.readPio(lba, count);
        const expect = new Uint8Array(512);
        for (let i = 0; i < count; i++) {
          const g = written.get(lba + i);
          if (g === undefined) continue; // never written by us: content unknown
          stampSector(expect, 0, tag, lba + i, g);
          const got = data.subarray(i * 512, i * 512 + 512);
          if (!got.every((b, j) => b === expect[j])) {
            p.mismatches++;
            fail(`${opts.guest}: sector ${lba + i} does not hold what this guest wrote (gen ${g})`);
            break;
          }
        }
      }
      p.bytes += count * 512;
      if (opts.flushEvery && p.ops % opts.flushEvery === opts.flushEvery - 1) await driver.flush();
    } catch (e) {
      if (!(e instanceof AtaDriverError)) throw e;
      fail(`${opts.guest}: ${e.message}`);
    }
    p.ops++;
    opts.onProgress?.({ ...p });
  }
  // A final full check of everything this guest wrote, in runs of consecutive sectors.
  const lbas = [...written.keys()].sort((a, b) => a - b);
  Object.assign(p, { phase: 'verify', checked: 0, toCheck: lbas.length });
  opts.onProgress?.({ ...p });
  try {
    const expect = new Uint8Array(512);
    for (let i = 0; i < lbas.length; ) {
      let n = 1;
      while (i + n < lbas.length && n < 64 && lbas[i + n] === lbas[i] + n) n++;
      const got = await driver.readPio(lbas[i], n);
      for (let k = 0; k < n; k++) {
        const lba = lbas[i + k];
        const g = written.get(lba)!; // lba came from written's keys
        stampSector(expect, 0, tag, lba, g);
        if (!got.subarray(k * 512, k * 512 + 512).every((b, j) => b === expect[j])) {
          p.mismatches++;
          fail(`${opts.guest}: final check: sector ${lba} lost its data (gen ${g})`);
        }
      }
      i += n;
      p.checked = i;
      opts.onProgress?.({ ...p });
    }
    await driver.flush();
  } catch (e) {
    if (!(e instanceof AtaDriverError)) throw e;
    fail(`${opts.guest}: final check: ${e.message}`);
  }
  p.phase = 'done';
  opts.onProgress?.({ ...p });
  return { ...p, verified: p.errors === 0 && p.mismatches === 0, firstError };
}
