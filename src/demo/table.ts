// Plain-text tables for the demo: a live view redrawn in place on a terminal, and the
// final summary. No log flood: one block of lines, rewritten.

/** Columns are right-aligned (numbers) except the first, and any whose header is in `leftAligned`. */
export function formatTable(headers: string[], rows: (string | number)[][], leftAligned: readonly string[] = []): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const left = headers.map((h, c) => c === 0 || leftAligned.includes(h));
  const line = (r: string[]): string =>
    r.map((cell, c) => (left[c] ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join('\n');
}

export function bar(fraction: number, width = 20): string {
  const f = Math.max(0, Math.min(1, fraction));
  const full = Math.round(f * width);
  return '[' + '#'.repeat(full) + '.'.repeat(width - full) + ']';
}

export function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}

/** Redraws a block of text in place on a TTY stream (cursor up + clear line). */
export class LiveBlock {
  private lines = 0;

  constructor(private readonly out: NodeJS.WriteStream) {}

  get enabled(): boolean {
    return this.out.isTTY === true;
  }

  draw(text: string): void {
    if (!this.enabled) return;
    let s = this.lines > 0 ? `\x1b[${this.lines}A` : '';
    const rows = text.split('\n');
    for (const r of rows) s += '\x1b[2K' + r + '\n';
    this.out.write(s);
    this.lines = rows.length;
  }

  clear(): void {
    if (!this.enabled || this.lines === 0) return;
    let s = `\x1b[${this.lines}A`;
    for (let i = 0; i < this.lines; i++) s += '\x1b[2K\n';
    s += `\x1b[${this.lines}A`;
    this.out.write(s);
    this.lines = 0;
  }
}
