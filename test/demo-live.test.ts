// The demo's live view: per device the current owner, the MUX chart's state, switches and
// unsafe switches; per guest its phase; a heading that says when the guests verify at the end.
// Frames from a real disk demo run, the KVM guests' phases from the lines the bare-metal
// driver prints (under QEMU TCG, the same ELF the KVM demo boots), and the CLI on a terminal.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { runDiskDemo } from '../src/demo/disk-demo.ts';
import { KvmGuestPhases } from '../src/demo/kvm-live.ts';
import { type DeviceLive, type GuestLive, guestLive, liveView } from '../src/demo/live-view.ts';
import { runQemuGuest } from '../src/trap/kvm-qemu.ts';
import { missing, missingFile, titled } from './helpers/requires.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ELF = join(ROOT, 'native/guests/build/ata-driver.elf');

interface Frame {
  devices: DeviceLive[];
  guests: GuestLive[];
  text: string;
}

describe('demo live view', () => {
  it('a real run: owner and chart state of the disk, switches, then "verifying", then done', async () => {
    const frames: Frame[] = [];
    const r = await runDiskDemo({
      guests: 3,
      seconds: 1,
      policy: 'round-robin',
      backend: 'model',
      mode: 'mixed',
      onProgress: (p, t, devices) => {
        const guests = p.map(guestLive);
        frames.push({ devices, guests, text: liveView(devices, guests, t, 1) });
      },
    });
    expect(frames.length).toBeGreaterThan(1);
    for (const f of frames) {
      expect(f.devices).toHaveLength(1);
      const d = f.devices[0];
      expect(d).toMatchObject({ id: 'disk0', kind: 'ata', unsafeSwitches: 0 });
      expect(typeof d.state).toBe('string');
      expect([null, 'guest1', 'guest2', 'guest3']).toContain(d.owner);
      // The device line carries what the device object says.
      const line = f.text.split('\n').find((l) => l.startsWith('disk0'))!;
      expect(line.split(/\s+/)).toEqual(['disk0', 'ata', d.owner ?? '-', d.state, String(d.switches), String(d.unsafeSwitches), String(d.resets)]);
    }
    expect(frames[0].text.split('\n')[1]).toMatch(/^device\s+kind\s+owner\s+chart state\s+switches\s+unsafe switches\s+resets$/);
    // Switches only grow, and the last frame's count is the summary's.
    const switches = frames.map((f) => f.devices[0].switches);
    expect(switches).toEqual([...switches].sort((a, b) => a - b));
    expect(switches.at(-1)).toBe(r.summary.devices[0].switches);
    expect(switches.at(-1)).toBeGreaterThan(0);
    // Some frame caught the guests at work with an owner; the last says done, all verified.
    expect(frames.some((f) => f.guests.some((g) => g.phase === 'running') && f.devices[0].owner !== null)).toBe(true);
    const last = frames.at(-1)!;
    expect(last.guests.map((g) => g.phase)).toEqual(['verified', 'verified', 'verified']);
    expect(last.text.split('\n')[0]).toMatch(/1\.0\/1 s {2}done$/);
    expect(last.text).toMatch(/^guest1\s+\d+\s+[\d.]+\s+0\s+verified$/m);
  });

  it('says "verifying" while guests read back what they wrote, with how far they are', () => {
    // The phases runWorkload reports at the end (src/guests/ata-workload.ts): verify, then done.
    const base = { ops: 10, bytes: 4096, errors: 0, mismatches: 0, sectors: 100 };
    const guests = [
      guestLive({ guest: 'a', ...base, phase: 'verify', checked: 30, toCheck: 120 }),
      guestLive({ guest: 'b', ...base, phase: 'run' }),
      guestLive({ guest: 'c', ...base, mismatches: 1, phase: 'done' }),
    ];
    expect(guests.map((g) => g.phase)).toEqual(['verifying', 'running', 'FAILED']);
    const device: DeviceLive = { id: 'disk0', kind: 'ata', owner: 'a', state: 'pioIn.busy', switches: 7, unsafeSwitches: 1, resets: 0 };
    const text = liveView([device, { ...device, id: 'scr', kind: 'scratch', owner: null, state: null }], guests, 4.2, 4);
    expect(text.split('\n')[0]).toMatch(/4\.0\/4 s {2}verifying: 1 of 3 guests read back everything written \(1 finished\)$/);
    expect(text).toMatch(/^a\s+10\s+0\.0\s+0\s+verifying 25%$/m);
    expect(text).toMatch(/^c\s+10\s+0\.0\s+1\s+FAILED$/m);
    expect(text).toMatch(/^disk0\s+ata\s+a\s+pioIn\.busy\s+7\s+1\s+0$/m);
    expect(text).toMatch(/^scr\s+scratch\s+-\s+\(no MUX\)\s+7\s+1\s+0$/m);
  });

  const noQemu = missing('qemu') ?? missingFile(ELF);
  it.skipIf(noQemu !== null)(titled('KVM demo guests: phases from the bare-metal driver\'s own lines (booted under QEMU TCG)', noQemu), async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mv-live-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const img = join(dir, 'disk.img');
    writeFileSync(img, '');
    truncateSync(img, 64 * 512);
    const r = await runQemuGuest({ disk: img, accel: 'tcg', cmdline: 'mode=pio tag=kvm1' });
    const phases = new KvmGuestPhases(['kvm1', 'kvm2']);
    const seen: string[] = [];
    for (const line of r.output) {
      phases.line('kvm1', line);
      const p = phases.live(new Map([['kvm1', 5]]))[0].phase;
      if (seen.at(-1) !== p) seen.push(p);
    }
    expect(seen).toEqual(['starting', 'running', 'verifying', 'verified']);
    const live = phases.live(new Map([['kvm1', 1234]]));
    expect(live).toEqual([
      { guest: 'kvm1', ops: 1234, bytes: 64 * 512, errors: 0, phase: 'verified' },
      { guest: 'kvm2', ops: 0, bytes: 0, errors: 0, phase: 'starting' },
    ]);
    phases.line('kvm2', 'RESULT fail write lba=3');
    expect(phases.live(new Map())[1]).toMatchObject({ phase: 'FAILED', errors: 1 });
  });

  it('the CLI on a terminal draws the live view (device owner, chart state, verifying) and leaves the summary', async () => {
    // `script` (util-linux) gives the demo a pseudo-terminal, as a person's shell would.
    const cmd = `${process.execPath} ${join(ROOT, 'src/bin/muxvisor.mjs')} demo --guests 2 --seconds 1`;
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const code = await new Promise((res) => child.on('close', res));
    expect(code).toBe(0);
    expect(out).toMatch(/device\s+kind\s+owner\s+chart state\s+switches\s+unsafe switches\s+resets/);
    expect(out).toMatch(/disk0\s+ata\s+guest[12]\s+\S+\s+\d+\s+0\s+0/);
    expect(out).toMatch(/verifying: \d of 2 guests? reads? back everything written/);
    // The live view is cleared at the end; the summary stays.
    expect(out).toMatch(/device disk0 \(ata\): \d+ switches, 0 unsafe switches, 0 resets/);
  });
});
