// A device that answers with promises (a remote device, QEMU over qtest, a MUX port that
// stalls a guest): requests on one connection are still served one at a time and in order,
// with the socket paused while one is pending; a failing device is counted and answered
// with a neutral value, and the guest stays connected; a guest that hangs up while its
// request is pending is closed without a reply.

import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import { SHM_ADDON } from '../src/channel/slot.ts';
import type { DevSize, Device } from '../src/device.ts';
import { SCR_DATA0, SCR_ID, SCRATCH_MAGIC, ScratchDevice } from '../src/devices/scratch.ts';
import { MPQEMU_CMD_BAR_READ, MPQEMU_CMD_BAR_WRITE, MPQEMU_CMD_PCI_CFGWRITE, MPQEMU_CMD_RET, MPQEMU_CMD_SYNC_SYSMEM, type MpqemuMessage } from '../src/trap/mpqemu/codec.ts';
import { MpqemuLink } from '../src/trap/mpqemu/link.ts';
import { mpqemuAddon, mpqemuAddonMissing } from '../src/trap/mpqemu/native.ts';
import { type MpqemuConnection, MpqemuServer } from '../src/trap/mpqemu/server.ts';
import { BufferMemory, IrqRecorder, makeEdges } from './helpers/qemu.ts';
import { missingFile, titled } from './helpers/requires.ts';

const skip = mpqemuAddonMissing() ?? missingFile(SHM_ADDON);
const IO_BASE = 0xc000, MMIO_BASE = 0xfebf0000;

/** The scratch device behind a delay; `fail` makes the next access throw. */
class SlowDevice implements Device {
  readonly inner = new ScratchDevice(makeEdges(new BufferMemory(0, 0x1000), new IrqRecorder()));
  fail = false;
  pending = 0;
  maxPending = 0;
  describe() {
    return this.inner.describe();
  }
  private later<T>(f: () => T): Promise<T> {
    this.pending++;
    this.maxPending = Math.max(this.maxPending, this.pending);
    return new Promise((resolve, reject) =>
      setTimeout(() => {
        this.pending--;
        if (this.fail) return (this.fail = false), reject(new Error('backend gone'));
        resolve(f());
      }, 3),
    );
  }
  read(region: number, offset: number, size: DevSize): Promise<number> {
    return this.later(() => this.inner.read(region, offset, size));
  }
  write(region: number, offset: number, size: DevSize, value: number): Promise<void> {
    return this.later(() => this.inner.write(region, offset, size, value));
  }
  reset(): void {
    this.inner.reset();
  }
  metrics() {
    return this.inner.metrics();
  }
}

describe.skipIf(skip)(titled('mpqemu: a device that answers with promises', skip), () => {
  const addon = skip ? null! : mpqemuAddon();
  let server: MpqemuServer;
  let peer: MpqemuLink;

  function connect(device: Device): { conn: MpqemuConnection; rets: Array<bigint | null>; until: (n: number) => Promise<void> } {
    const [ours, theirs] = addon.socketpair();
    server = new MpqemuServer();
    const conn = server.attach(ours, { name: 'slow', device });
    const rets: Array<bigint | null> = [];
    peer = new MpqemuLink(theirs, { message: (m) => void (m.cmd === MPQEMU_CMD_RET && rets.push(m.value)), malformed: () => {}, end: () => {} });
    const until = (n: number) =>
      new Promise<void>((resolve) => {
        const t = setInterval(() => rets.length >= n && (clearInterval(t), resolve()), 1);
      });
    for (const [addr, len, val] of [[0x10, 4, IO_BASE], [0x14, 4, MMIO_BASE], [0x04, 2, 3]] as const) peer.send({ cmd: MPQEMU_CMD_PCI_CFGWRITE, addr, len, val });
    return { conn, rets, until };
  }
  const barMsg = (cmd: 4 | 5, addr: number, size: 1 | 2 | 4 | 8, memory: boolean, val = 0n): MpqemuMessage => ({ cmd, addr: BigInt(addr), size, memory, val });

  afterEach(() => {
    peer?.close();
    server?.close();
  });

  it('serves pipelined requests one at a time, in order, RAM updates included', async () => {
    const dev = new SlowDevice();
    const { conn, rets, until } = connect(dev);
    const ram = (createRequire(import.meta.url)(SHM_ADDON) as { memfd(n: string, s: number, seals: number): number }).memfd('ram', 0x10000, 7);
    // The proxy never pipelines requests, but nothing may go wrong if a peer does.
    peer.send(barMsg(MPQEMU_CMD_BAR_WRITE, IO_BASE + SCR_DATA0, 4, false, 0x1111n));
    peer.send(barMsg(MPQEMU_CMD_BAR_READ, IO_BASE + SCR_DATA0, 4, false));
    peer.send({ cmd: MPQEMU_CMD_SYNC_SYSMEM, gpas: [0x100000n], sizes: [0x10000n], offsets: [0n], fds: [ram] });
    addon.close(ram);
    peer.send(barMsg(MPQEMU_CMD_BAR_WRITE, IO_BASE + SCR_DATA0, 2, false, 0x2222n));
    peer.send(barMsg(MPQEMU_CMD_BAR_READ, IO_BASE + SCR_ID, 4, false));
    peer.send(barMsg(MPQEMU_CMD_BAR_WRITE, MMIO_BASE + 8, 8, true, 0x0807_0605_0403_0201n));
    peer.send(barMsg(MPQEMU_CMD_BAR_READ, MMIO_BASE + 8, 8, true));
    peer.send(barMsg(MPQEMU_CMD_BAR_READ, IO_BASE + SCR_DATA0, 4, false));
    await until(3 + 7);
    expect(rets.slice(3)).toEqual([0n, 0x1111n, 0n, BigInt(SCRATCH_MAGIC), 0n, 0x0807_0605_0403_0201n, 0x2222n]);
    expect(dev.maxPending).toBe(1);
    expect(conn.memory.sections()).toMatchObject([{ gpa: 0x100000, size: 0x10000 }]);
    expect(conn.closed).toBeNull();
  });

  it('a failing device access is counted and answered all-ones; the guest stays', async () => {
    const dev = new SlowDevice();
    const { conn, rets, until } = connect(dev);
    dev.fail = true;
    peer.send(barMsg(MPQEMU_CMD_BAR_READ, IO_BASE + SCR_ID, 2, false));
    peer.send(barMsg(MPQEMU_CMD_BAR_READ, IO_BASE + SCR_ID, 2, false));
    await until(5);
    expect(rets.slice(3)).toEqual([0xffffn, BigInt(SCRATCH_MAGIC & 0xffff)]);
    expect(conn.stats.deviceErrors).toBe(1);
    expect(server.counters.get('deviceError')).toBe(1);
    expect(conn.closed).toBeNull();
  });

  it('values cross as the unsigned bits of the access, whatever sign the device uses', async () => {
    const written: number[] = [];
    const signed: Device = {
      describe: () => new SlowDevice().describe(),
      read: (_r, _o, size) => (size === 4 ? -2 : -1), // all bits set but the lowest, as a signed int32
      write: (_r, _o, _s, v) => void written.push(v),
      reset: () => {},
      metrics: () => ({}),
    };
    const { rets, until } = connect(signed);
    peer.send(barMsg(MPQEMU_CMD_BAR_WRITE, IO_BASE + SCR_DATA0, 4, false, 0xfedc_ba98n));
    peer.send(barMsg(MPQEMU_CMD_BAR_WRITE, IO_BASE + SCR_DATA0, 1, false, 0x1ffn));
    peer.send(barMsg(MPQEMU_CMD_BAR_READ, IO_BASE + SCR_DATA0, 4, false));
    peer.send(barMsg(MPQEMU_CMD_BAR_READ, IO_BASE + SCR_DATA0, 2, false));
    peer.send(barMsg(MPQEMU_CMD_BAR_READ, MMIO_BASE, 8, true));
    await until(3 + 5);
    expect(written).toEqual([0xfedc_ba98, 0xff]);
    expect(rets.slice(5)).toEqual([0xffff_fffen, 0xffffn, 0xffff_fffe_ffff_fffen]);
  });

  it('a guest that hangs up with a request pending is closed, and no reply is attempted', async () => {
    const dev = new SlowDevice();
    const { conn, until } = connect(dev);
    await until(3);
    const closed = new Promise((r) => conn.once('close', r));
    peer.send(barMsg(MPQEMU_CMD_BAR_READ, IO_BASE + SCR_ID, 4, false));
    await new Promise((r) => setTimeout(r, 1)); // the read is pending in the device
    peer.close();
    await new Promise((r) => setTimeout(r, 20)); // the device answers into a socket that is gone
    expect(dev.pending).toBe(0);
    // The answer found the socket gone (EPIPE): the end of that guest, not a link failure.
    expect(await closed).toEqual({ reason: 'eof', error: undefined });
    expect(server.counters.get('linkError')).toBe(0);
    expect(server.counters.get('internalError')).toBe(0);
  });
});
