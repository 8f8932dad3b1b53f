// Loading a user's module (a policy or a machine) by file URL, wherever it lives.

/**
 * `import(url)`, and for a TypeScript file outside a `"type": "module"` package (tsx then
 * compiles it as CommonJS, and Node 20's require() of the ES module it really is fails with
 * ERR_REQUIRE_CYCLE_MODULE) tsx's own tsImport, which loads it whatever its package says.
 */
export async function importUserModule(url: string): Promise<{ default?: unknown }> {
  try {
    return (await import(url)) as { default?: unknown };
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_REQUIRE_CYCLE_MODULE') throw err;
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
