// The watchdog (src/mux/engine-watchdog.ts), called directly on machines/sim (deadline 2 ms)
// with the real SimDevice, in virtual time: the unsafe span, the deadline, a deadline met
// while a device operation is in flight.
import { describe, expect, it } from 'vitest';
import { simRig } from './helpers/engine-parts.ts';

describe('engine watchdog', () => {
  it('times the span out of the safe states and stops the deadline when the chart is back', () => {
    const rig = simRig(['a']);
    rig.parts.watchdog.step('READ');
    expect(rig.core.unsafeSince).toBe(0);
    rig.vt.advance(1500);
    rig.parts.watchdog.step('DRQ');
    rig.parts.watchdog.step('IDLE');
    expect(rig.core.counters.maxUnsafeNs).toBe(1500);
    expect(rig.core.unsafeSince).toBe(-1);
    expect(rig.vt.fireNext()).toBe(false); // no deadline left armed
  });

  it('cuts the owner off at the deadline: faulted, told, the reset path run, the chart safe again', () => {
    const rig = simRig(['a', 'b']);
    const a = rig.guest('a');
    rig.core.owner = a;
    rig.parts.watchdog.step('READ');
    expect(rig.vt.fireNext()).toBe(true);
    expect(rig.vt.now).toBe(2_000_000);
    expect(a.stats.faulted).toBe(true);
    expect(rig.core.owner).toBe(null);
    expect(rig.core.counters).toMatchObject({ faults: 1, resets: 1 });
    expect(rig.resets).toEqual(['a: watchdog: out of a safe state (cmd.busyRead) longer than 2000000 ns']);
    expect(rig.core.stepper.safe()).toBe(true);
    expect(rig.core.counters.maxUnsafeNs).toBe(2_000_000);
  });

  it('looks again after recheckNs when the deadline comes during a device operation', () => {
    const rig = simRig(['a']);
    const a = rig.guest('a');
    rig.core.owner = a;
    rig.parts.watchdog.step('WRITE');
    rig.core.busy = true; // an asynchronous device call is in flight
    expect(rig.vt.fireNext()).toBe(true);
    expect(a.stats.faulted).toBe(false);
    rig.core.busy = false;
    expect(rig.vt.fireNext()).toBe(true);
    expect(rig.vt.now).toBe(2_000_000 + rig.core.recheckNs);
    expect(a.stats.faulted).toBe(true);
  });

  it('runs the reset path with nobody to cut off when the chart is stuck without an owner', () => {
    const rig = simRig(['a']);
    rig.parts.watchdog.step('DMA');
    expect(rig.vt.fireNext()).toBe(true);
    expect(rig.core.counters).toMatchObject({ faults: 0, resets: 1 });
    expect(rig.core.stepper.safe()).toBe(true);
  });
});
