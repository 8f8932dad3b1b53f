// Backend `udp`: one datagram is one Ethernet frame (no FCS), the format of QEMU's
// `-netdev socket,udp=REMOTE,localaddr=LOCAL`. The card's frames go to `remote`; datagrams
// arriving at `local` are frames for the card (from any sender: keep it on loopback or a
// trusted link).
//   "backend": { "type": "udp", "local": "127.0.0.1:5555", "remote": "127.0.0.1:5556" }

import { createSocket, type Socket } from 'node:dgram';
import { z } from 'zod';
import type { CardReceiver, NetWire } from './wire-types.ts';
import { checkedBackend } from './checked.ts';

const HostPort = z.string().regex(/^[^:]+:\d{1,5}$|^\[[0-9a-fA-F:.]+\]:\d{1,5}$/, 'expected HOST:PORT, such as "127.0.0.1:5555"');

export const UdpBackendSchema = z.strictObject({
  type: z.literal('udp'),
  local: HostPort.meta({ description: 'address the card receives frames on' }),
  remote: HostPort.meta({ description: 'address the card sends its frames to' }),
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

  constructor(
    private readonly socket: Socket,
    private readonly remote: { host: string; port: number },
  ) {
    socket.on('message', (msg) => {
      this.received++;
      this.receiver?.(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength));
    });
  }

  send(frame: Uint8Array): void {
    if (this.closed) return;
    this.socket.send(Buffer.from(frame), this.remote.port, this.remote.host, (err) => {
      if (err) this.sendErrors++;
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
  socket.on('error', () => undefined); // later errors show as sendErrors
  return new UdpWire(socket, splitHostPort(cfg.remote));
}
