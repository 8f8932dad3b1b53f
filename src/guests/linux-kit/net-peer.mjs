// The host end of the guest kit's NIC workload (native/linux-guest/workloads/net), run inside
// the network namespace that holds the host address (`ip netns exec NS node net-peer.mjs
// --bind ADDR --port P`): plain Node, no dependencies, so it runs wherever `node` does.
//   P    upload: reads to EOF, answers "sha256 HEX bytes N\n", closes; keeps the bytes per client address
//   P+1  download: sends what that address uploaded last, closes
//   P+2  gate: held open until "open" arrives on stdin (then every gate connection closes, and new ones at once)
//   P+3  sink: reads and counts until the client goes away
// stdout: one JSON line per event: listening, upload, download, gate, gate-open, sink (every 64 KiB and at the end).

import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const bind = arg('bind', '0.0.0.0');
const port = Number(arg('port', '5001'));
const say = (o) => process.stdout.write(`${JSON.stringify({ t: Date.now(), ...o })}\n`);
const peerOf = (s) => (s.remoteAddress ?? '?').replace(/^::ffff:/, '');

const stored = new Map();
const gates = new Set();
let gateOpen = false;

// allowHalfOpen: busybox nc shuts its sending side down at the end of its stdin (at once for
// </dev/null) and reads on; Node would otherwise end our side too (the gate would open by itself).
const HALF_OPEN = { allowHalfOpen: true };
const servers = [
  createServer(HALF_OPEN, (s) => {
    const who = peerOf(s);
    const parts = [];
    const hash = createHash('sha256');
    let bytes = 0;
    s.on('data', (b) => {
      parts.push(b);
      hash.update(b);
      bytes += b.length;
    });
    s.on('end', () => {
      const sha256 = hash.digest('hex');
      stored.set(who, Buffer.concat(parts));
      say({ event: 'upload', from: who, bytes, sha256 });
      s.end(`sha256 ${sha256} bytes ${bytes}\n`);
    });
    s.on('error', (e) => say({ event: 'error', port, from: who, error: e.message }));
  }),
  createServer(HALF_OPEN, (s) => {
    const who = peerOf(s);
    const data = stored.get(who) ?? Buffer.alloc(0);
    s.on('error', (e) => say({ event: 'error', port: port + 1, from: who, error: e.message }));
    s.resume();
    s.end(data, () => say({ event: 'download', to: who, bytes: data.length }));
  }),
  createServer(HALF_OPEN, (s) => {
    const who = peerOf(s);
    s.on('error', () => {});
    s.resume();
    say({ event: 'gate', from: who, open: gateOpen });
    if (gateOpen) return void s.end();
    gates.add(s);
    s.on('close', () => gates.delete(s));
  }),
  createServer(HALF_OPEN, (s) => {
    const who = peerOf(s);
    let bytes = 0;
    let next = 64 << 10;
    s.on('data', (b) => {
      bytes += b.length;
      if (bytes >= next) {
        say({ event: 'sink', from: who, bytes });
        next += 64 << 10;
      }
    });
    const end = (how) => () => say({ event: 'sink', from: who, bytes, end: how });
    s.on('end', () => (end('end')(), s.end()));
    s.on('error', end('error'));
  }),
];

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'open') return;
  gateOpen = true;
  for (const s of gates) s.end();
  say({ event: 'gate-open', waiting: gates.size });
});
process.stdin.on('end', () => process.exit(0));

let listening = 0;
servers.forEach((srv, i) =>
  srv.listen(port + i, bind, () => {
    if (++listening === servers.length) say({ event: 'listening', bind, port });
  }),
);
for (const srv of servers) srv.on('error', (e) => (say({ event: 'error', error: e.message }), process.exit(1)));
