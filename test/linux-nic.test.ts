// Unmodified Linux guests on one shared NE2000 (issue 13, "Linux guests"). One `muxvisor run
// --exit-when-done` with three guest QEMUs (the guest kit, TCG); each QEMU's NIC is an
// x-pci-proxy-dev that muxvisor serves as the RTL8029 function of one ne2k card (the NIC
// router: a virtual card per guest, its granted MAC), the card's wire a TAP in a network
// namespace of the test's own with the host address and a TCP peer (net-peer.mjs). The
// unmodified ne2k-pci driver binds it. Each guest runs the kit's NIC workload:
//   all   eth0 up with its address; ping the host and the other two; move NIC_KIB KiB of random
//         bytes to the host and back over TCP (busybox nc), checksums compared on both ends;
//   g2    then takes g1's MAC (ip link set eth0 address): nothing gets through (its frames are
//         counted spoofed), g1 is unaffected; g2 takes its own MAC back;
//   g3    then streams to the host until the test SIGKILLs its QEMU mid-transmit;
//   g1,g2 wait at a gate the test opens after the kill, then ping the host and each other and
//         move AFTER_KIB KiB again: the card works on for them.
// Sizes: MUXVISOR_NIC_KIB (default 256) and MUXVISOR_NIC_AFTER_KIB (default 128). Port I/O through
// the proxy costs tens of µs an access and ne2k-pci moves frames by `rep insl/outsl`, so a guest
// moves 12-40 kB/s each way under TCG here: with MUXVISOR_NIC_KIB=8192 this test passed in 1294 s
// (src/mux/nic/README.md, "Linux guests on the card"); with 256 KiB in about 190 s.

import { rmSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { describeFigures, KIND_UNITS } from '../src/cli/bench-figures.ts';
import { parseKitConsole } from '../src/guests/linux-kit/console.ts';
import { NetHost } from '../src/guests/linux-kit/net-host.ts';
import { mpqemuAddonMissing } from '../src/trap/mpqemu/native.ts';
import { consoleLines, qemuPidOf, startRun, waitFor } from './helpers/linux-run.ts';
import { missing, titled } from './helpers/requires.ts';

const why = missing('qemu', 'linux-kit', 'netns') ?? mpqemuAddonMissing();
const NIC_KIB = Number(process.env.MUXVISOR_NIC_KIB ?? 256);
const AFTER_KIB = Number(process.env.MUXVISOR_NIC_AFTER_KIB ?? 128);
const KILL_AFTER_BYTES = 128 * 1024; // g3's stream as the host counted it when its QEMU is killed
// Generous: boots of three QEMUs at once (init at 30-115 s under load), plus every byte at 4 kB/s.
const RUN_TIMEOUT_MS = 600_000 + Math.round(((3 * NIC_KIB + 2 * AFTER_KIB) * 2 * 1024) / 4);
const NAMES = ['g1', 'g2', 'g3'] as const;
const macOf = (i: number): string => `52:54:00:4e:00:${(0x10 + i).toString(16)}`;
const IFNAME = `mvlnic${process.pid % 100000}`;

describe.skipIf(why !== null)(titled('Linux guests share one NE2000 through muxvisor', why), () => {
  let dir = '';
  let host: NetHost | null = null;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'muxvisor-linux-nic-'));
  });
  afterAll(async () => {
    await host?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`three guests on one card: addresses, pings, ${NIC_KIB} KiB each way over TCP each; a MAC spoofer gets nothing through; a guest killed mid-transmit leaves the card working`, async ({ expect }) => {
    host = new NetHost({ netns: `mvlnic${process.pid}` });
    const h = host;
    const ips = NAMES.map((_, i) => h.guestIp(i + 1));
    const others = (i: number): string => ips.filter((_, j) => j !== i).join('+');
    const steps = [
      `ping,xfer:${NIC_KIB},gate,ping:${h.hostIp}+${ips[1]},xfer:${AFTER_KIB}`,
      `ping,xfer:${NIC_KIB},spoof,unspoof,gate,ping:${h.hostIp}+${ips[0]},xfer:${AFTER_KIB}`,
      `ping,xfer:${NIC_KIB},stream`,
    ];
    const consoleOf = (name: string): string => join(dir, `${name}.log`);
    const config = {
      socket: join(dir, 'mv.sock'),
      devices: [{ id: 'nic0', kind: 'ne2k', backend: { type: 'tap', ifname: IFNAME, netns: h.netns } }],
      guests: NAMES.map((name, i) => ({
        name,
        run: {
          type: 'qemu',
          append: `${h.guestArgs(i + 1)} muxvisor.guest=${name} muxvisor.peers=${others(i)} muxvisor.steps=${steps[i]}${i === 1 ? ` muxvisor.spoofmac=${macOf(1)}` : ''}`,
          console: consoleOf(name),
        },
        grants: [{ device: 'nic0', mac: macOf(i + 1) }],
      })),
    };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const t0 = performance.now();
    const run = startRun(join(dir, 'config.json'), RUN_TIMEOUT_MS);
    const dump = (): string => `${NAMES.map((g) => `--- ${g}:\n${consoleLines(consoleOf(g)).slice(-25).join('\n')}`).join('\n')}\n--- peer:\n${JSON.stringify(h.events().slice(-10))}\n--- stderr:\n${run.stderr().slice(-2000)}`;
    const says = (name: string, text: string): boolean => consoleLines(consoleOf(name)).some((l) => l.includes(text));
    let killedAt = 0;
    let killedWall = 0;
    try {
      await h.configure(IFNAME);
      // g3 streams, g1 and g2 wait at the gate (g2 after its spoofing): kill g3 mid-transmit.
      const g3Streaming = (): boolean => h.events().some((e) => e.event === 'sink' && e.from === ips[2] && (e.bytes ?? 0) >= KILL_AFTER_BYTES);
      expect(await waitFor(() => g3Streaming() && says('g1', 'gate waiting') && says('g2', 'gate waiting'), RUN_TIMEOUT_MS - 120_000, 500), `never reached the kill point\n${dump()}`).toBe(true);
      const pid = qemuPidOf('g3', run.pid);
      expect(pid, 'the QEMU of guest g3 under our supervisor').not.toBeNull();
      process.kill(pid!, 'SIGKILL');
      killedAt = performance.now();
      killedWall = Date.now();
      h.openGate();
    } catch (e) {
      for (const g of NAMES) {
        const pid = qemuPidOf(g, run.pid);
        if (pid) process.kill(pid, 'SIGKILL');
      }
      throw e;
    }
    const end = await run.exited;
    const wallS = (performance.now() - t0) / 1000;
    expect(end.timedOut, `the run hung\n${dump()}`).toBe(false);
    const events = run.events();
    const outcome = new Map(events.filter((e) => e.event === 'guest').map((e) => [e.guest!, e]));
    for (const [name, o] of outcome) console.info(`${name}: ${o.ok ? 'ok' : 'FAILED'}: ${o.detail}`);
    expect(outcome.get('g1')?.ok, `g1: ${outcome.get('g1')?.detail}\n${dump()}`).toBe(true);
    expect(outcome.get('g2')?.ok, `g2: ${outcome.get('g2')?.detail}\n${dump()}`).toBe(true);
    expect(outcome.get('g3')).toMatchObject({ ok: false, detail: expect.stringContaining('killed by SIGKILL') });

    const peer = h.events();
    for (const [i, name] of NAMES.entries()) {
      const lines = consoleLines(consoleOf(name));
      // The unmodified driver bound the proxied function, with the granted MAC.
      expect(lines.some((l) => /ne2k-pci 0000:00:0\d\.0 eth0: RealTek RTL-8029\(AS\) found at 0x[0-9a-f]+, IRQ \d+, /.test(l) && l.includes(macOf(i + 1))), `${name} ne2k-pci probe line`).toBe(true);
      expect(parseKitConsole(lines).info.get('mac'), name).toBe(macOf(i + 1));
      // Every target answered all 4 pings (the workload fails otherwise; checked here from its lines).
      const pinged = lines.map((l) => /MUXVISOR-INFO net ping (\S+) sent=4 received=4/.exec(l)?.[1]).filter(Boolean);
      for (const t of [h.hostIp, ...ips.filter((_, j) => j !== i)]) expect(pinged, `${name} pinged ${t}`).toContain(t);
      // Each xfer: the sha256 the guest sent = what the host got = what came back (the guest compared the last two).
      const xfers = lines.map((l) => /MUXVISOR-INFO net xfer ok bytes=(\d+) up_ms=(\d+) down_ms=(\d+) sha256=([0-9a-f]{64})/.exec(l)).filter((m) => m !== null);
      expect(xfers.length, `${name} xfers\n${dump()}`).toBe(i === 2 ? 1 : 2);
      expect(Number(xfers[0][1])).toBe(NIC_KIB * 1024);
      for (const m of xfers) {
        expect(peer.some((e) => e.event === 'upload' && e.from === ips[i] && e.sha256 === m[4] && e.bytes === Number(m[1])), `${name}: the host got ${m[1]} bytes sha256 ${m[4]}`).toBe(true);
      }
      const [, bytes, up, down] = xfers[0].map(Number);
      console.info(`${name}: ${bytes} bytes up in ${up} ms (${(bytes / up).toFixed(1)} kB/s), down in ${down} ms (${(bytes / down).toFixed(1)} kB/s)`);
    }
    expect(peer.filter((e) => e.event === 'download' && e.to !== undefined).length).toBe(5);

    // The spoofer: nothing answered, its frames counted; the victim's counters show no spoofing.
    const g2 = consoleLines(consoleOf('g2'));
    expect(g2.some((l) => l.includes(`MUXVISOR-INFO net spoof mac=${macOf(1)} answered=0`)), `g2 spoof line\n${g2.slice(-20).join('\n')}`).toBe(true);
    const stopped = events.find((e) => e.event === 'stopped')!;
    expect(stopped.signal).toBe('done');
    const nic = stopped.stats!.devices[0] as unknown as { unsafeSwitches: number; perGuest: { guest: string; nic: Record<string, number> }[] };
    const per = new Map(nic.perGuest.map((p) => [p.guest, p.nic]));
    expect(per.get('g2')!.spoofed, 'g2 frames with g1\'s MAC').toBeGreaterThan(0);
    expect(per.get('g1')!.spoofed).toBe(0);
    expect(per.get('g3')!.spoofed).toBe(0);
    // After the kill, g1 and g2 still moved their bytes through the card's wire.
    const afterKill = peer.filter((e) => e.event === 'upload' && e.t > killedWall && e.bytes === AFTER_KIB * 1024 && [ips[0], ips[1]].includes(e.from!));
    expect(afterKill.length).toBe(2);
    console.info(`linux-nic: ${wallS.toFixed(0)} s wall (${NIC_KIB} KiB each way per guest, ${AFTER_KIB} KiB after the kill ${((performance.now() - killedAt) / 1000).toFixed(0)} s before the end); counters ${JSON.stringify(Object.fromEntries(per))}`);
  }, RUN_TIMEOUT_MS + 60_000);
});

describe('the Linux NIC bench figures (src/bench/linux/net.ts)', () => {
  it('are described, throughputs in MB/s, linux.netVsQemu judged against its target', ({ expect }) => {
    // Shaped as runNet reports them.
    const d = describeFigures({
      'linux.net.kib': 1024,
      'linux.net.muxvisor.upMBps': 0.04,
      'linux.net.muxvisor.downMBps': 0.05,
      'linux.net.qemu.upMBps': 2,
      'linux.net.qemu.downMBps': 3,
      'linux.netVsQemu.up': 0.02,
      'linux.netVsQemu.down': 0.0167,
      'linux.netVsQemu': 0.0183,
      'linux.net.skipped': 'needs root',
    });
    expect(d.filter((f) => !f.described).map((f) => f.key)).toEqual([]);
    expect(d.filter((f) => f.kind === 'throughput').map((f) => f.unit)).toEqual(Array(4).fill(KIND_UNITS.throughput));
    expect(d.find((f) => f.key === 'linux.netVsQemu')).toMatchObject({ met: false, target: { op: '>=', value: 0.8 } });
  });
});
