// The demo summary (`--json` shape) of one device: the MUX's counters and each guest's result.
import type { Supervisor } from '../supervisor.ts';

export interface DemoGuestSummary {
  guest: string;
  ops: number;
  bytes: number;
  errors: number;
  verified: boolean;
  /** NIC demo: the guest's MAC and its router counters (rxPackets, txPackets, dropped, spoofed, ...). */
  mac?: string;
  nic?: Record<string, number>;
}

export interface DemoDeviceSummary {
  id: string;
  kind: string;
  switches: number;
  unsafeSwitches: number;
  resets: number;
  perGuest: DemoGuestSummary[];
}

export interface DemoSummary {
  devices: DemoDeviceSummary[];
}

export function deviceSummary(sup: Supervisor, deviceId: string, perGuest: DemoGuestSummary[]): DemoDeviceSummary {
  const stats = sup.stats().devices.find((d) => d.device === deviceId);
  if (!stats) throw new Error(`demo: no statistics for device ${deviceId}`);
  return { id: deviceId, kind: stats.kind, switches: stats.switches, unsafeSwitches: stats.unsafeSwitches, resets: stats.resets, perGuest };
}
