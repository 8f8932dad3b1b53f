// A supervisor with one ATA disk (our model on a raw file) behind the MUX, shared by KVM
// guests that each get a partition window: the setup of the KVM acceptance tests.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.ts';
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
  close(): Promise<void>;
}

export async function kvmMuxRig(guests: number, window: number): Promise<KvmMuxRig> {
  const disk = tempDisk(guests * window);
  const socket = join(disk.dir, 'muxvisor.sock');
  const names = Array.from({ length: guests }, (_, i) => `kvm${i + 1}`);
  const config = parseConfig(
    {
      socket,
      devices: [{ id: 'disk0', kind: 'ata', backend: { type: 'file', path: disk.path } }],
      guests: names.map((name, i) => ({ name, grants: [{ device: 'disk0', window: { startLba: i * window, sectors: window } }] })),
    },
    'kvm test config',
  );
  const warnings: KvmMuxRig['warnings'] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line)) });
  const sup = new Supervisor({ config, logger, createRouter: await muxRouterFactory(config, { logger }) });
  await sup.listen({ path: socket });
  return {
    sup,
    socket,
    attach: sup.attachLocalGuest.bind(sup),
    image: disk.path,
    names,
    window,
    warnings,
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
