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

/** A fixed ISA region: QEMU decodes it at `base`, the guest sees it there unless `map` moves it. */
const IsaRegion = z.strictObject({
  name: z.string().min(1),
  space: z.enum(['pio', 'mmio']),
  base: addr(0, 0xffff_ffff),
  size: z.number().int().positive().max(0x1_0000),
});

export const QemuGenericPropertiesSchema = z
  .strictObject({
    device: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'expected a QEMU device name such as "pci-serial" or "isa-serial" (qemu-system-x86_64 -device help)'),
    args: z.string().regex(/^[^,]/, 'expected more -device options without a leading comma, e.g. "chardev=c0"').optional(),
    slot: z.number().int().min(2).max(31).optional(),
    regions: z.array(z.union([BarRegion, IsaRegion])).min(1).optional(),
    irq: z.number().int().min(3).max(15).optional(),
    ioBase: Port.optional(),
    mmioBase: addr(0x1000_0000, 0xfe00_0000).optional(),
    running: z.boolean().optional(),
    machine: z.string().optional(),
    deadlineNs: z.number().positive().optional(),
  })
  .superRefine((p, ctx) => {
    const isa = (p.regions ?? []).filter((r) => 'base' in r).length;
    if (isa > 0 && isa !== p.regions!.length) ctx.addIssue({ code: 'custom', path: ['regions'], message: 'either every region is a BAR ({name, bar}) of a PCI device or every one a fixed ISA region ({name, space, base, size}), not both' });
    const names = (p.regions ?? []).map((r) => r.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) ctx.addIssue({ code: 'custom', path: ['regions'], message: `region name "${dup}" is used twice` });
    if (isa > 0 && p.slot !== undefined) ctx.addIssue({ code: 'custom', path: ['slot'], message: 'an ISA device (regions with a base) has no PCI slot' });
  });

export type QemuGenericBackend = z.infer<typeof QemuGenericBackendSchema>;
export type QemuGenericProperties = z.infer<typeof QemuGenericPropertiesSchema>;

export const DEFAULT_SLOT = 4;
export const DEFAULT_PCI_IRQ = 11;
export const DEFAULT_IO_BASE = 0xc000;
export const DEFAULT_MMIO_BASE = 0xe000_0000;
