// JSON.parse with an error a person can act on: the line and column of the mistake and the
// line itself with a caret under it. V8 gives a position for some mistakes ("... in JSON at
// position 11") and none for others ("Unexpected token '}', "..." is not valid JSON"); then the
// position is found as the shortest prefix of the text that is no longer the start of some JSON.

const AT_POSITION = / in JSON at position (\d+)(?: \(line \d+ column \d+\))?$/;
const EXCERPT = /, (?:\.\.\.)?".*"(?:\.\.\.)? is not valid JSON$/s;
const END = 'Unexpected end of JSON input';

function errorOf(text: string): Error | null {
  try {
    JSON.parse(text);
    return null;
  } catch (e) {
    return e as Error;
  }
}

/** Whether `prefix` could still be continued into valid JSON (as far as V8's errors tell). */
function viablePrefix(prefix: string): boolean {
  const e = errorOf(prefix);
  if (e === null || e.message === END) return true;
  const at = AT_POSITION.exec(e.message);
  return at !== null && Number(at[1]) >= prefix.length; // a number or escape cut short
}

/** Offset of the character JSON.parse stumbles on in `text` (text.length: it ended too soon). */
export function jsonErrorOffset(text: string, message: string): number {
  const at = AT_POSITION.exec(message);
  if (at) return Number(at[1]);
  if (message === END) return text.trimEnd().length;
  // The shortest non-viable prefix ends with the offending character: viability only ever
  // goes from true to false as the prefix grows.
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (viablePrefix(text.slice(0, mid + 1))) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface JsonTextError {
  /** 1-based. */
  line: number;
  /** 1-based, in characters. */
  column: number;
  /** V8's message without its position or excerpt. */
  reason: string;
  /** The offending line, and a caret under the column. */
  excerpt: string;
}

export function locateJsonError(text: string, error: Error): JsonTextError {
  // Past the last character (the text ended too soon): point just after it, not at trailing blank lines.
  const offset = Math.min(jsonErrorOffset(text, error.message), text.trimEnd().length);
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const lineStart = before.lastIndexOf('\n') + 1;
  const column = offset - lineStart + 1;
  const lineEnd = text.indexOf('\n', lineStart);
  const source = text.slice(lineStart, lineEnd < 0 ? undefined : lineEnd).replace(/\r$/, '').replace(/\t/g, ' ');
  const reason = error.message.replace(AT_POSITION, '').replace(EXCERPT, '');
  return { line, column, reason, excerpt: `  ${source}\n  ${' '.repeat(column - 1)}^` };
}

/** Parse `text` from `file`; a syntax error becomes `FILE:LINE:COL: not valid JSON: REASON` and the line. */
export function parseJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const at = locateJsonError(text, e as Error);
    throw new JsonSyntaxError(file, at);
  }
}

export class JsonSyntaxError extends Error {
  constructor(
    readonly file: string,
    readonly at: JsonTextError,
  ) {
    super(`${file}:${at.line}:${at.column}: not valid JSON: ${at.reason}\n${at.excerpt}`);
    this.name = 'JsonSyntaxError';
  }
}
