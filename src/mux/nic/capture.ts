// `capture` on a shared NIC: the frames on the wire to DIR/wire.pcap (in and out), and per
// guest what it sent and what was stored in its ring to DIR/GUEST.pcap. A NicTap.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { NicTap } from './tap.ts';
import { PcapWriter } from './pcap.ts';

export class NicCapture implements NicTap {
  private readonly wireFile: PcapWriter;
  private readonly guests = new Map<string, PcapWriter>();

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.wireFile = new PcapWriter(join(dir, 'wire.pcap'));
  }

  wire(frame: Uint8Array): void {
    this.wireFile.write(frame);
  }

  guest(guest: string, frame: Uint8Array): void {
    let w = this.guests.get(guest);
    if (!w) {
      w = new PcapWriter(join(this.dir, `${guest}.pcap`));
      this.guests.set(guest, w);
    }
    w.write(frame);
  }

  close(): void {
    this.wireFile.close();
    for (const w of this.guests.values()) w.close();
    this.guests.clear();
  }
}
