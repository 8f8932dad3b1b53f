// Where each PCI device sits on bus 0: the config's {slot, function}, or the next free
// slot (function 0). 00:00.0 is the host bridge. Slots are global, so every guest sees a
// device at the same address; each guest's view holds only the functions granted to it.

export interface PciRequest {
  id: string;
  pci?: { slot: number; function: number };
}

export interface PciSlot {
  slot: number;
  fn: number;
}

export function assignSlots(requests: PciRequest[]): Map<string, PciSlot> {
  const out = new Map<string, PciSlot>();
  const used = new Set<number>([0]); // slot numbers with something at function 0 (or fixed)
  const taken = new Set<string>(['0.0']);
  for (const r of requests) {
    if (!r.pci) continue;
    const key = `${r.pci.slot}.${r.pci.function}`;
    if (taken.has(key)) throw new Error(`device ${r.id}: PCI ${r.pci.slot}.${r.pci.function} is already used`);
    taken.add(key);
    used.add(r.pci.slot);
    out.set(r.id, { slot: r.pci.slot, fn: r.pci.function });
  }
  let next = 1;
  for (const r of requests) {
    if (r.pci) continue;
    while (used.has(next)) next++;
    if (next > 31) throw new Error(`device ${r.id}: no free PCI slot on bus 0`);
    used.add(next);
    out.set(r.id, { slot: next, fn: 0 });
  }
  return out;
}
