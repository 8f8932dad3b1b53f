// MUX definition of a 16550A UART (8 registers at the legacy COM base): guests share one
// serial line and take turns between lines of output, so their lines never interleave.
// Safe = between lines, with the divisor latch closed. Register names follow Linux
// (include/uapi/linux/serial_reg.h).

import { setup } from 'xstate';
import { defineMux, type GuestView } from '../src/mux/define.ts';

export const UART_TX = 0; // out: transmit holding register (DLAB=0); in: UART_RX
export const UART_IER = 1; // interrupt enable (DLAB=0)
export const UART_DLL = 0; // divisor latch low (DLAB=1)
export const UART_DLM = 1; // divisor latch high (DLAB=1)
export const UART_IIR = 2; // in: interrupt identification
export const UART_FCR = 2; // out: FIFO control
export const UART_LCR = 3; // line control
export const UART_MCR = 4; // modem control
export const UART_LSR = 5; // line status
export const UART_MSR = 6; // modem status
export const UART_SCR = 7; // scratch
export const UART_LCR_DLAB = 0x80; // divisor latch access bit
export const UART_LCR_WLEN8 = 0x03; // 8 data bits
const LF = 0x0a;

type UartEvent = { type: 'CHAR' } | { type: 'EOL' } | { type: 'DLAB_ON' } | { type: 'DLAB_OFF' };

/** Two concerns, two flags: inside a line or not, divisor latch open or not. Safe: neither. */
export const uartMachine = setup({ types: { events: {} as UartEvent } }).createMachine({
  id: 'uart16550',
  initial: 'idle',
  states: {
    idle: { tags: ['safe'], on: { CHAR: 'line', DLAB_ON: 'divisor' } },
    line: { on: { EOL: 'idle', DLAB_ON: 'lineDivisor' } },
    // With DLAB set, offsets 0/1 are the divisor latch: writes there are no characters.
    divisor: { on: { DLAB_OFF: 'idle' } },
    lineDivisor: { on: { DLAB_OFF: 'line' } },
  },
});

interface UartScratch {
  dlab?: boolean;
  divisor?: number;
}

export default defineMux({
  kind: 'uart16550',
  registers: {
    TX: { region: 'regs', offset: UART_TX, width: 1, help: 'UART_TX / UART_RX (DLAB=0), UART_DLL (DLAB=1)' },
    IER: { region: 'regs', offset: UART_IER, width: 1, help: 'UART_IER (DLAB=0), UART_DLM (DLAB=1)' },
    IIR: { region: 'regs', offset: UART_IIR, width: 1, access: 'r', help: 'UART_IIR: interrupt identification' },
    FCR: { region: 'regs', offset: UART_FCR, width: 1, access: 'w', help: 'UART_FCR: FIFO control' },
    LCR: { region: 'regs', offset: UART_LCR, width: 1, help: 'UART_LCR: word length, parity, DLAB 80h' },
    MCR: { region: 'regs', offset: UART_MCR, width: 1, help: 'UART_MCR: DTR, RTS, OUT2 (IRQ gate), loop' },
    LSR: { region: 'regs', offset: UART_LSR, width: 1, access: 'r', help: 'UART_LSR: DR 01h, THRE 20h, TEMT 40h' },
    MSR: { region: 'regs', offset: UART_MSR, width: 1, access: 'r', help: 'UART_MSR: modem status' },
    SCR: { region: 'regs', offset: UART_SCR, width: 1, help: 'UART_SCR: scratch' },
  },
  machine: uartMachine,
  classify(a, value) {
    if (a.dir !== 'write') return null;
    if (a.offset === UART_LCR) return value & UART_LCR_DLAB ? 'DLAB_ON' : 'DLAB_OFF';
    // A string write (rep outsb) reaches here one byte at a time (src/mux/access-forms.ts).
    if (a.offset === UART_TX) return value === LF ? 'EOL' : 'CHAR';
    return null;
  },
  context: [
    // The divisor (baud rate) is behind DLAB: replayed through the latch, before LCR closes it.
    {
      reg: 'DIVISOR',
      reset: 0x000c, // 9600 baud
      replay: async (v, io) => {
        await io.write('LCR', UART_LCR_DLAB);
        await io.write('TX', v & 0xff); // DLL
        await io.write('IER', (v >> 8) & 0xff); // DLM
      },
    },
    { reg: 'LCR', reset: 0 },
    { reg: 'IER', reset: 0 },
    { reg: 'MCR', reset: 0 },
    { reg: 'SCR', reset: 0 },
  ],
  translate: {
    // Track DLAB per guest so divisor writes are recorded as the guest's DIVISOR, not as IER/TX values.
    access(a, g: GuestView) {
      if (a.dir !== 'write') return;
      const s = g.scratch as UartScratch;
      if (a.offset === UART_LCR) s.dlab = (a.value & UART_LCR_DLAB) !== 0;
      else if (s.dlab && (a.offset === UART_DLL || a.offset === UART_DLM)) {
        const d = s.divisor ?? (g.context.get('DIVISOR') ?? 0x000c);
        s.divisor = a.offset === UART_DLL ? (d & 0xff00) | (a.value & 0xff) : (d & 0x00ff) | ((a.value & 0xff) << 8);
        g.setContext('DIVISOR', s.divisor);
        // The write reaches the latch; it must not count as the guest's IER.
        return { ...a, reg: undefined };
      }
    },
  },
  // Close the latch, end the line: from anywhere back to idle.
  reset: {
    writes: [
      { reg: 'LCR', value: UART_LCR_WLEN8 },
      { reg: 'TX', value: LF },
    ],
  },
  deadlineNs: 1_000_000_000, // a line may take a while at 9600 baud
});
