// Registry glue: builds an ATA device from a config entry, opening the block backend named by
// `backend` (file | memory | nbd). Usage in src/devices/registry.ts:
//   ata: async () => (await import('./ata/factory.ts')).createAta,

import { z } from 'zod';
import { BackendError, SECTOR, type BlockBackend } from '../../backends/block.ts';
import { openFileBackend } from '../../backends/file.ts';
import { MemoryBackend } from '../../backends/memory.ts';
import { openNbdBackend } from '../../backends/nbd.ts';
import type { Device, DeviceEdges } from '../../device.ts';
import { AtaDevice } from './ata-device.ts';

const SECTORS_PER_MIB = (1024 * 1024) / SECTOR;

export const AtaPropertiesSchema = z.strictObject({
  model: z.string().max(40).optional(),
  serial: z.string().max(20).optional(),
  firmware: z.string().max(8).optional(),
  writeCache: z.boolean().optional(),
  // Read by the MUX (src/mux/router-factory.ts), not by the model.
  machine: z.string().optional(),
  deadlineNs: z.number().positive().optional(),
});

export const BlockBackendSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('file'), path: z.string().min(1), sizeMiB: z.number().positive().optional(), readOnly: z.boolean().optional(), create: z.boolean().optional() }),
  z.strictObject({ type: z.literal('memory'), sizeMiB: z.number().positive() }),
  z
    .strictObject({
      type: z.literal('nbd'),
      socket: z.string().min(1).optional(),
      host: z.string().min(1).optional(),
      port: z.number().int().min(1).max(65535).optional(),
      exportName: z.string().optional(),
    })
    .refine((b) => (b.socket === undefined) !== (b.host === undefined), 'give either `socket` (a Unix socket path) or `host` (+ `port`)'),
]);

export type BlockBackendConfig = z.output<typeof BlockBackendSchema>;

function issues(e: z.ZodError): string {
  return e.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/** Opens the BlockBackend a config describes; errors name the device and the bad field. */
export async function openBlockBackend(config: unknown, where = 'ata'): Promise<BlockBackend> {
  const parsed = BlockBackendSchema.safeParse(config);
  if (!parsed.success) throw new BackendError(where, `backend must be file | memory | nbd: ${issues(parsed.error)}`);
  const b = parsed.data;
  switch (b.type) {
    case 'memory':
      return new MemoryBackend(Math.ceil(b.sizeMiB * SECTORS_PER_MIB));
    case 'file':
      if (b.create && b.sizeMiB === undefined) throw new BackendError(where, 'backend.create needs backend.sizeMiB');
      return openFileBackend(b.path, { readOnly: b.readOnly, createSectors: b.create ? Math.ceil(b.sizeMiB! * SECTORS_PER_MIB) : undefined }); // sizeMiB checked just above
    case 'nbd':
      return openNbdBackend({ socketPath: b.socket, host: b.host, port: b.port, exportName: b.exportName });
  }
}

/** DeviceFactory for kind `ata`. */
export async function createAta(ctx: { id?: string; edges: DeviceEdges; backend?: unknown; properties: Record<string, unknown> }): Promise<Device> {
  const where = `device ${ctx.id ?? 'ata'}`;
  const props = AtaPropertiesSchema.safeParse(ctx.properties ?? {});
  if (!props.success) throw new BackendError(where, `bad properties: ${issues(props.error)}`);
  const blk = await openBlockBackend(ctx.backend, where);
  const { machine: _m, deadlineNs: _d, ...model } = props.data;
  return new AtaDevice(ctx.edges, blk, model);
}
