// A client for QEMU's qtest line protocol (QEMU softmmu/qtest.c, "QTest Protocol"):
// QEMU runs with its CPU stopped (-S) and we drive its own device models through port
// I/O, physical-memory reads/writes and intercepted interrupt lines.
//
// Requests are one line each and are answered in order with `OK [value]`, `FAIL ...` or
// `ERR ...`; `IRQ raise N` / `IRQ lower N` lines may arrive at any time in between. So
// commands are pipelined through a FIFO of pending answers and IRQ lines are split off to
// listeners. QEMU g_assert()s on malformed numbers, so every argument is checked here
// before it is sent: a bad argument must be our typed error, never a QEMU abort.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export const QEMU_BINARY = 'qemu-system-x86_64';
/** The Debian package that ships QEMU_BINARY. */
export const QEMU_PACKAGE = 'qemu-system-x86';

export class QtestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QtestError';
  }
}

/** The QEMU binary is not installed (or not executable). */
export class QemuMissingError extends QtestError {
  constructor(readonly binary: string) {
    super(`qtest: ${binary} not found in PATH; install the Debian package ${QEMU_PACKAGE} (apt-get install ${QEMU_PACKAGE})`);
    this.name = 'QemuMissingError';
  }
}

/** QEMU exited (or never connected); carries the tail of its stderr. */
export class QemuExitedError extends QtestError {
  constructor(
    readonly code: number | null,
    readonly signal: string | null,
    readonly stderr: string,
    context: string,
  ) {
    const how = signal ? `signal ${signal}` : `code ${code}`;
    super(`qtest: QEMU exited (${how}) ${context}${stderr ? `; stderr: ${stderr.trim()}` : ''}`);
    this.name = 'QemuExitedError';
  }
}

/** QEMU answered a command with FAIL/ERR, or we refused to send a malformed one. */
export class QtestCommandError extends QtestError {
  constructor(
    readonly command: string,
    readonly response: string,
  ) {
    super(`qtest: command '${command}' failed: ${response}`);
    this.name = 'QtestCommandError';
  }
}

/** The client was closed while a command was pending or after close(). */
export class QtestClosedError extends QtestError {
  constructor(readonly command: string) {
    super(`qtest: client closed; command '${command}' not answered`);
    this.name = 'QtestClosedError';
  }
}

export interface QtestOptions {
  /** Raw disk image attached as the primary master IDE drive (`-drive if=ide,format=raw`). */
  image?: string;
  /** Binary name or path; default qemu-system-x86_64. */
  binary?: string;
  /** Guest RAM in MiB (the DMA bounce area lives there); default 128. */
  memoryMiB?: number;
  /** Extra QEMU arguments, appended as-is. */
  extraArgs?: string[];
  /** QOM path whose gpio-in lines are intercepted (`IRQ raise/lower N`); null for none. Default 'ioapic'. */
  interceptIrq?: string | null;
  /** How long QEMU may take to connect; default 10 s. */
  startTimeoutMs?: number;
  /** Descriptors QEMU inherits: the i-th as its fd 3 + i (an x-pci-proxy-dev socket: `fd=3`). */
  inheritFds?: number[];
  /**
   * Start with the CPU stopped (`-S`, the default). A NIC needs a running VM (frames do not
   * flow while it is stopped): pass false with a BIOS that only halts (../shared/NIC.md).
   */
  stopped?: boolean;
}

export type IrqListener = (line: number, level: boolean) => void;

interface Pending {
  command: string;
  resolve: (value: string) => void;
  reject: (err: Error) => void;
}

const STDERR_KEEP = 8192;
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kill QEMU children synchronously if the Node process exits without close(). */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

/** Resolve a binary name through PATH (or check a path); null when absent or not executable. */
export function findBinary(binary: string = QEMU_BINARY): string | null {
  const candidates = binary.includes('/') ? [binary] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, binary));
  for (const c of candidates) {
    try {
      accessSync(c, fsConstants.X_OK);
      return c;
    } catch {
      // not here; keep looking
    }
  }
  return null;
}

function checkInt(command: string, what: string, n: number, max: number): void {
  if (!Number.isInteger(n) || n < 0 || n > max) throw new QtestCommandError(command, `${what} ${n} outside 0..0x${max.toString(16)} (refused before sending)`);
}

const PORT_MAX = 0xffff;
const ADDR_MAX = Number.MAX_SAFE_INTEGER;
const WIDTH_MAX = { b: 0xff, w: 0xffff, l: 0xffff_ffff } as const;
type Width = keyof typeof WIDTH_MAX;
const WIDTH_OF_SIZE: Record<1 | 2 | 4, Width> = { 1: 'b', 2: 'w', 4: 'l' };

export class QtestClient {
  private readonly pending: Pending[] = [];
  private readonly irqListeners = new Set<IrqListener>();
  private readonly exitListeners = new Set<(err: QemuExitedError) => void>();
  private readonly levels = new Map<number, boolean>();
  private rx = '';
  private closed = false;
  private socketClosed = false;
  private readonly txLines: string[] = [];
  private exitError: QemuExitedError | null = null;
  private readonly exited: Promise<void>;
  /** Commands sent since start (for measurements). */
  commandCount = 0;

  private constructor(
    private readonly child: ChildProcess,
    private readonly socket: Socket,
    private readonly stderrTail: () => string,
    readonly argv: readonly string[],
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
    });
    const onExit = (code: number | null, signal: string | null) => {
      live.delete(child);
      this.exitError = new QemuExitedError(code, signal, this.stderrTail(), 'while the qtest client was open');
      this.failAll((p) => (this.closed ? new QtestClosedError(p.command) : this.exitError!));
      this.reportExit();
    };
    // QEMU may already have died between connecting and this constructor.
    if (child.exitCode !== null || child.signalCode !== null) onExit(child.exitCode, child.signalCode);
    else child.once('exit', onExit);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', () => {
      // An error is followed by 'close', which fails the pending commands.
    });
    socket.on('close', () => {
      this.socketClosed = true;
      // QEMU closing the socket usually means it is dying: wait briefly for its exit status
      // so the error says how it ended (and carries its stderr).
      const timer = setTimeout(() => {
        this.exitError ??= new QemuExitedError(null, null, this.stderrTail(), '(qtest socket closed while QEMU kept running)');
        this.failAll(() => this.exitError!);
        this.reportExit();
      }, 1000);
      void this.exited.then(() => clearTimeout(timer));
    });
  }

  /** Start QEMU with its CPU stopped and connect to its qtest socket. */
  static async start(options: QtestOptions = {}): Promise<QtestClient> {
    const binary = options.binary ?? QEMU_BINARY;
    const path = findBinary(binary);
    if (!path) throw new QemuMissingError(binary);
    if (options.image !== undefined && !existsSync(options.image)) throw new QtestError(`qtest: disk image ${options.image} does not exist`);
    installExitHook();

    // The socket lives in a private directory that is removed as soon as QEMU connected.
    const dir = mkdtempSync(join(tmpdir(), 'muxvisor-qtest-'));
    const sockPath = join(dir, 'qtest.sock');
    const args = [
      '-machine', 'pc', '-accel', 'tcg', ...(options.stopped === false ? [] : ['-S']), '-nodefaults', '-display', 'none',
      '-m', String(options.memoryMiB ?? 128),
      '-qtest', `unix:${sockPath}`, '-qtest-log', '/dev/null',
    ];
    // QEMU option values escape a comma by doubling it.
    if (options.image !== undefined) args.push('-drive', `file=${options.image.replaceAll(',', ',,')},if=ide,format=raw`);
    args.push(...(options.extraArgs ?? []));

    const server: Server = createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(sockPath, () => resolve());
      });
      // setpriv makes the kernel kill QEMU if we die without running exit hooks (SIGKILL, crash).
      const setpriv = findBinary('setpriv');
      const [cmd, argv] = setpriv ? [setpriv, ['--pdeathsig', 'SIGKILL', path, ...args]] : [path, args];
      const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe', ...(options.inheritFds ?? [])] });
      live.add(child);
      let stderr = '';
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (s: string) => {
        stderr = (stderr + s).slice(-STDERR_KEEP);
      });
      const stderrTail = () => stderr;

      const socket = await new Promise<Socket>((resolve, reject) => {
        const timeoutMs = options.startTimeoutMs ?? 10_000;
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new QtestError(`qtest: QEMU did not connect to ${sockPath} within ${timeoutMs} ms; stderr: ${stderr.trim()}`));
        }, timeoutMs);
        const onExit = (code: number | null, signal: string | null) => {
          clearTimeout(timer);
          live.delete(child);
          // Give the stderr pipe a moment to drain so the message names QEMU's complaint.
          setImmediate(() => reject(new QemuExitedError(code, signal, stderr, `before connecting to qtest (${[path, ...args].join(' ')})`)));
        };
        child.once('exit', onExit);
        child.once('error', (err) => {
          clearTimeout(timer);
          live.delete(child);
          reject(new QtestError(`qtest: cannot start ${path}: ${err.message}`));
        });
        server.once('connection', (sock) => {
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve(sock);
        });
      });
      const client = new QtestClient(child, socket, stderrTail, [path, ...args]);
      if (options.interceptIrq !== null) {
        try {
          await client.command(`irq_intercept_in ${options.interceptIrq ?? 'ioapic'}`);
        } catch (err) {
          await client.close();
          throw err;
        }
      }
      return client;
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** QEMU's process id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Listen to intercepted IRQ lines; returns the unsubscribe function. */
  onIrq(listener: IrqListener): () => void {
    this.irqListeners.add(listener);
    return () => this.irqListeners.delete(listener);
  }

  /**
   * Be told once when QEMU dies (or drops the qtest socket) while the client is open, not
   * after close(): a device reports it at once, not only at its next access. Returns the
   * unsubscribe function.
   */
  onExit(listener: (err: QemuExitedError) => void): () => void {
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  private reportExit(): void {
    if (this.closed || !this.exitError) return;
    const listeners = [...this.exitListeners];
    this.exitListeners.clear();
    for (const l of listeners) l(this.exitError);
  }

  /** Last level QEMU reported for an intercepted line (false before any report). */
  irqLevel(line: number): boolean {
    return this.levels.get(line) ?? false;
  }

  /**
   * Send one raw protocol line; resolves with the text after `OK` (may be empty).
   * Commands are pipelined: several may be outstanding; answers come back in order.
   */
  command(line: string): Promise<string> {
    if (this.closed) return Promise.reject(new QtestClosedError(line));
    if (this.exitError) return Promise.reject(this.exitError);
    if (line.includes('\n') || line.includes('\r')) return Promise.reject(new QtestCommandError(line, 'newline inside a command (refused before sending)'));
    return new Promise((resolve, reject) => {
      this.pending.push({ command: line, resolve, reject });
      this.commandCount++;
      // After the socket closed the command stays pending until QEMU's exit fails it.
      if (!this.socketClosed) this.send(line);
    });
  }

  /** Lines queued in one tick go out in one write (a pipelined `rep insw` is 256 lines). */
  private send(line: string): void {
    this.txLines.push(line);
    if (this.txLines.length === 1) {
      queueMicrotask(() => {
        const text = this.txLines.join('\n') + '\n';
        this.txLines.length = 0;
        if (!this.socketClosed) this.socket.write(text, 'latin1');
      });
    }
  }

  private onData(chunk: string): void {
    const text = this.rx + chunk;
    let start = 0;
    let nl: number;
    while ((nl = text.indexOf('\n', start)) >= 0) {
      this.onLine(text.slice(start, text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl));
      start = nl + 1;
    }
    this.rx = text.slice(start);
  }

  private onLine(line: string): void {
    const irq = /^IRQ (raise|lower) (\d+)$/.exec(line);
    if (irq) {
      const n = Number(irq[2]);
      const level = irq[1] === 'raise';
      this.levels.set(n, level);
      for (const l of this.irqListeners) l(n, level);
      return;
    }
    const p = this.pending.shift();
    if (!p) return; // an answer nobody asked for: QEMU only answers requests, so ignore it
    if (line === 'OK' || line.startsWith('OK ')) p.resolve(line.slice(2).trim());
    else p.reject(new QtestCommandError(p.command, line));
  }

  private failAll(errFor: (p: Pending) => Error): void {
    for (const p of this.pending.splice(0)) p.reject(errFor(p));
  }

  private async inX(w: Width, port: number): Promise<number> {
    const cmd = `in${w} 0x${port.toString(16)}`;
    checkInt(cmd, 'port', port, PORT_MAX);
    return (parseValue(cmd, await this.command(cmd)) & WIDTH_MAX[w]) >>> 0;
  }

  // async so that a refused argument is a rejection, never a synchronous throw; the
  // command is still queued synchronously, which keeps pipelined commands in call order.
  private async outX(w: Width, port: number, value: number): Promise<void> {
    const cmd = `out${w} 0x${port.toString(16)} 0x${value.toString(16)}`;
    checkInt(cmd, 'port', port, PORT_MAX);
    checkInt(cmd, 'value', value, WIDTH_MAX[w]);
    await this.command(cmd);
  }

  inb(port: number): Promise<number> { return this.inX('b', port); }
  inw(port: number): Promise<number> { return this.inX('w', port); }
  inl(port: number): Promise<number> { return this.inX('l', port); }
  outb(port: number, value: number): Promise<void> { return this.outX('b', port, value); }
  outw(port: number, value: number): Promise<void> { return this.outX('w', port, value); }
  outl(port: number, value: number): Promise<void> { return this.outX('l', port, value); }

  /** Port read of a width in bytes. */
  in(size: 1 | 2 | 4, port: number): Promise<number> { return this.inX(WIDTH_OF_SIZE[size], port); }
  out(size: 1 | 2 | 4, port: number, value: number): Promise<void> { return this.outX(WIDTH_OF_SIZE[size], port, value); }

  /** `rep ins` emulated by pipelining `count` port reads; little-endian elements. */
  async inString(size: 1 | 2 | 4, port: number, count: number): Promise<Uint8Array> {
    const reads: Promise<number>[] = [];
    for (let i = 0; i < count; i++) reads.push(this.in(size, port));
    const values = await Promise.all(reads);
    const out = new Uint8Array(count * size);
    const view = new DataView(out.buffer);
    values.forEach((v, i) => (size === 1 ? view.setUint8(i, v) : size === 2 ? view.setUint16(i * 2, v, true) : view.setUint32(i * 4, v, true)));
    return out;
  }

  /** `rep outs` emulated by pipelining port writes; data holds little-endian elements. */
  async outString(size: 1 | 2 | 4, port: number, data: Uint8Array): Promise<void> {
    if (data.length % size !== 0) throw new QtestCommandError(`out string 0x${port.toString(16)}`, `${data.length} bytes is not a multiple of ${size}`);
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const writes: Promise<void>[] = [];
    for (let i = 0; i < data.length; i += size) {
      const v = size === 1 ? view.getUint8(i) : size === 2 ? view.getUint16(i, true) : view.getUint32(i, true);
      writes.push(this.out(size, port, v));
    }
    await Promise.all(writes);
  }

  private async readX(w: Width, addr: number): Promise<number> {
    const cmd = `read${w} 0x${addr.toString(16)}`;
    checkInt(cmd, 'address', addr, ADDR_MAX);
    return (parseValue(cmd, await this.command(cmd)) & WIDTH_MAX[w]) >>> 0;
  }

  private async writeX(w: Width, addr: number, value: number): Promise<void> {
    const cmd = `write${w} 0x${addr.toString(16)} 0x${value.toString(16)}`;
    checkInt(cmd, 'address', addr, ADDR_MAX);
    checkInt(cmd, 'value', value, WIDTH_MAX[w]);
    await this.command(cmd);
  }

  readb(addr: number): Promise<number> { return this.readX('b', addr); }
  readw(addr: number): Promise<number> { return this.readX('w', addr); }
  readl(addr: number): Promise<number> { return this.readX('l', addr); }
  writeb(addr: number, value: number): Promise<void> { return this.writeX('b', addr, value); }
  writew(addr: number, value: number): Promise<void> { return this.writeX('w', addr, value); }
  writel(addr: number, value: number): Promise<void> { return this.writeX('l', addr, value); }

  /** Read QEMU guest-physical memory (`b64read`). */
  async readMem(addr: number, len: number): Promise<Uint8Array> {
    const cmd = `b64read 0x${addr.toString(16)} 0x${len.toString(16)}`;
    checkInt(cmd, 'address', addr, ADDR_MAX);
    // QEMU asserts on a zero length, so answer it here.
    if (len === 0) return new Uint8Array(0);
    checkInt(cmd, 'length', len, 0x1000_0000);
    const b64 = await this.command(cmd);
    const data = Buffer.from(b64, 'base64');
    if (data.length !== len) throw new QtestCommandError(cmd, `answered ${data.length} bytes, expected ${len}`);
    return new Uint8Array(data.buffer, data.byteOffset, data.length);
  }

  /** Write QEMU guest-physical memory (`b64write`). */
  async writeMem(addr: number, data: Uint8Array): Promise<void> {
    const cmd = `b64write 0x${addr.toString(16)} 0x${data.length.toString(16)}`;
    checkInt(cmd, 'address', addr, ADDR_MAX);
    if (data.length === 0) return;
    checkInt(cmd, 'length', data.length, 0x1000_0000);
    await this.command(`${cmd} ${Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64')}`);
  }

  /**
   * PCI configuration read through mechanism #1 (ports 0xCF8/0xCFC). Both port accesses
   * are queued back to back, so no other command of this client can come between them.
   */
  async pciConfigRead(dev: number, fn: number, reg: number, size: 1 | 2 | 4, bus = 0): Promise<number> {
    const [, value] = await Promise.all([this.outl(0xcf8, configAddress(bus, dev, fn, reg)), this.in(size, 0xcfc + (reg & 3))]);
    return value;
  }

  async pciConfigWrite(dev: number, fn: number, reg: number, size: 1 | 2 | 4, value: number, bus = 0): Promise<void> {
    await Promise.all([this.outl(0xcf8, configAddress(bus, dev, fn, reg)), this.out(size, 0xcfc + (reg & 3), value)]);
  }

  /** Stop QEMU (SIGTERM, which flushes its block devices; SIGKILL after 3 s) and wait for it. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.failAll((p) => new QtestClosedError(p.command));
      this.socket.end();
      if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
      await this.exited;
      clearTimeout(timer);
      this.socket.destroy();
      live.delete(this.child);
    }
    await this.exited;
  }
}

function parseValue(cmd: string, text: string): number {
  if (!/^0x[0-9a-fA-F]+$/.test(text)) throw new QtestCommandError(cmd, `unexpected answer 'OK ${text}'`);
  return Number.parseInt(text.slice(2), 16);
}

/** CONFIG_ADDRESS for mechanism #1: enable bit, bus, device, function, dword register. */
export function configAddress(bus: number, dev: number, fn: number, reg: number): number {
  if (bus > 0xff || dev > 31 || fn > 7 || reg > 0xff) throw new QtestCommandError('pci config', `bad address ${bus}:${dev}.${fn} reg 0x${reg.toString(16)}`);
  return (0x8000_0000 | (bus << 16) | (dev << 11) | (fn << 8) | (reg & 0xfc)) >>> 0;
}
