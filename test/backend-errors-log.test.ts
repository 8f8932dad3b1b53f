// A host failure behind a device reaches the log through the device's log edge (src/device.ts
// DeviceLog, src/device-log.ts) with the device's id and the failure's own message, and the
// supervisor keeps serving: the NBD server behind our ATA model is killed mid-run, then the
// QEMU behind a qemu-ide device; a UDP wire behind an ne2k card refuses every frame. Real
// servers, real processes, real sockets, the real supervisor.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Access } from '../src/access.ts';
import { startNbdkit } from '../src/backends/nbdkit-server.ts';
import { parseConfig } from '../src/config/load.ts';
import { SCRATCH_MAGIC, SCR_DATA0, SCR_ID } from '../src/devices/scratch.ts';
import { AtaDriver, AtaDriverError } from '../src/guests/ata-driver.ts';
import { BROADCAST, Ne2kDriver, ethFrame } from '../src/guests/ne2k-driver.ts';
import { PortDevice, findPciIoBar } from '../src/guests/port-device.ts';
import { Supervisor } from '../src/supervisor.ts';
import { makeImage, patternSector } from './helpers/qemu.ts';
import { missing, titled } from './helpers/requires.ts';

/** pino's numeric levels: 50 = error. */
const ERROR = 50;

interface Line {
  level: number;
  msg: string;
  device?: string;
  kind?: string;
}

const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const rd = (addr: number): Access => ({ space: 'pio', addr, size: 4, dir: 'read' });
const wr = (addr: number, value: number): Access => ({ space: 'pio', addr, size: 4, dir: 'write', value });

/** A supervisor serving `disk` (the device under test) and a scratch device beside it; its log lines are kept. */
async function supervisor(disk: Record<string, unknown>): Promise<{ sup: Supervisor; lines: Line[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'mv-backend-err-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const config = parseConfig(
    {
      socket: join(dir, 'mv.sock'),
      devices: [{ id: 'disk', ...disk }, { id: 'scr', kind: 'scratch', map: { regs: '0x300' }, properties: { irq: 5 } }],
      guests: [
        { name: 'a', grants: [{ device: 'disk' }] },
        { name: 'b', grants: [{ device: 'scr' }] },
      ],
    },
    'backend-errors test config',
  );
  const lines: Line[] = [];
  const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const sup = new Supervisor({ config, logger });
  await sup.start();
  cleanups.push(() => sup.close());
  return { sup, lines };
}

/** The scratch device still answers, and keeps what is written to it. */
async function otherDeviceServes(sup: Supervisor): Promise<void> {
  const b = sup.attachLocalGuest('b');
  expect(await b.access(rd(0x300 + SCR_ID))).toEqual({ value: SCRATCH_MAGIC });
  await b.access(wr(0x300 + SCR_DATA0, 0x1234_5678));
  expect(await b.access(rd(0x300 + SCR_DATA0))).toEqual({ value: 0x1234_5678 });
}

async function until(what: string, cond: () => boolean): Promise<void> {
  // Bounded only against a hang: the conditions are events that do happen.
  for (const end = Date.now() + 20_000; !cond(); await new Promise((r) => setTimeout(r, 10))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
  }
}

const noNbdkit = missing('nbdkit');

describe.skipIf(noNbdkit !== null)(titled('an NBD server killed under our ATA model', noNbdkit), () => {
  it('logs the failed read with the device id and the NBD error; the disk and the other device keep serving', async () => {
    const nbd = await startNbdkit(['memory', '4M']);
    cleanups.push(() => nbd.stop('SIGKILL'));
    const { sup, lines } = await supervisor({ kind: 'ata', backend: { type: 'nbd', socket: nbd.socket } });
    const drv = new AtaDriver(sup.attachLocalGuest('a'));
    expect((await drv.identify()).sectors).toBe(8192);
    await drv.writePio(8, patternSector(8));
    expect(Buffer.from(await drv.readPio(8, 1)).equals(Buffer.from(patternSector(8)))).toBe(true);
    expect(lines.filter((l) => l.level === ERROR)).toEqual([]);

    await nbd.stop('SIGKILL'); // mid-run: the export vanishes under a connected client
    const failed = await drv.readPio(8, 1).then(
      () => null,
      (e: unknown) => e,
    );
    expect(failed).toBeInstanceOf(AtaDriverError); // the guest sees an ATA error, nothing worse

    const logged = lines.find((l) => l.level === ERROR && l.device === 'disk');
    expect(logged, JSON.stringify(lines)).toBeDefined();
    expect(logged!.kind).toBe('ata');
    expect(logged!.msg).toMatch(/^device disk \(ata\): READ SECTORS: read of 1 sectors at LBA 8 failed: nbd:unix:.*(connection lost|closed|EPIPE|ECONNRESET)/);
    expect(sup.stats().deviceMetrics.disk.backendErrors).toBeGreaterThanOrEqual(1);

    // The disk itself still answers (IDENTIFY needs no backend), and so does the other device.
    expect((await drv.identify()).sectors).toBe(8192);
    await otherDeviceServes(sup);
  });
});

const noQemu = missing('qemu');

describe.skipIf(noQemu !== null)(titled('QEMU killed under a qemu-ide device', noQemu), () => {
  it('logs QEMU’s exit at once with the device id; the guest’s next access fails cleanly; the other device keeps serving', async () => {
    const image = makeImage(2048, (lba) => patternSector(lba));
    cleanups.push(() => image.dispose());
    const { sup, lines } = await supervisor({ kind: 'qemu-ide', backend: { type: 'qemu', image: image.path } });
    const a = sup.attachLocalGuest('a');
    const drv = new AtaDriver(a);
    expect((await drv.identify()).sectors).toBe(2048);
    const pid = sup.device('disk')!.description.properties.find((p) => p.name === 'qemuPid')!.value as number;
    expect(pid).toBeGreaterThan(0);

    process.kill(pid, 'SIGKILL'); // this test's own QEMU, started by the supervisor above
    await until('the QEMU exit in the log', () => lines.some((l) => l.device === 'disk' && /QEMU/.test(l.msg)));
    const logged = lines.find((l) => l.device === 'disk' && /QEMU/.test(l.msg))!;
    expect(logged).toMatchObject({ level: ERROR, kind: 'qemu-ide' });
    expect(logged.msg).toMatch(/^device disk \(qemu-ide\): QEMU \(the physical IDE over qtest\) failed: qtest: QEMU exited \(.*SIGKILL/);

    // The guest's next access is answered at once, with the failure named (all-ones, as a
    // dead device floats), not left hanging; the supervisor counts and logs it as a fault.
    const reply = await a.access({ space: 'pio', addr: 0x1f7, size: 1, dir: 'read' });
    expect(reply).toMatchObject({ value: 0xff, error: expect.stringMatching(/device disk failed: .*QEMU exited/) });
    expect(sup.stats().guests.find((g) => g.guest === 'a')!.faults).toBe(1);
    await otherDeviceServes(sup);
  });
});

describe('a network wire that fails under an ne2k card', () => {
  it('logs each refused send with the device id and the socket error; the card and the other device keep serving', async () => {
    // The kernel refuses a datagram to the broadcast address from a socket without SO_BROADCAST:
    // every frame the card puts on this wire fails, asynchronously, as a real wire's would.
    const { sup, lines } = await supervisor({ kind: 'ne2k', backend: { type: 'udp', local: '127.0.0.1:0', remote: '255.255.255.255:5556' } });
    const a = sup.attachLocalGuest('a');
    const base = await findPciIoBar(a, 0x10ec, 0x8029);
    expect(base).not.toBeNull();
    const drv = new Ne2kDriver(new PortDevice(a, base!));
    const mac = await drv.probe();
    await drv.init(mac);
    for (let i = 0; i < 3; i++) expect((await drv.send(ethFrame(BROADCAST, mac, 60, i))).isr & 0x02, 'PTX').toBe(0x02);
    await until('the refused sends in the log', () => lines.some((l) => l.level === ERROR && l.device === 'disk'));
    const logged = lines.find((l) => l.level === ERROR && l.device === 'disk')!;
    expect(logged.msg).toMatch(/^device disk \(ne2k\): backend: send of a 74-byte frame to 255\.255\.255\.255:5556 failed: send EACCES/);
    expect(logged.kind).toBe('ne2k');
    // The card still works for its guest (a transmit completes), and the other device serves.
    expect((await drv.send(ethFrame(BROADCAST, mac, 60, 9))).isr & 0x02).toBe(0x02);
    await otherDeviceServes(sup);
  });

  it('refuses a udp port the socket cannot send to, naming the device and the field', async () => {
    // Port 0 passed the address pattern and then threw from the socket at the card's first transmit.
    const config = parseConfig(
      { socket: join(tmpdir(), `mv-udp-port-${process.pid}.sock`), devices: [{ id: 'nic0', kind: 'ne2k', backend: { type: 'udp', local: '127.0.0.1:0', remote: '127.0.0.1:0' } }], guests: [] },
      'udp port test',
    );
    const sup = new Supervisor({ config, logger: pino({ level: 'silent' }) });
    await expect(sup.start()).rejects.toThrow(/nic0.*backend\.remote: expected HOST:PORT with a port of 1 to 65535/);
    await sup.close();
  });
});

const noNetns = missing('netns');

describe.skipIf(noNetns !== null)(titled('the TAP bridge killed under an ne2k card', noNetns), () => {
  it('logs the bridge’s end with the device id and the TAP’s name; the other device keeps serving', async () => {
    const ns = `mvberr${process.pid}`;
    const ifname = `mvbe${process.pid % 100000}`;
    execFileSync('ip', ['netns', 'add', ns]);
    cleanups.push(() => void execFileSync('ip', ['netns', 'del', ns]));
    const { sup, lines } = await supervisor({ kind: 'ne2k', backend: { type: 'tap', ifname, netns: ns } });
    // The bridge is our child, found by the interface name only this test uses.
    const pids = execFileSync('pgrep', ['-P', String(process.pid), '-f', `tap-bridge.py --ifname ${ifname} `]).toString().trim().split('\n').map(Number);
    expect(pids).toHaveLength(1);
    expect(lines.filter((l) => l.level === ERROR)).toEqual([]);
    process.kill(pids[0], 'SIGKILL');
    await until('the bridge’s end in the log', () => lines.some((l) => l.level === ERROR && l.device === 'disk'));
    const logged = lines.find((l) => l.level === ERROR && l.device === 'disk')!;
    expect(logged.msg).toBe(`device disk (ne2k): backend: TAP bridge of ${ifname} in netns ${ns} failed: killed by SIGKILL; frames to and from the TAP are lost`);
    await otherDeviceServes(sup);
  });
});
