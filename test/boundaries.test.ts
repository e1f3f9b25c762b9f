/**
 * The import rule of DESIGN.md section 2, held by a test (as go-containerregistry's
 * depcheck_test.go holds its own): which part of src/ may import which, and no import cycle
 * between files. Every import counts: static, `import type`, `export ... from`, `import("...")`
 * and `import("...")` types, because a type-only edge ties the modules together just the same.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));

/** One import of a module: the specifier as written and the names it brings in. */
interface ImportSite {
  /** `undefined` when the module is computed (`import(name)`): the graph cannot follow it. */
  specifier: string | undefined;
  /** The imported or re-exported names (`*` for a namespace or `export *`); none for `import("x")`. */
  names: string[];
}

/** Whether a call loads a module: `import(x)`, `require(x)` or `createRequire(url)(x)`. */
function loadsModule(call: ts.CallExpression): boolean {
  const callee = call.expression;
  if (callee.kind === ts.SyntaxKind.ImportKeyword) return true;
  if (ts.isIdentifier(callee)) return callee.text === "require";
  return (
    ts.isCallExpression(callee) &&
    ts.isIdentifier(callee.expression) &&
    callee.expression.text === "createRequire"
  );
}

/** Every import site of a TypeScript source text. */
function importSites(fileName: string, text: string): ImportSite[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const sites: ImportSite[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const names: string[] = [];
      const clause = node.importClause;
      if (clause?.name) names.push("default");
      const bindings = clause?.namedBindings;
      if (bindings && ts.isNamespaceImport(bindings)) names.push("*");
      if (bindings && ts.isNamedImports(bindings)) {
        for (const el of bindings.elements) names.push((el.propertyName ?? el.name).text);
      }
      sites.push({ specifier: node.moduleSpecifier.text, names });
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      const clause = node.exportClause;
      const names =
        clause && ts.isNamedExports(clause)
          ? clause.elements.map((el) => (el.propertyName ?? el.name).text)
          : ["*"];
      sites.push({ specifier: node.moduleSpecifier.text, names });
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteral(node.moduleReference.expression)
    ) {
      sites.push({ specifier: node.moduleReference.expression.text, names: ["*"] });
    } else if (ts.isCallExpression(node) && loadsModule(node)) {
      const arg = node.arguments[0];
      sites.push({
        specifier: arg && ts.isStringLiteralLike(arg) ? arg.text : undefined,
        names: [],
      });
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      let qualifier = node.qualifier;
      while (qualifier && ts.isQualifiedName(qualifier)) qualifier = qualifier.left;
      sites.push({
        specifier: node.argument.literal.text,
        names: qualifier ? [qualifier.text] : [],
      });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return sites;
}

/** Every .ts file under `dir`, as paths relative to src/ with `/` separators. */
function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith(".ts")) out.push(relative(SRC, path).split(sep).join("/"));
  }
  return out;
}

/** The src/ file a relative specifier names (`./x.js` is `x.ts`; a folder is its index.ts). */
function resolveSpecifier(from: string, specifier: string): string | undefined {
  const base = resolve(SRC, dirname(from), specifier);
  const candidates = [base.replace(/\.js$/, ".ts"), base, join(base, "index.ts")];
  const found = candidates.find((c) => c.endsWith(".ts") && existsSync(c));
  return found === undefined ? undefined : relative(SRC, found).split(sep).join("/");
}

/** One file-to-file import inside src/. */
interface Edge {
  from: string;
  to: string;
  names: string[];
}

function importGraph(): {
  files: string[];
  edges: Edge[];
  unresolved: string[];
  computed: string[];
} {
  const files = sourceFiles(SRC);
  const edges: Edge[] = [];
  const unresolved: string[] = [];
  const computed: string[] = [];
  for (const from of files) {
    for (const site of importSites(from, readFileSync(join(SRC, from), "utf8"))) {
      if (site.specifier === undefined) computed.push(from);
      if (site.specifier === undefined || !site.specifier.startsWith(".")) continue;
      const to = resolveSpecifier(from, site.specifier);
      if (to === undefined) unresolved.push(`${from}: ${site.specifier}`);
      else edges.push({ from, to, names: site.names });
    }
  }
  return { files, edges, unresolved, computed };
}

/**
 * The neutral bottom: what every layer may import (abort signals and timeouts, bounded
 * parallel work, turns of the event loop, the root error class, optional-dependency
 * loading, bounded file reads, records without undefined keys). It imports only itself.
 */
const BOTTOM = [
  "abort.ts",
  "bounded-parallel.ts",
  "event-loop-turns.ts",
  "errors.ts",
  "optional-dependency.ts",
  "without-undefined.ts",
  "files/",
];

const under = (prefixes: readonly string[]) => (file: string) =>
  prefixes.some((p) => (p.endsWith("/") ? file.startsWith(p) : file === p));
const isBottom = under(BOTTOM);

interface Rule {
  name: string;
  /** The files the rule is about. */
  applies: (file: string) => boolean;
  /** Whether such a file may import `target`. */
  allows: (target: string) => boolean;
}

const RULES: Rule[] = [
  {
    name: "the neutral bottom imports only the neutral bottom",
    applies: isBottom,
    allows: isBottom,
  },
  {
    name: "image/ imports nothing else of regscan",
    applies: under(["image/"]),
    allows: (t) => t.startsWith("image/") || isBottom(t),
  },
  {
    name: "cache/stores/ imports nothing from registry/ or the rest of cache/ but the Store interface",
    applies: under(["cache/stores/"]),
    allows: (t) => t.startsWith("cache/stores/") || t === "cache/store.ts" || isBottom(t),
  },
  {
    name: "registry/ imports nothing from cache/, server/, daemon/, cli/, sources/ or config/",
    applies: under(["registry/"]),
    allows: (t) =>
      !under([
        "cache/",
        "server/",
        "daemon/",
        "cli/",
        "sources/",
        "config/",
        "exports/",
        "index.ts",
      ])(t),
  },
];

/** Strongly connected components of more than one file (or a file importing itself). */
function cycles(files: readonly string[], edges: readonly Edge[]): string[][] {
  const next = new Map<string, string[]>(files.map((f) => [f, []]));
  for (const e of edges) next.get(e.from)?.push(e.to);
  // Tarjan's algorithm, iterative so that a deep chain cannot overflow the stack.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let counter = 0;
  for (const root of files) {
    if (index.has(root)) continue;
    const work: { file: string; at: number }[] = [{ file: root, at: 0 }];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const targets = next.get(frame.file) ?? [];
      if (frame.at < targets.length) {
        const to = targets[frame.at++]!;
        if (!index.has(to)) {
          index.set(to, counter);
          low.set(to, counter++);
          stack.push(to);
          onStack.add(to);
          work.push({ file: to, at: 0 });
        } else if (onStack.has(to)) {
          low.set(frame.file, Math.min(low.get(frame.file)!, index.get(to)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.file, Math.min(low.get(parent.file)!, low.get(frame.file)!));
      if (low.get(frame.file) === index.get(frame.file)) {
        const component: string[] = [];
        let f: string;
        do {
          f = stack.pop()!;
          onStack.delete(f);
          component.push(f);
        } while (f !== frame.file);
        const selfLoop = (next.get(frame.file) ?? []).includes(frame.file);
        if (component.length > 1 || selfLoop) components.push(component.sort());
      }
    }
  }
  return components;
}

/** One concrete cycle through `component`: a path from its first file back to that file. */
function cyclePath(component: readonly string[], edges: readonly Edge[]): string[] {
  const inside = new Set(component);
  const start = component[0]!;
  const cameFrom = new Map<string, string>();
  const queue = [start];
  // Breadth-first from `start`, staying inside the component, until an edge leads back.
  for (let i = 0; i < queue.length; i++) {
    const file = queue[i]!;
    for (const e of edges) {
      if (e.from !== file || !inside.has(e.to)) continue;
      if (e.to === start) {
        const path = [start];
        for (
          let f: string | undefined = file;
          f !== undefined && f !== start;
          f = cameFrom.get(f)
        ) {
          path.splice(1, 0, f);
        }
        return [...path, start];
      }
      if (!cameFrom.has(e.to)) {
        cameFrom.set(e.to, file);
        queue.push(e.to);
      }
    }
  }
  return [...component];
}

describe("import boundaries of src/", () => {
  const { files, edges, unresolved, computed } = importGraph();

  test("the parser sees every form of import", () => {
    const text = [
      'import a, { b as c } from "./one.js";',
      'import type { T } from "./two.js";',
      'import * as ns from "./three.js";',
      'export { d } from "./four.js";',
      'export type * from "./five.js";',
      'const m = await import("./six.js");',
      'type U = import("./seven.js").Outer.Inner;',
      'import "./eight.js";',
      'const r = createRequire(import.meta.url)("./nine.cjs");',
      "const q = await import(name);",
    ].join("\n");
    assert.deepEqual(importSites("fixture.ts", text), [
      { specifier: "./one.js", names: ["default", "b"] },
      { specifier: "./two.js", names: ["T"] },
      { specifier: "./three.js", names: ["*"] },
      { specifier: "./four.js", names: ["d"] },
      { specifier: "./five.js", names: ["*"] },
      { specifier: "./six.js", names: [] },
      { specifier: "./seven.js", names: ["Outer"] },
      { specifier: "./eight.js", names: [] },
      { specifier: "./nine.cjs", names: [] },
      { specifier: undefined, names: [] },
    ]);
    // The graph is the real one: hundreds of files, and the public entry reaches into src/.
    assert.ok(files.length > 100, `found only ${files.length} files under src/`);
    assert.ok(edges.some((e) => e.from === "index.ts" && e.to.startsWith("image/")));
  });

  test("every relative import names a file of src/, and every module is named literally", () => {
    assert.deepEqual(unresolved, []);
    assert.deepEqual(computed, [], "a computed import() or require() hides an edge from this test");
  });

  for (const rule of RULES) {
    test(rule.name, () => {
      assert.ok(files.some(rule.applies), `no file of src/ is under the rule "${rule.name}"`);
      const broken = edges
        .filter((e) => rule.applies(e.from) && !rule.allows(e.to))
        .map((e) => `src/${e.from} imports src/${e.to}`);
      assert.deepEqual([...new Set(broken)], [], `${rule.name}:\n  ${broken.join("\n  ")}`);
    });
  }

  test("only registry/http/ knows the InsecurePolicy type", () => {
    const declared = files.some(
      (f) =>
        f.startsWith("registry/http/") &&
        /\b(?:type|interface)\s+InsecurePolicy\b/.test(readFileSync(join(SRC, f), "utf8")),
    );
    assert.ok(declared, "InsecurePolicy is no longer declared in registry/http/: update this test");
    const broken = edges
      .filter((e) => !e.from.startsWith("registry/http/") && e.names.includes("InsecurePolicy"))
      .map((e) => `src/${e.from} imports InsecurePolicy from src/${e.to}`);
    assert.deepEqual(broken, []);
  });

  test("the cycle finder names every cycle with a path through it", () => {
    const edge = (from: string, to: string): Edge => ({ from, to, names: [] });
    const graph = [
      edge("a.ts", "b.ts"),
      edge("b.ts", "c.ts"),
      edge("c.ts", "a.ts"),
      edge("c.ts", "d.ts"),
      edge("d.ts", "e.ts"),
      edge("e.ts", "e.ts"),
    ];
    const found = cycles(["a.ts", "b.ts", "c.ts", "d.ts", "e.ts"], graph);
    assert.deepEqual(found, [["e.ts"], ["a.ts", "b.ts", "c.ts"]]);
    assert.deepEqual(cyclePath(["a.ts", "b.ts", "c.ts"], graph), ["a.ts", "b.ts", "c.ts", "a.ts"]);
    assert.deepEqual(cyclePath(["e.ts"], graph), ["e.ts", "e.ts"]);
    assert.deepEqual(cycles(["d.ts", "e.ts"], [edge("d.ts", "e.ts")]), []);
  });

  test("no import cycle between files", () => {
    const found = cycles(files, edges).map(
      (c) =>
        `${cyclePath(c, edges)
          .map((f) => `src/${f}`)
          .join(" -> ")}\n    (${c.length} files: ${c.join(", ")})`,
    );
    assert.deepEqual(found, [], `import cycles:\n  ${found.join("\n  ")}`);
  });
});
