// Backend `udp`: one datagram is one Ethernet frame (no FCS), the format of QEMU's
// `-netdev socket,udp=REMOTE,localaddr=LOCAL`. The card's frames go to `remote`; datagrams
// arriving at `local` are frames for the card (from any sender: keep it on loopback or a
// trusted link).
//   "backend": { "type": "udp", "local": "127.0.0.1:5555", "remote": "127.0.0.1:5556" }

import { createSocket, type Socket } from 'node:dgram';
import { z } from 'zod';
import type { CardReceiver, NetWire, WireErrorReport } from './wire-types.ts';
import { checkedBackend } from './checked.ts';

const HOST_PORT = /^[^:]+:\d{1,5}$|^\[[0-9a-fA-F:.]+\]:\d{1,5}$/;
const portOf = (s: string): number => Number(s.slice(s.lastIndexOf(':') + 1));
/** HOST:PORT with a port from `min` (0: any, for the local side) to 65535, as one check with one message. */
const hostPort = (min: 0 | 1) =>
  z.string().refine((s) => HOST_PORT.test(s) && portOf(s) >= min && portOf(s) <= 65535, `expected HOST:PORT with a port of ${min} to 65535, such as "127.0.0.1:5555"`);

export const UdpBackendSchema = z.strictObject({
  type: z.literal('udp'),
  local: hostPort(0).meta({ description: 'address the card receives frames on (port 0: any free one)' }),
  remote: hostPort(1).meta({ description: 'address the card sends its frames to' }),
});

export function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}

export class UdpWire implements NetWire {
  private receiver: CardReceiver | null = null;
  /** Datagrams that could not be sent (the socket said so). */
  sendErrors = 0;
  received = 0;
  private closed = false;
  private report: WireErrorReport = () => undefined;

  constructor(
    private readonly socket: Socket,
    private readonly remote: { host: string; port: number },
  ) {
    socket.on('message', (msg) => {
      this.received++;
      this.receiver?.(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength));
    });
    socket.on('error', (err) => this.report('UDP socket', err));
  }

  onError(report: WireErrorReport): void {
    this.report = report;
  }

  send(frame: Uint8Array): void {
    if (this.closed) return;
    this.socket.send(Buffer.from(frame), this.remote.port, this.remote.host, (err) => {
      if (!err) return;
      this.sendErrors++;
      this.report(`send of a ${frame.length}-byte frame to ${this.remote.host}:${this.remote.port}`, err);
    });
  }

  /** The card's receiver; null (the card is closed) closes the socket. */
  attach(receiver: CardReceiver | null): void {
    this.receiver = receiver;
    if (receiver === null && !this.closed) {
      this.closed = true;
      this.socket.close();
    }
  }
}

export async function openUdpWire(backend: Record<string, unknown>, id: string): Promise<NetWire> {
  const cfg = checkedBackend(UdpBackendSchema, backend, id);
  const local = splitHostPort(cfg.local);
  const socket = createSocket(local.host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', (e) => reject(new Error(`device ${id}: backend.local ${cfg.local}: ${e.message}`, { cause: e })));
    socket.bind(local.port, local.host, () => resolve());
  });
  return new UdpWire(socket, splitHostPort(cfg.remote));
}
