// The supervisor's way in: prepareMuxRouters loads machines and policies up front and
// makes a MUX per device whose kind has a machine.
import { describe, expect, it } from 'vitest';
import { SimDevice } from '../src/devices/sim.ts';
import { MuxEngine } from '../src/mux/engine.ts';
import { hasMachine, MuxConfigError, prepareMuxRouters } from '../src/mux/router-factory.ts';
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

  it('names a policy that cannot be loaded, with its JSON path', async () => {
    const err = await prepareMuxRouters([{ id: 'sim0', kind: 'sim', policy: { module: 'no/such/policy.ts' } }]).catch((e) => e);
    expect(err).toBeInstanceOf(MuxConfigError);
    expect(err.cause).toBeInstanceOf(PolicyLoadError);
    expect(err.issues).toEqual([{ path: 'devices[0].policy.module', message: expect.stringMatching(/^policy no\/such\/policy\.ts: cannot load module/) }]);
  });

  it('checks a shipped policy\'s options: unknown keys, wrong types and bad values name the option', async () => {
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['round-robin', { quantumNs: 'fast' }, /^policy round-robin: options\.quantumNs: .*expected number/],
      ['round-robin', { quantum: 5 }, /^policy round-robin: options: unknown option "quantum" \(known: quantumNs\)/],
      ['priority', { agingNs: 0 }, /^policy priority: options\.agingNs: .*>0/],
      ['edf', { defaultDeadlineNs: -1 }, /^policy edf: options\.defaultDeadlineNs/],
      ['weighted-fair', { quantumNs: 1, weights: [1] }, /unknown option "weights"/],
    ];
    for (const [name, options, message] of cases) {
      const err = await prepareMuxRouters([{ id: 'sim0', kind: 'sim' }, { id: 'sim1', kind: 'sim', policy: { name, options } }]).catch((e) => e);
      expect(err, name).toBeInstanceOf(MuxConfigError);
      expect(err.issues, name).toEqual([{ path: 'devices[1].policy.options', message: expect.stringMatching(message) }]);
    }
    // Good options and no options are fine.
    await expect(prepareMuxRouters([{ id: 'sim0', kind: 'sim', policy: { name: 'priority', options: { agingNs: 1000, quantumNs: 0 } } }])).resolves.toBeTypeOf('function');
  });

  it('a policy name must be a shipped policy, not a path', async () => {
    const err = await prepareMuxRouters([{ id: 's', kind: 'scratch' }, { id: 'sim0', kind: 'sim', policy: { name: 'round-robbin' } }]).catch((e) => e);
    expect(err).toBeInstanceOf(MuxConfigError);
    expect(err.message).toBe('devices[1].policy.name: unknown policy "round-robbin"; shipped: round-robin, weighted-fair, priority, edf (a policy file is given as {"module": "path"})');
    expect(err.message).not.toMatch(/cannot load module/);
  });

  it('a policy on a device without a MUX is an error naming its path', async () => {
    const err = await prepareMuxRouters([{ id: 'scratch0', kind: 'scratch', policy: { name: 'round-robin' } }]).catch((e) => e);
    expect(err).toBeInstanceOf(MuxConfigError);
    expect(err.issues).toEqual([{ path: 'devices[0].policy', message: expect.stringMatching(/device kind "scratch" has no MUX/) }]);
    // With a machine in properties.machine, the policy has something to arbitrate.
    const make = await prepareMuxRouters([{ id: 'scratch0', kind: 'scratch', policy: { name: 'round-robin' }, properties: { machine: 'sim' } }]);
    expect(make('scratch0', 'scratch')).toBeInstanceOf(MuxEngine);
  });

  it('names the JSON path of a bad deadline and of a machine that cannot be loaded', async () => {
    const bad = await prepareMuxRouters([{ id: 'sim0', kind: 'sim', properties: { deadlineNs: -1 } }]).catch((e) => e);
    expect(bad).toBeInstanceOf(MuxConfigError);
    expect(bad.message).toBe('devices[0].properties.deadlineNs: expected a positive number of ns, got -1');
    const missing = await prepareMuxRouters([{ id: 'sim0', kind: 'sim', properties: { machine: 'no/such/machine.ts' } }]).catch((e) => e);
    expect(missing).toBeInstanceOf(MuxConfigError);
    expect(missing.issues[0]).toMatchObject({ path: 'devices[0].properties.machine', message: expect.stringMatching(/cannot load module/) });
  });
});
