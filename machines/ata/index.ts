// MUX definition of the ATA/IDE disk (primary channel, one drive, PIIX bus master):
// statechart (chart.ts), classifier (classify.ts), partition windows (window.ts), and the
// per-guest context: device/LBA-mode bits, nIEN, write cache and the multiple-sector count.

import { defineMux, type ReplayIo } from '../../src/mux/define.ts';
import { ATA_BUSY, ATA_CMD_SET_FEATURES, ATA_CMD_SET_MULTI, ATA_NIEN, ATA_SRST, SETFEATURES_WC_OFF, SETFEATURES_WC_ON } from '../../src/devices/ata/regs.ts';
import { ataChart } from './chart.ts';
import { classifyAta } from './classify.ts';
import { ERRSAVE, saveResult, translateAccess, translateReply } from './window.ts';

/** Multiple-sector count a drive has after power-on (QEMU's MAX_MULT_SECTORS; our model's too). */
export const ATA_DEFAULT_MULTIPLE = 16;

/** Run one non-data command during a context replay, interrupts masked, and wait for it. */
async function replayCommand(io: ReplayIo, feature: number, nsect: number, opcode: number): Promise<void> {
  await io.write('DEVCTL', ATA_NIEN); // no interrupt reaches the incoming guest; DEVCTL is replayed last
  await io.write('FEATURE', feature);
  await io.write('NSECT', nsect);
  await io.write('CMD', opcode);
  for (let i = 0; i < 10_000; i++) {
    if (!((await io.read('STATUS')) & ATA_BUSY)) return; // the status read also acknowledges it
  }
  throw new Error(`context replay: command 0x${opcode.toString(16)} stayed busy`);
}

export default defineMux({
  kind: 'ata',
  registers: {
    DATA: { region: 'cmd', offset: 0, width: 2, string: true, sizes: [4], help: 'ATA_REG_DATA: 16-bit PIO data port' },
    ERROR: { region: 'cmd', offset: 1, width: 1, access: 'r', help: 'ATA_REG_ERR: error (ABRT 04h, IDNF 10h, UNC 40h)' },
    FEATURE: { region: 'cmd', offset: 1, width: 1, access: 'w', help: 'ATA_REG_FEATURE: features' },
    NSECT: { region: 'cmd', offset: 2, width: 1, help: 'ATA_REG_NSECT: sector count' },
    LBAL: { region: 'cmd', offset: 3, width: 1, help: 'ATA_REG_LBAL: LBA bits 0-7 (24-31 previous)' },
    LBAM: { region: 'cmd', offset: 4, width: 1, help: 'ATA_REG_LBAM: LBA bits 8-15 (32-39 previous)' },
    LBAH: { region: 'cmd', offset: 5, width: 1, help: 'ATA_REG_LBAH: LBA bits 16-23 (40-47 previous)' },
    DEVICE: { region: 'cmd', offset: 6, width: 1, help: 'ATA_REG_DEVICE: LBA mode 40h, DEV 10h, LBA bits 24-27' },
    STATUS: { region: 'cmd', offset: 7, width: 1, access: 'r', help: 'ATA_REG_STATUS: BSY DRDY DF DSC DRQ ERR; reading acknowledges the IRQ' },
    CMD: { region: 'cmd', offset: 7, width: 1, access: 'w', help: 'ATA_REG_CMD: command opcode' },
    ALTSTATUS: { region: 'ctl', offset: 0, width: 1, access: 'r', help: 'ATA_REG_ALTSTATUS: status without acknowledging the IRQ' },
    DEVCTL: { region: 'ctl', offset: 0, width: 1, access: 'w', help: 'ATA_REG_DEVCTL: HOB 80h, SRST 04h, nIEN 02h' },
    BM_CMD: { region: 'bmide', offset: 0, width: 1, help: 'ATA_DMA_CMD: start 01h, read-to-memory 08h' },
    BM_STATUS: { region: 'bmide', offset: 2, width: 1, help: 'ATA_DMA_STATUS: active 01h, error 02h, interrupt 04h (write 1 to clear)' },
    BM_PRD: { region: 'bmide', offset: 4, width: 4, help: 'ATA_DMA_TABLE_OFS: PRD table bus address' },
  },
  machine: ataChart,
  classify: classifyAta,
  translate: { access: translateAccess, reply: translateReply },
  context: [
    // Commands first (they mask interrupts), plain registers after; DEVCTL last restores nIEN.
    // Saved, not replayed: a failed command's STATUS and ERROR, read when the guest loses the
    // device (alternate status: no interrupt is acknowledged), answered to it from then on.
    { reg: ERRSAVE, reset: 0, save: saveResult, replay: () => {} },
    // An interrupt the previous owner left pending (its data read without a status read) would
    // hide the incoming guest's first interrupt (the line never drops, so no edge): a status
    // read acknowledges it on the device first. The outgoing guest's own pending interrupt is
    // raised to it again when it gets the device back (reraiseIrq), with its saved status.
    { reg: 'IRQACK', reset: 0, always: true, replay: async (_v, io) => void (await io.read('STATUS')) },
    { reg: 'WCACHE', reset: 1, replay: (on, io) => replayCommand(io, on ? SETFEATURES_WC_ON : SETFEATURES_WC_OFF, 0, ATA_CMD_SET_FEATURES) },
    { reg: 'MULTIPLE', reset: ATA_DEFAULT_MULTIPLE, replay: (n, io) => replayCommand(io, 0, n, ATA_CMD_SET_MULTI) },
    { reg: 'DEVICE', reset: 0xa0 },
    // Always: a command replay above leaves nIEN set behind the engine's back (its record of what
    // the device holds does not see replay writes), so skipping this when "unchanged" would leave
    // the incoming guest's interrupts masked. Never replay SRST/HOB.
    { reg: 'DEVCTL', reset: 0, always: true, replay: (v, io) => io.write('DEVCTL', v & ATA_NIEN) },
    // Linux writes the PRD pointer and direction before the command, in the safe idle state.
    { reg: 'BM_PRD', reset: 0 },
    { reg: 'BM_CMD', reset: 0, replay: (v, io) => io.write('BM_CMD', v & 0x08) }, // direction only, never start
    // INTR/ERR are write-1-to-clear and left set by the previous owner's transfer: a guest that
    // cleared them before its switch-out would otherwise see its next DMA "done" at once.
    { reg: 'BM_STATUS', reset: 0, always: true, replay: (_v, io) => io.write('BM_STATUS', 0x06) },
  ],
  // Stop the bus master, pulse SRST, then a hard reset of the model (and a restart of the chart).
  reset: {
    writes: [
      { reg: 'BM_CMD', value: 0 },
      { reg: 'DEVCTL', value: ATA_SRST | ATA_NIEN },
      { reg: 'DEVCTL', value: ATA_NIEN },
    ],
    hard: true,
  },
  deadlineNs: 2_000_000_000,
  reraiseIrq: true,
  irqLine: 14,
});
