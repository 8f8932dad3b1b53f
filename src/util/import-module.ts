// Loading a user's module (a policy or a machine) by file URL, wherever it lives.

/**
 * `import(url)`, and for a TypeScript file outside a `"type": "module"` package tsx's own
 * tsImport, which loads it whatever its package says. There, plain import() fails: tsx
 * compiles a file with imports as CommonJS and Node 20's require() of the ES module it
 * really is fails with ERR_REQUIRE_CYCLE_MODULE; a file without imports reaches Node's
 * module-syntax detection untranslated, which fails on the first type annotation with a
 * SyntaxError. When tsImport fails too, its error (the TypeScript-aware one) is thrown.
 */
export async function importUserModule(url: string): Promise<{ default?: unknown }> {
  try {
    return (await import(url)) as { default?: unknown };
  } catch (err) {
    const scope = (err as { code?: string }).code === 'ERR_REQUIRE_CYCLE_MODULE' || (err instanceof SyntaxError && /\.[cm]?ts$/.test(url));
    if (!scope) throw err;
    const { tsImport } = await import('tsx/esm/api');
    return (await tsImport(url, import.meta.url)) as { default?: unknown };
  }
}

/**
 * The module's default export. A CommonJS module (`exports.default = x`, or TypeScript compiled
 * to CommonJS) arrives as `default: { default: x }`; that inner default is the one meant.
 */
export function defaultExport(mod: { default?: unknown }): unknown {
  const d = mod.default as { default?: unknown } | null | undefined;
  if (d && (typeof d === 'object' || typeof d === 'function') && 'default' in d && d.default !== undefined) return d.default;
  return d;
}
