// The events a MUX definition's classifier can produce, found by asking it: every register of
// the map, in each direction it allows, as a plain and a string access, as the guest's and as
// the MUX's own probe, with every byte value and each single bit of a wider register (written,
// or read back from the device). `check-machine` compares them with the events the chart handles.

import { eventType, type MuxAccess, type MuxDefinition } from '../mux/define.ts';

export interface ProducedEvent {
  /** One access that produces it, as a person reads it (`read STATUS=0x00`). */
  example: string;
}

function values(width: number): number[] {
  const out = new Set<number>();
  for (let v = 0; v < 256; v++) out.add(v);
  for (let bit = 8; bit < width * 8; bit++) out.add(2 ** bit);
  out.add(width === 4 ? 0xffff_ffff : width === 2 ? 0xffff : 0xff);
  return [...out];
}

/** Event type -> an access that produces it; `errors`: accesses the classifier threw on. */
export function classifierEvents(def: MuxDefinition): { events: Map<string, ProducedEvent>; errors: string[] } {
  const events = new Map<string, ProducedEvent>();
  const errors: string[] = [];
  for (const [name, spec] of Object.entries(def.registers)) {
    const reg = { ...spec, name, regionIndex: -1 };
    const dirs: Array<'read' | 'write'> = spec.access === 'r' ? ['read'] : spec.access === 'w' ? ['write'] : ['read', 'write'];
    for (const dir of dirs)
      for (const probe of [false, true])
        for (const count of spec.string ? [1, 256] : [1])
          for (const v of values(spec.width)) {
            const acc: MuxAccess = { reg, region: -1, offset: spec.offset, size: spec.width, dir, value: dir === 'write' ? v : 0, count, probe };
            const example = `${probe ? 'probe ' : ''}${dir} ${name}${count > 1 ? `×${count}` : ''}=0x${v.toString(16).padStart(spec.width * 2, '0')}`;
            let ev;
            try {
              ev = def.classify(acc, v);
            } catch (e) {
              if (errors.length < 3) errors.push(`classify threw on ${example}: ${(e as Error).message}`);
              continue;
            }
            if (ev == null) continue;
            const type = eventType(ev);
            if (!events.has(type)) events.set(type, { example });
          }
  }
  return { events, errors };
}
