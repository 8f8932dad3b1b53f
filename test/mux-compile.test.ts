// The compiled transition table must behave exactly like xstate: same state value and same
// safe tag after every event of random sequences.
import fc from 'fast-check';
import { assign, createActor, setup, type AnyStateMachine } from 'xstate';
import { describe, expect, it } from 'vitest';
import sim from '../machines/sim.ts';
import { compileMachine, createStepper, fastPathObstacle, machineEventTypes } from '../src/mux/compile.ts';

// A machine with compound, parallel, always and assign: everything the fast path claims.
const rich = setup({
  types: { context: {} as { n: number }, events: {} as { type: 'A' } | { type: 'B' } | { type: 'C' } | { type: 'GO' } | { type: 'STOP' } },
  actions: { bump: assign({ n: ({ context }) => context.n + 1 }) },
}).createMachine({
  id: 'rich',
  context: { n: 0 },
  initial: 'off',
  on: { STOP: '.off' },
  states: {
    off: { tags: ['safe'], on: { GO: 'on' } },
    on: {
      type: 'parallel',
      states: {
        left: { initial: 'l1', states: { l1: { on: { A: 'l2' } }, l2: { tags: ['safe'], on: { A: { target: 'l1', actions: 'bump' } } } } },
        right: { initial: 'r1', states: { r1: { on: { B: 'r2' } }, r2: { on: { B: 'r3' } }, r3: { always: 'r1' } } },
      },
      on: { C: 'hop' },
    },
    hop: { always: 'off', entry: 'bump' },
  },
});

function sameAsXstate(machine: AnyStateMachine, runs: number) {
  const table = compileMachine(machine);
  const types = [...machineEventTypes(machine), 'NOT_AN_EVENT'];
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...types), { maxLength: 60 }), (events) => {
      const fast = createStepper(machine, 'fast', table);
      const actor = createActor(machine).start();
      expect(fast.value()).toEqual(actor.getSnapshot().value);
      for (const type of events) {
        fast.send(type);
        actor.send({ type });
        const snap = actor.getSnapshot();
        expect(fast.value()).toEqual(snap.value);
        expect(fast.safe()).toBe(snap.hasTag('safe'));
      }
      actor.stop();
    }),
    { numRuns: runs },
  );
}

describe('compiled transition table', () => {
  it('equals xstate on machines/sim', () => sameAsXstate(sim.machine, 300));
  it('equals xstate on a machine with parallel, always and assign', () => sameAsXstate(rich, 300));

  it('flattens machines/sim into its six states with only idle safe', () => {
    const t = compileMachine(sim.machine);
    expect(t.states.length).toBe(6);
    expect(t.states.filter((_, i) => t.safe[i]).map((k) => JSON.parse(k))).toEqual(['idle']);
  });

  it('sends guarded or delayed machines to the interpreter', () => {
    const guarded = setup({ guards: { ok: () => true } }).createMachine({
      initial: 'a',
      states: { a: { on: { X: { target: 'b', guard: 'ok' } } }, b: { tags: ['safe'] } },
    });
    const delayed = setup({}).createMachine({ initial: 'a', states: { a: { after: { 100: 'b' } }, b: {} } });
    expect(fastPathObstacle(guarded)).toMatch(/guards its X transition/);
    expect(fastPathObstacle(delayed)).toMatch(/delayed/);
    expect(fastPathObstacle(sim.machine)).toBeNull();
    expect(createStepper(guarded).mode).toBe('xstate');
    expect(createStepper(sim.machine).mode).toBe('fast');
    expect(() => compileMachine(guarded)).toThrow(/cannot be compiled/);
    // The interpreter fallback still follows the guard.
    const s = createStepper(guarded);
    s.send('X');
    expect(s.safe()).toBe(true);
  });
});
