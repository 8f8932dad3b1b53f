// The import graph of the project's TypeScript sources, and the cycles in it, between files
// and between folders. Edges: static `import`/`export ... from` (type-only ones too: a type
// that runs back up is a layering cycle all the same) and `import('...')` with a literal
// string, in code and in type positions. Relative specifiers only; packages are not ours.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/** File (relative to the root, `/`-separated) -> the files it imports. */
export type Graph = Map<string, Set<string>>;

function tsFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) tsFiles(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The relative module specifiers one source text imports. */
export function importSpecifiers(fileName: string, text: string): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const visit = (n: ts.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) out.push(n.moduleSpecifier.text);
    else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0] && ts.isStringLiteralLike(n.arguments[0])) out.push(n.arguments[0].text);
    else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) out.push(n.argument.literal.text);
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out.filter((s) => s.startsWith('./') || s.startsWith('../'));
}

/** The graph of every .ts file under `dirs` (relative to `root`). */
export function importGraph(root: string, dirs: readonly string[]): Graph {
  const g: Graph = new Map();
  for (const file of dirs.flatMap((d) => tsFiles(join(root, d)))) {
    const deps = new Set<string>();
    for (const spec of importSpecifiers(file, readFileSync(file, 'utf8'))) {
      // `./x.js` names `./x.ts` under NodeNext resolution.
      deps.add(relative(root, resolve(dirname(file), spec)).replace(/\.js$/, '.ts').split('\\').join('/'));
    }
    g.set(relative(root, file).split('\\').join('/'), deps);
  }
  return g;
}

/** The folder of a file: `src/<first segment>` under src/ (a file directly in src/ is its own), else the top folder (machines, policies). */
export function folderOf(file: string): string {
  const parts = file.split('/');
  return parts[0] === 'src' ? `src/${parts[1]}` : parts[0];
}

/** The folder graph, each edge with one file import that makes it (for the message). */
export function folderGraph(files: Graph): { graph: Graph; because: Map<string, string> } {
  const graph: Graph = new Map();
  const because = new Map<string, string>();
  for (const [from, deps] of files) {
    for (const to of deps) {
      const a = folderOf(from);
      const b = folderOf(to);
      if (a === b) continue;
      if (!graph.has(a)) graph.set(a, new Set());
      graph.get(a)!.add(b); // created on the line above
      if (!because.has(`${a} ${b}`)) because.set(`${a} ${b}`, `${from} imports ${to}`);
    }
  }
  return { graph, because };
}

/**
 * The cycles of a graph: for every node on one, the shortest cycle through it, each cycle
 * once (rotated to start at its smallest node). Returned as node lists, first node repeated
 * at the end.
 */
export function cycles(g: Graph): string[][] {
  const found = new Map<string, string[]>();
  for (const start of [...g.keys()].sort()) {
    const prev = new Map<string, string>();
    const queue = [start];
    let cycle: string[] | null = null;
    while (queue.length > 0 && cycle === null) {
      const n = queue.shift()!; // length checked by the loop
      for (const m of [...(g.get(n) ?? [])].sort()) {
        if (m === start) {
          cycle = [n];
          for (let x = n; x !== start; ) cycle.unshift((x = prev.get(x)!)); // every node but start has a prev
          break;
        }
        if (!prev.has(m)) (prev.set(m, n), queue.push(m));
      }
    }
    if (cycle === null) continue;
    const least = cycle.indexOf([...cycle].sort()[0]);
    const rotated = [...cycle.slice(least), ...cycle.slice(0, least)];
    found.set(rotated.join(' '), [...rotated, rotated[0]]);
  }
  return [...found.values()];
}
