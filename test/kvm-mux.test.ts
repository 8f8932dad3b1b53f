// Acceptance of the KVM trap layer with the supervisor: unmodified bare-metal ATA drivers in
// KVM guests share one disk through the MUX, each in its own partition window, and each
// verifies its whole (translated) disk. Both runner forms: in-process (N-API addon) and
// helper processes over the channel socket.

import { afterEach, describe, expect, it } from 'vitest';
import { type KvmGuestResult, runKvmGuest, startKvmGuest } from '../src/trap/kvm.ts';
import { startKvmGuestInProcess } from '../src/trap/kvm-inproc.ts';
import { kvmSkipReason } from './helpers/kvm.ts';
import { type KvmMuxRig, kvmMuxRig, windowWords } from './helpers/kvm-mux.ts';
import { titled } from './helpers/requires.ts';

const WINDOW = 48; // sectors per guest: PIO writes cost one exit per word

function expectVerified(results: KvmGuestResult[], mode: string): void {
  for (const r of results) {
    expect(r.exitReason, `${r.name}: ${r.stderr}`).toBe('hlt');
    // IDENTIFY showed the window, not the whole disk.
    expect(r.output).toContain(`IDENTIFY model="MUXVISOR HARDDISK" sectors=${WINDOW}`);
    expect(r.result).toMatchObject({ ok: true, fields: { sectors: String(WINDOW), mode } });
    expect(r.verified).toBe(true);
  }
}

function expectDiskLayout(rig: KvmMuxRig): void {
  // Word 0 of a sector is the LBA the guest wrote (window-relative), word 1 its tag's seed:
  // each window holds its own guest's data at the translated place.
  expect(windowWords(rig, 0, 0)).toEqual(rig.names.map(() => 0));
  expect(windowWords(rig, WINDOW - 1, 0)).toEqual(rig.names.map(() => WINDOW - 1));
  expect(new Set(windowWords(rig, 5, 1)).size).toBe(rig.names.length);
}

describe.skipIf(kvmSkipReason() !== null)(titled('KVM guests sharing one ATA disk through the MUX', kvmSkipReason()), () => {
  let rig: KvmMuxRig | null = null;
  afterEach(async () => {
    await rig?.close();
    rig = null;
  });

  for (const mode of ['pio', 'dma'] as const) {
    it(`3 in-process guests, ${mode}: each verifies its window, no unsafe switch`, async () => {
      rig = await kvmMuxRig(3, WINDOW);
      const r = rig;
      // One DMA guest sleeps in HLT until IRQ 14: the virtual IRQ reaches the owner's VM.
      const results = await Promise.all(
        r.names.map((name, i) => runKvmGuest({ name, attach: r.attach, cmdline: `mode=${mode} tag=${name}${mode === 'dma' && i === 0 ? ' irq=1' : ''}`, timeoutMs: 50_000 })),
      );
      expectVerified(results, mode);
      expectDiskLayout(r);
      const stats = r.sup.stats().devices.find((d) => d.device === 'disk0')!;
      expect(stats.unsafeSwitches).toBe(0);
      expect(stats.switches).toBeGreaterThan(0);
    });
  }

  it('3 helper-process guests over the channel socket, dma and pio', async () => {
    rig = await kvmMuxRig(3, WINDOW);
    const r = rig;
    const results = await Promise.all(
      r.names.map((name, i) => runKvmGuest({ name, connect: r.socket, cmdline: `mode=${i === 2 ? 'pio' : 'dma'} tag=${name}${i === 1 ? ' irq=1' : ''}`, timeoutMs: 50_000 })),
    );
    expectVerified(results.slice(0, 2), 'dma');
    expectVerified(results.slice(2), 'pio');
    expectDiskLayout(r);
    expect(r.sup.stats().devices[0].unsafeSwitches).toBe(0);
  });

  it('a guest that stops mid-command is cut off by the watchdog; the others finish verified', async () => {
    rig = await kvmMuxRig(3, WINDOW);
    const r = rig;
    // kvm1 issues READ SECTORS for LBA 10 and never reads the data (sleeps with IF=1). The
    // others start once it hangs, so they need the device it holds in an unsafe state.
    const hung = startKvmGuestInProcess({ name: 'kvm1', attach: r.attach, cmdline: 'mode=pio tag=kvm1 hang=10', timeoutMs: 50_000 });
    await hung.waitForLine(/^HANG mid-command lba=10$/);
    const others = Promise.all(
      ['kvm2', 'kvm3'].map((name, i) =>
        i === 0
          ? runKvmGuest({ name, attach: r.attach, cmdline: `mode=pio tag=${name}`, timeoutMs: 50_000 })
          : startKvmGuest({ name, connect: r.socket, cmdline: `mode=dma tag=${name}`, timeoutMs: 50_000 }).done,
      ),
    );
    // Once both wait for the device, the deadline passes (the rig holds the watchdog: a
    // loaded machine could otherwise cut off a guest whose normal command was merely slow).
    const stalls = (g: string) => r.sup.stats().devices[0].perGuest.find((p) => p.guest === g)?.stalls ?? 0;
    while (stalls('kvm2') === 0 || stalls('kvm3') === 0) await new Promise((res) => setTimeout(res, 10));
    expect(r.fireWatchdogs()).toBe(1);
    const done = await others;
    expectVerified(done.slice(0, 1), 'pio');
    expectVerified(done.slice(1), 'dma');
    hung.kill();
    const h = await hung.done;
    expect(h.exitReason).toBe('terminated');
    expect(h.verified).toBe(false);
    expect(h.resets).toEqual([{ device: 'disk0', reason: expect.stringMatching(/watchdog/) }]);
    const stats = r.sup.stats().devices[0];
    expect(stats.unsafeSwitches).toBe(0);
    expect(stats.resets).toBeGreaterThanOrEqual(1);
    expect(stats.perGuest.find((g) => g.guest === 'kvm1')?.faulted).toBe(true);
  });

  for (const runner of ['in-process', 'helper'] as const) {
    it(`a guest that triple-faults mid-command (${runner}) is cut off by its exit report; the others finish verified`, async () => {
      rig = await kvmMuxRig(3, WINDOW);
      const r = rig;
      // kvm1 issues READ SECTORS for LBA 20 in its read phase and triple-faults right after,
      // holding the device in an unsafe state while the others are in the middle of their runs.
      const cmd = (name: string, extra: string) => `mode=pio tag=${name}${extra}`;
      const start = (name: string, extra: string, helper: boolean) =>
        helper
          ? runKvmGuest({ name, connect: r.socket, cmdline: cmd(name, extra), timeoutMs: 50_000 })
          : runKvmGuest({ name, attach: r.attach, cmdline: cmd(name, extra), timeoutMs: 50_000 });
      const results = await Promise.all([
        start('kvm1', ' crash=20', runner === 'helper'),
        start('kvm2', '', false),
        start('kvm3', '', true),
      ]);
      const [crashed, ...others] = results;
      expect(crashed.output).toContain('CRASH mid-command lba=20');
      expect(crashed.exitReason, crashed.stderr).toBe('shutdown');
      expect(crashed.verified).toBe(false);
      expectVerified(others, 'pio');
      const stats = r.sup.stats().devices[0];
      expect(stats.unsafeSwitches).toBe(0);
      expect(stats.resets).toBeGreaterThanOrEqual(1);
      expect(stats.perGuest.find((g) => g.guest === 'kvm1')?.faulted).toBe(true);
      expect(stats.perGuest.find((g) => g.guest === 'kvm2')?.faulted).toBe(false);
      // Cut off by the runner's exit report (in-process: detach 'crash'; helper: `bye` with
      // reason shutdown), not by the watchdog.
      const cut = r.warnings.filter((w) => w.msg === 'guest cut off');
      expect(cut.map((w) => w.guest)).toEqual(['kvm1']);
      expect(cut[0].why).toMatch(/^detached \(crash\) while owning/);
    });
  }
});
