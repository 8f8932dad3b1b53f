// The authoring API of a MUX: what a module in machines/ default-exports.
//
//   export default defineMux({
//     kind: 'sim',
//     registers: { STATUS: { region: 'regs', offset: 4, width: 1, help: 'status: BUSY|DRQ|ERR' }, ... },
//     machine,                       // xstate v5 setup(...).createMachine(...), safe states tagged 'safe'
//     classify: (a) => ...,          // access (+ value read) -> statechart event type, or null
//     context: [{ reg: 'ADDR', reset: 0 }],
//     reset: { writes: [{ reg: 'CMD', value: 3 }] },
//     deadlineNs: 5_000_000,
//   });
//
// See src/mux/README.md for the semantics the engine gives each field.

import type { AnyStateMachine } from 'xstate';
import type { Reply } from '../access.ts';
import type { DevSize } from '../device.ts';
import type { AttachOptions } from '../guest-link.ts';

/** One device register: where it sits and how wide it is. */
export interface RegisterSpec {
  /** Region name as the device describes it (describe().regions[i].name). */
  region: string;
  /** Offset inside the region. */
  offset: number;
  width: DevSize;
  /** Direction: 'r' read-only, 'w' write-only, 'rw' (default). Two registers may share an offset with opposite directions. */
  access?: 'r' | 'w' | 'rw';
  /** One line: what the register is (datasheet/Linux name and meaning). */
  help?: string;
  /**
   * A data port: a string access (`rep insw`) is one block transfer the device takes whole.
   * Any other register sees a string access as that many single accesses, each classified
   * and translated (src/mux/access-forms.ts).
   */
  string?: boolean;
  /** Access sizes wider than `width` the register takes as one access (32-bit PIO on a 16-bit data port). */
  sizes?: DevSize[];
}

/** A register after the engine resolved it against the bound device. */
export interface Register extends RegisterSpec {
  name: string;
  /** Index into device.describe().regions (filled in by the engine at bind time; -1 in lint). */
  regionIndex: number;
}

/** A statechart event: a bare type string (fast, no allocation) or an xstate event object. */
export type MuxEvent = string | { type: string; [key: string]: unknown };

/** An access as the MUX sees it: register-resolved, offsets only. */
export interface MuxAccess {
  /** The register at (region, offset), or undefined when the map names none there. */
  reg: Register | undefined;
  region: number;
  offset: number;
  size: DevSize;
  dir: 'read' | 'write';
  /** Write: value written. Read: 0 (the value read is passed separately to classify). */
  value: number;
  /** String I/O repetitions (1 for a plain access). */
  count: number;
  /** String write data (count*size bytes). */
  data?: Uint8Array;
  /**
   * Set by a translation hook: the statechart event this access stands for, sent after the
   * device answered instead of classify()'s (e.g. "the last data word of the command").
   */
  event?: MuxEvent;
  /**
   * Set by a translation hook on an access it adds to learn the device's state (e.g. a status
   * read after a data read): classified like any other, but its reply is not the guest's.
   */
  probe?: boolean;
}

/** Per-guest view handed to translation hooks. */
export interface GuestView {
  readonly id: string;
  /** The attachment's options (for disks: the LBA window). */
  readonly options: AttachOptions;
  /** Free per-guest scratch space for translation state (e.g. a shadow of a register). */
  readonly scratch: Record<string, unknown>;
  /** Last value this guest wrote to each context register (device view), by register name. */
  readonly context: ReadonlyMap<string, number>;
  /**
   * Record a context value by hand: for pseudo context registers (device settings a command
   * changes, e.g. ATA SET MULTIPLE's count as `MULTIPLE`) whose `replay` re-creates them.
   */
  setContext(name: string, value: number): void;
  /**
   * The statechart's state now, as a dotted path (`pioIn.data`). Translation hooks run for
   * the owner's accesses only, so this is the protocol state the guest's access meets.
   */
  state(): string;
  /** A register of the map by name (for accesses a translation hook adds). */
  register(name: string): Register;
}

/** A translation hook's answer without touching the device. */
export interface Answer {
  /** Reply the guest gets (value; data for string reads; error to mark it refused). */
  answer: Reply;
  /** Event to send to the statechart as if the device had done it (optional). */
  event?: MuxEvent;
  /**
   * Why this is a refusal (e.g. "LBA outside the window"): counted as a denial and logged,
   * while the guest sees only `answer` (a device-level error such as ERR, not a transport error).
   */
  denied?: string;
}

export interface Translation {
  /**
   * Rewrite an access for this guest before it reaches the device. Return nothing to forward
   * it as is, a (modified) MuxAccess to forward that instead, several to forward in order
   * (each is classified; a read's reply is the last one's), or an Answer to not forward it.
   */
  access?(acc: MuxAccess, guest: GuestView): MuxAccess | MuxAccess[] | Answer | void;
  /** Rewrite a read's reply for this guest (e.g. patch IDENTIFY data). Return nothing to keep it. */
  reply?(acc: MuxAccess, reply: Reply, guest: GuestView): Reply | void;
}

/** Device access by register name during a context replay (not classified: the chart stays where it is). */
export interface ReplayIo {
  write(reg: string, value: number): Promise<void>;
  read(reg: string): Promise<number>;
}

/** A context register and the value a guest that never wrote it sees (the device's reset value). */
export interface ContextRegister {
  /** A register of the map, or, with `replay`, a pseudo register set through GuestView.setContext. */
  reg: string;
  reset: number;
  /**
   * Custom replay (default: write the value to the register). E.g. re-issue the command that
   * set a device setting. Must leave the device in a safe state; it is not classified.
   */
  replay?(value: number, io: ReplayIo): void | Promise<void>;
  /**
   * Replay on every switch, even when the engine believes the device already holds the value
   * (registers the device changes by itself, e.g. write-1-to-clear status bits).
   */
  always?: boolean;
  /**
   * Save on switch-out: called for the guest whose context the device holds when another guest
   * gets it; the result becomes that guest's value of `reg` (volatile device state such as a
   * command's result registers, which translation hooks then answer from). Must not change
   * the device's state.
   */
  save?(io: ReplayIo, guest: GuestView): number | Promise<number>;
}

/** The accesses that bring the device back to a safe state from anywhere. */
export interface ResetPath {
  /** Register writes in order; each goes to the device and through classify() into the statechart. */
  writes: Array<{ reg: string; value: number }>;
  /** Also call device.reset() (power-on state) after the writes; the statechart restarts at its initial state. */
  hard?: boolean;
}

export interface MuxDefinition {
  /** Device kind this MUX is for (matches device.describe().kind). */
  kind: string;
  /** The register map, by register name (datasheet/Linux spelling). */
  registers: Record<string, RegisterSpec>;
  /** xstate v5 machine from setup(...).createMachine(...); safe states carry the tag 'safe'. */
  machine: AnyStateMachine;
  /**
   * Turn an access into a statechart event. Called once per access after the device answered,
   * with `value` = the value read (reads) or written (writes), in the device's view
   * (after translation). Return null/undefined for "no event". Must be pure and cheap.
   */
  classify(acc: MuxAccess, value: number): MuxEvent | null | undefined;
  /** Optional: the device's IRQ line changed level; an event for the statechart, or null. */
  classifyIrq?(level: boolean): MuxEvent | null | undefined;
  /** Context registers, replayed onto the device in this order when a guest becomes owner. */
  context?: ContextRegister[];
  translate?: Translation;
  reset: ResetPath;
  /** How long (ns) an owner may stay out of a safe state before the watchdog cuts it off. */
  deadlineNs: number;
  /**
   * When a guest lost the device while its virtual IRQ was pending (device line high), raise
   * it again when it owns the device again. Default false (the IRQ is dropped).
   */
  reraiseIrq?: boolean;
  /** Device IRQ line number to deliver as the virtual IRQ; default describe().irq, else 0. */
  irqLine?: number;
  /**
   * Sample events for graph tools (check-machine, path tests) when the machine's guards read
   * event payloads; default: one `{type}` per event type the machine names.
   */
  events?: Array<{ type: string; [key: string]: unknown }>;
}

export class MuxDefinitionError extends Error {
  constructor(
    readonly where: string,
    message: string,
  ) {
    super(`mux definition ${where}: ${message}`);
    this.name = 'MuxDefinitionError';
  }
}

/**
 * Check a definition's shape and return it (typed). Throws MuxDefinitionError naming the field.
 * Cross-references (context/reset registers in the map) are checked when the engine binds
 * the device; reachability and the reset path are `muxvisor check-machine`'s job.
 */
export function defineMux<T extends MuxDefinition>(def: T): T {
  const where = def?.kind ?? '(no kind)';
  if (!def || typeof def !== 'object') throw new MuxDefinitionError(where, 'not an object');
  if (typeof def.kind !== 'string' || !def.kind) throw new MuxDefinitionError(where, 'kind must be a non-empty string');
  if (!def.machine || typeof (def.machine as { transition?: unknown }).transition !== 'function')
    throw new MuxDefinitionError(where, 'machine must be an xstate v5 machine (setup(...).createMachine(...))');
  if (typeof def.classify !== 'function') throw new MuxDefinitionError(where, 'classify must be a function');
  if (!(def.deadlineNs > 0)) throw new MuxDefinitionError(where, 'deadlineNs must be > 0');
  if (!def.reset || !Array.isArray(def.reset.writes)) throw new MuxDefinitionError(where, 'reset.writes must be an array');
  for (const [name, r] of Object.entries(def.registers ?? {})) {
    if (typeof r.region !== 'string') throw new MuxDefinitionError(where, `register ${name}: region must be a region name`);
    if (!Number.isInteger(r.offset) || r.offset < 0) throw new MuxDefinitionError(where, `register ${name}: bad offset ${r.offset}`);
    if (r.width !== 1 && r.width !== 2 && r.width !== 4) throw new MuxDefinitionError(where, `register ${name}: width must be 1, 2 or 4`);
  }
  return def;
}

/** Event type of a MuxEvent. */
export function eventType(e: MuxEvent): string {
  return typeof e === 'string' ? e : e.type;
}

/** A MuxAccess for a register read. */
export function registerRead(reg: Register): MuxAccess {
  return { reg, region: reg.regionIndex, offset: reg.offset, size: reg.width, dir: 'read', value: 0, count: 1 };
}

/** A MuxAccess for a register write, used by reset paths, replays and lints. */
export function registerWrite(reg: Register, value: number): MuxAccess {
  return { reg, region: reg.regionIndex, offset: reg.offset, size: reg.width, dir: 'write', value, count: 1 };
}
