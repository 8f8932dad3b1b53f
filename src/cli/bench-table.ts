// The table `muxvisor bench` prints for a person: figure, value, unit, target, whether it is
// met, and what the figure means (last, so a long line wraps without breaking the columns).

import { paint } from '../util/color.ts';
import type { Figure } from './bench-figures.ts';

/** A number with about three significant digits, no exponent. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return String(Number(v.toPrecision(3)));
}

export function formatValue(f: Figure): string {
  if (typeof f.value === 'number') return formatNumber(f.value);
  if (Array.isArray(f.value)) return f.value.map(formatNumber).join(', ');
  return f.value;
}

const OPS = { '<=': '≤', '>=': '≥', '=': '=' } as const;

export function formatTarget(f: Figure): string {
  if (!f.target) return '';
  const unit = f.unit ? ` ${f.unit}` : '';
  return `${OPS[f.target.op]} ${String(Number(f.target.value.toPrecision(3)))}${unit}${f.target.of ? ` (${f.target.of})` : ''}`;
}

const HEADERS = ['figure', 'value', 'unit', 'target', 'met', 'what it means'];

/** The table as text lines; `color`: mark met/unmet targets in green/red. */
export function benchTable(figures: Figure[], color = false): string {
  // A text figure (an error, why a module skipped) goes with its meaning: it would widen the value column.
  const rows = figures.map((f) => {
    const text = typeof f.value === 'string';
    return [f.name, text ? '-' : formatValue(f), f.unit, formatTarget(f), f.met === undefined ? '' : f.met ? 'yes' : 'NO', text ? `${f.meaning}: ${f.value}` : f.meaning];
  });
  const widths = HEADERS.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const cell = (text: string, c: number): string => (c === 1 ? text.padStart(widths[c]) : c === HEADERS.length - 1 ? text : text.padEnd(widths[c]));
  const line = (r: string[], paintMet = false): string =>
    r
      .map((t, c) => {
        const s = cell(t, c);
        return paintMet && c === 4 && t ? paint(color, t === 'yes' ? 'green' : 'red', s) : s;
      })
      .join('  ')
      .trimEnd();
  const withTarget = figures.filter((f) => f.met !== undefined);
  const met = withTarget.filter((f) => f.met).length;
  return [
    line(HEADERS),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(r, true)),
    '',
    `${met} of ${withTarget.length} targets met. Units: throughput MB/s (10^6 bytes), trapped accesses µs, in-process MUX work ns; --json gives the raw figures.`,
  ].join('\n');
}
