// The qtest client against a real QEMU: protocol, pipelining, IRQ lines, errors, cleanup.

import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QemuExitedError, QemuMissingError, QtestClient, QtestCommandError } from '../src/backends/qtest.ts';
import { makeImage, qemuMissingReason } from './helpers/qemu.ts';
import { titled } from './helpers/requires.ts';

const missing = qemuMissingReason();

describe.skipIf(missing !== null)(titled('qtest client on a real QEMU', missing), () => {
  let image: { path: string; dispose: () => void };
  let qemu: QtestClient;

  beforeAll(async () => {
    image = makeImage(2048);
    qemu = await QtestClient.start({ image: image.path });
  });
  afterAll(async () => {
    await qemu?.close();
    image?.dispose();
  });

  it('reads the PIIX3 IDE identity at 00:01.1 through 0xCF8/0xCFC', async () => {
    expect(await qemu.pciConfigRead(1, 1, 0x00, 2)).toBe(0x8086);
    expect(await qemu.pciConfigRead(1, 1, 0x02, 2)).toBe(0x7010);
    expect((await qemu.pciConfigRead(1, 1, 0x08, 4)) >>> 8).toBe(0x010180);
    // 00:00.0 is the i440FX host bridge: a different answer proves the address is decoded.
    expect(await qemu.pciConfigRead(0, 0, 0x00, 4)).toBe(0x1237_8086);
  });

  it('keeps concurrent config accesses paired (0xCF8 write right before its 0xCFC read)', async () => {
    const reads = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 ? qemu.pciConfigRead(0, 0, 0x00, 4) : qemu.pciConfigRead(1, 1, 0x00, 4))),
    );
    reads.forEach((v, i) => expect(v).toBe(i % 2 ? 0x1237_8086 : 0x7010_8086));
  });

  it('decodes the legacy IDE ports with firmware never run: no BAR4, I/O off, IDETIM 0', async () => {
    // Nothing programmed the function (-S, no BIOS), yet 0x1F7 answers: QEMU 7.2 always
    // decodes the legacy ports; only the bus master needs BAR4 and the command register.
    expect(await qemu.pciConfigRead(1, 1, 0x04, 2)).toBe(0); // PCI_COMMAND
    expect(await qemu.pciConfigRead(1, 1, 0x20, 4)).toBe(0x1); // BAR4: I/O, unassigned
    expect(await qemu.pciConfigRead(1, 1, 0x40, 2)).toBe(0); // IDETIM primary: decode bit 15 clear
    expect(await qemu.inb(0x1f7)).toBe(0x50); // DRDY | DSC
  });

  it('answers FAIL with a typed error naming the command, and keeps working', async () => {
    const err = await qemu.command('no_such_command 1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QtestCommandError);
    expect(String(err)).toContain("no_such_command 1");
    expect(String(err)).toContain('FAIL');
    expect(await qemu.inb(0x1f7)).toBe(0x50);
  });

  it('refuses malformed arguments before QEMU can assert on them', async () => {
    await expect(qemu.outb(0x1_0000, 1)).rejects.toBeInstanceOf(QtestCommandError);
    await expect(qemu.outw(0x1f0, 0x1_0000)).rejects.toBeInstanceOf(QtestCommandError);
    await expect(qemu.command('inb 1\ninb 2')).rejects.toBeInstanceOf(QtestCommandError);
    expect(await qemu.inb(0x1f7)).toBe(0x50);
  });

  it('round-trips QEMU RAM through b64write/b64read', async () => {
    const data = Uint8Array.from({ length: 3000 }, (_, i) => (i * 37 + 5) & 0xff);
    await qemu.writeMem(0x5000_00, data);
    expect(Buffer.from(await qemu.readMem(0x5000_00, data.length)).equals(Buffer.from(data))).toBe(true);
    await qemu.writel(0x6000, 0xdeadbeef);
    expect(await qemu.readl(0x6000)).toBe(0xdeadbeef);
  });

  it('separates async IRQ lines from pipelined answers', async () => {
    const seen: string[] = [];
    const off = qemu.onIrq((line, level) => seen.push(`${level ? 'raise' : 'lower'} ${line}`));
    // IDENTIFY DEVICE raises IRQ 14 when its data is ready; all of this is sent without waiting.
    const answers = await Promise.all([
      qemu.outb(0x1f6, 0xa0),
      qemu.outb(0x1f7, 0xec),
      qemu.inb(0x3f6), // alternate status: does not clear the IRQ
    ]);
    expect(answers[2] & 0x08).toBe(0x08); // DRQ
    expect(seen).toEqual(['raise 14']);
    expect(qemu.irqLevel(14)).toBe(true);
    const before = qemu.commandCount;
    const id = await qemu.inString(2, 0x1f0, 256);
    expect(qemu.commandCount - before).toBe(256);
    const model = Buffer.from(id.subarray(54, 94));
    model.swap16();
    expect(model.toString('latin1').trimEnd()).toBe('QEMU HARDDISK');
    // Reading the status register acknowledges the interrupt: the lower line comes before the answer.
    expect(await qemu.inb(0x1f7)).toBe(0x50);
    expect(seen).toEqual(['raise 14', 'lower 14']);
    off();
  });

  it('close() ends QEMU and leaves no socket directory', async () => {
    const other = await QtestClient.start({});
    const pid = other.pid!;
    const sock = other.argv[other.argv.indexOf('-qtest') + 1].replace(/^unix:/, '');
    expect(existsSync(dirname(sock))).toBe(false); // removed as soon as QEMU connected
    await other.close();
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    await expect(other.inb(0x1f7)).rejects.toThrow(/closed/);
  });

  it('reports QEMU exiting early with its stderr', async () => {
    const err = await QtestClient.start({ extraArgs: ['-no-such-option'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QemuExitedError);
    expect(String(err)).toContain('-no-such-option: invalid option');
  });

  it('reports QEMU dying under a pending command', async () => {
    const other = await QtestClient.start({});
    process.kill(other.pid!, 'SIGKILL');
    const err = await other.inb(0x1f7).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QemuExitedError);
    expect(String(err)).toContain('SIGKILL');
    await other.close();
  });
});

describe('qtest client without QEMU', () => {
  it('names the missing binary and its Debian package', async () => {
    const err = await QtestClient.start({ binary: 'qemu-system-does-not-exist' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QemuMissingError);
    expect(String(err)).toContain('qemu-system-does-not-exist');
    expect(String(err)).toContain('qemu-system-x86');
  });
});
