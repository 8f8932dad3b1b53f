// The one table of ATA commands: opcode, name, data-transfer protocol, 48-bit task file or not,
// and for the commands that move or verify a range of sectors their EXT form. The ATA model
// (commands.ts), the MUX classifier (machines/ata/classify.ts), the partition window
// (machines/ata/window.ts) and the access-log decoder (src/log/names.ts) all derive from it.
// Protocols are ATA8-ACS's (table B.2 / each command's "Protocol" line) and agree with QEMU's
// hw/ide/core.c ide_cmd_table. `model` and `qemu` say which commands our model and QEMU 7.2's
// IDE disk run (the others abort with ABRT); test/ata-command-table.test.ts checks both claims
// on the real model and on QEMU, opcode by opcode.

/**
 * How a command moves data (ATA8-ACS). `packet` and `device-reset` are ATAPI protocols;
 * `diagnostic` is EXECUTE DEVICE DIAGNOSTIC's. A `non-data` command may still address sectors
 * (READ VERIFY SECTORS) or vary its data phase with the features register (SMART).
 */
export type AtaProtocol = 'non-data' | 'pio-in' | 'pio-out' | 'dma-in' | 'dma-out' | 'packet' | 'device-reset' | 'diagnostic';

export interface AtaCommand {
  opcode: number;
  name: string;
  protocol: AtaProtocol;
  /** 48-bit task file: LBA and count written twice (previous/HOB byte first), 16-bit count. */
  lba48: boolean;
  /** Reads, writes or verifies `count` sectors at an LBA of the medium (the window translates it). */
  sectors?: {
    /** DRQ blocks of the SET MULTIPLE MODE size instead of one sector. */
    multiple: boolean;
    /** The 48-bit (EXT) command of the same transfer; a 48-bit command names itself. */
    ext?: number;
  };
  /** Our model (src/devices/ata) runs it; otherwise it aborts (ABRT). */
  model: boolean;
  /** QEMU 7.2's IDE hard disk runs it; otherwise it aborts. */
  qemu: boolean;
}

type Row = [opcode: number, name: string, protocol: AtaProtocol, lba48: boolean, model: boolean, qemu: boolean, sectors?: AtaCommand['sectors']];

const rd = (ext?: number, multiple = false): AtaCommand['sectors'] => ({ multiple, ext });

const ROWS: Row[] = [
  [0x00, 'NOP', 'non-data', false, false, false],
  [0x06, 'DATA SET MANAGEMENT', 'dma-out', true, true, true], // TRIM: 512-byte blocks of LBA ranges by DMA
  [0x08, 'DEVICE RESET', 'device-reset', false, false, false], // ATAPI only
  [0x10, 'RECALIBRATE', 'non-data', false, true, true],
  ...Array.from({ length: 15 }, (_, i): Row => [0x11 + i, 'RECALIBRATE (obsolete)', 'non-data', false, true, false]),
  [0x20, 'READ SECTORS', 'pio-in', false, true, true, rd(0x24)],
  [0x21, 'READ SECTORS (no retry)', 'pio-in', false, true, true, rd(0x24)],
  [0x24, 'READ SECTORS EXT', 'pio-in', true, true, true, rd(0x24)],
  [0x25, 'READ DMA EXT', 'dma-in', true, true, true, rd(0x25)],
  [0x27, 'READ NATIVE MAX ADDRESS EXT', 'non-data', true, true, true],
  [0x29, 'READ MULTIPLE EXT', 'pio-in', true, true, true, rd(0x29, true)],
  [0x2f, 'READ LOG EXT', 'pio-in', true, false, false],
  [0x30, 'WRITE SECTORS', 'pio-out', false, true, true, rd(0x34)],
  [0x31, 'WRITE SECTORS (no retry)', 'pio-out', false, true, true, rd(0x34)],
  [0x34, 'WRITE SECTORS EXT', 'pio-out', true, true, true, rd(0x34)],
  [0x35, 'WRITE DMA EXT', 'dma-out', true, true, true, rd(0x35)],
  [0x37, 'SET MAX ADDRESS EXT', 'non-data', true, false, false],
  [0x38, 'CFA WRITE SECTORS WITHOUT ERASE', 'pio-out', false, false, false], // CompactFlash only
  [0x39, 'WRITE MULTIPLE EXT', 'pio-out', true, true, true, rd(0x39, true)],
  // Obsolete since ATA-4 and 28-bit only: no EXT form, so a window refuses it (window.ts).
  [0x3c, 'WRITE VERIFY', 'pio-out', false, false, true],
  [0x3d, 'WRITE DMA FUA EXT', 'dma-out', true, false, false],
  [0x3f, 'WRITE LOG EXT', 'pio-out', true, false, false],
  [0x40, 'READ VERIFY SECTORS', 'non-data', false, true, true, rd(0x42)],
  [0x41, 'READ VERIFY SECTORS (no retry)', 'non-data', false, true, true, rd(0x42)],
  [0x42, 'READ VERIFY SECTORS EXT', 'non-data', true, true, true, rd(0x42)],
  [0x47, 'READ LOG DMA EXT', 'dma-in', true, false, false],
  [0x57, 'WRITE LOG DMA EXT', 'dma-out', true, false, false],
  [0x70, 'SEEK', 'non-data', false, false, true],
  [0x90, 'EXECUTE DEVICE DIAGNOSTIC', 'diagnostic', false, true, true],
  [0x91, 'INITIALIZE DEVICE PARAMETERS', 'non-data', false, true, true],
  [0x92, 'DOWNLOAD MICROCODE', 'pio-out', false, false, false],
  [0x94, 'STANDBY IMMEDIATE (obsolete)', 'non-data', false, false, true],
  [0x95, 'IDLE IMMEDIATE (obsolete)', 'non-data', false, false, true],
  [0x96, 'STANDBY (obsolete)', 'non-data', false, false, true],
  [0x97, 'IDLE (obsolete)', 'non-data', false, false, true],
  [0x98, 'CHECK POWER MODE (obsolete)', 'non-data', false, false, true],
  [0x99, 'SLEEP (obsolete)', 'non-data', false, false, true],
  [0xa0, 'PACKET', 'packet', false, false, false], // ATAPI only
  [0xa1, 'IDENTIFY PACKET DEVICE', 'pio-in', false, false, false], // ATAPI only
  // SMART READ DATA / READ LOG are PIO data-in, the other subcommands non-data: the opcode alone
  // does not tell, and the chart's non-data state waits for the final status either way.
  [0xb0, 'SMART', 'non-data', false, false, true],
  [0xc4, 'READ MULTIPLE', 'pio-in', false, true, true, rd(0x29, true)],
  [0xc5, 'WRITE MULTIPLE', 'pio-out', false, true, true, rd(0x39, true)],
  [0xc6, 'SET MULTIPLE MODE', 'non-data', false, true, true],
  [0xc8, 'READ DMA', 'dma-in', false, true, true, rd(0x25)],
  [0xc9, 'READ DMA (no retry)', 'dma-in', false, true, true, rd(0x25)],
  [0xca, 'WRITE DMA', 'dma-out', false, true, true, rd(0x35)],
  [0xcb, 'WRITE DMA (no retry)', 'dma-out', false, true, true, rd(0x35)],
  [0xce, 'WRITE MULTIPLE FUA EXT', 'pio-out', true, false, false],
  [0xda, 'GET MEDIA STATUS', 'non-data', false, false, false],
  [0xde, 'MEDIA LOCK', 'non-data', false, false, false],
  [0xdf, 'MEDIA UNLOCK', 'non-data', false, false, false],
  [0xe0, 'STANDBY IMMEDIATE', 'non-data', false, true, true],
  [0xe1, 'IDLE IMMEDIATE', 'non-data', false, true, true],
  [0xe2, 'STANDBY', 'non-data', false, true, true],
  [0xe3, 'IDLE', 'non-data', false, true, true],
  [0xe4, 'READ BUFFER', 'pio-in', false, false, false],
  [0xe5, 'CHECK POWER MODE', 'non-data', false, true, true],
  [0xe6, 'SLEEP', 'non-data', false, false, true],
  [0xe7, 'FLUSH CACHE', 'non-data', false, true, true],
  [0xe8, 'WRITE BUFFER', 'pio-out', false, false, false],
  [0xea, 'FLUSH CACHE EXT', 'non-data', true, true, true],
  [0xec, 'IDENTIFY DEVICE', 'pio-in', false, true, true],
  [0xef, 'SET FEATURES', 'non-data', false, true, true],
  [0xf1, 'SECURITY SET PASSWORD', 'pio-out', false, false, false],
  [0xf2, 'SECURITY UNLOCK', 'pio-out', false, false, false],
  [0xf3, 'SECURITY ERASE PREPARE', 'non-data', false, false, false],
  [0xf4, 'SECURITY ERASE UNIT', 'pio-out', false, false, false],
  // QEMU runs F5h as CFA WEAR LEVEL (same opcode), a no-op for a hard disk too.
  [0xf5, 'SECURITY FREEZE LOCK', 'non-data', false, false, true],
  [0xf6, 'SECURITY DISABLE PASSWORD', 'pio-out', false, false, false],
  [0xf8, 'READ NATIVE MAX ADDRESS', 'non-data', false, true, true],
  [0xf9, 'SET MAX ADDRESS', 'non-data', false, false, false],
];

function build(rows: Row[]): ReadonlyMap<number, AtaCommand> {
  const table = new Map<number, AtaCommand>();
  for (const [opcode, name, protocol, lba48, model, qemu, sectors] of rows) {
    if (table.has(opcode)) throw new Error(`ATA command table: opcode 0x${opcode.toString(16)} listed twice`);
    table.set(opcode, { opcode, name, protocol, lba48, model, qemu, ...(sectors ? { sectors } : {}) });
  }
  return table;
}

export const ATA_COMMANDS: ReadonlyMap<number, AtaCommand> = build(ROWS);

/** The command an opcode names, or undefined (an unlisted opcode aborts on every device). */
export function ataCommand(opcode: number): AtaCommand | undefined {
  return ATA_COMMANDS.get(opcode & 0xff);
}

/** A command's protocol; an unlisted opcode is aborted at once, i.e. non-data. */
export function ataProtocol(opcode: number): AtaProtocol {
  return ataCommand(opcode)?.protocol ?? 'non-data';
}
