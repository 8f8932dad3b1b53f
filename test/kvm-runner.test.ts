// The KVM runner on its own (no supervisor): boot, debug-port output, stop reasons, and the
// error without a usable KVM device node.

import { describe, expect, it } from 'vitest';
import { GUEST_IMAGES, runKvmGuest, startKvmGuest } from '../src/trap/kvm.ts';
import { kvmSkipReason } from './helpers/kvm.ts';
import { titled } from './helpers/requires.ts';

describe.skipIf(kvmSkipReason() !== null)(titled('KVM runner, standalone', kvmSkipReason()), () => {
  it('boots the multiboot ATA guest, which prints on port 0xE9 and halts', async () => {
    const r = await runKvmGuest({ name: 'solo', cmdline: 'mode=pio tag=solo', timeoutMs: 30_000 });
    expect(r.exitReason).toBe('hlt');
    expect(r.exitCode).toBe(0);
    // The command line reached the guest through the multiboot info structure.
    expect(r.output[0]).toMatch(/^ata-driver: booted cmdline=".*ata-driver\.elf mode=pio tag=solo"$/);
    // Without a supervisor no disk answers: the floating bus reads 0xFF and the guest says so.
    expect(r.result).toMatchObject({ ok: false, fields: { phase: 'identify' } });
    expect(r.verified).toBe(false);
    expect(r.counters!.forwarded).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/reached no device/);
  });

  it('answers port 0x80 in native code (the exit-cost floor bench)', async () => {
    const r = await runKvmGuest({ name: 'floor', cmdline: 'bench=inb port=0x80 n=2000', timeoutMs: 30_000 });
    expect(r.exitReason).toBe('hlt');
    expect(r.result).toMatchObject({ ok: true, fields: { bench: 'inb', n: '2000' } });
    expect(r.counters!.local).toBeGreaterThanOrEqual(2000);
    expect(r.counters!.forwarded).toBe(0);
    expect(r.marks['bench-end']).toBeGreaterThanOrEqual(r.marks['bench-start']);
  });

  it('reports a triple fault as shutdown', async () => {
    const r = await runKvmGuest({ name: 'tf', image: GUEST_IMAGES.tripleFault, timeoutMs: 30_000 });
    expect(r.output).toContain('about to triple-fault');
    expect(r.exitReason).toBe('shutdown');
    expect(r.exitCode).toBe(10);
    expect(r.stderr).toMatch(/triple fault/);
  });

  it('loads a multiboot kernel with the a.out kludge and passes the multiboot magic in EAX', async () => {
    const r = await runKvmGuest({ name: 'aout', image: GUEST_IMAGES.aoutHello, timeoutMs: 30_000 });
    expect(r.exitReason).toBe('hlt');
    expect(r.output).toEqual(['aout-hello eax=0x2badb002', 'bss zeroed']);
  });

  it('loads a flat binary and starts it in real mode', async () => {
    const r = await runKvmGuest({ name: 'flat', image: GUEST_IMAGES.flatHello, flat: { loadAddr: 0x7c00, realMode: true }, timeoutMs: 30_000 });
    expect(r.exitReason).toBe('hlt');
    expect(r.output).toEqual(['flat-hello from real mode']);
  });

  it('names the device node when KVM is not usable', async () => {
    const r = await runKvmGuest({ name: 'nokvm', kvmDev: '/nonexistent/kvm', timeoutMs: 30_000 });
    expect(r.exitReason).toBe('no-kvm');
    expect(r.stderr).toMatch(/cannot open \/nonexistent\/kvm: No such file or directory.*kvm_intel or kvm_amd/);
    expect(r.output).toEqual([]);
  });

  it('keeps a guest that sleeps with interrupts on, and stops it on SIGTERM', async () => {
    const g = startKvmGuest({ name: 'sleeper', cmdline: 'idle=1', timeoutMs: 30_000 });
    await g.waitForLine(/^IDLE$/);
    // Several of the runner's 20 ms halt checks pass: HLT with IF=1 is not an end.
    await new Promise((r) => setTimeout(r, 300));
    g.kill();
    const r = await g.done;
    expect(r.exitReason).toBe('terminated');
    expect(r.stderr).toMatch(/exit reason=terminated code=13/);
  });
});
