import { it } from 'vitest';
import { runWorkload } from '../src/guests/ata-workload.ts';
import { openAtaRig } from './helpers/ata-mux.ts';
const W = { hang: { startLba: 0, sectors: 512 }, g1: { startLba: 512, sectors: 512 }, g2: { startLba: 1024, sectors: 512 } };
it('stress', async () => {
  for (let iter = 0; iter < 150; iter++) {
    const rig = await openAtaRig({ guests: Object.entries(W).map(([name, window]) => ({ name, window })), sectors: 2048, properties: { deadlineNs: 50_000_000 } });
    const hang = rig.g('hang');
    for (const [port, v] of [[0x1f6, 0xe0], [0x1f2, 4], [0x1f3, 0], [0x1f4, 0], [0x1f5, 0], [0x1f7, 0x20]]) await hang.guest.access({ space: 'pio', addr: port, size: 1, dir: 'write', value: v });
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      console.log('STUCK iter', iter, JSON.stringify(rig.stats()), JSON.stringify(rig.device()!.state(), (k, v) => (v instanceof Uint8Array ? `[${v.length} bytes]` : v)), JSON.stringify(rig.device()!.metrics()));
    }, 3000);
    const res = await Promise.all(['g1', 'g2'].map(async (n, i) => { const d = rig.g(n).driver; await d.identify(); return runWorkload(d, { guest: n, seed: iter * 10 + i, mode: 'mixed', maxOps: 40, maxSectors: 8, flushEvery: 10 }); }));
    done = true; clearTimeout(timer);
    for (const r of res) if (!r.verified) console.log('FAIL iter', iter, r.firstError);
    await rig.close();
  }
}, 600_000);
