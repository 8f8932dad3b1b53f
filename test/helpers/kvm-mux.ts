// A supervisor with one ATA disk (our model on a raw file) behind the MUX, shared by KVM
// guests that each get a partition window: the setup of the KVM acceptance tests.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.ts';
import { realTimers, type Timers } from '../../src/mux/engine.ts';
import { muxRouterFactory } from '../../src/mux/router-factory.ts';
import { Supervisor } from '../../src/supervisor.ts';
import type { AttachLocal } from '../../src/trap/kvm-inproc.ts';
import { tempDisk } from './kvm.ts';

export interface KvmMuxRig {
  sup: Supervisor;
  socket: string;
  attach: AttachLocal;
  image: string;
  names: string[];
  window: number;
  /** Messages the supervisor and the MUX logged at warn and above, as {msg, guest, why}. */
  warnings: Array<{ msg: string; guest?: string; why?: string }>;
  /** Fire the MUX's watchdog timers armed and not cleared, as if the deadline had passed; returns how many fired. */
  fireWatchdogs(): number;
  close(): Promise<void>;
}

/**
 * The MUX's watchdog deadline here. The rig holds the timers armed with it until the test
 * calls fireWatchdogs(): on a loaded machine a guest's normal command, or the exit report of
 * a guest that crashed mid-command, can take longer than this (over 1.3 s seen with the
 * machine busy), and the watchdog would cut off a guest that did nothing wrong. Other
 * timers stay real.
 */
const DEADLINE_NS = 2_000_000_000;

export async function kvmMuxRig(guests: number, window: number): Promise<KvmMuxRig> {
  const disk = tempDisk(guests * window);
  const socket = join(disk.dir, 'muxvisor.sock');
  const names = Array.from({ length: guests }, (_, i) => `kvm${i + 1}`);
  const config = parseConfig(
    {
      socket,
      devices: [{ id: 'disk0', kind: 'ata', backend: { type: 'file', path: disk.path }, properties: { deadlineNs: DEADLINE_NS } }],
      guests: names.map((name, i) => ({ name, grants: [{ device: 'disk0', window: { startLba: i * window, sectors: window } }] })),
    },
    'kvm test config',
  );
  const warnings: KvmMuxRig['warnings'] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line)) });
  const held = new Set<() => void>();
  const timers: Timers = {
    set: (fn, delayNs) => {
      if (delayNs !== DEADLINE_NS) return realTimers.set(fn, delayNs);
      held.add(fn);
      return fn;
    },
    clear: (h) => {
      if (!held.delete(h as () => void)) realTimers.clear(h);
    },
  };
  const sup = new Supervisor({ config, logger, createRouter: await muxRouterFactory(config, { logger, timers }) });
  await sup.listen({ path: socket });
  return {
    sup,
    socket,
    attach: sup.attachLocalGuest.bind(sup),
    image: disk.path,
    names,
    window,
    warnings,
    fireWatchdogs() {
      const due = [...held];
      held.clear();
      for (const fn of due) fn();
      return due.length;
    },
    async close() {
      await sup.close();
      disk.dispose();
    },
  };
}

/** Word `word` (u32) of each window's sector `lba` on the shared disk image. */
export function windowWords(rig: KvmMuxRig, lba: number, word: number): number[] {
  const img = readFileSync(rig.image);
  return rig.names.map((_, i) => img.readUInt32LE(((i * rig.window) + lba) * 512 + word * 4));
}
