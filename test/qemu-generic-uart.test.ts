// QEMU's own 16550 (pci-serial, isa-serial) shared by two guests through the generic `qemu`
// kind and machines/uart16550: each scripted guest prints lines the way a polling 16550 driver
// does (LSR.THRE, then THR). What QEMU's chardev wrote to a real file must hold every line of
// each guest whole, never two guests' characters within one line, and nothing else. Without
// the machine (pass-through) the same guests' lines do mix, so the check can fail.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Access } from '../src/access.ts';
import { parseConfig } from '../src/config/load.ts';
import type { MuxEngine } from '../src/mux/engine.ts';
import { muxRouterFactory } from '../src/mux/router-factory.ts';
import { Supervisor, type LocalGuest } from '../src/supervisor.ts';
import { UART_IER, UART_IIR, UART_LCR, UART_LCR_DLAB, UART_LCR_WLEN8, UART_LSR, UART_MCR, UART_TX } from '../machines/uart16550.ts';
import { checkMachine } from '../src/check/machine-lint.ts';
import { missing, titled } from './helpers/requires.ts';

const why = missing('qemu');
const COM1 = 0x3f8;
const UART_FCR = 2;
const UART_LSR_THRE = 0x20; // transmit holding register empty
const UART_MCR_OUT2 = 0x08; // gates the UART's interrupt onto the bus
const UART_IER_THRI = 0x02; // interrupt when THR is empty
const UART_IIR_THRI = 0x02; // IIR: THR empty is the pending interrupt
const LINES = 12;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

type Variant = 'pci-serial' | 'isa-serial';

async function rig(variant: Variant, withMachine: boolean, deadlineNs?: number) {
  const dir = mkdtempSync(join(tmpdir(), 'mv-qemu-uart-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'serial.out');
  const regions = variant === 'pci-serial' ? [{ name: 'regs', bar: 0 }] : [{ name: 'regs', space: 'pio', base: '0x3f8', size: 8 }];
  const config = parseConfig(
    {
      socket: join(dir, 'mv.sock'),
      devices: [
        {
          id: 'ser0',
          kind: 'qemu',
          backend: { type: 'qemu', extraArgs: ['-chardev', `file,id=c0,path=${out}`] },
          map: { regs: `0x${COM1.toString(16)}` },
          properties: { device: variant, args: 'chardev=c0', regions, ...(variant === 'isa-serial' ? { irq: 4 } : {}) },
          ...(withMachine ? { mux: { machine: 'uart16550', ...(deadlineNs ? { deadlineNs } : {}) } } : {}),
          // Switch at every line end, so the guests' lines really alternate.
          ...(withMachine ? { policy: { name: 'round-robin', options: { quantumNs: 0 } } } : {}),
        },
      ],
      guests: ['a', 'b'].map((name) => ({ name, grants: [{ device: 'ser0', ...(withMachine ? {} : { shared: true }) }] })),
    },
    'qemu-generic-uart test config',
  );
  let engine: MuxEngine | null = null;
  const sup = new Supervisor({ config, createRouter: await muxRouterFactory(config, { onEngine: (_id, e) => (engine = e) }) });
  await sup.start();
  cleanups.push(() => sup.close());
  return { sup, out, engine: () => engine };
}

const io = (g: LocalGuest) => ({
  out: async (off: number, value: number) => {
    const r = await g.access({ space: 'pio', addr: COM1 + off, size: 1, dir: 'write', value } as Access);
    if (r.error) throw new Error(`guest ${g.name}: write 0x${(COM1 + off).toString(16)}: ${r.error}`);
  },
  in: async (off: number) => {
    const r = await g.access({ space: 'pio', addr: COM1 + off, size: 1, dir: 'read' } as Access);
    if (r.error) throw new Error(`guest ${g.name}: read 0x${(COM1 + off).toString(16)}: ${r.error}`);
    return Number(r.value);
  },
});

const lineOf = (guest: string, i: number) => `${guest}:${String(i).padStart(2, '0')} the quick brown fox jumps over the lazy dog (${guest.repeat(8)})`;

/** A polling 16550 driver: 8N1 at 115200 baud, FIFOs on, then each line as THRE allows. */
async function printLines(g: LocalGuest): Promise<void> {
  const u = io(g);
  await u.out(UART_LCR, UART_LCR_DLAB | UART_LCR_WLEN8);
  await u.out(UART_TX, 1); // DLL: 115200 baud
  await u.out(UART_IER, 0); // DLM
  await u.out(UART_LCR, UART_LCR_WLEN8);
  await u.out(UART_FCR, 0x07); // enable and clear both FIFOs
  for (let i = 0; i < LINES; i++) {
    for (const ch of `${lineOf(g.name, i)}\n`) {
      for (let polls = 0; !((await u.in(UART_LSR)) & UART_LSR_THRE); polls++) if (polls > 10_000) throw new Error(`guest ${g.name}: THRE never set`);
      await u.out(UART_TX, ch.charCodeAt(0));
    }
  }
}

/** The chardev file once it holds `bytes` bytes (QEMU writes it as the UART transmits). */
async function output(path: string, bytes: number): Promise<string> {
  for (let i = 0; ; i++) {
    const text = readFileSync(path, 'latin1');
    if (text.length >= bytes || i > 200) return text;
    await new Promise((r) => setTimeout(r, 10));
  }
}

const expected = ['a', 'b'].flatMap((g) => Array.from({ length: LINES }, (_, i) => lineOf(g, i)));
const totalBytes = expected.reduce((n, l) => n + l.length + 1, 0);

describe.skipIf(why !== null)(titled('generic qemu kind: QEMU\'s 16550 shared through machines/uart16550', why), () => {
  for (const variant of ['pci-serial', 'isa-serial'] as const) {
    it(`${variant}: two guests' lines reach the chardev whole, none interleaved, none lost`, async () => {
      const { sup, out, engine } = await rig(variant, true);
      const layout = sup.layout().find((d) => d.id === 'ser0')!;
      expect(layout.regions).toEqual([{ name: 'regs', space: 'pio', start: COM1, end: COM1 + 7 }]);
      if (variant === 'pci-serial') expect(layout.pci).toBeDefined();
      const [a, b] = [sup.attachLocalGuest('a'), sup.attachLocalGuest('b')];
      await Promise.all([printLines(a), printLines(b)]);
      const text = await output(out, totalBytes);
      expect(text.endsWith('\n')).toBe(true);
      const lines = text.slice(0, -1).split('\n');
      // Whole lines only: each is exactly one a guest printed (a mixed line matches none).
      for (const l of lines) expect(expected, `line ${JSON.stringify(l)}`).toContain(l);
      expect([...lines].sort()).toEqual([...expected].sort());
      // Each guest's lines in its own order.
      for (const g of ['a', 'b']) expect(lines.filter((l) => l.startsWith(`${g}:`))).toEqual(expected.filter((l) => l.startsWith(`${g}:`)));
      // The guests really took turns between lines, never inside one.
      const stats = engine()!.stats();
      expect(stats.switches).toBeGreaterThanOrEqual(4);
      expect(stats.unsafeSwitches).toBe(0);
      expect(lines.findIndex((l) => l.startsWith('b:'))).toBeLessThan(LINES); // b did not wait for all of a

      // QEMU's interrupt reaches the guest that drives the UART: THRI with OUT2 raises the
      // line (PCI: INTA through the PIRQ routing; ISA: IRQ 4), reading IIR lowers it.
      const line = variant === 'pci-serial' ? 11 : 4;
      expect(a.irqs).toContain(line);
      const seen: boolean[] = [];
      a.onIrq((l, level) => l === line && seen.push(level));
      const u = io(a);
      await u.out(UART_MCR, UART_MCR_OUT2);
      await u.out(UART_IER, UART_IER_THRI);
      for (let i = 0; i < 200 && !seen.includes(true); i++) await new Promise((r) => setTimeout(r, 5));
      expect(seen).toContain(true);
      expect((await u.in(UART_IIR)) & 0x0f).toBe(UART_IIR_THRI);
      for (let i = 0; i < 200 && seen.at(-1) !== false; i++) await new Promise((r) => setTimeout(r, 5));
      expect(seen.at(-1)).toBe(false);
    });
  }

  it('a guest that stops mid-line is cut off at the deadline: the reset path ends its line on QEMU\'s UART, the other guest prints whole lines', async () => {
    const { sup, out, engine } = await rig('pci-serial', true, 300_000_000);
    const [a, b] = [sup.attachLocalGuest('a'), sup.attachLocalGuest('b')];
    const ua = io(a);
    await ua.out(UART_LCR, UART_LCR_WLEN8);
    for (const ch of 'a:hangs') await ua.out(UART_TX, ch.charCodeAt(0)); // then never ends the line
    await printLines(b); // waits for the watchdog, then owns the device
    const text = await output(out, 'a:hangs\n'.length + LINES * (lineOf('b', 0).length + 1));
    expect(text.split('\n').filter(Boolean)).toEqual(['a:hangs', ...expected.filter((l) => l.startsWith('b:'))]);
    expect(engine()!.stats()).toMatchObject({ resets: 1, faults: 1, unsafeSwitches: 0 });
    // machines/uart16550's reset path is soft (LCR, then LF ends the line): QEMU's own reset is not needed.
    expect(sup.stats().deviceMetrics.ser0).toMatchObject({ resets: 0, badAccess: 0 });
    expect((await a.access({ space: 'pio', addr: COM1 + UART_LSR, size: 1, dir: 'read' } as Access)).error).toBeDefined(); // faulted
  });

  it('without the machine (pass-through) the same guests\' lines mix: the check above can fail', async () => {
    const { sup, out } = await rig('pci-serial', false);
    const [a, b] = [sup.attachLocalGuest('a'), sup.attachLocalGuest('b')];
    await Promise.all([printLines(a), printLines(b)]);
    const lines = (await output(out, totalBytes)).split('\n').filter(Boolean);
    expect(lines.filter((l) => !expected.includes(l)).length).toBeGreaterThan(0);
  });
});

describe('machines/uart16550 for the generic qemu kind', () => {
  it('check-machine --kind qemu passes: the kind has no fixed regions, each device names its own', async () => {
    const r = await checkMachine('uart16550', { kind: 'qemu' });
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.report).toMatch(/regions not checked: device kind qemu has no fixed regions/);
  });
});
