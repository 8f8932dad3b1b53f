// A device shared with a guest in its own QEMU (run.type "qemu") gets a watchdog deadline of
// seconds unless the config names one: each of that guest's accesses is a round trip through
// QEMU's proxy and its vCPU may wait for a core (one IDENTIFY in PIO took over 2 s on a loaded
// host, and the guest lost its disk to the default deadline).

import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.ts';
import type { MuxEngine } from '../src/mux/engine.ts';
import { PROXIED_DEADLINE_NS, muxRouterFactory } from '../src/mux/router-factory.ts';

async function deadlineOf(raw: Record<string, unknown>): Promise<Map<string, number>> {
  const config = parseConfig({ socket: '/tmp/unused.sock', ...raw }, 'proxied-deadline test');
  const engines = new Map<string, number>();
  const make = await muxRouterFactory(config, { onEngine: (id: string, e: MuxEngine) => engines.set(id, e.def.deadlineNs) });
  for (const d of config.devices) make(d.id, d.kind, d);
  return engines;
}

const disk = (id: string, extra: Record<string, unknown> = {}) => ({ id, kind: 'ata', backend: { type: 'memory', sizeMiB: 4 }, ...extra });

describe('the watchdog deadline of a device shared with a guest behind QEMU\'s proxy', () => {
  it('is PROXIED_DEADLINE_NS for that device only; the machine default elsewhere', async () => {
    const d = await deadlineOf({
      devices: [disk('d0'), disk('d1')],
      guests: [
        { name: 'lin', run: { type: 'qemu' }, grants: [{ device: 'd0', window: { startLba: 0, sectors: 4096 } }] },
        { name: 'sc', run: { type: 'scripted', driver: 'ata' }, grants: [{ device: 'd1' }, { device: 'd0', window: { startLba: 4096, sectors: 4096 } }] },
      ],
    });
    expect(d.get('d0')).toBe(PROXIED_DEADLINE_NS);
    expect(d.get('d1')).toBe(2_000_000_000);
  });

  it("is what the config names when it names one", async () => {
    const d = await deadlineOf({
      devices: [disk('d0', { mux: { deadlineNs: 5e9 } })],
      guests: [{ name: 'lin', run: { type: 'qemu' }, grants: [{ device: 'd0' }] }],
    });
    expect(d.get('d0')).toBe(5e9);
  });
});
