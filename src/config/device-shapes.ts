// The backend and properties of a built-in device kind, checked against the shapes its own
// module exports when the configuration is loaded, so that a mistake there is reported with
// its JSON path (`devices[0].backend.socket: ...`) before any device is opened. The device
// factories check the same shapes again for callers that build devices without a config file.

import type { z } from 'zod';
import { type ConfigIssue, type DeviceConfig, flattenIssues } from './schema.ts';

interface KindShapes {
  /** The backend this kind opens; a device of the kind without one is an error unless `optional`. */
  backend?: { schema: z.ZodType; help: string; optional?: boolean };
  properties?: z.ZodType;
}

/** Built-in kinds whose modules export their shapes; loaded only for kinds a config uses. */
const SHAPES: Record<string, () => Promise<KindShapes>> = {
  ata: async () => {
    const m = await import('../devices/ata/factory.ts');
    return { backend: { schema: m.BlockBackendSchema, help: 'file | memory | nbd' }, properties: m.AtaPropertiesSchema };
  },
  ne2k: async () => ({
    properties: (await import('../devices/ne2k/factory.ts')).Ne2kPropertiesSchema,
    backend: { schema: (await import('../backends/nic/schemas.ts')).NetBackendSchema, help: 'switch | udp | tap', optional: true },
  }),
  'qemu-ne2k': async () => {
    const m = await import('../devices/qemu-ne2k.ts');
    return { backend: { schema: m.QemuNe2kBackendSchema, help: '{"type": "qemu", "netdev"?: <QEMU -netdev value>}' }, properties: m.QemuNe2kPropertiesSchema };
  },
  qemu: async () => {
    const m = await import('../devices/qemu-generic-config.ts');
    return { backend: { schema: m.QemuGenericBackendSchema, help: '{"type": "qemu", "extraArgs"?: [...]}' }, properties: m.QemuGenericPropertiesSchema };
  },
  'qemu-ide': async () => {
    const m = await import('../devices/qemu-ide.ts');
    return { backend: { schema: m.QemuIdeBackendSchema, help: '{"type": "qemu", "image": <raw image path>}' } };
  },
};

/** Issues with the backend and properties of each device of a built-in kind, by JSON path. */
export async function deviceShapeIssues(devices: readonly DeviceConfig[]): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = [];
  for (const [i, d] of devices.entries()) {
    // A device with its own `model` checks its own backend and properties.
    const load = d.model === undefined ? SHAPES[d.kind] : undefined;
    if (!load) continue;
    const shapes = await load();
    if (shapes.backend) {
      if (d.backend === undefined) {
        if (!shapes.backend.optional) issues.push({ path: `devices[${i}].backend`, message: `a device of kind ${d.kind} needs a backend: ${shapes.backend.help}` });
      } else {
        const r = shapes.backend.schema.safeParse(d.backend);
        if (!r.success) issues.push(...flattenIssues(r.error.issues, ['devices', i, 'backend'], shapes.backend.schema));
      }
    }
    if (shapes.properties) {
      const r = shapes.properties.safeParse(d.properties);
      if (!r.success) issues.push(...flattenIssues(r.error.issues, ['devices', i, 'properties'], shapes.properties));
    }
  }
  return issues;
}
