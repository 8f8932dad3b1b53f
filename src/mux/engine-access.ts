// The owned access path: one access of the owner, in its form (whole, split into the single
// accesses it stands for, or refused: access-forms.ts), each unit translated for the guest
// (definition's translate.access), performed on the device (synchronously when the device
// answers synchronously), shadowed when it writes a context register, classified into a
// statechart event, its reply translated back. Afterwards the arbiter may hand the device on.

import { deniedReply, describeAccess, type Access, type Reply } from '../access.ts';
import type { DevSize } from '../device.ts';
import { planAccess, elementBytes, type Piece } from './access-forms.ts';
import type { Answer, MuxAccess } from './define.ts';
import { deviceAccess, isPromise, readLE, writeLE, type DeviceAnswer, type MaybePromise } from './device-io.ts';
import type { EngineCore, GuestRec } from './engine-core.ts';

export class OwnedAccess {
  constructor(private readonly c: EngineCore) {}

  /** Run one access of the owner; afterwards maybe hand the device on. */
  runOwned(g: GuestRec, region: number, offset: number, acc: Access, held = false): MaybePromise<Reply> {
    const c = this.c;
    c.ownerFresh = false;
    c.parts.irq.ownerAccess(g);
    // No closure per access unless an access log wants the chart around it.
    const before = c.recorder ? c.stateName() : '';
    const startNs = c.recorder ? c.clock() : 0;
    const r = this.runForm(g, region, offset, acc);
    if (isPromise(r)) {
      c.busy = true;
      return r.then(
        (reply) => {
          c.busy = false;
          if (c.recorder) this.recordRan(g, acc, before, startNs, held);
          this.afterAccess();
          return reply;
        },
        (err) => {
          c.busy = false;
          c.log.error({ err, guest: g.link.id }, 'device access failed');
          if (c.recorder) this.recordRan(g, acc, before, startNs, held);
          this.afterAccess();
          return deniedReply(acc, `device ${c.deviceId} failed: ${(err as Error).message}`);
        },
      );
    }
    if (c.recorder) this.recordRan(g, acc, before, startNs, held);
    this.afterAccess();
    return r;
  }

  private recordRan(g: GuestRec, acc: Access, before: string, startNs: number, held: boolean): void {
    const c = this.c;
    c.recorder!.ran(acc, { device: c.deviceId, owner: g.link.id, before, after: c.stateName(), startNs, held }); // the caller checked
  }

  /** After every owner access: progress for the others. */
  private afterAccess(): void {
    if (this.c.depth === 0) this.c.parts.arbiter.kick();
  }

  /** Run an access in its form: whole, as the single accesses it stands for, or refused (access-forms.ts). */
  private runForm(g: GuestRec, region: number, offset: number, acc: Access): MaybePromise<Reply> {
    const plan = planAccess(this.c.regs!, region, offset, acc);
    if (plan.kind === 'whole') return this.runUnit(g, this.unitAccess(region, offset, acc.size as DevSize, acc.dir, acc.dir === 'write' ? Number(acc.value ?? 0) : 0, acc.count ?? 1, acc.data));
    if (plan.kind === 'refuse') {
      g.stats.denials++;
      this.c.trace('denied', g, plan.why);
      this.c.log.warn({ guest: g.link.id, acc: describeAccess(acc), why: plan.why }, 'access refused: form');
      return deniedReply(acc, plan.why);
    }
    return this.runSplit(g, region, acc, plan.pieces, plan.count);
  }

  /** Every element's pieces in order, each a single access of its own; the reply assembled from theirs. */
  private runSplit(g: GuestRec, region: number, acc: Access, pieces: Piece[], count: number): MaybePromise<Reply> {
    const size = acc.size;
    const out = new Uint8Array(count * size);
    let failed: string | undefined;
    const total = count * pieces.length;
    const one = (k: number): MaybePromise<void> => {
      const i = Math.floor(k / pieces.length);
      const p = pieces[k % pieces.length];
      const value = acc.dir === 'write' ? readLE(elementBytes(acc, i), p.at, p.size) : 0;
      const r = this.runUnit(g, this.unitAccess(region, p.offset, p.size, acc.dir, value, 1, undefined));
      const keep = (x: Reply): void => {
        if (x.error) failed ??= x.error;
        if (acc.dir === 'read') writeLE(out, i * size + p.at, p.size, Number(x.value));
      };
      return isPromise(r) ? r.then(keep) : keep(r);
    };
    const reply = (): Reply => {
      if (failed) return deniedReply(acc, failed);
      if (acc.dir === 'write') return { value: 0 };
      if (count > 1) return { value: 0, data: out };
      return { value: size === 8 ? readLE64(out) : readLE(out, 0, size) };
    };
    for (let k = 0; k < total; k++) {
      const r = one(k);
      if (isPromise(r)) {
        let chain: Promise<void> = r;
        for (let j = k + 1; j < total; j++) chain = chain.then(() => one(j));
        return chain.then(reply);
      }
    }
    return reply();
  }

  private unitAccess(region: number, offset: number, size: DevSize, dir: 'read' | 'write', value: number, count: number, data: Uint8Array | undefined): MuxAccess {
    return { reg: this.c.regs!.at(region, offset, dir), region, offset, size, dir, value, count, data };
  }

  /** One single (or whole string) access: translated for the guest, then to the device. */
  private runUnit(g: GuestRec, macc: MuxAccess): MaybePromise<Reply> {
    const tr = this.c.def.translate;
    if (tr?.access) {
      const out = tr.access(macc, g.view);
      if (out) {
        if (Array.isArray(out)) return this.forwardAll(g, out, 0, { value: 0 });
        if ('answer' in out) return this.answered(g, macc, out);
        macc = out;
      }
    }
    return this.forward(g, macc);
  }

  /** Several device accesses for one guest access (a translation's rewrite): in order; the last one's reply. */
  private forwardAll(g: GuestRec, list: MuxAccess[], from: number, last: Reply): MaybePromise<Reply> {
    for (let i = from; i < list.length; i++) {
      const r = this.forward(g, list[i]);
      if (isPromise(r)) return r.then((rr) => this.forwardAll(g, list, i + 1, list[i].probe ? last : rr));
      if (!list[i].probe) last = r;
    }
    return last;
  }

  /** One access to the device, then its classification and reply translation. */
  private forward(g: GuestRec, macc: MuxAccess): MaybePromise<Reply> {
    const c = this.c;
    c.depth++;
    try {
      const r = deviceAccess(c.device!, macc); // access() checked the device is bound
      return isPromise(r) ? r.then((x) => this.finish(g, macc, x)) : this.finish(g, macc, r);
    } finally {
      c.depth--;
    }
  }

  private finish(g: GuestRec, macc: MuxAccess, answer: DeviceAnswer): Reply {
    const c = this.c;
    const value = answer.value;
    const reply: Reply = macc.dir === 'write' ? { value: 0 } : answer.data ? { value: 0, data: answer.data } : { value };
    if (macc.dir === 'write' && macc.reg && c.regs!.isContext(macc.reg)) {
      g.view.context.set(macc.reg.name, macc.value);
      c.deviceHolds.set(macc.reg.name, macc.value);
    }
    const ev = macc.event !== undefined ? macc.event : c.def.classify(macc, value);
    if (ev != null) c.parts.watchdog.step(ev);
    const tr = c.def.translate;
    if (tr?.reply && macc.dir === 'read') return fitReply(tr.reply(macc, reply, g.view) ?? reply, macc.size);
    return reply;
  }

  private answered(g: GuestRec, macc: MuxAccess, a: Answer): Reply {
    const c = this.c;
    const why = a.denied ?? a.answer.error;
    if (why) {
      g.stats.denials++;
      c.trace('denied', g, why);
      c.log.debug({ guest: g.link.id, why }, 'access refused by translation');
    }
    if (a.event != null) c.parts.watchdog.step(a.event);
    return macc.dir === 'read' ? fitReply(a.answer, macc.size) : a.answer;
  }
}

/**
 * A translated reply holds a value of the access's size: a hook's arithmetic (ORing a bit into
 * an all-ones 32-bit read gives -1) must not reach the guest, or the codec, as something else.
 */
export function fitReply(r: Reply, size: DevSize): Reply {
  if (typeof r.value !== 'number') return r;
  const v = Number.isFinite(r.value) ? r.value : 0;
  const fitted = size === 4 ? v >>> 0 : v & (size === 2 ? 0xffff : 0xff);
  return fitted === r.value ? r : { ...r, value: fitted };
}

/** A little-endian 64-bit value from 8 bytes. */
function readLE64(b: Uint8Array): bigint {
  return (BigInt(readLE(b, 4, 4)) << 32n) | BigInt(readLE(b, 0, 4));
}
