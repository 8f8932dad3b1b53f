// ATA/IDE disk (PIIX3 IDE function, primary channel, one drive): public entry points.
//   createAtaDevice(edges, blk, options)  -> AtaDevice (a Device; regions cmd=0, ctl=1, bmide=2)
//   createAta(ctx)                        -> DeviceFactory for the registry (kind `ata`)
//   openBlockBackend(config)              -> BlockBackend from { type: file | memory | nbd, ... }

import type { BlockBackend } from '../../backends/block.ts';
import type { DeviceEdges } from '../../device.ts';
import { AtaDevice, type AtaOptions } from './ata-device.ts';

export { AtaDevice, REGION_BMIDE, REGION_CMD, REGION_CTL, type AtaOptions, type AtaState } from './ata-device.ts';
export { buildIdentify, readAtaString, MAX_MULT_SECTORS } from './identify.ts';
export { walkPrdTable, type PrdWalk, type PrdSegment } from './bmdma.ts';
export { createAta, openBlockBackend, BlockBackendSchema, AtaPropertiesSchema } from './factory.ts';
export * as ataRegs from './regs.ts';

/** Builds the device over an open backend: `createAtaDevice(router.edges, backend, { model })`. */
export function createAtaDevice(edges: DeviceEdges, blk: BlockBackend, options: AtaOptions = {}): AtaDevice {
  return new AtaDevice(edges, blk, options);
}
