// What each `muxvisor bench` figure means, in which unit a person reads it, and its target.
// `--json` keeps the modules' own keys and units (scripts read those); the table converts
// every figure of one kind to that kind's unit, so throughputs are all MB/s, trap round
// trips all µs, in-process MUX work all ns (KIND_UNITS). A figure missing here still shows,
// with its raw value and a note that it is undescribed (test/bench-table.test.ts checks the
// shipped modules' figures are all described).

/** Kinds of figure, each read in one unit. */
export const KIND_UNITS = {
  /** Data moved per second (decimal MB: 10^6 bytes). */
  throughput: 'MB/s',
  /** A trapped access, exit to answer and back. */
  trap: 'µs',
  /** In-process work per access (MUX decision, engine access). */
  step: 'ns',
  /** CPU time, or a stretch of (virtual) time a measurement covers. */
  time: 'ms',
  memory: 'MiB',
  /** One speed over another. */
  ratio: '×',
  /** Parts of a whole, errors of shares. */
  fraction: '%',
  /** A dimensionless index (Jain's: 1 is perfectly fair). */
  index: '',
  count: '',
  text: '',
} as const;

export type FigureKind = keyof typeof KIND_UNITS;

/** The unit a module reports in (its key says it), converted to its kind's unit by `toKindUnit`. */
type SourceUnit = 'ns' | 'us' | 'ms' | 'MBps' | 'KiBps' | 'sectorsPerSec' | 'MiB' | 'ratio' | 'fraction' | 'index' | 'count' | 'text';

const TO_KIND_UNIT: Record<SourceUnit, (v: number) => number> = {
  ns: (v) => v,
  us: (v) => v,
  ms: (v) => v,
  MBps: (v) => v,
  KiBps: (v) => (v * 1024) / 1e6, // the kvm bench divides bytes/s by 1024
  sectorsPerSec: (v) => (v * 512) / 1e6,
  MiB: (v) => v,
  ratio: (v) => v,
  fraction: (v) => v * 100,
  index: (v) => v,
  count: (v) => v,
  text: (v) => v,
};

const KIND_OF: Record<SourceUnit, FigureKind> = {
  ns: 'step',
  us: 'trap',
  ms: 'time',
  MBps: 'throughput',
  KiBps: 'throughput',
  sectorsPerSec: 'throughput',
  MiB: 'memory',
  ratio: 'ratio',
  fraction: 'fraction',
  index: 'index',
  count: 'count',
  text: 'text',
};

export interface Target {
  op: '<=' | '>=' | '=';
  /** In the kind's unit; a function when the target is another figure of the same run (`m`: the key's match). */
  value: number | ((figures: Record<string, unknown>, m: RegExpMatchArray) => number | undefined);
  /** Where the target comes from, when it is another figure. */
  of?: string;
}

interface Entry {
  /** A flattened JSON key (`mux.decisionNs.fast`), with `$1` in `meaning` for a captured group. */
  key: RegExp;
  /** The name a person reads: the key without its unit suffix. */
  name: (m: RegExpMatchArray) => string;
  unit: SourceUnit;
  meaning: (m: RegExpMatchArray) => string;
  target?: Target;
}

const same = (m: RegExpMatchArray): string => m[0];
const e = (key: RegExp, name: Entry['name'], unit: SourceUnit, meaning: string | Entry['meaning'], target?: Target): Entry => ({
  key,
  name,
  unit,
  meaning: typeof meaning === 'string' ? () => meaning : meaning,
  target,
});

export const CATALOG: readonly Entry[] = [
  // src/bench/mux.ts
  e(/^mux\.decisionNs\.fast$/, () => 'mux.decision.fast', 'ns', 'classify + statechart step of one access on the compiled table (the hot path)', { op: '<=', value: 300 }),
  e(/^mux\.decisionNs\.xstate$/, () => 'mux.decision.xstate', 'ns', 'the same step on the xstate interpreter (the reference semantics)'),
  e(/^mux\.accessNs$/, () => 'mux.access', 'ns', 'one owner access through the MUX engine to a simulated device'),
  // src/bench/fairness.ts
  e(/^fairness\.jainEqual$/, same, 'index', "Jain's index of device time, 4 equal guests, round-robin (1 = equal shares)", { op: '>=', value: 0.99 }),
  e(/^fairness\.weightedShareError$/, same, 'fraction', 'largest relative error of a share, weights 1:2:4, weighted-fair', { op: '<=', value: 2 }),
  e(/^fairness\.weightedShares$/, same, 'fraction', 'device-time shares of the weights 1:2:4 (ideal 14.3, 28.6, 57.1 %)'),
  e(/^fairness\.windowMs$/, () => 'fairness.window', 'ms', 'virtual time each fairness run covers'),
  // src/bench/nic.ts
  e(/^nic\.frameUs$/, () => 'nic.frame', 'us', 'one received frame into a guest\'s virtual ring: the shared-NIC router drains the physical card and stores the frame'),
  e(/^nic\.txFrameUs$/, () => 'nic.txFrame', 'us', 'one guest transmit as Linux does it (remote-DMA upload, TXP) on its virtual card, the source check and the physical card\'s transmit'),
  e(/^nic\.framesPerSec\.(\d+)$/, (m) => `nic.framesPerSec.${m[1]}`, 'count', (m) => `frames/s sent by ${m[1]} scripted guest${m[1] === '1' ? '' : 's'} sharing one NE2000, all together`),
  e(/^nic\.sharingEfficiency$/, same, 'ratio', 'aggregate frames/s with 4 guests on one NE2000 over that with 1', { op: '>=', value: 0.9 }),
  e(/^nic\.floodRatio$/, same, 'ratio', 'frames/s two guests of one NE2000 exchange while a third, that never drains its ring, is flooded from the wire at 10 Mbit/s, over their frames/s unflooded', { op: '>=', value: 0.9 }),
  // src/bench/disk.ts
  e(/^disk\.aggregateMBps\.(\d+)$/, (m) => `disk.aggregate.${m[1]}`, 'MBps', (m) => `verified throughput of ${m[1]} scripted guest${m[1] === '1' ? '' : 's'} sharing one disk, all together`),
  e(/^disk\.sharingEfficiency$/, same, 'ratio', 'aggregate throughput with 4 guests over that with 1', { op: '>=', value: 0.9 }),
  // src/bench/log.ts
  e(/^log\.overhead$/, same, 'fraction', 'throughput the access log costs the 4-guest disk demo (1 - with/without)', { op: '<=', value: 25 }),
  e(/^log\.throughputMBps\.(with|without)$/, (m) => `log.throughput.${m[1]}`, 'MBps', (m) => `the 4-guest disk demo's verified throughput ${m[1]} --access-log`),
  e(/^log\.recordsPerSec$/, same, 'count', 'access log records written per second in that demo'),
  e(/^log\.cpuOverhead$/, same, 'fraction', 'the same cost from CPU time per MB moved (steadier than throughput on a loaded machine)', { op: '<=', value: 25 }),
  e(/^log\.cpuMsPerMB\.(with|without)$/, (m) => `log.cpuPerMB.${m[1]}`, 'ms', (m) => `CPU time per MB the demo moves, ${m[1]} --access-log`),
  // src/bench/trap-user.ts
  e(/^trap\.user\.floorUs$/, () => 'trap.user.floor', 'us', 'a bare SIGSEGV trap the shim answers itself: the floor of a trapped access'),
  e(/^trap\.user\.muxUs$/, () => 'trap.user.mux', 'us', 'a trapped inb answered by the supervisor through the shared-memory slot'),
  e(/^trap\.user\.socketMuxUs$/, () => 'trap.user.socketMux', 'us', 'the same trapped inb answered over the channel socket'),
  e(/^trap\.user\.muxOverFloor$/, same, 'ratio', 'trap.user.mux over trap.user.floor', { op: '<=', value: 2 }),
  // src/bench/kvm.ts
  e(/^trap\.kvm\.floorUs$/, () => 'trap.kvm.floor', 'us', 'a bare KVM port exit answered in native code: the floor of a KVM access'),
  e(/^trap\.kvm\.muxUs$/, () => 'trap.kvm.mux', 'us', 'a KVM guest inb answered by the ATA model through the MUX, in process'),
  e(/^trap\.kvm\.helperMuxUs$/, () => 'trap.kvm.helperMux', 'us', 'the same through a helper process and the channel socket'),
  e(/^trap\.kvm\.muxOverFloor$/, same, 'ratio', 'trap.kvm.mux over trap.kvm.floor', { op: '<=', value: 1.5 }),
  e(/^trap\.kvm\.skipped$/, same, 'text', 'why the KVM figures are missing'),
  e(/^disk\.kvmVsQemu$/, same, 'ratio', 'one KVM guest: verified bytes/s on muxvisor over QEMU -accel kvm (geometric mean)'),
  e(/^disk\.kvmVsQemu\.(pio|dma)$/, same, 'ratio', (m) => `the same, ${m[1].toUpperCase()} only`),
  e(/^disk\.kvm\.(pio|dma)\.muxvisorKBps$/, (m) => `disk.kvm.${m[1]}.muxvisor`, 'KiBps', (m) => `one KVM guest's verified ${m[1].toUpperCase()} throughput on muxvisor`),
  e(/^disk\.kvm\.(pio|dma)\.qemuKBps$/, (m) => `disk.kvm.${m[1]}.qemu`, 'KiBps', (m) => `the same guest's ${m[1].toUpperCase()} throughput on QEMU's IDE`),
  // src/bench/flood.ts
  e(/^flood\.honestSectorsPerSec\.quiet$/, () => 'flood.honest.quiet', 'sectorsPerSec', 'two honest trapped drivers, written + read, alone'),
  e(/^flood\.honestSectorsPerSec\.flooded$/, () => 'flood.honest.flooded', 'sectorsPerSec', 'the same while a hostile guest floods the socket'),
  e(/^flood\.throughputRatio$/, same, 'ratio', 'flood.honest.flooded over flood.honest.quiet (1 = the flood costs nothing)'),
  e(/^flood\.supervisorCpuMs\.(quiet|flooded)$/, (m) => `flood.supervisorCpu.${m[1]}`, 'ms', (m) => `supervisor CPU time over a run, ${m[1] === 'quiet' ? 'no flood' : 'flooded'}`),
  e(/^flood\.rssGrowthMiB\.quiet$/, () => 'flood.rssGrowth.quiet', 'MiB', "the supervisor's RSS growth over a run, no flood"),
  e(/^flood\.rssGrowthMiB\.flooded$/, () => 'flood.rssGrowth.flooded', 'MiB', "the supervisor's RSS growth over a flooded run", {
    op: '<=',
    value: (f) => (typeof f['flood.rssBoundMiB'] === 'number' ? f['flood.rssBoundMiB'] : undefined),
    of: 'flood.rssBound',
  }),
  e(/^flood\.rssBoundMiB$/, () => 'flood.rssBound', 'MiB', "the documented memory bound for the run's three guests"),
  e(/^flood\.connectsRefused$/, same, 'count', 'honest connects refused during a burst of 1000 silent ones', { op: '=', value: 0 }),
  e(/^flood\.rounds$/, same, 'count', 'quiet and flooded runs each figure is the median of'),
  // src/bench/linux.ts
  e(/^linux\.skipped$/, same, 'text', 'why the Linux guest figures are missing'),
  e(/^linux\.disk\.(muxvisor|qemu)\.(read|write)MBps$/, (m) => `linux.disk.${m[1]}.${m[2]}`, 'MBps', (m) =>
    `one Linux guest's sequential direct-I/O ${m[2]}s (DMA, 1 MiB requests) on ${m[1] === 'muxvisor' ? "muxvisor's shared disk" : "QEMU's own IDE"}`),
  e(/^linux\.diskVsQemu$/, same, 'ratio', "one Linux guest's disk throughput on muxvisor over QEMU's own IDE (geometric mean)", { op: '>=', value: 0.8 }),
  e(/^linux\.diskVsQemu\.(read|write)$/, same, 'ratio', (m) => `the same, ${m[1]}s only`),
  e(/^linux\.bootMs\.(muxvisor|qemu)$/, (m) => `linux.boot.${m[1]}`, 'ms', (m) => `guest uptime at /init's first line, ${m[1] === 'muxvisor' ? "with muxvisor's disk" : "on QEMU's own IDE"}`),
  e(/^linux\.aggregateMBps\.(\d+)$/, (m) => `linux.aggregate.${m[1]}`, 'MBps', (m) => `${m[1]} Linux guest${m[1] === '1' ? '' : 's'} at once on one shared disk, all together`),
  e(/^linux\.sharingEfficiency$/, same, 'ratio', 'aggregate throughput of three Linux guests over that of one', { op: '>=', value: 0.9 }),
  e(/^linux\.net\.(skipped|error)$/, same, 'text', (m) => (m[1] === 'skipped' ? 'why the Linux NIC figures are missing' : 'the Linux NIC bench failed')),
  e(/^linux\.net\.kib$/, same, 'count', 'KiB each way the Linux NIC figures move over TCP (busybox nc, checksums compared)'),
  e(/^linux\.net\.(muxvisor|qemu)\.(up|down)MBps$/, (m) => `linux.net.${m[1]}.${m[2]}`, 'MBps', (m) =>
    `one Linux guest's TCP ${m[2] === 'up' ? 'upload to' : 'download from'} the host (nc) through ${m[1] === 'muxvisor' ? "muxvisor's shared NE2000 (tap backend)" : "QEMU's own ne2k_pci (-netdev tap)"}`),
  e(/^linux\.netVsQemu$/, same, 'ratio', "one Linux guest's TCP throughput on muxvisor's shared NE2000 over QEMU's own ne2k_pci (geometric mean of up and down)", { op: '>=', value: 0.8 }),
  e(/^linux\.netVsQemu\.(up|down)$/, same, 'ratio', (m) => `the same, ${m[1] === 'up' ? 'uploads' : 'downloads'} only`),
  e(/^qemu\.accessUs$/, () => 'qemu.access', 'us', "one 4-byte PIO access of a Linux guest through the proxy and the MUX"),
  e(/^qemu\.localAccessUs$/, () => 'qemu.localAccess', 'us', 'the same access to a device QEMU emulates itself'),
  e(/^qemu\.accessOverLocal$/, same, 'ratio', 'qemu.access over qemu.localAccess'),
  // src/bench/scale.ts
  e(/^scale\.guests$/, same, 'count', 'guest counts the scale bench ran, one after the other, each on one shared disk'),
  e(/^scale\.windowMs\.(\d+)$/, (m) => `scale.window.${m[1]}`, 'ms', (m) => `the measured window of the ${m[1]}-guest run`),
  e(/^scale\.aggregateMBps\.(\d+)$/, (m) => `scale.aggregate.${m[1]}`, 'MBps', (m) => `verified throughput of ${m[1]} scripted guest${m[1] === '1' ? '' : 's'} on one disk, all together`),
  e(/^scale\.efficiency\.(\d+)$/, same, 'ratio', (m) => `aggregate with ${m[1]} guests over the aggregate with 1`, { op: '>=', value: 0.8 }),
  e(/^scale\.jain\.(\d+)$/, same, 'index', (m) => `Jain's index of the bytes each of ${m[1]} guests moved in the window (random transfer sizes)`, { op: '>=', value: 0.99 }),
  e(/^scale\.jainDeviceTime\.(\d+)$/, same, 'index', (m) => `Jain's index of the device time each of ${m[1]} guests held in the window`),
  e(/^scale\.unserved\.(\d+)$/, same, 'count', (m) => `of ${m[1]} guests, those that finished no operation in the window`, { op: '=', value: 0 }),
  e(/^scale\.longestWaitMs\.(\d+)$/, (m) => `scale.longestWait.${m[1]}`, 'ms', (m) => `the longest any of ${m[1]} guests' accesses waited for its answer`, {
    op: '<=',
    value: (f, m) => (f['scale.livenessBoundMs'] as Record<string, number> | undefined)?.[m[1]],
    of: 'scale.livenessBound',
  }),
  e(/^scale\.livenessBoundMs\.(\d+)$/, (m) => `scale.livenessBound.${m[1]}`, 'ms', (m) => `${Math.max(1, Number(m[1]) - 1)} others ahead, each holding the device a quantum + a recheck + the longest unsafe span`),
  e(/^scale\.cpuMsPerMB\.(\d+)$/, (m) => `scale.cpuPerMB.${m[1]}`, 'ms', (m) => `CPU time per MB moved with ${m[1]} guests`),
  e(/^scale\.rssMiB\.(\d+)$/, (m) => `scale.rss.${m[1]}`, 'MiB', (m) => `process RSS (supervisor, MUX, device, in-process guests) at the end of the ${m[1]}-guest window`),
  e(/^scale\.ownerAccessNs\.(\d+)$/, (m) => `scale.ownerAccess.${m[1]}`, 'ns', (m) => `the engine alone (simulated device): one owner access while ${Number(m[1]) - 1} guests wait`),
  e(/^scale\.rssPerGuestMiB$/, () => 'scale.rssPerGuest', 'MiB', 'RSS growth per guest from the smallest to the largest count (memory linear in guests: the same at every scale)'),
  // every module
  e(/^([a-z-]+)\.error$/, same, 'text', (m) => `the ${m[1]} bench failed`),
];

/** One figure described, its value in its kind's unit. */
export interface Figure {
  key: string;
  name: string;
  kind: FigureKind;
  unit: string;
  /** Numbers in the kind's unit (a list for a list figure), or text. */
  value: number | number[] | string;
  meaning: string;
  target?: { op: Target['op']; value: number; of?: string };
  /** Whether the target is met; undefined without a target (or without a value to compare). */
  met?: boolean;
  described: boolean;
}

/**
 * The modules' figures with objects flattened one level (`{'mux.decisionNs': {fast}}` ->
 * `mux.decisionNs.fast`); lists stay one figure.
 */
export function flattenFigures(figures: Record<string, unknown>): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const [k, v] of Object.entries(figures)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) for (const [sub, x] of Object.entries(v)) out.push([`${k}.${sub}`, x]);
    else out.push([k, v]);
  }
  return out;
}

export function findEntry(key: string): { entry: Entry; match: RegExpMatchArray } | null {
  for (const entry of CATALOG) {
    const match = key.match(entry.key);
    if (match) return { entry, match };
  }
  return null;
}

function compare(op: Target['op'], v: number, t: number): boolean {
  if (op === '<=') return v <= t;
  if (op === '>=') return v >= t;
  return v === t;
}

/** Every figure of a bench run, described and in its kind's unit, in the run's order. */
export function describeFigures(figures: Record<string, unknown>): Figure[] {
  return flattenFigures(figures).map(([key, raw]): Figure => {
    const found = findEntry(key);
    if (!found) {
      const value = typeof raw === 'number' || (Array.isArray(raw) && raw.every((x) => typeof x === 'number')) ? (raw as number | number[]) : String(JSON.stringify(raw) ?? raw);
      return { key, name: key, kind: 'text', unit: '', value, meaning: '(not described in src/cli/bench-figures.ts)', described: false };
    }
    const { entry, match } = found;
    const kind = KIND_OF[entry.unit];
    const conv = TO_KIND_UNIT[entry.unit];
    let value: Figure['value'];
    if (typeof raw === 'number') value = conv(raw);
    else if (Array.isArray(raw) && raw.every((x) => typeof x === 'number')) value = raw.map(conv);
    else value = typeof raw === 'string' ? raw : JSON.stringify(raw);
    const fig: Figure = { key, name: entry.name(match), kind, unit: KIND_UNITS[kind], value, meaning: entry.meaning(match), described: true };
    if (entry.target) {
      const t = typeof entry.target.value === 'function' ? entry.target.value(figures, match) : entry.target.value;
      // A target given as another figure is in that figure's reported unit: same kind, same conversion.
      const tv = t === undefined ? undefined : typeof entry.target.value === 'function' ? conv(t) : t;
      if (tv !== undefined) {
        fig.target = { op: entry.target.op, value: tv, of: entry.target.of };
        if (typeof value === 'number') fig.met = compare(entry.target.op, value, tv);
      }
    }
    return fig;
  });
}
