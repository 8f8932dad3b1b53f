// `muxvisor demo`: guests share one ATA disk through the MUX (or, with `--device nic`, one
// NE2000 with a virtual card each); a live per-guest table on a terminal, a summary table at
// the end; `--json` prints only the summary document.

import { Command, InvalidArgumentError, Option } from 'commander';
import { runDiskDemo, type DiskBackend, type DemoSummary } from '../demo/disk-demo.ts';
import { LiveBlock, formatTable, mib } from '../demo/table.ts';
import { guestLive, liveView } from '../demo/live-view.ts';
import { cliLogger, globalOptions, printJson } from './common.ts';
import { createLogger, type Logger } from '../log.ts';
import { formatOf } from '../log/writer.ts';

function positiveInt(what: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${what} must be a whole number >= 1, got "${v}"`);
    return n;
  };
}

function positiveNumber(v: string): number {
  const n = Number(v);
  if (!(n > 0)) throw new InvalidArgumentError(`seconds must be a number > 0, got "${v}"`);
  return n;
}

export function summaryTable(s: DemoSummary): string {
  const out: string[] = [];
  for (const d of s.devices) {
    out.push(`device ${d.id} (${d.kind}): ${d.switches} switches, ${d.unsafeSwitches} unsafe switches, ${d.resets} resets`);
    out.push(
      formatTable(
        ['guest', 'ops', 'MiB', 'errors', 'verified'],
        d.perGuest.map((g) => [g.guest, g.ops, mib(g.bytes), g.errors, g.verified ? 'yes' : 'NO']),
      ),
    );
  }
  return out.join('\n');
}

/** Success: every guest verified with no errors, and no switch outside a safe state. */
function demoOk(summary: DemoSummary): boolean {
  return summary.devices.every((d) => d.unsafeSwitches === 0 && d.perGuest.every((g) => g.verified && g.errors === 0));
}

/** `demo --device nic`: scripted NE2000 guests on one card (src/demo/nic-demo.ts). */
async function nicDemo(opts: { guests: number; seconds: number; backend?: string; trap: string; accessLog?: string; capture?: string }, json: boolean, logger: Logger): Promise<void> {
  const { runNicDemo, NIC_BACKENDS } = await import('../demo/nic-demo.ts');
  const { nicLiveView, nicSummaryTable } = await import('../demo/nic-live.ts');
  const backend = opts.backend ?? 'switch';
  if (!(NIC_BACKENDS as readonly string[]).includes(backend)) throw new Error(`--backend ${backend} is a disk backend: --device nic takes ${NIC_BACKENDS.join(' or ')}`);
  if (opts.capture !== undefined && backend === 'qemu') throw new Error('--capture works with our card (switch, udp, tap); QEMU can capture with its own filter-dump');
  if (opts.trap !== 'scripted') throw new Error('--device nic runs scripted guests only (--trap scripted)');
  if (opts.accessLog !== undefined) throw new Error('--access-log works with the disk demo; use muxvisor run --access-log with a config of NIC guests');
  const live = new LiveBlock(process.stderr);
  const result = await runNicDemo({
    guests: opts.guests,
    seconds: opts.seconds,
    backend: backend as 'switch' | 'udp' | 'tap' | 'qemu',
    capture: opts.capture,
    logger,
    onProgress: json || !live.enabled ? undefined : (g, t) => live.draw(nicLiveView(g, t, opts.seconds)),
  });
  live.clear();
  if (json) printJson(result.summary);
  else {
    const frames = result.progress.reduce((a, g) => a + g.sent, 0);
    process.stdout.write(nicSummaryTable(result.summary) + '\n');
    process.stdout.write(`${opts.guests} guests, backend ${backend}: ${(frames / opts.seconds).toFixed(0)} frames/s sent over ${opts.seconds} s${backend === 'udp' || backend === 'qemu' ? `, ${result.peerEchoes} echoed by the peer` : ''}\n`);
  }
  process.exitCode = demoOk(result.summary) ? 0 : 1;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('guests share one ATA disk through the MUX, each verifying its own partition (what `npm start` runs); --device nic: guests share one NE2000, each with its own MAC, exchanging and checking frames')
    .addOption(new Option('--device <device>', 'what the guests share').choices(['disk', 'nic']).default('disk'))
    .option('--guests <n>', 'number of guests', positiveInt('guests'), 4)
    .option('--seconds <s>', 'how long the scripted guests run (KVM guests make one full write/verify pass of their window)', positiveNumber, 4)
    .option('--policy <name>', 'arbitration policy (policies/<name>.ts or a module path)', 'round-robin')
    .addOption(new Option('--backend <backend>', 'the physical disk (model, nbd, qemu; default model) or, with --device nic, the wire (switch: guests only, udp: plus an echoing peer on loopback, tap: plus pings to the host of a network namespace, needs root; qemu: QEMU\'s ne2k_pci as the physical card, its netdev to the echoing peer; default switch)').choices(['model', 'nbd', 'qemu', 'switch', 'udp', 'tap']))
    .addOption(new Option('--mode <mode>', 'transfers the guests use').choices(['pio', 'dma', 'mixed']).default('mixed'))
    .addOption(
      new Option('--trap <trap>', 'how guests run: scripted in-process drivers, KVM guests, or unmodified Linux guests in QEMU (the guest kit; its disk over x-pci-proxy-dev)')
        .choices(['scripted', 'kvm', 'qemu'])
        .default('scripted'),
    )
    .addOption(new Option('--accel <accel>', 'with --trap qemu: the guests\' QEMU accelerator').choices(['tcg', 'kvm']))
    .option('--keep', 'with --trap qemu: keep the run folder (the guests\' consoles) and say where it is', false)
    .option('--capture <dir>', 'with --device nic: write the frames on the wire (DIR/wire.pcap) and each guest\'s own (DIR/GUEST.pcap) as pcap files')
    .option('--image <path>', 'raw image file to share (default: a temporary 64 MiB image)')
    .option('--access-log <file>', 'record every access and MUX event (.jsonl: JSON lines, .mpk: msgpack; see muxvisor log)')
    .action(async (opts: { device: 'disk' | 'nic'; guests: number; seconds: number; policy: string; capture?: string; backend?: string; mode: 'pio' | 'dma' | 'mixed'; trap: string; image?: string; accessLog?: string; accel?: 'tcg' | 'kvm'; keep: boolean }, cmd: Command) => {
      const { json, logLevel } = globalOptions(cmd);
      // The live table is the demo's output: logs stay at warn unless --log-level was given.
      const explicit = cmd.getOptionValueSourceWithGlobals('logLevel') === 'cli';
      const logger = explicit ? cliLogger(cmd) : createLogger({ level: logLevel === 'info' ? 'warn' : logLevel });
      if (opts.accessLog !== undefined) formatOf(opts.accessLog); // a bad extension is an error before anything starts
      if (opts.device === 'nic') return nicDemo(opts, json, logger);
      if (opts.capture !== undefined) throw new Error('--capture records network frames: it goes with --device nic');
      const backend = (opts.backend ?? 'model') as DiskBackend;
      if (!['model', 'nbd', 'qemu'].includes(backend)) throw new Error(`--backend ${backend} is a network backend: the disk demo takes model, nbd or qemu (or give --device nic)`);
      if (opts.trap === 'qemu') {
        if (opts.accessLog !== undefined) throw new Error('--access-log works with --trap scripted; use muxvisor run --access-log with a config of qemu guests');
        if (backend !== 'model') throw new Error('--trap qemu shares an image file through the ATA model (--backend model)');
        const { runQemuDisk } = await import('../demo/qemu-disk.ts');
        const live = new LiveBlock(process.stderr);
        const result = await runQemuDisk({
          guests: opts.guests,
          mode: opts.mode,
          policy: opts.policy,
          image: opts.image,
          accel: opts.accel,
          keep: opts.keep,
          logger,
          onProgress: json || !live.enabled ? undefined : (guests, t, devices) => live.draw(liveView(devices, guests, t)),
        });
        live.clear();
        if (json) printJson(opts.keep ? { ...result.summary, runFolder: result.dir } : result.summary);
        else {
          process.stdout.write(summaryTable(result.summary) + '\n');
          for (const g of result.guests) {
            const how = `${g.pio ? 'PIO' : 'DMA'}, ${g.mib} MiB window at LBA ${g.startLba}`;
            process.stdout.write(`  ${g.name} (${how}): ${g.problems.length ? `FAILED: ${g.problems.join('; ')}` : 'e2fsck clean, its files and raw pattern all there'}\n`);
          }
          process.stdout.write(`${opts.guests} Linux guests in ${(result.elapsedNs / 1e9).toFixed(1)} s${opts.keep ? `; consoles in ${result.dir}` : ''}\n`);
        }
        process.exitCode = demoOk(result.summary) ? 0 : 1;
        return;
      }
      if (opts.trap === 'kvm') {
        if (opts.accessLog !== undefined) throw new Error('--access-log works with --trap scripted (the KVM demo runs its guests elsewhere); use muxvisor run with a config of kvm guests');
        // Loaded on demand: the KVM demo needs the native runner.
        const { runKvmDisk } = await import('../demo/kvm-disk.ts');
        const live = new LiveBlock(process.stderr);
        const result = await runKvmDisk({
          guests: opts.guests,
          backend,
          mode: opts.mode,
          policy: opts.policy,
          image: opts.image,
          logger,
          onProgress: json || !live.enabled ? undefined : (guests, t, devices) => live.draw(liveView(devices, guests, t)),
        });
        live.clear();
        if (json) printJson(result.summary);
        else process.stdout.write(summaryTable(result.summary) + '\n');
        process.exitCode = demoOk(result.summary) ? 0 : 1;
        return;
      }
      const live = new LiveBlock(process.stderr);
      const result = await runDiskDemo({
        guests: opts.guests,
        seconds: opts.seconds,
        policy: opts.policy,
        backend,
        mode: opts.mode,
        image: opts.image,
        accessLog: opts.accessLog,
        logger,
        onProgress: json || !live.enabled ? undefined : (p, t, devices) => live.draw(liveView(devices, p.map(guestLive), t, opts.seconds)),
      });
      live.clear();
      if (json) printJson(result.summary);
      else {
        // Bytes are counted in the timed run only, not in the final verification pass.
        const total = result.results.reduce((a, r) => a + r.bytes, 0);
        process.stdout.write(summaryTable(result.summary) + '\n');
        process.stdout.write(
          `${opts.guests} guests, backend ${backend}, policy ${opts.policy}: ${(total / 1048576 / opts.seconds).toFixed(1)} MiB/s aggregate over ${opts.seconds} s ` +
            `(${(result.elapsedNs / 1e9).toFixed(1)} s with the final verification)\n`,
        );
        for (const r of result.results) if (r.firstError) process.stdout.write(`  ${r.firstError}\n`);
      }
      process.exitCode = demoOk(result.summary) ? 0 : 1;
    });
}
