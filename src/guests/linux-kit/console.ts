// The console lines of the Linux guest kit (native/linux-guest/init): MUXVISOR-INIT,
// MUXVISOR-INFO key=value ..., MUXVISOR-RESULT WORKLOAD ok|fail ...

/** What a run printed: the words after MUXVISOR-RESULT and the MUXVISOR-INFO key=value pairs. */
export interface KitRun {
  result: string[] | null;
  info: Map<string, string>;
}

/** The result words and info pairs of a console (lines, \r removed). */
export function parseKitConsole(lines: readonly string[]): KitRun {
  const run: KitRun = { result: null, info: new Map() };
  for (const line of lines) {
    const res = /MUXVISOR-RESULT (.*)$/.exec(line);
    if (res) run.result = res[1].trim().split(/\s+/);
    const info = /MUXVISOR-INFO (.*)$/.exec(line);
    if (info) for (const m of info[1].matchAll(/([\w+]+)=(\S+)/g)) run.info.set(m[1], m[2]);
  }
  return run;
}

/** Where a kit guest is, from its console lines (the disk workload's phase=... lines): for a live view. */
export type KitPhase = 'booting' | 'init' | 'disk' | 'mkfs' | 'files' | 'verify' | 'raw' | 'done' | 'failed';

export function kitPhase(lines: readonly string[]): KitPhase {
  let phase: KitPhase = 'booting';
  for (const l of lines) {
    const at = l.indexOf('MUXVISOR-');
    if (/Kernel panic/.test(l)) return 'failed';
    if (at < 0) continue;
    const rest = l.slice(at);
    if (rest.startsWith('MUXVISOR-RESULT')) return / ok\b/.test(rest) ? 'done' : 'failed';
    if (rest.startsWith('MUXVISOR-INIT')) phase = 'init';
    const m = /^MUXVISOR-INFO \S+ phase=(\w+)/.exec(rest);
    if (m && ['mkfs', 'files', 'verify', 'raw'].includes(m[1])) phase = m[1] as KitPhase;
    else if (/^MUXVISOR-INFO \S+ dev=/.test(rest) && phase === 'init') phase = 'disk';
  }
  return phase;
}
