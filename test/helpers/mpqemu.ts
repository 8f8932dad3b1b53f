// Helpers for the multi-process protocol tests: a guest QEMU under qtest whose
// x-pci-proxy-dev talks over a socketpair we made, QEMU's own remote (`-machine x-remote`)
// on another socketpair, and a relay that sits between the two, decoding, re-encoding and
// forwarding every message.

import { spawn, type ChildProcess } from 'node:child_process';
import { QtestClient, findBinary } from '../../src/backends/qtest.ts';
import { encodeMessage, type MpqemuMalformed, type MpqemuMessage } from '../../src/trap/mpqemu/codec.ts';
import { MpqemuLink } from '../../src/trap/mpqemu/link.ts';
import { mpqemuAddon } from '../../src/trap/mpqemu/native.ts';

/** Where the proxy sits on the guest's bus (00:05.0). */
export const PROXY_SLOT = 5;
export const GUEST_RAM_MIB = 64;

/** Guest QEMU (pc, TCG, stopped, qtest) with its RAM in a shared memfd and the proxy on fd 3 = `theirs`. */
export async function startGuest(theirs: number, id = 'proxy0'): Promise<QtestClient> {
  const q = await QtestClient.start({
    memoryMiB: GUEST_RAM_MIB,
    interceptIrq: null,
    inheritFds: [theirs],
    extraArgs: [
      '-object', `memory-backend-memfd,id=mem,size=${GUEST_RAM_MIB}M,share=on`,
      '-machine', 'memory-backend=mem',
      '-device', `x-pci-proxy-dev,id=${id},fd=3,addr=0x${PROXY_SLOT.toString(16)}`,
    ],
  });
  mpqemuAddon().close(theirs); // QEMU holds its copy
  return q;
}

export const cfgRead = (q: QtestClient, reg: number, size: 1 | 2 | 4 = 4): Promise<number> => q.pciConfigRead(PROXY_SLOT, 0, reg, size);
export const cfgWrite = (q: QtestClient, reg: number, size: 1 | 2 | 4, value: number): Promise<void> => q.pciConfigWrite(PROXY_SLOT, 0, reg, size, value);

/** 8-byte accesses: QtestClient has none, the protocol line has them. */
export async function readq(q: QtestClient, addr: number): Promise<bigint> {
  return BigInt(await q.command(`readq 0x${addr.toString(16)}`));
}
export async function writeq(q: QtestClient, addr: number, value: bigint): Promise<void> {
  await q.command(`writeq 0x${addr.toString(16)} 0x${value.toString(16)}`);
}

export interface RemoteQemu {
  child: ChildProcess;
  stderr(): string;
  exited: Promise<number | null>;
  kill(): void;
}

/** QEMU's own remote: `-machine x-remote` serving `device` (e.g. 'lsi53c895a') on fd 3 = `theirs`. */
export function spawnRemote(device: string, theirs: number): RemoteQemu {
  const qemu = findBinary('qemu-system-x86_64')!;
  const args = ['-machine', 'x-remote', '-nodefaults', '-display', 'none', '-device', `${device},id=rdev0`, '-object', 'x-remote-object,id=robj0,devid=rdev0,fd=3'];
  const setpriv = findBinary('setpriv');
  const [cmd, argv] = setpriv ? [setpriv, ['--pdeathsig', 'SIGKILL', qemu, ...args]] : [qemu, args];
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe', theirs] });
  mpqemuAddon().close(theirs);
  let err = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => (err = (err + s).slice(-4096)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stderr: () => err, exited, kill: () => child.kill('SIGKILL') };
}

export interface RelayRecord {
  from: 'guest' | 'remote';
  msg: MpqemuMessage;
  raw: Buffer;
  reencoded: Buffer;
  fds: number;
  at: bigint;
}

/**
 * Decodes every message from either side, re-encodes it, forwards the re-encoded bytes
 * (with the descriptors it carried) to the other side and keeps both byte strings.
 */
export class Relay {
  readonly records: RelayRecord[] = [];
  readonly errors: Array<{ from: string; err: MpqemuMalformed | Error }> = [];
  readonly ended: Promise<void>;
  private readonly guest: MpqemuLink;
  private readonly remote: MpqemuLink;

  constructor(guestFd: number, remoteFd: number) {
    let done!: () => void;
    this.ended = new Promise((r) => (done = r));
    const side = (from: 'guest' | 'remote', other: () => MpqemuLink) => ({
      message: (msg: MpqemuMessage, raw: Buffer) => {
        const { bytes, fds } = encodeMessage(msg);
        this.records.push({ from, msg, raw, reencoded: bytes, fds: fds.length, at: process.hrtime.bigint() });
        try {
          other().sendRaw(bytes, fds);
        } catch (err) {
          this.errors.push({ from, err: err as Error });
        }
        for (const fd of fds) mpqemuAddon().close(fd); // the kernel holds them for the peer now
      },
      malformed: (err: MpqemuMalformed) => {
        this.errors.push({ from, err });
        this.close();
        done();
      },
      end: (err: Error | null) => {
        if (err) this.errors.push({ from, err });
        this.close();
        done();
      },
    });
    this.guest = new MpqemuLink(guestFd, side('guest', () => this.remote));
    this.remote = new MpqemuLink(remoteFd, side('remote', () => this.guest));
  }

  close(): void {
    this.guest.close();
    this.remote.close();
  }
}
