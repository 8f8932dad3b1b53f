// Scripted guests: a driver for the simulated device (src/devices/sim.ts) that runs a
// list of operations and records every value it reads, so a shared run can be compared with
// a solo run of the same script (solo equivalence).

import type { Access, Reply } from '../access.ts';
import {
  SIM_ADDR,
  SIM_BLOCK,
  SIM_CMD,
  SIM_CMD_DMA_READ,
  SIM_CMD_DMA_WRITE,
  SIM_CMD_READ,
  SIM_CMD_WRITE,
  SIM_DATA,
  SIM_DMA_ADDR,
  SIM_IEN,
  SIM_KEY,
  SIM_SR_BUSY,
  SIM_SR_DRQ,
  SIM_STATUS,
} from '../devices/sim.ts';
import { prng } from '../util/prng.ts';

/** Deterministic PRNG (mulberry32): scripts are generated from a few integers so fast-check shrinks them fast. */
export { prng };

export type Op =
  | { op: 'read'; block: number; rep: boolean }
  | { op: 'write'; block: number; bytes: number[]; rep: boolean }
  /** DMA a block into memory at `at` (offset from the memory base; may lie outside: refused). */
  | { op: 'dmaRead'; block: number; at: number }
  | { op: 'dmaWrite'; block: number; at: number }
  | { op: 'key'; key: number }
  | { op: 'ien'; on: boolean }
  /** Read back the context registers. */
  | { op: 'peek' }
  | { op: 'think'; ns: number }
  /** Start a read and never finish it (a guest that hangs mid-command). */
  | { op: 'hang' };

/** How a scripted guest reaches its device: a register offset of region 0 and an access. */
export type GuestPort = (offset: number, acc: Access) => Reply | Promise<Reply>;

export interface ScriptEnv {
  port: GuestPort;
  /** Bus address of the guest's DMA memory. */
  memBase: number;
  /** Called before each access (virtual time advances per access). */
  tick(): void;
  sleep(ns: number): Promise<void>;
  /** Stop early (fairness runs): checked before each op. */
  stop?(): boolean;
}

const SIM_PORT_BASE = 0x340;
const MAX_POLLS = 64;

export interface ScriptResult {
  /** Every value read, with markers per op (compared between shared and solo runs). */
  seen: Array<number | string>;
  /** Replies that carried an error (denied, faulted). */
  errors: string[];
  /** Ops finished. */
  done: number;
  hung: boolean;
}

/** Run a script to its end (or until `hang`). */
export async function runScript(ops: Op[], env: ScriptEnv): Promise<ScriptResult> {
  const res: ScriptResult = { seen: [], errors: [], done: 0, hung: false };
  const io = async (offset: number, acc: Omit<Access, 'space' | 'addr'>): Promise<Reply> => {
    env.tick();
    const r = await env.port(offset, { space: 'pio', addr: SIM_PORT_BASE + offset, ...acc });
    if (r.error) res.errors.push(r.error);
    return r;
  };
  const out = (offset: number, value: number, size: 1 | 4 = 1) => io(offset, { size, dir: 'write', value });
  const inb = async (offset: number, size: 1 | 4 = 1) => Number((await io(offset, { size, dir: 'read' })).value);
  /** Poll STATUS until `done(status)`; returns the last status. */
  const poll = async (done: (s: number) => boolean) => {
    let s = 0;
    for (let i = 0; i < MAX_POLLS; i++) {
      s = await inb(SIM_STATUS);
      if (done(s)) return s;
    }
    res.seen.push('poll-timeout');
    return s;
  };
  const notBusy = (s: number) => (s & SIM_SR_BUSY) === 0;
  const over = (s: number) => (s & (SIM_SR_BUSY | SIM_SR_DRQ)) === 0;

  for (const op of ops) {
    if (env.stop?.()) break;
    res.seen.push(op.op);
    switch (op.op) {
      case 'key':
        await out(SIM_KEY, op.key);
        break;
      case 'ien':
        await out(SIM_IEN, op.on ? 1 : 0);
        break;
      case 'peek':
        res.seen.push(await inb(SIM_ADDR), await inb(SIM_KEY), await inb(SIM_IEN), await inb(SIM_DMA_ADDR, 4));
        break;
      case 'think':
        await env.sleep(op.ns);
        break;
      case 'hang':
        await out(SIM_ADDR, 0);
        await out(SIM_CMD, SIM_CMD_READ);
        res.hung = true;
        return res;
      case 'read': {
        await out(SIM_ADDR, op.block);
        await out(SIM_CMD, SIM_CMD_READ);
        const s = await poll(notBusy);
        res.seen.push(s);
        if (s & SIM_SR_DRQ) {
          if (op.rep) {
            const r = await io(SIM_DATA, { size: 1, dir: 'read', count: SIM_BLOCK });
            res.seen.push(...(r.data ?? []));
          } else for (let i = 0; i < SIM_BLOCK; i++) res.seen.push(await inb(SIM_DATA));
          res.seen.push(await poll(over));
        }
        break;
      }
      case 'write': {
        await out(SIM_ADDR, op.block);
        await out(SIM_CMD, SIM_CMD_WRITE);
        const s = await poll(notBusy);
        res.seen.push(s);
        if (s & SIM_SR_DRQ) {
          if (op.rep) await io(SIM_DATA, { size: 1, dir: 'write', count: SIM_BLOCK, data: Uint8Array.from(op.bytes) });
          else for (const b of op.bytes) await out(SIM_DATA, b);
          res.seen.push(await poll(over));
        }
        break;
      }
      case 'dmaRead':
      case 'dmaWrite':
        await out(SIM_DMA_ADDR, (env.memBase + op.at) >>> 0, 4);
        await out(SIM_ADDR, op.block);
        await out(SIM_CMD, op.op === 'dmaRead' ? SIM_CMD_DMA_READ : SIM_CMD_DMA_WRITE);
        res.seen.push(await poll(over));
        break;
    }
    res.done++;
  }
  return res;
}


export interface ScriptParams {
  seed: number;
  commands: number;
  /** Blocks the guest may address (its window); some ops go one past it (error path). */
  sectors: number;
  /** DMA memory size of the guest; some DMA ops aim outside it (refused). */
  memSize: number;
  /** Think (idle) between commands: every n-th command (0 = never), for thinkNs. */
  thinkEvery: number;
  thinkNs: number;
  /** Only block reads and writes (saturating fairness runs). */
  plain?: boolean;
}

/** Bus-address stride between guests' DMA memories in the harness (src/check/harness.ts memBaseOf). */
export const MEM_STRIDE = 0x1_0000;

/** Mostly a good DMA offset; sometimes one past the end, sometimes the next guest's memory (both refused). */
function strayOr(r: number, past: number, good: number): number {
  return r < 0.08 ? MEM_STRIDE : r < 0.16 ? past : good;
}

/** A script from a few integers. */
export function generateScript(p: ScriptParams): Op[] {
  const rnd = prng(p.seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const ops: Op[] = [];
  for (let i = 0; i < p.commands; i++) {
    if (p.thinkEvery > 0 && i > 0 && i % p.thinkEvery === 0) ops.push({ op: 'think', ns: p.thinkNs });
    const block = int(p.sectors + 1); // == sectors: outside the window
    const k = p.plain ? int(2) : int(10);
    if (k === 0) ops.push({ op: 'read', block, rep: rnd() < 0.5 });
    else if (k === 1) ops.push({ op: 'write', block, rep: rnd() < 0.5, bytes: Array.from({ length: SIM_BLOCK }, () => int(256)) });
    else if (k === 2 || k === 3) ops.push({ op: 'read', block, rep: true });
    else if (k === 4) ops.push({ op: 'write', block, rep: true, bytes: Array.from({ length: SIM_BLOCK }, () => int(256)) });
    else if (k === 5) ops.push({ op: 'dmaRead', block, at: strayOr(rnd(), p.memSize - 4, int(p.memSize / SIM_BLOCK) * SIM_BLOCK) });
    else if (k === 6) ops.push({ op: 'dmaWrite', block, at: strayOr(rnd(), p.memSize + 64, int(p.memSize / SIM_BLOCK) * SIM_BLOCK) });
    else if (k === 7) ops.push({ op: 'key', key: int(256) });
    else if (k === 8) ops.push({ op: 'ien', on: rnd() < 0.5 });
    else ops.push({ op: 'peek' });
  }
  return ops;
}
