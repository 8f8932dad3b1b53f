// Grants of a shared NIC (kinds ne2k, qemu-ne2k): each guest has its own station address.
// A MAC that is malformed, a group address (multicast or broadcast: the first byte odd), or
// one that another guest of the same card has (the card's own `properties.mac` is the MAC of
// a grant that names none) is a configuration error at the grant's JSON path. `mac` and
// `promiscuous` on a grant of a device that is not a NIC are errors too.

import { formatMac, parseMac } from '../devices/ne2k/memory.ts';
import { DEFAULT_MAC } from '../devices/ne2k/regs.ts';

/** The parts of a parsed config this reads (schema.ts calls this; no import back, no cycle). */
interface NicConfigView {
  devices: ReadonlyArray<{ id: string; kind: string; properties?: Record<string, unknown> }>;
  guests: ReadonlyArray<{ name: string; grants: ReadonlyArray<object> }>;
}
interface NicGrantView {
  device: string;
  mac?: string;
  promiscuous?: boolean;
}
interface Issue {
  path: string;
  message: string;
}
const isDeviceGrant = (g: object): g is NicGrantView => 'device' in g;

/** Device kinds whose router gives each guest a virtual card with its own MAC (src/mux/nic). */
export const NIC_KINDS: ReadonlySet<string> = new Set(['ne2k', 'qemu-ne2k']);

export function nicGrantIssues(config: NicConfigView): Issue[] {
  const issues: Issue[] = [];
  const byId = new Map(config.devices.map((d, i) => [d.id, { d, i }]));
  // device id -> MAC -> path of the first grant with it
  const taken = new Map<string, Map<string, string>>();
  config.guests.forEach((g, gi) => {
    g.grants.forEach((gr, j) => {
      if (!isDeviceGrant(gr)) return;
      const dev = byId.get(gr.device);
      if (!dev) return; // crossCheck reports an unknown device
      const at = `guests[${gi}].grants[${j}]`;
      if (!NIC_KINDS.has(dev.d.kind)) {
        if (gr.mac !== undefined) issues.push({ path: `${at}.mac`, message: `device "${gr.device}" is a ${dev.d.kind}, not a network card: only a grant of a NIC (${[...NIC_KINDS].join(', ')}) has a mac` });
        if (gr.promiscuous !== undefined) issues.push({ path: `${at}.promiscuous`, message: `device "${gr.device}" is a ${dev.d.kind}, not a network card: only a grant of a NIC has promiscuous` });
        return;
      }
      const cardMac = dev.d.properties?.mac;
      const text = gr.mac ?? (typeof cardMac === 'string' ? cardMac : DEFAULT_MAC);
      const path = gr.mac !== undefined ? `${at}.mac` : at;
      const mac = parseMac(text);
      if (!mac) return void issues.push({ path, message: `expected a MAC address such as "52:54:00:12:34:01", got ${JSON.stringify(text)}` });
      if (mac[0] & 1) {
        const what = mac.every((b) => b === 0xff) ? 'the broadcast address' : 'a multicast address (first byte odd)';
        return void issues.push({ path, message: `${formatMac(mac)} is ${what}: a guest's own MAC must be unicast` });
      }
      const key = formatMac(mac);
      const seen = taken.get(gr.device) ?? taken.set(gr.device, new Map()).get(gr.device)!;
      const other = seen.get(key);
      if (other !== undefined) {
        const how = gr.mac === undefined ? ` (this grant names no mac, so it takes the card's ${key})` : '';
        issues.push({ path, message: `MAC ${key} on card "${gr.device}" is also ${other}'s${how}: each guest of a shared NIC needs its own MAC` });
      } else seen.set(key, `${at} (guest "${g.name}")`);
    });
  });
  return issues;
}
