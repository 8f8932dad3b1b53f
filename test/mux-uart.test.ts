// machines/uart16550 on a minimal 16550 stand-in: two guests print lines on one UART; lines
// never interleave, and each guest's characters go out at its own baud rate (the divisor is a
// pseudo context register replayed through the divisor latch).
import { describe, expect, it } from 'vitest';
import type { Access } from '../src/access.ts';
import type { Device } from '../src/device.ts';
import uart, { UART_LCR, UART_LCR_DLAB, UART_TX, UART_IER } from '../machines/uart16550.ts';
import roundRobin from '../policies/round-robin.ts';
import { settle, VirtualTime } from '../src/check/virtual-time.ts';
import { createMux } from '../src/mux/engine.ts';
import { lintDefinition } from '../src/check/machine-lint.ts';

/** Just enough 16550: THR output, divisor latch, LCR/IER/MCR/SCR storage, LSR always ready. */
function fakeUart(out: Array<{ ch: string; divisor: number }>): Device {
  const r = [0, 0, 0, 0, 0, 0, 0, 0];
  let dll = 12;
  let dlm = 0;
  const dlab = () => (r[UART_LCR] & UART_LCR_DLAB) !== 0;
  return {
    describe: () => ({ kind: 'uart16550', regions: [{ name: 'regs', space: 'pio', size: 8, legacyBase: 0x3f8 }], irq: 4, properties: [] }),
    read: (_g, off) => (off === 5 ? 0x60 : off === 0 && dlab() ? dll : off === 1 && dlab() ? dlm : r[off]),
    write: (_g, off, _s, v) => {
      if (off === 0 && dlab()) dll = v;
      else if (off === 1 && dlab()) dlm = v;
      else if (off === 0) out.push({ ch: String.fromCharCode(v), divisor: dlm * 256 + dll });
      else r[off] = v;
    },
    reset: () => {},
    metrics: () => ({}),
  };
}

describe('machines/uart16550', () => {
  it('passes check-machine', () => {
    const r = lintDefinition(uart);
    expect(r.problems).toEqual([]);
    expect(r.safeStates).toEqual(['idle']);
  });

  it('keeps lines whole and each guest at its own divisor', async () => {
    const vt = new VirtualTime();
    const mux = createMux(uart, { deviceId: 'ttyS0', policy: roundRobin({ quantumNs: 0 }), clock: vt.clock, timers: vt.timersApi });
    const out: Array<{ ch: string; divisor: number }> = [];
    mux.bind(fakeUart(out));
    for (const id of ['a', 'b']) mux.attach({ id, weight: 1, priority: 0, deadlineNs: Infinity, memory: null, setIrq() {} });
    const w = (g: string, off: number, value: number) => mux.access(g, 0, off, { space: 'pio', addr: 0x3f8 + off, size: 1, dir: 'write', value } as Access);
    const guest = async (g: string, divisor: number | null, lines: string[]) => {
      if (divisor !== null) {
        await w(g, UART_LCR, UART_LCR_DLAB | 3);
        await w(g, UART_TX, divisor & 0xff);
        await w(g, UART_IER, divisor >> 8);
        await w(g, UART_LCR, 3);
      }
      for (const line of lines) for (const ch of line + '\n') await w(g, UART_TX, ch.charCodeAt(0));
    };
    const done = Promise.all([guest('a', 1, ['a-one', 'a-two', 'a-three']), guest('b', null, ['b-one', 'b-two'])]);
    let finished = false;
    done.then(() => (finished = true));
    while (!finished) {
      await settle();
      if (!finished) vt.fireNext();
    }
    const lines: Array<{ text: string; divisors: Set<number> }> = [];
    let cur = { text: '', divisors: new Set<number>() };
    for (const o of out) {
      if (o.ch === '\n') {
        lines.push(cur);
        cur = { text: '', divisors: new Set() };
      } else {
        cur.text += o.ch;
        cur.divisors.add(o.divisor);
      }
    }
    expect(lines.map((l) => l.text).sort()).toEqual(['a-one', 'a-three', 'a-two', 'b-one', 'b-two']);
    for (const l of lines) expect([...l.divisors]).toEqual([l.text.startsWith('a') ? 1 : 12]);
    // Both guests really took turns (round-robin at every line end).
    expect(mux.stats().switches).toBeGreaterThanOrEqual(4);
    expect(mux.stats().unsafeSwitches).toBe(0);
  });
});
