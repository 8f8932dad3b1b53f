// Whether output to a stream may carry ANSI colour: only on a terminal, and never when
// NO_COLOR is set to anything but the empty string (https://no-color.org).

export function noColorRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.NO_COLOR !== undefined && env.NO_COLOR !== '';
}

export function colorEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !noColorRequested(env);
}

const CODES = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;

/** `text` in a colour when `on`, else unchanged. */
export function paint(on: boolean, color: keyof typeof CODES, text: string): string {
  return on ? `\x1b[${CODES[color]}m${text}\x1b[0m` : text;
}
