// Backend `switch`: no wire at all. The card's guests reach only each other (the shared-NIC
// router delivers frames between them); what would go to the wire is counted and dropped.
//   "backend": { "type": "switch" }

import { z } from 'zod';
import { checkedBackend } from './checked.ts';
import type { NetWire } from './wire-types.ts';

export const SwitchBackendSchema = z.strictObject({ type: z.literal('switch') });

/** A wire to nowhere: counts what the card would have put on it. */
export class SwitchWire implements NetWire {
  dropped = 0;
  send(): void {
    this.dropped++;
  }
  attach(): void {}
}

export function openSwitchWire(backend: Record<string, unknown>, id: string): NetWire {
  checkedBackend(SwitchBackendSchema, backend, id);
  return new SwitchWire();
}
