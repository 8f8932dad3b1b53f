// One bus-master DMA transfer: walk the PRD table, then move the data between the backend
// and guest memory in 64 KiB chunks. Returns an outcome; the device maps it to registers.

import { SECTOR, type BlockBackend } from '../../backends/block.ts';
import type { DmaPort } from '../../device.ts';
import { walkPrdTable, type BusMasterRegs } from './bmdma.ts';
import { STALE, type Step } from './op-runner.ts';

/** Sectors moved per backend call (64 KiB). */
const DMA_CHUNK_SECTORS = 128;

export type DmaOutcome =
  | { kind: 'done'; /** the PRD table is longer than the transfer */ longer: boolean }
  | { kind: 'bus-error'; reason: string } // bad PRD table or refused guest memory
  | { kind: 'backend-error'; lba: number; error: unknown }
  | { kind: 'stopped'; lba: number }; // the driver cleared START mid-transfer

export interface DmaJob {
  dma: DmaPort;
  /** Where the data comes from / goes to: the backend, or a sink (DATA SET MANAGEMENT). */
  blk: Pick<BlockBackend, 'read' | 'write'>;
  bm: BusMasterRegs;
  step: Step;
  toMemory: boolean;
  lba: number;
  count: number;
  /** Asked per chunk: the write cache may be switched meanwhile. */
  fua: () => boolean;
  /** After each chunk: sectors done so far. */
  progress: (done: number) => void;
}

export async function runDmaTransfer(job: DmaJob): Promise<DmaOutcome> {
  const { dma, blk, bm, step, toMemory } = job;
  const walk = await step(walkPrdTable(dma, bm.prd, job.count * SECTOR));
  if (!walk.ok) return { kind: 'bus-error', reason: walk.reason };
  let seg = 0;
  let segOff = 0;
  // Moves a chunk to/from the PRD segments, continuing where the previous chunk stopped.
  const scatter = async (chunk: Uint8Array): Promise<boolean> => {
    for (let off = 0; off < chunk.length; ) {
      const s = walk.segments[seg];
      const n = Math.min(s.len - segOff, chunk.length - off);
      const addr = s.addr + segOff;
      if (toMemory) {
        if (!(await step(dma.write(addr, chunk.subarray(off, off + n))))) return false;
      } else {
        const got = await step(dma.read(addr, n));
        if (!got || got.length !== n) return false;
        chunk.set(got, off);
      }
      off += n;
      segOff += n;
      if (segOff === s.len) {
        seg++;
        segOff = 0;
      }
    }
    return true;
  };
  for (let done = 0; done < job.count; ) {
    const lba = job.lba + done;
    if (!bm.started) return { kind: 'stopped', lba };
    const n = Math.min(DMA_CHUNK_SECTORS, job.count - done);
    try {
      if (toMemory) {
        const data = await step(blk.read(lba, n));
        if (!(await scatter(data))) return { kind: 'bus-error', reason: 'DMA write to guest memory refused' };
      } else {
        const data = new Uint8Array(n * SECTOR);
        if (!(await scatter(data))) return { kind: 'bus-error', reason: 'DMA read of guest memory refused' };
        await step(blk.write(lba, data, job.fua()));
      }
    } catch (e) {
      if (e === STALE) throw e;
      return { kind: 'backend-error', lba, error: e };
    }
    done += n;
    job.progress(done);
  }
  return { kind: 'done', longer: walk.longer };
}
