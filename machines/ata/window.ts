// Partition windows for the ATA MUX: each guest sees an LBA window of the physical disk.
// The guest's task-file writes are shadowed; when it writes the command, the whole task
// file is written again with the physical LBA (converted to the EXT form when the physical
// LBA needs 48 bits). A command reaching beyond the window is sent with an LBA no disk has,
// so the device itself fails it (and raises its interrupt) without touching the medium; the
// guest reads IDNF in ERROR whether the device says IDNF (our model) or only ABRT (QEMU 7.2's
// ide_sect_range_ok failure). IDENTIFY and READ NATIVE MAX are patched to show the window's size.

import type { Reply } from '../../src/access.ts';
import { registerRead, type GuestView, type MuxAccess, type Answer, type ReplayIo } from '../../src/mux/define.ts';
import { ATA_COMMANDS, ataCommand } from '../../src/devices/ata/command-table.ts';
import {
  ATA_BUSY,
  ATA_CMD_EDD,
  ATA_CMD_ID_ATA,
  ATA_CMD_READ_NATIVE_MAX,
  ATA_CMD_READ_NATIVE_MAX_EXT,
  ATA_CMD_SET_FEATURES,
  ATA_CMD_SET_MULTI,
  ATA_DEV1,
  ATA_DRDY,
  ATA_DSC,
  ATA_HOB,
  ATA_IDNF,
  ATA_LBA,
  ATA_SRST,
  SETFEATURES_WC_OFF,
  SETFEATURES_WC_ON,
} from '../../src/devices/ata/regs.ts';

const LBA28_LIMIT = 0x0fff_ffff; // last LBA a 28-bit command can address (exclusive end - 1)
const NO_SUCH_LBA = 2 ** 48 - 1; // beyond every disk: the device answers IDNF

/**
 * Commands that carry an LBA and a count, and their EXT (48-bit) forms, from the one command
 * table. A sector command with no EXT form (the obsolete WRITE VERIFY) is not translated: it is
 * not in WINDOW_ALLOWED either, so a windowed guest sees it aborted.
 */
const TO_EXT: ReadonlyMap<number, number> = new Map(
  [...ATA_COMMANDS.values()].flatMap((c) => (c.sectors?.ext !== undefined ? [[c.opcode, c.sectors.ext] as const] : [])),
);
const EXT_OPS: ReadonlySet<number> = new Set([...TO_EXT.keys()].filter((op) => ataCommand(op)?.lba48));

/**
 * Pseudo context register: STATUS and ERROR of a guest's last command (or SRST), saved when it
 * loses the device and answered to it from then on, until its next command: another guest's
 * command (a failing one too) changes the device's result registers, not this guest's.
 */
export const ERRSAVE = 'ERRSAVE';
export const ERRSAVE_VALID = 0x1_0000; // bits 15-8 status, 7-0 error

/** What a drive shows after power-on and before any command of this guest: DRDY|DSC, diagnostic passed. */
const POWER_ON_STATUS = ATA_DRDY | ATA_DSC;
const POWER_ON_ERROR = 0x01;
/** What an ATA disk leaves in its task file after a reset or a diagnostic (ATA-8 9.12). */
const ATA_SIGNATURE: Record<string, number> = { NSECT: 0x01, LBAL: 0x01, LBAM: 0x00, LBAH: 0x00 };

/**
 * Commands a windowed guest may send besides the LBA ones. Anything else could change the
 * disk for every guest (SET MAX ADDRESS, security, microcode): it is replaced by an opcode
 * the device aborts (ABRT), so the guest sees a drive that does not support it.
 */
export const WINDOW_ALLOWED: ReadonlySet<number> = new Set([0x00, 0x08, 0x10, 0x90, 0x91, 0xc6, 0xe0, 0xe1, 0xe2, 0xe3, 0xe5, 0xe7, 0xea, 0xec, 0xef, 0xf8, 0x27, 0xa1]);
const ABORTED_OPCODE = 0xff; // undefined: the device sets ERR/ABRT

// Offsets of the task-file bytes in the `cmd` region.
const FEATURE = 1, NSECT = 2, LBAL = 3, LBAM = 4, LBAH = 5;

export interface AtaScratch {
  cur: number[]; // last byte written per offset (FEATURE..LBAH)
  prev: number[]; // the byte before it: the LBA48 "previous" (HOB) byte
  device: number;
  hobRead: boolean; // device control HOB bit: reads return the previous bytes
  rewritten: boolean; // the device's LBA registers hold a physical address: answer reads from the shadow
  written: boolean; // task-file bytes written since the last command: the device may hold another guest's
  issued: boolean; // a command or SRST of this guest: the device's STATUS/ERROR are its own result
  outOfWindow: boolean; // the current command reached beyond the window: ERROR reads carry IDNF
  resetSig: boolean; // its SRST or EXECUTE DEVICE DIAGNOSTIC left the signature: device 0's task file reads it
  patch: 'identify' | 'nativeMax' | null;
  byte: number; // IDENTIFY: next byte position of the data being read
  delta: number; // IDENTIFY: sum of patched-in minus patched-out bytes (checksum fix)
  patchBytes: Map<number, number> | null;
  signature: boolean; // IDENTIFY byte 510 is A5h: byte 511 is a checksum
}

function scratchOf(g: GuestView): AtaScratch {
  const s = g.scratch as { ata?: AtaScratch };
  s.ata ??= {
    cur: [0, 0, 0, 0, 0, 0],
    prev: [0, 0, 0, 0, 0, 0],
    device: 0,
    hobRead: false,
    rewritten: false,
    written: false,
    issued: false,
    outOfWindow: false,
    resetSig: false,
    patch: null,
    byte: 0,
    delta: 0,
    patchBytes: null,
    signature: false,
  };
  return s.ata;
}

function write(base: MuxAccess, name: string, offset: number, value: number): MuxAccess {
  return { ...base, reg: base.reg && { ...base.reg, name, offset, access: 'w' }, offset, value: value & 0xff, size: 1, count: 1, data: undefined };
}

function byteOf(n: number, i: number): number {
  return Math.floor(n / 2 ** (8 * i)) & 0xff;
}

/** The guest's LBA and count from its shadowed task file. */
function guestRange(s: AtaScratch, ext: boolean): { lba: number; count: number } {
  if (ext) {
    const count = (s.prev[NSECT] << 8 | s.cur[NSECT]) || 65536;
    const lba =
      s.cur[LBAL] + s.cur[LBAM] * 2 ** 8 + s.cur[LBAH] * 2 ** 16 + s.prev[LBAL] * 2 ** 24 + s.prev[LBAM] * 2 ** 32 + s.prev[LBAH] * 2 ** 40;
    return { lba, count };
  }
  const count = s.cur[NSECT] || 256;
  const lba = s.cur[LBAL] + s.cur[LBAM] * 2 ** 8 + s.cur[LBAH] * 2 ** 16 + (s.device & 0x0f) * 2 ** 24;
  return { lba, count };
}

/**
 * The task file, then the command. Each byte register of an LBA48 drive is a two-deep FIFO:
 * the previous (HOB) byte is written first, then the current one.
 */
function taskfile(cmd: MuxAccess, op: number, prev: number[], cur: number[], device: number, withPrev: boolean): MuxAccess[] {
  const names = ['', 'FEATURE', 'NSECT', 'LBAL', 'LBAM', 'LBAH'];
  const out: MuxAccess[] = [];
  for (let off = FEATURE; off <= LBAH; off++) {
    if (withPrev) out.push(write(cmd, names[off], off, prev[off]));
    out.push(write(cmd, names[off], off, cur[off]));
  }
  out.push(write(cmd, 'DEVICE', 6, device));
  out.push({ ...cmd, value: op });
  return out;
}

/** Task-file bytes that address `count` sectors at `lba` (LBA48 layout when `ext`). */
function lbaTaskfile(cmd: MuxAccess, op: number, lba: number, count: number, s: AtaScratch): MuxAccess[] {
  const ext = EXT_OPS.has(op);
  const prev = [0, s.prev[FEATURE], (count >> 8) & 0xff, byteOf(lba, 3), byteOf(lba, 4), byteOf(lba, 5)];
  const cur = [0, s.cur[FEATURE], count & 0xff, byteOf(lba, 0), byteOf(lba, 1), byteOf(lba, 2)];
  const device = (s.device & 0xf0) | ATA_LBA | (ext ? 0 : byteOf(lba, 3) & 0x0f);
  return taskfile(cmd, op, prev, cur, device, ext);
}

/**
 * The command write: the accesses that go to the device instead. The guest's whole shadowed
 * task file is written again first, so a switch between its register writes and its command
 * (both in the safe idle state) cannot leave another guest's values in the registers.
 */
function command(cmd: MuxAccess, s: AtaScratch, win: { startLba: number; sectors: number } | undefined): MuxAccess[] {
  const op = cmd.value & 0xff;
  s.patch = null;
  s.rewritten = false;
  s.outOfWindow = false;
  const ext = TO_EXT.get(op);
  if (win && ext !== undefined) {
    if (!(s.device & ATA_LBA)) {
      s.outOfWindow = true; // CHS is not translated
      return lbaTaskfile(cmd, ext, NO_SUCH_LBA, 1, s);
    }
    const { lba, count } = guestRange(s, EXT_OPS.has(op));
    s.rewritten = true;
    if (lba + count > win.sectors) {
      s.outOfWindow = true;
      return lbaTaskfile(cmd, ext, NO_SUCH_LBA, count, s);
    }
    const phys = win.startLba + lba;
    const useExt = EXT_OPS.has(op) || phys + count - 1 > LBA28_LIMIT;
    return lbaTaskfile(cmd, useExt ? ext : op, phys, count, s);
  }
  if (win) {
    if (op === ATA_CMD_ID_ATA) startIdentifyPatch(s, win.sectors);
    else if (op === ATA_CMD_READ_NATIVE_MAX || op === ATA_CMD_READ_NATIVE_MAX_EXT) s.patch = 'nativeMax';
    if (!WINDOW_ALLOWED.has(op)) return taskfile(cmd, ABORTED_OPCODE, s.prev, s.cur, s.device, true);
  }
  return taskfile(cmd, op, s.prev, s.cur, s.device, true);
}

/**
 * Chart states in which the device is BSY or DRQ, so it drops writes to the command block
 * registers other than the command register (QEMU's ide_ioport_write, our model; ATA leaves
 * them undefined). The shadow must drop them too, or the guest would read back, and a
 * windowed command re-send, values its own device never took. (Two ends are a matter of
 * timing the bus does not show: after the last data-out block the device goes from BSY to
 * ready before the driver's status read, and a `nodata` command may finish at once. There
 * the drop follows the usual case: dropped after a data-out block, kept in `nodata`.)
 */
const MID_COMMAND = new Set(['pioIn.busy', 'pioIn.data', 'pioOut.busy', 'pioOut.data', 'dma.armed', 'dma.active', 'reset.asserted']);

function deviceIgnoresTaskfile(g: GuestView): boolean {
  return MID_COMMAND.has(g.state());
}

function windowOf(g: GuestView): { startLba: number; sectors: number } | undefined {
  return g.options.window;
}

function startIdentifyPatch(s: AtaScratch, sectors: number): void {
  const bytes = new Map<number, number>();
  const word = (w: number, v: number) => {
    bytes.set(2 * w, v & 0xff);
    bytes.set(2 * w + 1, (v >> 8) & 0xff);
  };
  // CHS geometry (default and current) that fits in the window: 16 heads, 63 sectors per track,
  // no CHS at all for a window under one cylinder (CHS commands are refused anyway).
  const cylinders = Math.min(16383, Math.floor(sectors / (16 * 63)));
  const [heads, spt] = cylinders ? [16, 63] : [0, 0];
  const chs = cylinders * heads * spt;
  for (const [w, v] of [[1, cylinders], [3, heads], [6, spt], [54, cylinders], [55, heads], [56, spt], [57, chs & 0xffff], [58, chs >>> 16]]) word(w, v);
  // DATA SET MANAGEMENT is not translated (WINDOW_ALLOWED): a windowed guest sees no TRIM.
  word(105, 0);
  word(169, 0);
  const lba28 = Math.min(sectors, LBA28_LIMIT);
  word(60, lba28 & 0xffff);
  word(61, Math.floor(lba28 / 0x10000) & 0xffff);
  for (let i = 0; i < 4; i++) word(100 + i, Math.floor(sectors / 2 ** (16 * i)) & 0xffff);
  s.patch = 'identify';
  s.byte = 0;
  s.delta = 0;
  s.signature = false;
  s.patchBytes = bytes;
}

/** Patch the IDENTIFY bytes passing through a data-port read; fix the checksum in byte 511. */
function patchIdentify(s: AtaScratch, bytes: Uint8Array): void {
  const map = s.patchBytes!;
  for (let i = 0; i < bytes.length && s.byte < 512; i++, s.byte++) {
    const p = s.byte;
    const repl = map.get(p);
    if (repl !== undefined) {
      s.delta += repl - bytes[i];
      bytes[i] = repl;
    } else if (p === 511 && s.signature) {
      bytes[i] = (bytes[i] - s.delta) & 0xff;
    }
    if (p === 510) s.signature = bytes[i] === 0xa5;
  }
  if (s.byte >= 512) s.patch = null;
}

/** Translation hook: access side. */
export function translateAccess(a: MuxAccess, g: GuestView): MuxAccess | MuxAccess[] | Answer | void {
  const s = scratchOf(g);
  const name = a.reg?.name;
  if (a.dir === 'write') {
    switch (name) {
      case 'FEATURE':
      case 'NSECT':
      case 'LBAL':
      case 'LBAM':
      case 'LBAH':
        if (deviceIgnoresTaskfile(g)) return; // the device drops it: so does the shadow
        s.resetSig = false;
        s.prev[a.offset] = s.cur[a.offset];
        s.cur[a.offset] = a.value & 0xff;
        s.written = true;
        return;
      case 'DEVICE':
        if (deviceIgnoresTaskfile(g)) return;
        s.device = a.value & 0xff;
        s.written = true;
        return;
      case 'DEVCTL':
        s.hobRead = (a.value & ATA_HOB) !== 0;
        if (a.value & ATA_SRST) {
          s.rewritten = s.written = false; // the device loads its signature
          s.resetSig = true;
          s.issued = true;
          s.outOfWindow = false;
          if (g.context.get(ERRSAVE)) g.setContext(ERRSAVE, 0);
        }
        return;
      case 'CMD': {
        s.written = false;
        s.issued = true;
        recordSettings(a.value & 0xff, g, s);
        s.resetSig = (a.value & 0xff) === ATA_CMD_EDD; // EXECUTE DEVICE DIAGNOSTIC leaves the signature too
        if (g.context.get(ERRSAVE)) g.setContext(ERRSAVE, 0); // a new command: the old result is gone
        return command(a, s, windowOf(g));
      }
      default:
        return;
    }
  }
  if (name === 'DATA' && g.state() === 'pioIn.data') {
    // No interrupt follows the last block of a data-in command, so its end shows only in the
    // drive's status: after each data read, the alternate status (no interrupt acknowledged)
    // tells whether the drive still holds data (DRQ), is fetching the next block (BSY), or is
    // done (DATA_END, classify.ts). Never the guest's own count of words: a guest that reads
    // past what the drive delivered gets what the drive answers, and the chart stays put.
    return [a, dataEndProbe(g)];
  }
  if (name === 'STATUS' || name === 'ALTSTATUS' || name === 'ERROR') {
    // The result of this guest's last command, saved when it lost the device; before its first
    // command, a drive of its own would show the power-on result (the device may show another
    // guest's). Device 1 does not exist: its status comes from the device as it is.
    const saved = g.context.get(ERRSAVE) ?? 0;
    const [st, err] = saved & ERRSAVE_VALID ? [(saved >> 8) & 0xff, saved & 0xff] : s.issued || s.device & ATA_DEV1 ? [-1, -1] : [POWER_ON_STATUS, POWER_ON_ERROR];
    if (st >= 0) return { answer: { value: name === 'ERROR' ? err | (s.outOfWindow ? ATA_IDNF : 0) : st } };
  }
  if (s.resetSig && (name === 'NSECT' || name === 'LBAL' || name === 'LBAM' || name === 'LBAH')) {
    // libata classifies the drive by this signature (ata_sff_dev_classify), and another guest's
    // command since the reset has overwritten the device's registers: device 0 reads the
    // signature its reset left, device 1 (absent) what the device answers for it.
    if (s.device & ATA_DEV1) return;
    return { answer: { value: s.hobRead ? 0 : ATA_SIGNATURE[name] } };
  }
  const win = windowOf(g);
  if (name === 'LBAL' || name === 'LBAM' || name === 'LBAH' || name === 'NSECT' || name === 'DEVICE') {
    if (win && s.patch === 'nativeMax') return { answer: { value: nativeMaxByte(name, win.sectors - 1, s) } };
    // Task-file registers are not context registers (the command write re-sends them), so after
    // a switch between a guest's writes and its read-back (libata's ata_devchk) the device holds
    // another guest's bytes: a guest reads what it wrote, as on a device of its own.
    if (s.written || (win && s.rewritten)) {
      if (name === 'DEVICE') return { answer: { value: s.device } };
      return { answer: { value: (s.hobRead ? s.prev : s.cur)[a.offset] } };
    }
  }
  return;
}

/** The alternate-status read after a data-in read; its reply is not the guest's. */
function dataEndProbe(g: GuestView): MuxAccess {
  return { ...registerRead(g.register('ALTSTATUS')), probe: true };
}

/**
 * The context save of ERRSAVE: when a guest loses the device, its last command's STATUS and
 * ERROR (alternate status: no interrupt acknowledged). The result it already has saved when it
 * issued no command since (the device then shows someone else's); nothing when it never issued
 * one or the drive is still busy.
 */
export async function saveResult(io: ReplayIo, g: GuestView): Promise<number> {
  const kept = g.context.get(ERRSAVE) ?? 0;
  if (kept & ERRSAVE_VALID) return kept;
  if (!scratchOf(g).issued) return 0;
  const st = await io.read('ALTSTATUS');
  return st & ATA_BUSY ? 0 : ERRSAVE_VALID | (st << 8) | (await io.read('ERROR'));
}

function nativeMaxByte(name: string, max: number, s: AtaScratch): number {
  const i = { LBAL: 0, LBAM: 1, LBAH: 2, NSECT: -1, DEVICE: -2 }[name] ?? -1;
  if (i === -2) return (s.device & 0xf0) | ATA_LBA | (byteOf(max, 3) & 0x0f);
  if (i < 0) return s.cur[NSECT];
  return byteOf(max, s.hobRead ? i + 3 : i);
}

/** Per-guest device settings that commands change: recorded as pseudo context registers. */
function recordSettings(op: number, g: GuestView, s: AtaScratch): void {
  if (op === ATA_CMD_SET_FEATURES) {
    if (s.cur[FEATURE] === SETFEATURES_WC_ON) g.setContext('WCACHE', 1);
    else if (s.cur[FEATURE] === SETFEATURES_WC_OFF) g.setContext('WCACHE', 0);
  } else if (op === ATA_CMD_SET_MULTI) {
    g.setContext('MULTIPLE', s.cur[NSECT]);
  }
}

/** Translation hook: reply side (IDENTIFY patching, IDNF for a command beyond the window). */
export function translateReply(a: MuxAccess, reply: Reply, g: GuestView): Reply | void {
  const s = scratchOf(g);
  if (s.outOfWindow && a.reg?.name === 'ERROR') return { ...reply, value: Number(reply.value) | ATA_IDNF };
  if (s.patch !== 'identify' || a.reg?.name !== 'DATA') return;
  if (reply.data) {
    const data = reply.data.slice();
    patchIdentify(s, data);
    return { ...reply, data };
  }
  const bytes = new Uint8Array(a.size);
  const v = Number(reply.value);
  for (let i = 0; i < a.size; i++) bytes[i] = byteOf(v, i);
  patchIdentify(s, bytes);
  let out = 0;
  for (let i = a.size - 1; i >= 0; i--) out = out * 256 + bytes[i];
  return { ...reply, value: out };
}
