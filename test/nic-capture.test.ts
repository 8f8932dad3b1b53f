// `capture` on a shared NE2000: the frames on the wire and each guest's own traffic in pcap
// files, read back with Debian's tcpdump.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/log.ts';
import { muxRouterFactory } from '../src/mux/router-factory.ts';
import { Supervisor } from '../src/supervisor.ts';
import { BROADCAST, ethFrame, Ne2kDriver } from '../src/guests/ne2k-driver.ts';
import { findPciIoBar, PortDevice } from '../src/guests/port-device.ts';
import { missing, titled } from './helpers/requires.ts';

const why = missing('tcpdump');
const G1 = [0x52, 0x54, 0, 0x12, 0x34, 1];
const G2 = [0x52, 0x54, 0, 0x12, 0x34, 2];
const STRANGER = [0x52, 0x54, 0, 0x77, 0x77, 0x77];

/** `tcpdump -r FILE -nn -e`: one line per frame, "src > dst, ethertype ..., length N". */
function frames(file: string): string[] {
  const out = execFileSync('tcpdump', ['-r', file, '-nn', '-e'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  return out
    .trim()
    .split('\n')
    .filter((l) => l !== '' && !/^\s/.test(l)) // hex dump lines of unknown ethertypes follow each frame's line
    .map((l) => {
      const m = /([0-9a-f:]{17}) > ([0-9a-f:]{17}), .*length (\d+)/.exec(l);
      if (!m) throw new Error(`tcpdump line not understood: ${l}`);
      return `${m[1].slice(-2)}>${m[2].slice(-2)}:${m[3]}`;
    });
}

describe.skipIf(why)(titled('NIC capture to pcap', why), () => {
  it('wire.pcap has what left the card; GUEST.pcap what the guest sent and received; a spoofed frame is nowhere', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'muxvisor-capture-'));
    try {
      const config = parseConfig({
        devices: [{ id: 'nic0', kind: 'ne2k', backend: { type: 'switch' }, properties: { capture: dir } }],
        guests: [1, 2].map((i) => ({ name: `g${i}`, grants: [{ device: 'nic0', mac: `52:54:00:12:34:0${i}` }] })),
      });
      const sup = new Supervisor({ config, logger: silentLogger, createRouter: await muxRouterFactory(config) });
      await sup.start();
      const drv: Ne2kDriver[] = [];
      for (const name of ['g1', 'g2']) {
        const port = sup.attachLocalGuest(name);
        const d = new Ne2kDriver(new PortDevice(port, (await findPciIoBar(port, 0x10ec, 0x8029))!));
        await d.init(await d.probe());
        drv.push(d);
      }
      await drv[0].send(ethFrame(G2, G1, 100, 1)); // stays on the card
      await drv[1].send(ethFrame(BROADCAST, G2, 50, 2)); // to g1 and the wire
      await drv[0].send(ethFrame(STRANGER, G1, 200, 3)); // to the wire
      await drv[0].send(ethFrame(STRANGER, G2, 300, 4)); // spoofed: nowhere
      await drv[1].receive();
      await sup.close();
      expect(frames(join(dir, 'wire.pcap'))).toEqual(['02>ff:64', '01>77:214']);
      expect(frames(join(dir, 'g1.pcap'))).toEqual(['01>02:114', '02>ff:64', '01>77:214']);
      expect(frames(join(dir, 'g2.pcap'))).toEqual(['01>02:114', '02>ff:64']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
