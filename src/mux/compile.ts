// The hot path of the statechart: xstate stays the authoring format and the reference
// semantics, but actor.send costs ~5 µs, far more than the trap feeding it. A machine whose
// next state depends only on (state, event type) is flattened once into a table:
// state × event type -> next state, plus a safe flag per state. test/mux-compile.test.ts
// proves the table equal to xstate on random event sequences.
//
// Supported on the fast path: nested (compound) and parallel states, eventless `always`
// transitions without guards, entry/exit/transition actions including assign (their effects
// are NOT run: the engine only needs the state and its tags). Not supported (the engine falls
// back to the xstate interpreter): guards (transition or always), delayed `after`
// transitions, invoked actors, wildcard event descriptors ('*', 'foo.*').

import { createActor, type AnyActorRef, type AnyStateMachine, type StateValue } from 'xstate';
import { getAdjacencyMap, getStateNodes, type AnyStateNode } from 'xstate/graph';
import { eventType, type MuxEvent } from './define.ts';

/** Runs the statechart: one step per event. */
export interface Stepper {
  readonly mode: 'fast' | 'xstate';
  /** True when the current state carries the tag 'safe'. */
  safe(): boolean;
  send(event: MuxEvent): void;
  /** Back to the machine's initial state. */
  restart(): void;
  /** The current state value (xstate's StateValue). */
  value(): StateValue;
}

/** Every state node of the machine, the root included (getStateNodes leaves the root out). */
export function allStateNodes(machine: AnyStateMachine): AnyStateNode[] {
  return [machine.root, ...getStateNodes(machine.root)];
}

/** Why a machine cannot run on the fast path, or null when it can. */
export function fastPathObstacle(machine: AnyStateMachine): string | null {
  for (const node of allStateNodes(machine)) {
    const where = node.path.join('.') || '(root)';
    if (node.after.length) return `state ${where} has a delayed (after) transition`;
    if (node.invoke.length) return `state ${where} invokes an actor`;
    for (const t of node.always ?? []) if (t.guard) return `state ${where} has a guarded always transition`;
    for (const [type, ts] of node.transitions) {
      if (type === '*' || type.endsWith('.*')) return `state ${where} uses the wildcard event ${type}`;
      for (const t of ts) if (t.guard) return `state ${where} guards its ${type} transition`;
    }
  }
  return null;
}

/** Every event type the machine names in a transition. */
export function machineEventTypes(machine: AnyStateMachine): string[] {
  const types = new Set<string>();
  for (const node of allStateNodes(machine))
    for (const type of node.transitions.keys()) if (!type.startsWith('xstate.')) types.add(type);
  return [...types].sort();
}

export interface TransitionTable {
  /** State keys (JSON of the state value), index = state number. */
  states: string[];
  values: StateValue[];
  safe: Uint8Array;
  events: string[];
  eventIndex: Map<string, number>;
  /** next[state * events.length + event] = next state number. */
  next: Int32Array;
  initial: number;
}

/** Flatten a machine into a table, or throw when fastPathObstacle() names a reason. */
export function compileMachine(machine: AnyStateMachine): TransitionTable {
  const obstacle = fastPathObstacle(machine);
  if (obstacle) throw new Error(`machine ${machine.id} cannot be compiled: ${obstacle}`);
  const events = machineEventTypes(machine);
  // Without guards the state value alone decides what comes next, so it is the key.
  const key = (s: { value: StateValue }) => JSON.stringify(s.value);
  // The adjacency map's keys are our serialized states; its value types are xstate-internal.
  type Entry = { state: { value: StateValue; hasTag(t: string): boolean }; transitions: Record<string, { state: { value: StateValue } }> };
  const adj = getAdjacencyMap(machine, {
    events: events.map((type) => ({ type })),
    serializeState: key as never,
    serializeEvent: ((e: { type: string }) => e.type) as never,
  }) as unknown as Record<string, Entry>;
  const keys = Object.keys(adj);
  const index = new Map(keys.map((k, i) => [k, i]));
  const values = keys.map((k) => adj[k].state.value);
  const safe = new Uint8Array(keys.length);
  const next = new Int32Array(keys.length * events.length);
  keys.forEach((k, i) => {
    const entry = adj[k];
    safe[i] = entry.state.hasTag('safe') ? 1 : 0;
    events.forEach((type, e) => {
      const t = entry.transitions[type];
      next[i * events.length + e] = t ? index.get(key(t.state))! : i;
    });
  });
  const initial = index.get(key(createActor(machine).getSnapshot()))!;
  return { states: keys, values, safe, events, eventIndex: new Map(events.map((t, i) => [t, i])), next, initial };
}

class FastStepper implements Stepper {
  readonly mode = 'fast';
  private state: number;
  private readonly width: number;
  constructor(private readonly t: TransitionTable) {
    this.state = t.initial;
    this.width = t.events.length;
  }
  safe(): boolean {
    return this.t.safe[this.state] === 1;
  }
  send(event: MuxEvent): void {
    const e = this.t.eventIndex.get(typeof event === 'string' ? event : event.type);
    // An event type the machine never names changes nothing, as in xstate.
    if (e !== undefined) this.state = this.t.next[this.state * this.width + e];
  }
  restart(): void {
    this.state = this.t.initial;
  }
  value(): StateValue {
    return this.t.values[this.state];
  }
}

class XstateStepper implements Stepper {
  readonly mode = 'xstate';
  private actor: AnyActorRef;
  constructor(private readonly machine: AnyStateMachine) {
    this.actor = createActor(machine).start();
  }
  safe(): boolean {
    return this.actor.getSnapshot().hasTag('safe');
  }
  send(event: MuxEvent): void {
    this.actor.send(typeof event === 'string' ? { type: event } : event);
  }
  restart(): void {
    this.actor.stop();
    this.actor = createActor(this.machine).start();
  }
  value(): StateValue {
    return this.actor.getSnapshot().value;
  }
}

export type StepperMode = 'auto' | 'fast' | 'xstate';

/**
 * What compiling a machine found, per machine object: a MUX per device and the property
 * suites' many runs share one table (a stepper only reads it) instead of compiling each time.
 */
const compiled = new WeakMap<AnyStateMachine, { obstacle: string | null; table?: TransitionTable }>();

function compiledOf(machine: AnyStateMachine): { obstacle: string | null; table?: TransitionTable } {
  let c = compiled.get(machine);
  if (!c) compiled.set(machine, (c = { obstacle: fastPathObstacle(machine) }));
  return c;
}

/** A stepper for the machine: the compiled table when possible ('auto'), or as asked. */
export function createStepper(machine: AnyStateMachine, mode: StepperMode = 'auto', table?: TransitionTable): Stepper {
  if (mode === 'xstate') return new XstateStepper(machine);
  const c = compiledOf(machine);
  if (mode === 'auto' && c.obstacle) return new XstateStepper(machine);
  return new FastStepper(table ?? (c.table ??= compileMachine(machine)));
}

/** Dotted path of a state value for humans: `busy`, `xfer.read`, `{a: x, b: y}` -> `a.x|b.y`. */
export function statePath(value: StateValue): string {
  if (typeof value === 'string') return value;
  return Object.entries(value)
    .map(([k, v]) => (v === undefined ? k : `${k}.${statePath(v as StateValue)}`))
    .join('|');
}

export { eventType };
