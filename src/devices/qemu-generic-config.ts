// The config shapes of the generic `qemu` kind (src/devices/qemu-generic.ts): its backend and
// its properties, checked when the configuration is loaded (src/config/device-shapes.ts) and
// again by the factory.

import { z } from 'zod';

export const QemuGenericBackendSchema = z.strictObject({
  type: z.literal('qemu'),
  binary: z.string().min(1).optional().meta({ description: 'the QEMU binary (default qemu-system-x86_64)' }),
  memoryMiB: z.number().int().positive().optional(),
  extraArgs: z.array(z.string()).optional().meta({ description: 'more QEMU arguments, e.g. ["-chardev", "file,id=c0,path=out.txt"] for the device\'s chardev=c0' }),
});

/** A number, or a string such as "0x3f8" as addresses are written elsewhere in the config. */
const addr = (min: number, max: number) =>
  z
    .union([z.number(), z.string().regex(/^(0x[0-9a-fA-F]+|[0-9]+)$/, 'expected a number or a string such as "0x3f8"').transform(Number)])
    .pipe(z.number().int().min(min).max(max));
const Port = addr(0, 0xffff);

/** A region of a PCI function: BAR `bar` under the name the MUX machine uses. */
const BarRegion = z.strictObject({
  name: z.string().min(1),
  bar: z.number().int().min(0).max(5),
});

/**
 * A fixed region: an ISA device's, or a PCI function's legacy ports (the PIIX3 IDE's 0x1F0).
 * QEMU decodes it at `base`; the guest sees it there unless `map` moves it.
 */
const IsaRegion = z.strictObject({
  name: z.string().min(1),
  space: z.enum(['pio', 'mmio']),
  base: addr(0, 0xffff_ffff),
  size: z.number().int().positive().max(0x1_0000),
});

export const QemuGenericPropertiesSchema = z
  .strictObject({
    device: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'expected a QEMU device name such as "pci-serial" or "isa-serial" (qemu-system-x86_64 -device help)').optional(),
    args: z.string().regex(/^[^,]/, 'expected more -device options without a leading comma, e.g. "chardev=c0"').optional(),
    bus: z.enum(['pci', 'isa']).optional(),
    slot: z.number().int().min(1).max(31).optional(),
    function: z.number().int().min(0).max(7).optional(),
    regions: z.array(z.union([BarRegion, IsaRegion])).min(1).optional(),
    irq: z.number().int().min(3).max(15).optional(),
    ioBase: Port.optional(),
    mmioBase: addr(0x1000_0000, 0xfe00_0000).optional(),
    running: z.boolean().optional(),
    machine: z.string().optional(),
    deadlineNs: z.number().positive().optional(),
  })
  .superRefine((p, ctx) => {
    const bus = busOf(p);
    if (bus === 'isa' && (p.regions ?? []).some((r) => 'bar' in r)) ctx.addIssue({ code: 'custom', path: ['regions'], message: 'an ISA device has no BARs: give every region as {name, space, base, size}' });
    if (bus === 'isa' && !p.regions) ctx.addIssue({ code: 'custom', path: ['regions'], message: 'an ISA device needs its fixed regions: [{name, space, base, size}]' });
    const names = (p.regions ?? []).map((r) => r.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) ctx.addIssue({ code: 'custom', path: ['regions'], message: `region name "${dup}" is used twice` });
    if (bus === 'isa' && (p.slot !== undefined || p.function !== undefined)) ctx.addIssue({ code: 'custom', path: [p.slot !== undefined ? 'slot' : 'function'], message: 'an ISA device has no PCI slot or function' });
    if (p.device === undefined && (bus === 'isa' || p.slot === undefined))
      ctx.addIssue({ code: 'custom', path: ['device'], message: 'expected a QEMU device name (-device NAME), or a PCI slot (and function) the machine has built in, such as the PIIX3 IDE at slot 1, function 1' });
    if (p.device === undefined && p.args !== undefined) ctx.addIssue({ code: 'custom', path: ['args'], message: 'args are -device options: they need a device' });
  });

/** ISA when said so, or when every region is fixed and no PCI slot is named; PCI otherwise. */
export function busOf(p: { bus?: 'pci' | 'isa'; slot?: number; function?: number; regions?: Array<object> }): 'pci' | 'isa' {
  if (p.bus) return p.bus;
  const allFixed = p.regions !== undefined && p.regions.every((r) => 'base' in r);
  return allFixed && p.slot === undefined && p.function === undefined ? 'isa' : 'pci';
}

export type QemuGenericBackend = z.infer<typeof QemuGenericBackendSchema>;
export type QemuGenericProperties = z.infer<typeof QemuGenericPropertiesSchema>;

export const DEFAULT_SLOT = 4;
export const DEFAULT_PCI_IRQ = 11;
export const DEFAULT_IO_BASE = 0xc000;
export const DEFAULT_MMIO_BASE = 0xe000_0000;
