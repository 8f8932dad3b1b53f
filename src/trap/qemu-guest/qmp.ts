// A minimal QMP client (QEMU Machine Protocol: one JSON object per line): capabilities
// negotiation, then `execute` commands in order. Used on a Linux guest's own QEMU to find the
// proxied function's interrupt (query-pci) and the interrupt controllers (qom-list/qom-get).

import { connect, type Socket } from 'node:net';

export class QmpError extends Error {
  constructor(message: string) {
    super(`qmp: ${message}`);
    this.name = 'QmpError';
  }
}

interface Waiter {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class QmpClient {
  private rx = '';
  private readonly waiters: Waiter[] = [];
  private greeted: (() => void) | null = null;
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (s: string) => this.onData(s));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w.reject(new QmpError(`connection closed before '${w.command}' was answered`));
    });
  }

  /** Connect to a QMP server socket (retrying while QEMU creates it) and negotiate capabilities. */
  static async connect(path: string, timeoutMs = 10_000): Promise<QmpClient> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        const c = new QmpClient(socket);
        await new Promise<void>((resolve, reject) => {
          c.greeted = resolve;
          setTimeout(() => reject(new QmpError(`no greeting on ${path}`)), Math.max(100, until - Date.now())).unref();
        });
        await c.execute('qmp_capabilities');
        return c;
      } catch (err) {
        if (Date.now() > until) throw new QmpError(`cannot connect to ${path}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closed) return Promise.reject(new QmpError(`connection closed; '${command}' not sent`));
    return new Promise<T>((resolve, reject) => {
      this.waiters.push({ command, resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(s: string): void {
    this.rx += s;
    let nl: number;
    while ((nl = this.rx.indexOf('\n')) >= 0) {
      const line = this.rx.slice(0, nl).trim();
      this.rx = this.rx.slice(nl + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let m: { QMP?: unknown; return?: unknown; error?: { desc?: string }; event?: string };
    try {
      m = JSON.parse(line);
    } catch {
      return; // not QMP: ignore
    }
    if (m.QMP !== undefined) {
      this.greeted?.();
      this.greeted = null;
      return;
    }
    if (m.event !== undefined) return; // asynchronous events are not waited for here
    const w = this.waiters.shift();
    if (!w) return;
    if (m.error) w.reject(new QmpError(`${w.command}: ${m.error.desc ?? JSON.stringify(m.error)}`));
    else w.resolve(m.return);
  }
}
