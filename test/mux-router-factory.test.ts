// The supervisor's way in: prepareMuxRouters loads machines and policies up front and
// makes a MUX per device whose kind has a machine.
import { describe, expect, it } from 'vitest';
import { SimDevice } from '../src/check/sim-device.ts';
import { MuxEngine } from '../src/mux/engine.ts';
import { hasMachine, prepareMuxRouters } from '../src/mux/router-factory.ts';
import { PolicyLoadError } from '../src/mux/policy.ts';

describe('prepareMuxRouters', () => {
  it('makes a MUX for a kind with a machine, null otherwise', async () => {
    const make = await prepareMuxRouters([
      { id: 'sim0', kind: 'sim', policy: { name: 'weighted-fair', options: { quantumNs: 1000 } } },
      { id: 'scratch0', kind: 'scratch' },
    ]);
    expect(hasMachine('sim')).toBe(true);
    expect(hasMachine('scratch')).toBe(false);
    expect(make('scratch0', 'scratch')).toBeNull();
    const r = make('sim0', 'sim');
    expect(r).toBeInstanceOf(MuxEngine);
    r!.bind(new SimDevice(r!.edges, 2));
    r!.attach({ id: 'g', weight: 1, priority: 0, deadlineNs: Infinity, memory: null, setIrq() {} });
    expect(r!.access('g', 0, 2, { space: 'pio', addr: 0x342, size: 1, dir: 'write', value: 9 })).toEqual({ value: 0 });
    expect(r!.stats()).toMatchObject({ device: 'sim0', kind: 'sim', switches: 1 });
  });

  it('names a policy that cannot be loaded', async () => {
    await expect(prepareMuxRouters([{ id: 'sim0', kind: 'sim', policy: { module: 'no/such/policy.ts' } }])).rejects.toThrow(PolicyLoadError);
  });
});
