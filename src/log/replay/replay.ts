// `muxvisor replay LOG --guest G --device-kind K`: re-drive one guest's recorded accesses, in
// order, against another device (our ATA model `ata`, QEMU's IDE over qtest `qemu-ide`) behind
// the same MUX, window and addresses as recorded, on a blank image of the recorded size, with
// the guest's DMA memory answered from the log (memory.ts). Every read's answer is compared
// with the recorded one (rules.ts says what is not compared literally), and every DMA write to
// guest memory with the recorded data's CRC once the driver saw the transfer end. The first
// difference is reported with the 20 accesses before it.

import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Access, Reply, Size } from '../../access.ts';
import { parseConfig } from '../../config/load.ts';
import { DeviceRegistry } from '../../devices/registry.ts';
import { type Logger, silentLogger } from '../../log.ts';
import { muxRouterFactory } from '../../mux/router-factory.ts';
import { Supervisor } from '../../supervisor.ts';
import { crcHex } from '../digest.ts';
import { readAll } from '../read.ts';
import type { AccessRecord, EventRecord, HeaderRecord, LogValue } from '../record.ts';
import { ReplayMemory } from './memory.ts';
import { ABSENT_DEVICE1_REGS, IDENTIFY_OPCODES, SETTLE, firstWordDiff, normalisedText } from './rules.ts';

export interface ReplayOptions {
  log: string;
  guest: string;
  deviceKind: string;
  /** The device to replay when the guest used several (default: its only one). */
  device?: string;
  /** Compare IDENTIFY data in full. */
  strict?: boolean;
  logger?: Logger;
  /** How long a settling status read may keep finding the replayed device busy (ms). */
  settleMs?: number;
  /** Accesses shown before a divergence. */
  context?: number;
}

export interface Divergence {
  /** Index among the guest's accesses (0-based) and the record's line in the log. */
  index: number;
  line: number;
  reg: string | null;
  addr: number;
  what: 'answer' | 'data' | 'error' | 'dma';
  expected: string;
  got: string;
  /** The accesses before it, oldest first. */
  before: AccessRecord[];
  record: AccessRecord;
}

export interface ReplayResult {
  guest: string;
  device: string;
  kind: string;
  accesses: number;
  /** Reads of a busy device in the recording: polls, not compared. */
  polls: number;
  /** Task-file reads with the absent device 1 selected, not compared (rules.ts ABSENT_DEVICE1_REGS). */
  absentDevice1Reads?: number;
  /** IDENTIFY reads whose only differences were in normalised words. */
  normalisedReads: number;
  normalised: string;
  divergence?: Divergence;
}

export class ReplayError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplayError';
  }
}

const show = (v: LogValue | number | bigint | undefined): string => (typeof v === 'number' || typeof v === 'bigint' ? `0x${v.toString(16)}` : String(v));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function toAccess(a: AccessRecord, line: number, log: string): Access {
  const acc: Access = { space: a.space === 'config' ? 'pcicfg' : a.space, addr: a.addr, size: a.size as Size, dir: a.dir === 'r' ? 'read' : 'write' };
  if (a.count > 1) acc.count = a.count;
  if (a.dir === 'w') {
    if (a.data) {
      if (!a.data.bytes) throw new ReplayError(`${log}:${line}: the string write has no bytes in the log, only its CRC: it cannot be replayed`);
      acc.data = a.data.bytes;
    } else acc.value = typeof a.value === 'string' ? BigInt(a.value) : (a.value ?? 0);
  }
  return acc;
}

/** The replay's device config: the recorded regions at their addresses, a blank image of the recorded size. */
function deviceConfig(dev: HeaderRecord['devices'][number], kind: string, image: string): Record<string, unknown> {
  const map = Object.fromEntries(dev.regions.map((r) => [r.name, r.start]));
  const backend = kind === 'qemu-ide' ? { type: 'qemu', image } : { type: 'file', path: image };
  return { id: dev.id, kind, backend, map };
}

export async function replay(opts: ReplayOptions): Promise<ReplayResult> {
  const log = opts.log;
  const records = await readAll(log);
  const header = records[0];
  if (header?.type !== 'header') throw new ReplayError(`${log}: no header record first (is it an access log?)`);
  const mine: Array<{ rec: AccessRecord; line: number }> = [];
  const dmaReads: Array<{ addr: number; bytes: Uint8Array; line: number }> = [];
  const dmaWrites: Array<{ ev: EventRecord; line: number }> = [];
  records.forEach((r, i) => {
    if (r.type === 'access' && r.guest === opts.guest) mine.push({ rec: r, line: i + 1 });
    if (r.type === 'event' && r.kind === 'dma' && r.guest === opts.guest && r.dma) {
      if (r.dma.dir === 'read') {
        if (!r.dma.bytes) throw new ReplayError(`${log}:${i + 1}: a DMA read of guest memory without its bytes cannot be answered`);
        dmaReads.push({ addr: r.dma.addr, bytes: r.dma.bytes, line: i + 1 });
      } else dmaWrites.push({ ev: r, line: i + 1 });
    }
  });
  if (mine.length === 0) {
    const guests = [...new Set(records.flatMap((r) => (r.type === 'access' ? [r.guest] : [])))];
    throw new ReplayError(`${log}: guest ${opts.guest} has no accesses (guests in the log: ${guests.join(', ') || 'none'})`);
  }
  const used = [...new Set(mine.map((m) => m.rec.device).filter((d): d is string => d !== null && d !== 'pci'))];
  const devId = opts.device ?? (used.length === 1 ? used[0] : undefined);
  if (!devId) throw new ReplayError(`guest ${opts.guest} used ${used.length ? `several devices (${used.join(', ')}): choose one with --device` : 'no device'}`);
  const dev = header.devices.find((d) => d.id === devId);
  if (!dev) throw new ReplayError(`${log}: no device ${devId} in the header (devices: ${header.devices.map((d) => d.id).join(', ')})`);
  const sectors = dev.properties.sectors;
  if (typeof sectors !== 'number') throw new ReplayError(`${log}: device ${devId} has no "sectors" property: the replay cannot size its image`);
  // Only this device's accesses and the PCI configuration (the driver finds the bus master there).
  const steps = mine.filter((m) => m.rec.device === devId || m.rec.device === 'pci');
  const window = header.guests.find((g) => g.name === opts.guest)?.windows[devId];

  const registry = new DeviceRegistry();
  if (!registry.has(opts.deviceKind)) throw new ReplayError(`--device-kind ${opts.deviceKind}: no such device kind (known: ${registry.kinds().join(', ')})`);
  const tmp = mkdtempSync(join(tmpdir(), 'muxvisor-replay-'));
  const logger = opts.logger ?? silentLogger;
  let sup: Supervisor | null = null;
  try {
    const image = join(tmp, 'disk.img');
    const fd = openSync(image, 'w');
    ftruncateSync(fd, sectors * 512);
    closeSync(fd);
    const config = parseConfig(
      {
        socket: join(tmp, 'sock'),
        devices: [deviceConfig(dev, opts.deviceKind, image)],
        guests: [{ name: opts.guest, grants: [{ device: devId, ...(window ? { window } : {}) }] }],
      },
      '<replay>',
      { knownKinds: registry.kinds() },
    );
    sup = new Supervisor({ config, logger, registry, createRouter: await muxRouterFactory(config, { logger }) });
    await sup.start();
    const memory = new ReplayMemory(dmaReads);
    const guest = sup.attachLocalGuest(opts.guest, { memory });
    const result: ReplayResult = { guest: opts.guest, device: devId, kind: opts.deviceKind, accesses: 0, polls: 0, normalisedReads: 0, normalised: opts.strict ? 'nothing (--strict)' : `IDENTIFY words ${normalisedText()}; task-file reads with the absent device 1 selected (QEMU answers from an empty drive 1, our model from drive 0 as ATA-8 lets device 0 answer for an absent device 1)` };
    const settleMs = opts.settleMs ?? 5000;
    const context = opts.context ?? 20;
    let lastCommand = -1;
    let identifyBytes = 0; // bytes of IDENTIFY data read since the command: word positions for single reads too
    let device1 = false; // the guest selected device 1, which a one-drive channel does not have
    let dmaChecked = 0;
    const diverge = (k: number, what: Divergence['what'], expected: string, got: string): ReplayResult => {
      const { rec, line } = steps[k];
      result.divergence = { index: k, line, reg: rec.reg, addr: rec.addr, what, expected, got, record: rec, before: steps.slice(Math.max(0, k - context), k).map((s) => s.rec) };
      return result;
    };
    /** Recorded DMA writes before `line`: the replayed device must have written the same by now. */
    const checkDma = (k: number, line: number): ReplayResult | null => {
      for (; dmaChecked < dmaWrites.length && dmaWrites[dmaChecked].line < line; dmaChecked++) {
        const d = dmaWrites[dmaChecked].ev.dma!;
        const got = memory.crc(d.addr, d.len);
        if (got !== d.crc) return diverge(k, 'dma', `DMA write 0x${d.addr.toString(16)}+${d.len} crc ${d.crc}`, `crc ${got}`);
      }
      return null;
    };
    // For each step, the line of the guest's next write: the DMA its accesses start ends before it.
    const nextWrite: number[] = new Array(steps.length);
    for (let k = steps.length - 1, next = Infinity; k >= 0; k--) {
      nextWrite[k] = next;
      if (steps[k].rec.dir === 'w') next = steps[k].line;
    }
    for (let k = 0; k < steps.length; k++) {
      const { rec, line } = steps[k];
      memory.catchUp(line);
      memory.limit = nextWrite[k];
      const acc = toAccess(rec, line, log);
      let reply: Reply = await guest.access(acc);
      result.accesses++;
      if (rec.dir === 'w') {
        if (rec.reg === 'ATA_REG_DEVICE' && typeof rec.value === 'number') device1 = (rec.value & 0x10) !== 0;
        if (rec.reg === 'ATA_REG_CMD' && typeof rec.value === 'number') {
          lastCommand = rec.value;
          identifyBytes = 0;
        }
        continue;
      }
      const rule = rec.reg ? SETTLE[rec.reg] : undefined;
      if (rule && typeof rec.answer === 'number') {
        if (rec.answer & rule.busy) {
          result.polls++;
          continue; // the recorded device was busy: a poll
        }
        const until = Date.now() + settleMs;
        const unsettled = (v: number): boolean => (v & rule.busy) !== 0 || (rule.done !== undefined && (rec.answer as number) & rule.done && !(v & rule.done)) === true;
        while (unsettled(Number(reply.value)) && !reply.error && Date.now() < until) {
          await sleep(1);
          reply = await guest.access(acc);
        }
      }
      if (Boolean(reply.error) !== Boolean(rec.error)) return diverge(k, 'error', rec.error ?? 'no error', reply.error ?? 'no error');
      if (device1 && !opts.strict && typeof rec.reg === 'string' && ABSENT_DEVICE1_REGS.has(rec.reg)) {
        result.absentDevice1Reads = (result.absentDevice1Reads ?? 0) + 1;
        continue;
      }
      if (rec.answerData) {
        const got = reply.data ?? new Uint8Array();
        const want = rec.answerData.bytes;
        if (want) {
          const identify = IDENTIFY_OPCODES.has(lastCommand) && rec.reg === 'ATA_REG_DATA';
          const first = identify ? identifyBytes / 2 : 0;
          if (identify) identifyBytes += want.length;
          const w = firstWordDiff(want, got, identify && !opts.strict, first);
          if (w >= 0) {
            const word = (b: Uint8Array) => (w * 2 + 1 < b.length ? `0x${(b[w * 2] | (b[w * 2 + 1] << 8)).toString(16).padStart(4, '0')}` : 'none');
            return diverge(k, 'data', `word ${w} = ${word(want)}`, `word ${w} = ${word(got)}`);
          }
          if (identify && !opts.strict && firstWordDiff(want, got, false, first) >= 0) result.normalisedReads++;
        } else if (rec.answerData.len !== got.length || crcHex(got) !== rec.answerData.crc)
          return diverge(k, 'data', `${rec.answerData.len} B crc ${rec.answerData.crc}`, `${got.length} B crc ${crcHex(got)}`);
      } else {
        const want = typeof rec.answer === 'string' ? BigInt(rec.answer) : rec.answer;
        const got = reply.value;
        // IDENTIFY data read a word (or two) at a time, as a driver behind QEMU's proxy does.
        const identify = IDENTIFY_OPCODES.has(lastCommand) && rec.reg === 'ATA_REG_DATA' && typeof want === 'number';
        if (identify) {
          const bytes = (v: number | bigint): Uint8Array => Uint8Array.from({ length: rec.size }, (_, i) => Number((BigInt(v) >> BigInt(8 * i)) & 0xffn));
          const first = identifyBytes / 2;
          identifyBytes += rec.size;
          const w = firstWordDiff(bytes(want), bytes(got), !opts.strict, first);
          if (w >= 0) return diverge(k, 'answer', `${show(want)} (IDENTIFY word ${first + w})`, `${show(got)}`);
          if (!opts.strict && firstWordDiff(bytes(want), bytes(got), false, first) >= 0) result.normalisedReads++;
        } else if (want === undefined || BigInt(want) !== BigInt(got)) return diverge(k, 'answer', show(want), show(got));
      }
      // The driver saw the device ready here: DMA it recorded before this point is done now.
      if (rule) {
        const bad = checkDma(k, line);
        if (bad) return bad;
      }
    }
    const bad = checkDma(steps.length - 1, Infinity);
    return bad ?? result;
  } finally {
    await sup?.close().catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  }
}
