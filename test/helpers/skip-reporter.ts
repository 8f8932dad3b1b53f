// A vitest reporter beside the default one: after the run it lists every skipped test with
// its reason and closes with one summary line per reason. With MUXVISOR_FORBID_SKIPS=1
// (.ci/run sets it: CI installs every tool) a skipped test fails the run, except one whose
// reason contains a word of MUXVISOR_ALLOW_SKIPS (comma-separated, e.g. "/dev/kvm"): for a
// machine that lacks what no package installs. CI does not set it; such skips are listed apart.
//
// A reason comes from the test's skip note (ctx.skip(why)) or from a title made by
// titled() in requires.ts ("... [skipped: why]"), on the test or on a suite around it.

import type { Reporter, TestCase, TestModule } from 'vitest/node';

const TITLE_REASON = /\[skipped: ([^\]]+)\]/;
const TITLE_REASONS = /\s*\[skipped: [^\]]+\]/g;

function reasonOf(test: TestCase): string {
  const r = test.result();
  if (r.state === 'skipped' && r.note) return r.note;
  const m = TITLE_REASON.exec(test.fullName);
  return m ? m[1] : 'no reason given';
}

export default class SkipReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const skipped: { name: string; file: string; why: string }[] = [];
    for (const mod of modules) {
      for (const test of mod.children.allTests()) {
        if (test.result().state !== 'skipped') continue;
        skipped.push({ name: test.fullName, file: mod.moduleId.replace(`${process.cwd()}/`, ''), why: reasonOf(test) });
      }
    }
    const out = process.stdout;
    if (skipped.length === 0) {
      out.write('\nskipped: none\n');
      return;
    }
    out.write(`\nSkipped tests (${skipped.length}):\n`);
    for (const s of skipped) out.write(`  skipped: ${s.file} > ${s.name.replace(TITLE_REASONS, '')} — ${s.why}\n`);
    const byReason = new Map<string, number>();
    for (const s of skipped) byReason.set(s.why, (byReason.get(s.why) ?? 0) + 1);
    out.write(`skipped: ${skipped.length} tests — ${[...byReason].map(([why, n]) => `${n} × ${why}`).join('; ')}\n`);
    if (process.env.MUXVISOR_FORBID_SKIPS === '1') {
      const allowed = (process.env.MUXVISOR_ALLOW_SKIPS ?? '').split(',').map((w) => w.trim()).filter(Boolean);
      const excused = skipped.filter((s) => allowed.some((w) => s.why.includes(w)));
      if (excused.length) out.write(`skipped: ${excused.length} tests allowed by MUXVISOR_ALLOW_SKIPS=${allowed.join(',')} (this machine cannot have it: .ci/run allows only what the kernel lacks)\n`);
      const bad = skipped.length - excused.length;
      if (bad > 0) {
        out.write(`FAIL: ${bad} tests skipped, and MUXVISOR_FORBID_SKIPS=1 (CI installs every tool: nothing may skip)\n`);
        process.exitCode = 1;
      }
    }
  }
}
