// `muxvisor check-machine`: lint a MUX definition's statechart with xstate/graph. There is a
// safe state; a safe state is reachable from every state; the reset path reaches a safe
// state from every state; no state is unreachable; every context/reset register is in the
// register map; a context register's write is no statechart event (replays are not
// classified); every event the classifier can produce is one the chart handles somewhere; every
// register's region is a region of the device kind. Optionally writes a Mermaid diagram with
// the safe states marked.

import { getInitialSnapshot, getNextSnapshot, type AnyMachineSnapshot, type AnyStateMachine } from 'xstate';
import { getAdjacencyMap } from 'xstate/graph';
import { allStateNodes, fastPathObstacle, machineEventTypes, statePath } from '../mux/compile.ts';
import { eventType, registerWrite, type MuxDefinition, type MuxEvent, type Register } from '../mux/define.ts';
import { DeviceRegistry } from '../devices/registry.ts';
import { loadMux } from '../mux/load-machine.ts';
import { registerProblems } from '../mux/registers.ts';
import { classifierEvents } from './classifier-events.ts';

export interface LintProblem {
  /** Dotted state path the problem is about, if any. */
  state?: string;
  problem: string;
}

export interface LintResult {
  ok: boolean;
  kind: string | null;
  states: string[];
  safeStates: string[];
  problems: LintProblem[];
  /** Mermaid source (always computed when the machine loaded). */
  diagram: string | null;
  report: string;
}

type Entry = { state: AnyMachineSnapshot; transitions: Record<string, { event: { type: string }; state: AnyMachineSnapshot }> };

/** How many distinct states (with context, for a guarded machine) the exploration may visit. */
const EXPLORE_LIMIT = 20_000;

/** The regions of the device kind a machine drives, to check its register map against. */
export interface KindRegions {
  kind: string;
  regions: string[];
}

/** Lint a definition already loaded; with `kind`, its registers' regions are checked against the kind's. */
export function lintDefinition(def: MuxDefinition, kind?: KindRegions): Omit<LintResult, 'report'> {
  const problems: LintProblem[] = [];
  const machine = def.machine;
  for (const p of registerProblems(def)) problems.push({ problem: p });
  if (kind)
    for (const [name, r] of Object.entries(def.registers))
      if (!kind.regions.includes(r.region))
        problems.push({ problem: `register ${name}: region "${r.region}" is not a region of device kind ${kind.kind} (${kind.regions.join(', ')})` });

  // Every event the classifier can produce must be handled by some state (else: a typo, or a missing transition).
  const handled = new Set(machineEventTypes(machine));
  const produced = classifierEvents(def);
  for (const e of produced.errors) problems.push({ problem: e });
  if (!handled.has('*'))
    for (const [type, { example }] of produced.events)
      if (!handled.has(type))
        problems.push({ problem: `the classifier produces event ${type} (e.g. on ${example}) that no state of the chart handles: a misspelt event, or a missing transition (handled: ${[...handled].join(', ') || 'none'})` });

  const events = def.events ?? machineEventTypes(machine).map((type) => ({ type }));
  // Without guards the state value decides everything; with guards the context may matter too.
  const simple = fastPathObstacle(machine) === null;
  const key = (s: AnyMachineSnapshot) => (simple ? JSON.stringify(s.value) : JSON.stringify([s.value, s.context]));
  let adj: Record<string, Entry>;
  try {
    adj = getAdjacencyMap(machine, { events: events as never, serializeState: key as never, limit: EXPLORE_LIMIT }) as unknown as Record<string, Entry>;
  } catch (err) {
    if (!/limit/i.test((err as Error).message)) throw err;
    problems.push({
      problem:
        `more than ${EXPLORE_LIMIT} distinct (state, context) pairs: the machine's context grows without bound under its events, ` +
        'so its states cannot be checked. Keep guards on bounded context (reset counters when a command ends), or give the definition `events` with the payloads that matter',
    });
    return { ok: false, kind: def.kind, states: [], safeStates: [], problems, diagram: mermaid(machine) };
  }
  const keys = Object.keys(adj);
  const name = (k: string) => statePath(adj[k].state.value);
  const safe = new Set(keys.filter((k) => adj[k].state.hasTag('safe')));

  const declaredSafe = allStateNodes(machine).filter((n) => n.tags.includes('safe'));
  if (declaredSafe.length === 0) problems.push({ problem: "no state carries the tag 'safe': the MUX could never hand the device on" });
  else if (safe.size === 0) problems.push({ problem: `no safe state is reachable (tagged: ${declaredSafe.map((n) => n.path.join('.')).join(', ')})` });

  // A safe state reachable from every state: backwards search from the safe states.
  const into = new Map<string, string[]>();
  for (const k of keys) for (const t of Object.values(adj[k].transitions)) {
    const to = key(t.state);
    if (!into.has(to)) into.set(to, []);
    into.get(to)!.push(k);
  }
  const canReachSafe = new Set(safe);
  const queue = [...safe];
  while (queue.length) {
    const k = queue.pop()!;
    for (const from of into.get(k) ?? []) if (!canReachSafe.has(from)) {
      canReachSafe.add(from);
      queue.push(from);
    }
  }
  if (safe.size > 0)
    for (const k of keys) if (!canReachSafe.has(k)) problems.push({ state: name(k), problem: 'no way to a safe state from here (no sequence of events leads to one)' });

  // Unreachable state nodes.
  const leaves = allStateNodes(machine).filter((n) => n.path.length > 0 && (n.type === 'atomic' || n.type === 'final'));
  for (const n of leaves) {
    const p = n.path.join('.');
    if (!keys.some((k) => adj[k].state.matches(p as never))) problems.push({ state: p, problem: 'unreachable: no sequence of events from the initial state enters it' });
  }

  // The reset path from every reachable state (registers missing from the map were reported above and are skipped).
  const reg = (n: string): Register | null => (def.registers[n] ? { ...def.registers[n], name: n, regionIndex: -1 } : null);
  for (const k of keys) {
    let snap = adj[k].state;
    const steps: string[] = [];
    for (const w of def.reset.writes) {
      const r = reg(w.reg);
      const ev = r ? def.classify(registerWrite(r, w.value), w.value) : null;
      if (ev != null) {
        snap = getNextSnapshot(machine, snap, toEvent(ev));
        steps.push(eventType(ev));
      }
    }
    if (def.reset.hard) snap = getInitialSnapshot(machine);
    if (!snap.hasTag('safe'))
      problems.push({
        state: name(k),
        problem: `the reset path (${def.reset.writes.map((w) => `${w.reg}=${w.value}`).join(', ') || 'no writes'}${def.reset.hard ? ', hard reset' : ''}; events ${steps.join(', ') || 'none'}) ends in ${statePath(snap.value)}, not a safe state`,
      });
  }
  // Replays are not classified: a replayed write must not be an event that moves a safe state
  // (checked with the reset value; a guest's own value was written in a safe state, too).
  for (const c of def.context ?? []) {
    if (c.replay) continue; // a custom replay is the author's responsibility
    const r = reg(c.reg);
    const ev = r ? def.classify(registerWrite(r, c.reset), c.reset) : null;
    if (ev == null) continue;
    for (const k of safe) {
      const next = getNextSnapshot(machine, adj[k].state, toEvent(ev));
      if (key(next) !== k) {
        problems.push({
          state: name(k),
          problem: `context register ${c.reg}: replaying it (=${c.reset}) is the event ${eventType(ev)}, which leaves this safe state for ${statePath(next.value)}; replays are not classified, so the statechart would be wrong`,
        });
        break;
      }
    }
  }

  // Deduplicate (a state may appear with several contexts when the machine has guards).
  const seen = new Set<string>();
  const unique = problems.filter((p) => {
    const id = `${p.state}|${p.problem}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
  return {
    ok: unique.length === 0,
    kind: def.kind,
    states: [...new Set(keys.map(name))],
    safeStates: [...new Set([...safe].map(name))],
    problems: unique,
    diagram: mermaid(machine),
  };
}

function toEvent(ev: MuxEvent): { type: string } {
  return typeof ev === 'string' ? { type: ev } : ev;
}

export interface CheckMachineOptions {
  /** The device kind whose regions the register map must use (default: the machine's kind, when registered). */
  kind?: string;
}

/** Load a machine module (path or shipped name) and lint it. */
export async function checkMachine(module: string, o: CheckMachineOptions = {}): Promise<LintResult> {
  let def: MuxDefinition;
  const failed = (problem: string): LintResult => ({ ok: false, kind: null, states: [], safeStates: [], problems: [{ problem }], diagram: null, report: `check-machine ${module}: FAILED\n  ${problem}` });
  try {
    def = await loadMux(module);
  } catch (err) {
    return failed((err as Error).message);
  }
  const registry = new DeviceRegistry();
  const kindName = o.kind ?? def.kind;
  if (o.kind !== undefined && !registry.has(o.kind)) return failed(`--kind ${o.kind}: unknown device kind; known kinds: ${registry.kinds().join(', ')}`);
  let kind: KindRegions | undefined;
  /** A kind without fixed regions (the generic qemu kind): each device names its own. */
  let perDevice = false;
  if (registry.has(kindName)) {
    try {
      const regions = (await registry.describe(kindName)).regions.map((x) => x.name);
      if (regions.length > 0) kind = { kind: kindName, regions };
      else perDevice = true;
    } catch (err) {
      return failed(`device kind ${kindName}: ${(err as Error).message}`);
    }
  }
  const r = lintDefinition(def, kind);
  const lines = [`machine ${def.kind} (${module}): ${r.states.length} reachable states, safe: ${r.safeStates.join(', ') || 'none'}`];
  lines.push(
    kind
      ? `regions checked against device kind ${kind.kind}: ${kind.regions.join(', ')}`
      : perDevice
        ? `regions not checked: device kind ${kindName} has no fixed regions (each device names its own, e.g. properties.regions)`
        : `regions not checked: ${kindName} is not a registered device kind (give --kind KIND)`,
  );
  if (r.ok) lines.push('ok: a safe state exists and is reachable from every state; the reset path reaches one from every state; no state is unreachable; registers resolve; every classified event is handled');
  else {
    lines.push(`FAILED: ${r.problems.length} problem${r.problems.length > 1 ? 's' : ''}`);
    for (const p of r.problems) lines.push(p.state ? `  state ${p.state}: ${p.problem}` : `  ${p.problem}`);
  }
  return { ...r, report: lines.join('\n') };
}

/** Mermaid stateDiagram-v2 of the machine; safe states get the `safe` class. */
export function mermaid(machine: AnyStateMachine): string {
  const id = (path: string[]) => (path.length ? path.join('_') : 'root');
  const out: string[] = ['stateDiagram-v2'];
  const root = machine.root;
  const safe: string[] = [];
  const edges: string[] = [];
  const top = Object.values(root.states);
  const emitNode = (node: typeof root, indent: string): void => {
    const children = Object.values(node.states);
    if (node.tags.includes('safe')) safe.push(id(node.path));
    if (children.length) {
      out.push(`${indent}state "${node.key}" as ${id(node.path)} {`);
      if (node.type === 'compound' && node.initial?.target?.[0]) out.push(`${indent}  [*] --> ${id(node.initial.target[0].path)}`);
      children.forEach((c, i) => {
        emitNode(c, indent + '  ');
        if (node.type === 'parallel' && i < children.length - 1) out.push(`${indent}  --`);
      });
      out.push(`${indent}}`);
    } else out.push(`${indent}state "${node.key}" as ${id(node.path)}`);
  };
  const initial = root.initial?.target?.[0];
  if (initial) out.push(`  [*] --> ${id(initial.path)}`);
  for (const n of top) emitNode(n, '  ');
  // Transitions of the root apply in every state: drawn once, from a pseudo state "any state".
  if ([...root.transitions.values()].some((ts) => ts.some((t) => t.target?.length))) out.push('  state "any state" as any_state');
  for (const node of allStateNodes(machine)) {
    const source = node === root ? 'any_state' : id(node.path);
    for (const [type, ts] of node.transitions)
      for (const t of ts)
        for (const target of t.target ?? []) edges.push(`  ${source} --> ${id(target.path)} : ${type}${t.guard ? ' [guarded]' : ''}`);
    for (const t of node.always ?? []) for (const target of t.target ?? []) edges.push(`  ${id(node.path)} --> ${id(target.path)} : (always)`);
  }
  out.push(...edges);
  out.push('  classDef safe fill:#c8f7c5,stroke:#2e7d32,stroke-width:2px');
  if (safe.length) out.push(`  class ${safe.join(',')} safe`);
  return out.join('\n') + '\n';
}
