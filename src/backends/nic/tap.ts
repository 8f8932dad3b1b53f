// Backend `tap`: a TAP interface, optionally inside a named network namespace (`ip netns`).
// Node cannot create a TAP (TUNSETIFF), so a small bridge (tap-bridge.py, python3) creates it
// and passes its frames over a loopback UDP pair, one frame per datagram: the wire itself is
// a UdpWire. Needs CAP_NET_ADMIN (root) and the namespace to exist.
//   "backend": { "type": "tap", "ifname": "mvtap0", "netns": "muxnet" }

import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { checkedBackend } from './checked.ts';
import { UdpWire } from './udp.ts';
import type { CardReceiver, NetWire, WireErrorReport } from './wire-types.ts';

const BRIDGE = fileURLToPath(new URL('./tap-bridge.py', import.meta.url));

export const TapBackendSchema = z.strictObject({
  type: z.literal('tap'),
  ifname: z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, 'expected an interface name of 1-15 letters, digits, "_", "." or "-"').meta({ description: 'name of the TAP interface to create' }),
  netns: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'expected a network namespace name (ip netns list)').optional().meta({ description: 'named network namespace (/run/netns/NAME) to create it in' }),
});

/** The UDP wire to the bridge; closing the card ends the bridge (and with it the TAP). */
class TapWire implements NetWire {
  private closing = false;
  private report: WireErrorReport = () => undefined;

  constructor(
    private readonly udp: UdpWire,
    private readonly bridge: ChildProcess,
    private readonly name: string,
    stderr: () => string,
  ) {
    // The bridge ending while the card is open leaves the card without a wire: say so.
    bridge.once('exit', (code, signal) => {
      if (this.closing) return;
      const how = signal ? `killed by ${signal}` : `exited with ${code}`;
      this.report(`TAP bridge of ${name}`, new Error(`${how}${stderr().trim() ? `: ${stderr().trim()}` : ''}; frames to and from the TAP are lost`));
    });
  }
  onError(report: WireErrorReport): void {
    this.report = report;
    this.udp.onError(report);
  }
  send(frame: Uint8Array): void {
    this.udp.send(frame);
  }
  attach(receiver: CardReceiver | null): void {
    this.udp.attach(receiver);
    if (receiver === null) {
      this.closing = true;
      this.bridge.stdin?.end();
      this.bridge.kill();
    }
  }
}

export async function openTapWire(backend: Record<string, unknown>, id: string): Promise<NetWire> {
  const cfg = checkedBackend(TapBackendSchema, backend, id);
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const args = [BRIDGE, '--ifname', cfg.ifname, '--peer', String(socket.address().port), ...(cfg.netns ? ['--netns', cfg.netns] : [])];
  const bridge = spawn('python3', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  bridge.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      bridge.once('error', (e) => reject(new Error(`python3 (the TAP bridge): ${e.message}`)));
      bridge.once('exit', (code) => reject(new Error(stderr.trim() || `the TAP bridge exited with ${code}`)));
      bridge.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^ready (\d+)\n/.exec(out);
        if (m) resolve(Number(m[1]));
      });
    });
    bridge.removeAllListeners('exit');
    const name = `${cfg.ifname}${cfg.netns ? ` in netns ${cfg.netns}` : ''}`;
    return new TapWire(new UdpWire(socket, { host: '127.0.0.1', port }), bridge, name, () => stderr);
  } catch (e) {
    socket.close();
    bridge.kill();
    throw new Error(`device ${id}: backend tap ${cfg.ifname}${cfg.netns ? ` in netns ${cfg.netns}` : ''}: ${(e as Error).message}`, { cause: e });
  }
}
