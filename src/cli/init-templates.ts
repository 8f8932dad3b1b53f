// The files `muxvisor init device|machine|policy NAME` writes. The three fit together: the
// device is a small transaction register file, the machine is its protocol (safe between
// transactions), the policy a round-robin with a quantum. Each imports only `muxvisor/...`
// and xstate, so it works in any folder, with muxvisor installed there or not.

export type TemplateKind = 'device' | 'machine' | 'policy';

const device = (name: string) => `// Device model "${name}" for muxvisor: a transaction register file at I/O ports 0x300-0x303.
// Use it in a config as {"id": "d0", "kind": "${name}", "model": "./${name}.ts"}.
//   CMD    (0x300, write): 1 = begin a transaction (SUM = 0), 2 = end it, 0 = reset
//   STATUS (0x301, read):  bit 0 = BUSY, inside a transaction
//   DATA   (0x302, write): a byte added to SUM, inside a transaction
//   SUM    (0x303, read):  the sum (mod 256) of this transaction's bytes
// A device sees region offsets, never addresses; a guest's mistake is counted, not thrown.
import type { Device, DeviceContext, KindInfo, RegionInfo } from 'muxvisor/device';

export const REG_CMD = 0;
export const REG_STATUS = 1;
export const REG_DATA = 2;
export const REG_SUM = 3;
export const CMD_RESET = 0;
export const CMD_BEGIN = 1;
export const CMD_END = 2;
export const STATUS_BUSY = 0x01;

const REGIONS: RegionInfo[] = [{ name: 'regs', space: 'pio', size: 4, legacyBase: 0x300 }];

/** What the kind says about itself (muxvisor describe, docs). */
export const kindInfo: KindInfo = {
  kind: '${name}',
  summary: 'A transaction register file: bytes written between BEGIN and END are summed.',
  backend: null,
  pci: null,
  regions: REGIONS,
  irqs: [],
  properties: [],
};

export default function create(ctx: DeviceContext): Device {
  let busy = false;
  let sum = 0;
  const counts = { badRegister: 0, dataOutsideTransaction: 0 };
  return {
    describe: () => ({ kind: ctx.kind, regions: REGIONS, properties: [] }),
    read(_region, offset) {
      if (offset === REG_STATUS) return busy ? STATUS_BUSY : 0;
      if (offset === REG_SUM) return sum;
      counts.badRegister++;
      return 0xff;
    },
    write(_region, offset, _size, value) {
      if (offset === REG_CMD) {
        if (value === CMD_BEGIN) [busy, sum] = [true, 0];
        else if (value === CMD_END) busy = false;
        else if (value === CMD_RESET) [busy, sum] = [false, 0];
        else counts.badRegister++;
      } else if (offset === REG_DATA) {
        if (busy) sum = (sum + value) & 0xff;
        else counts.dataOutsideTransaction++;
      } else counts.badRegister++;
    },
    reset() {
      busy = false;
      sum = 0;
    },
    metrics: () => ({ ...counts }),
  };
}
`;

const machine = (name: string) => `// MUX statechart "${name}" for muxvisor: the protocol of the transaction register file that
// \`muxvisor init device\` writes. The device may change hands only between transactions
// (the state tagged "safe"). Check it with \`muxvisor check-machine ./${name}.ts\`; use it in a
// config as "mux": {"machine": "./${name}.ts"}.
import { setup } from 'xstate';
import { defineMux, type MuxAccess } from 'muxvisor/define';

type Event = { type: 'BEGIN' } | { type: 'END' } | { type: 'RESET' };

export default defineMux({
  kind: '${name}',
  registers: {
    CMD: { region: 'regs', offset: 0, width: 1, access: 'w' },
    STATUS: { region: 'regs', offset: 1, width: 1, access: 'r' },
    DATA: { region: 'regs', offset: 2, width: 1, access: 'w' },
    SUM: { region: 'regs', offset: 3, width: 1, access: 'r' },
  },
  machine: setup({ types: { events: {} as Event } }).createMachine({
    id: '${name}',
    initial: 'idle',
    on: { RESET: '.idle' },
    states: {
      idle: { tags: ['safe'], on: { BEGIN: 'transaction' } },
      transaction: { on: { END: 'idle' } },
    },
  }),
  /** The owner's access as a protocol event: CMD 1 begins, 2 ends, 0 resets. */
  classify(a: MuxAccess, value: number): string | null {
    if (a.reg?.name !== 'CMD' || a.dir !== 'write') return null;
    return value === 1 ? 'BEGIN' : value === 2 ? 'END' : value === 0 ? 'RESET' : null;
  },
  /** How the MUX brings the device back to a safe state when an owner dies or hangs. */
  reset: { writes: [{ reg: 'CMD', value: 0 }] },
  /** An owner that keeps a transaction open longer (1 s) is cut off (watchdog). */
  deadlineNs: 1_000_000_000,
});
`;

const policy = (name: string) => `// Arbitration policy "${name}" for muxvisor: the owner keeps the device for a quantum while
// others wait, then the guest that waited longest goes next. Check it with
// \`muxvisor check-policy ./${name}.ts\`; use it in a config as "policy": {"module": "./${name}.ts"}.
import { durationNs, policyOptions, type Policy, type PolicyView } from 'muxvisor/policy';

export default function create(options: Record<string, unknown> = {}): Policy {
  const quantumNs = policyOptions('${name}', { quantumNs: durationNs.optional() }, options).quantumNs ?? 500_000;
  return {
    name: '${name}',
    fairness: 'equal',
    pick(view: PolicyView): string {
      if (view.owner && view.owner.heldNs < quantumNs) return view.owner.id;
      return view.waiting[0].id; // longest-waiting first
    },
  };
}
`;

export const TEMPLATES: Record<TemplateKind, (name: string) => string> = { device, machine, policy };

/** What to run next, printed after the file is written. */
export const NEXT_STEP: Record<TemplateKind, (file: string, name: string) => string> = {
  device: (f, name) => `use it in a config: {"id": "d0", "kind": "${name}", "model": "${f}"}`,
  machine: (f) => `check it: muxvisor check-machine ${f}`,
  policy: (f) => `check it: muxvisor check-policy ${f}`,
};
