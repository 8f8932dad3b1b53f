// IRQ routing: the device's line goes to the owner's virtual IRQ only. A line already up when
// a guest gets the device is the previous owner's (stale) and is not delivered. With the
// definition's reraiseIrq, a guest that lost the device with its own interrupt pending sees
// it raised again when it regains the device, until its next access. Edges during a context
// replay are not delivered. A classifyIrq event moves the chart.

import type { EngineCore, GuestRec } from './engine-core.ts';

export class IrqRouter {
  constructor(private readonly c: EngineCore) {}

  /** The device's IRQ edge (DeviceEdges.irq.set). */
  onDeviceIrq(level: boolean): void {
    const c = this.c;
    if (level && !c.deviceIrq) c.irqRaisedBy = c.replaying ? null : c.owner;
    if (!level) c.irqRaisedBy = null;
    c.deviceIrq = level;
    if (!level) c.staleIrq = false;
    const o = c.owner;
    if (o && !o.reraised && !c.staleIrq && !c.replaying) this.setGuestIrq(o, level);
    const ev = c.def.classifyIrq?.(level);
    if (ev != null) {
      c.parts.watchdog.step(ev);
      if (c.depth === 0 && !c.busy) c.parts.arbiter.kick();
    }
  }

  /** A guest's virtual line, told to its link only when it changes. */
  setGuestIrq(g: GuestRec, level: boolean): void {
    if (g.vIrq === level) return;
    g.vIrq = level;
    try {
      g.link.setIrq(this.c.irqLine, level);
    } catch (err) {
      this.c.log.warn({ err, guest: g.link.id }, 'setIrq failed');
    }
  }

  /** `g` owns the device with its context loaded: what its line shows now. */
  granted(g: GuestRec): void {
    const c = this.c;
    // A line up now was raised before the grant (or by the replay): not this guest's interrupt.
    c.staleIrq = c.deviceIrq;
    if (c.def.reraiseIrq && g.irqPendingAtRelease) {
      g.reraised = true;
      this.setGuestIrq(g, true);
    } else this.setGuestIrq(g, c.deviceIrq && !c.staleIrq);
    g.irqPendingAtRelease = false;
  }

  /** `g` loses the device: its line goes down; remember whether its own interrupt was pending. */
  released(g: GuestRec): void {
    const c = this.c;
    // Only the guest whose command raised the line has an interrupt pending: a line that was
    // already up when g got the device (another guest's, e.g. after a PIO data-in block whose
    // status was never read) re-raised to g would end g's next wait for its own completion.
    g.irqPendingAtRelease = c.deviceIrq && c.irqRaisedBy === g;
    g.reraised = false;
    this.setGuestIrq(g, false);
  }

  /** The owner runs an access: a re-raised line has been seen (its ISR runs), follow the device again. */
  ownerAccess(g: GuestRec): void {
    if (!g.reraised) return;
    g.reraised = false;
    this.setGuestIrq(g, this.c.deviceIrq && !this.c.staleIrq);
  }
}
