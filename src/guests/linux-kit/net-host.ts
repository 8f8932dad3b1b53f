// The host side of kit guests running the NIC workload: a network namespace of our own (ip
// netns; root) where a TAP appears (the shared card's tap backend, or QEMU's -netdev tap when
// QEMU runs in the namespace), the host address on it, and the TCP peer (net-peer.mjs) in the
// namespace, its events read as they come.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';

const PEER = join(import.meta.dirname, 'net-peer.mjs');

const ip = (...args: string[]): string => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

export interface PeerEvent {
  t: number;
  event: 'listening' | 'upload' | 'download' | 'gate' | 'gate-open' | 'sink' | 'error';
  from?: string;
  to?: string;
  bytes?: number;
  sha256?: string;
  end?: string;
  error?: string;
}

export interface NetHostOptions {
  /** Namespace name (unique on the machine: put the pid in it). */
  netns: string;
  /** The third octet of 10.X.Y.0/24 (default 77). */
  subnet?: number;
  /** The peer's first port (4 in a row). */
  port?: number;
}

export class NetHost {
  readonly netns: string;
  readonly prefix: string;
  readonly hostIp: string;
  readonly port: number;
  private peer: ChildProcess | null = null;
  private out = '';
  private peerErr = '';
  private removed = false;

  constructor(o: NetHostOptions) {
    if (process.getuid?.() !== 0) throw new Error('the NIC workload host needs root (a network namespace and a TAP in it)');
    this.netns = o.netns;
    this.prefix = `10.77.${o.subnet ?? 0}`;
    this.hostIp = `${this.prefix}.1`;
    this.port = o.port ?? 5001;
    try {
      ip('netns', 'add', this.netns);
    } catch (e) {
      throw new Error(`ip netns add ${this.netns}: ${((e as { stderr?: Buffer }).stderr ?? '').toString().trim() || (e as Error).message}`);
    }
  }

  /** Guest i's address (i from 1), with the prefix length. */
  guestCidr(i: number): string {
    return `${this.guestIp(i)}/24`;
  }

  guestIp(i: number): string {
    return `${this.prefix}.${10 + i}`;
  }

  /** The kernel command line words of the NIC workload for guest i (steps and size apart). */
  guestArgs(i: number): string {
    return `muxvisor.workload=net muxvisor.ip=${this.guestCidr(i)} muxvisor.host=${this.hostIp} muxvisor.port=${this.port}`;
  }

  /** Waits for `ifname` in the namespace, gives it the host address, starts the peer. */
  async configure(ifname: string, timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        ip('-n', this.netns, 'link', 'show', ifname);
        break;
      } catch {
        if (Date.now() > until) throw new Error(`${ifname} did not appear in network namespace ${this.netns} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    ip('-n', this.netns, 'addr', 'add', `${this.hostIp}/24`, 'dev', ifname);
    ip('-n', this.netns, 'link', 'set', ifname, 'up');
    await this.startPeer();
  }

  private async startPeer(): Promise<void> {
    // stdin stays a pipe: "open" lines open the gate, and the peer ends when we close it.
    const p = spawn('ip', ['netns', 'exec', this.netns, process.execPath, PEER, '--bind', '0.0.0.0', '--port', String(this.port)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.peer = p;
    p.stdout!.setEncoding('utf8').on('data', (s: string) => (this.out += s));
    p.stderr!.setEncoding('utf8').on('data', (s: string) => (this.peerErr = (this.peerErr + s).slice(-2000)));
    if (!(await this.waitFor((e) => e.event === 'listening', 20_000))) throw new Error(`the net peer did not start in ${this.netns}: ${this.peerErr.trim()}`);
  }

  /** The peer's events so far. */
  events(): PeerEvent[] {
    return this.out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as PeerEvent);
  }

  /** Polls the events until one matches (true) or `ms` pass (false). */
  async waitFor(pick: (e: PeerEvent) => boolean, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    for (;;) {
      if (this.events().some(pick)) return true;
      if (Date.now() > end || this.peer?.exitCode != null) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Releases every guest waiting at the gate, and lets later ones straight through. */
  openGate(): void {
    this.peer?.stdin?.write('open\n');
  }

  /** Ends the peer and deletes the namespace (its TAPs go with it). */
  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    const p = this.peer;
    if (p && p.exitCode === null) {
      const gone = new Promise((r) => p.once('close', r));
      p.stdin?.end();
      await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
      if (p.exitCode === null) p.kill('SIGKILL');
    }
    try {
      ip('netns', 'del', this.netns);
    } catch {
      // already gone
    }
  }
}
