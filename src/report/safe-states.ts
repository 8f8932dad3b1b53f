// Which MUX chart states are safe, for the report's safe/unsafe spans: from the shipped machine
// the log's header names (a state is safe when it or an ancestor carries the tag `safe`, as
// `snapshot.hasTag('safe')` says), else from the log's own events, which carry `safe` with
// their state.

import type { EventRecord } from '../log/record.ts';
import { shippedMachineUrl } from '../catalog/machines.ts';
import { loadMux } from '../mux/load-machine.ts';

interface NodeLike {
  tags?: readonly string[] | Set<string>;
  states?: Record<string, NodeLike>;
}

const hasSafeTag = (n: NodeLike): boolean => (n.tags instanceof Set ? n.tags.has('safe') : (n.tags ?? []).includes('safe'));

/** Safe-ness of a dotted state path ("pioIn.busy"; parallel regions joined by "|"); undefined when the chart has no such state. */
function safeInChart(root: NodeLike, state: string): boolean | undefined {
  let any = false;
  for (const region of state.split('|')) {
    let node: NodeLike | undefined = root;
    for (const part of region.split('.')) {
      node = node?.states?.[part];
      if (!node) return undefined;
      if (hasSafeTag(node)) any = true;
    }
  }
  return any;
}

export type SafeOf = (state: string) => boolean | undefined;

/** `machine`: the header's machine name (null: no MUX); `events`: the log's events, for evidence. */
export async function safeStates(machine: string | null, events: readonly EventRecord[]): Promise<SafeOf> {
  const seen = new Map<string, boolean>();
  for (const e of events) if (e.state !== undefined && e.safe !== undefined) seen.set(e.state, e.safe);
  let root: NodeLike | null = null;
  // Only a shipped machine is loaded: a log names its machine, and a report must not run a
  // module a log file names (a log from elsewhere, or a user's machine file: the events' evidence).
  if (machine && shippedMachineUrl(machine) !== null) {
    root = await loadMux(machine).then(
      (def) => (def.machine as unknown as { root: NodeLike }).root,
      () => null,
    );
  }
  return (state) => (root ? safeInChart(root, state) : undefined) ?? seen.get(state);
}
