// MUX definition of the simulated block device (src/devices/sim.ts): the device the
// property suite drives, and a small complete example of the authoring API.

import { setup } from 'xstate';
import { defineMux, type MuxAccess } from '../src/mux/define.ts';
import {
  SIM_ADDR,
  SIM_CMD,
  SIM_CMD_DMA_READ,
  SIM_CMD_DMA_WRITE,
  SIM_CMD_READ,
  SIM_CMD_RESET,
  SIM_CMD_WRITE,
  SIM_DATA,
  SIM_DMA_ADDR,
  SIM_IEN,
  SIM_KEY,
  SIM_SR_BUSY,
  SIM_SR_DRQ,
  SIM_SR_ERR,
  SIM_STATUS,
} from '../src/devices/sim.ts';

type SimEvent = { type: 'READ' } | { type: 'WRITE' } | { type: 'DMA' } | { type: 'DRQ' } | { type: 'IDLE' } | { type: 'RESET' };

/** The protocol as the MUX follows it: safe only between commands. */
export const simMachine = setup({ types: { events: {} as SimEvent } }).createMachine({
  id: 'sim',
  initial: 'idle',
  on: { RESET: '.idle' }, // SIM_CMD_RESET aborts anything
  states: {
    idle: { tags: ['safe'], on: { READ: 'cmd.busyRead', WRITE: 'cmd.busyWrite', DMA: 'cmd.dma' } },
    cmd: {
      initial: 'busyRead',
      on: { IDLE: 'idle' }, // STATUS with neither BUSY nor DRQ: the command is over
      states: {
        busyRead: { on: { DRQ: 'reading' } },
        reading: {},
        busyWrite: { on: { DRQ: 'writing' } },
        writing: {},
        dma: {},
      },
    },
  },
});

const COMMANDS: Record<number, string> = {
  [SIM_CMD_READ]: 'READ',
  [SIM_CMD_WRITE]: 'WRITE',
  [SIM_CMD_DMA_READ]: 'DMA',
  [SIM_CMD_DMA_WRITE]: 'DMA',
  [SIM_CMD_RESET]: 'RESET',
};

/** Per-guest translation state kept in GuestView.scratch. */
interface SimScratch {
  /** ADDR as the guest wrote it (the device holds it shifted into the guest's window). */
  addr?: number;
  /** The guest's last command was outside its window: answered here with ERR. */
  err?: boolean;
}

const isCmd = (a: MuxAccess) => a.offset === SIM_CMD && a.dir === 'write';

export default defineMux({
  kind: 'sim',
  registers: {
    DATA: { region: 'regs', offset: SIM_DATA, width: 1, string: true, help: 'data port, 8 bytes per block' },
    ADDR: { region: 'regs', offset: SIM_ADDR, width: 1, help: 'block number of the next command' },
    KEY: { region: 'regs', offset: SIM_KEY, width: 1, help: 'xor key applied to block data' },
    CMD: { region: 'regs', offset: SIM_CMD, width: 1, access: 'w', help: 'command: 1 read, 2 write, 3 reset, 4 dma read, 5 dma write' },
    STATUS: { region: 'regs', offset: SIM_STATUS, width: 1, access: 'r', help: 'status: BUSY 0x80, DRQ 0x08, ERR 0x01; reading lowers the IRQ' },
    IEN: { region: 'regs', offset: SIM_IEN, width: 1, help: 'interrupt enable, bit 0' },
    DMA_ADDR: { region: 'regs', offset: SIM_DMA_ADDR, width: 4, help: 'bus address of DMA commands' },
  },
  machine: simMachine,
  classify(a, value) {
    if (a.offset === SIM_CMD) return a.dir === 'write' ? (COMMANDS[value] ?? null) : null;
    if (a.offset === SIM_STATUS && a.dir === 'read') return value & SIM_SR_BUSY ? null : value & SIM_SR_DRQ ? 'DRQ' : 'IDLE';
    return null;
  },
  context: [
    { reg: 'ADDR', reset: 0 },
    { reg: 'KEY', reset: 0 },
    { reg: 'IEN', reset: 0 },
    { reg: 'DMA_ADDR', reset: 0 },
  ],
  translate: {
    // Each guest sees blocks [0, window.sectors) of its own; the device holds them at startLba.
    access(a, g) {
      const s = g.scratch as SimScratch;
      const win = g.options.window;
      if (!win) return;
      if (a.offset === SIM_ADDR && a.dir === 'write') {
        s.addr = a.value & 0xff;
        // Out-of-window values never reach a command (see below); park the device on block 0 of the window.
        return { ...a, value: s.addr < win.sectors ? win.startLba + s.addr : win.startLba };
      }
      if (isCmd(a) && a.value !== SIM_CMD_RESET) {
        s.err = (s.addr ?? 0) >= win.sectors;
        // Outside the window: fail like a solo device would, without touching the shared one.
        if (s.err) return { answer: { value: 0 }, denied: `block ${s.addr} outside the ${win.sectors}-block window` };
      }
    },
    reply(a, r, g) {
      const s = g.scratch as SimScratch;
      if (!g.options.window || a.dir !== 'read') return;
      if (a.offset === SIM_ADDR) return { value: s.addr ?? 0 };
      if (a.offset === SIM_STATUS && s.err) return { value: SIM_SR_ERR };
    },
  },
  reset: { writes: [{ reg: 'CMD', value: SIM_CMD_RESET }] },
  deadlineNs: 2_000_000,
  reraiseIrq: true,
});
