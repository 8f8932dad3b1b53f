// The ATA protocol as seen on the bus (ATA-8 ACS, PIO and bus-master DMA protocols), as an
// xstate v5 statechart. Safe are `idle` (between commands, the last completion's interrupt
// acknowledged by a status read, or the last PIO data-in word read) and `error` (a command
// failed and its status was read; its result registers are saved per guest). Transitions follow what the driver observes: the
// command it writes, then the status it reads (BSY / DRQ / ready / ERR), the error register
// after an error, the bus-master start/stop, and SRST. No guards, so the MUX runs it on the
// compiled fast path.

import { setup } from 'xstate';

export type AtaEvent =
  // Command events by the protocol of src/devices/ata/command-table.ts (classify.ts).
  | { type: 'CMD_PIO_IN' } // a PIO data-in command (READ SECTORS/MULTIPLE, IDENTIFY)
  | { type: 'CMD_PIO_OUT' } // a PIO data-out command (WRITE SECTORS/MULTIPLE)
  | { type: 'CMD_DMA' } // a DMA command: READ/WRITE DMA (+EXT), DATA SET MANAGEMENT
  | { type: 'CMD_NODATA' } // FLUSH, SET FEATURES, SET MULTIPLE, READ NATIVE MAX, DIAGNOSTIC, unknown
  | { type: 'ST_BUSY' } // status read: BSY
  | { type: 'ST_DRQ' } // status read: DRQ (data phase), acknowledges the IRQ
  | { type: 'ST_READY' } // status read: neither BSY nor DRQ, no ERR: the command is over
  | { type: 'ST_ERR' } // status read: ERR: the command failed
  | { type: 'ALT_BUSY' } // alternate status: BSY (the IRQ stays pending)
  | { type: 'ALT_DRQ' } // alternate status: DRQ
  | { type: 'ERR_READ' } // error register read: the driver took note of the failure
  | { type: 'DATA_END' } // after a PIO data-in read the drive shows neither BSY nor DRQ (the MUX's alternate-status probe, window.ts)
  | { type: 'SRST' } // device control write with SRST set
  | { type: 'SRST_END' } // device control write with SRST clear after SRST
  | { type: 'BM_START' } // bus-master command: start
  | { type: 'BM_STOP' }; // bus-master command: stop

/** A new command may be written in any state where the device is not mid-command. */
const acceptCommands = {
  CMD_PIO_IN: '#ata.pioIn',
  CMD_PIO_OUT: '#ata.pioOut',
  CMD_DMA: '#ata.dma.armed',
  CMD_NODATA: '#ata.nodata',
} as const;

/** Every command ends on a status read: ready is the safe end, ERR goes to error. */
const statusEnds = { ST_READY: '#ata.idle', ST_ERR: '#ata.error' } as const;

export const ataChart = setup({ types: { events: {} as AtaEvent } }).createMachine({
  id: 'ata',
  initial: 'idle',
  // SRST aborts anything; a channel reset is the way out of every state.
  on: { SRST: '.reset' },
  states: {
    idle: {
      tags: ['safe'],
      on: { ...acceptCommands, BM_START: 'dma.early' },
    },
    pioIn: {
      initial: 'busy',
      on: statusEnds,
      states: {
        busy: { on: { ST_DRQ: 'data', ALT_DRQ: 'data' } },
        // No interrupt follows the last block of a data-in command: its last word ends it.
        data: { on: { ST_BUSY: 'busy', ALT_BUSY: 'busy', DATA_END: '#ata.idle' } },
      },
    },
    pioOut: {
      initial: 'busy',
      on: statusEnds,
      states: {
        busy: { on: { ST_DRQ: 'data', ALT_DRQ: 'data' } },
        data: { on: { ST_BUSY: 'busy', ALT_BUSY: 'busy' } },
      },
    },
    nodata: { on: statusEnds },
    dma: {
      initial: 'armed',
      states: {
        // Bus master started before the command (allowed; Linux starts it after).
        early: { on: { CMD_DMA: 'active', BM_STOP: '#ata.idle', CMD_PIO_IN: '#ata.pioIn', CMD_PIO_OUT: '#ata.pioOut', CMD_NODATA: '#ata.nodata' } },
        armed: { on: { BM_START: 'active', ...statusEnds } },
        active: { on: statusEnds },
      },
    },
    // A failed command is over: the device takes the next command. Safe, because the guest's
    // STATUS and ERROR are saved when it loses the device and answered from there (window.ts).
    error: {
      tags: ['safe'],
      on: { ...acceptCommands, ERR_READ: 'idle', BM_START: 'dma.early' },
    },
    reset: {
      initial: 'asserted',
      states: {
        asserted: { on: { SRST_END: 'released' } },
        // After SRST the device may hold an interrupt: a status read acknowledges it.
        released: { on: { ...acceptCommands, ST_READY: '#ata.idle', ST_ERR: '#ata.idle', ST_DRQ: '#ata.idle' } },
      },
    },
  },
});
