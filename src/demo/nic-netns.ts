// The NIC demo's `tap` backend: a network namespace of its own (ip netns) where the card's TAP
// appears; the namespace's Linux stack is the host the guests ARP for and ping. Needs root.

import { execFileSync } from 'node:child_process';

export interface DemoNetns {
  name: string;
  ifname: string;
  hostIp: string;
  guestIp(i: number): string;
  /** Give the TAP (made by the backend) the host's address. */
  configure(): void;
  remove(): void;
}

const ip = (...args: string[]): string => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

export function createDemoNetns(): DemoNetns {
  if (process.getuid?.() !== 0) throw new Error('--backend tap needs root (it creates a network namespace and a TAP in it)');
  const name = `muxvisor-demo-${process.pid}`;
  const ifname = `mvdemo${process.pid % 1_000_000}`;
  try {
    ip('netns', 'add', name);
  } catch (e) {
    throw new Error(`ip netns add ${name}: ${((e as { stderr?: Buffer }).stderr ?? '').toString().trim() || (e as Error).message}`);
  }
  return {
    name,
    ifname,
    hostIp: '10.203.0.1',
    guestIp: (i) => `10.203.${Math.floor((i + 2) / 256)}.${(i + 2) % 256}`,
    configure: () => void ip('-n', name, 'addr', 'add', '10.203.0.1/16', 'dev', ifname),
    remove: () => {
      try {
        ip('netns', 'del', name);
      } catch {
        // already gone
      }
    },
  };
}
