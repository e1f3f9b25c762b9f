/**
 * Runs regscan's own registry client (RemoteClientFactory, as users get it) against every
 * personality and compares `tags()` of a 25,000-tag repository with the simulator's ground
 * truth: `node --import tsx bench/sim/check-client.ts [--tags N]`. Prints one line per
 * personality and exits 1 when any listing is wrong, so a client fix can be checked here.
 */
import { parseArgs } from "node:util";
import { parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../../src/registry/factory.js";
import { everyPersonality } from "./fleets.js";
import type { SimRegistry } from "./registry-server.js";
import { Simulator } from "./simulator.js";

/** How one listing compared with the truth. */
export interface ClientCheck {
  registry: string;
  repository: string;
  ok: boolean;
  truth: number;
  listed?: number;
  duplicates?: number;
  missing?: number;
  extra?: number;
  /** The error's class, `code` and message, when the listing failed. */
  error?: string;
  /** The tag-list requests the client made, and their statuses. */
  requests: string[];
  ms: number;
}

/** Lists `repository` on `registry` with regscan's client and compares it with the truth. */
export async function checkRegscanClient(
  registry: SimRegistry,
  repository: string,
): Promise<ClientCheck> {
  const truth = registry.content.tags(repository, "lexical");
  const requests: string[] = [];
  const stop = registry.onRequest((r) => {
    if (r.kind === "tags") requests.push(`${r.status} ${r.url}`);
  });
  const factory = new RemoteClientFactory({ insecureHosts: [registry.host] });
  const started = performance.now();
  const base = { registry: registry.name, repository, truth: truth.length, requests };
  try {
    const listed = await factory
      .clientFor(parseImageName(`${registry.host}/${repository}`), Credentials.none())
      .tags();
    const unique = new Set(listed);
    const want = new Set(truth);
    const missing = truth.filter((t) => !unique.has(t)).length;
    const extra = [...unique].filter((t) => !want.has(t)).length;
    const duplicates = listed.length - unique.size;
    return {
      ...base,
      ok: missing === 0 && extra === 0 && duplicates === 0,
      listed: listed.length,
      duplicates,
      missing,
      extra,
      ms: performance.now() - started,
    };
  } catch (err) {
    const e = err as Error & { code?: string };
    return {
      ...base,
      ok: false,
      error: `${e.name}${e.code !== undefined ? ` ${e.code}` : ""}: ${e.message}`,
      ms: performance.now() - started,
    };
  } finally {
    stop();
    await factory.close();
  }
}

/** The huge repository of a registry built by `everyPersonality`. */
export function hugeRepository(registry: SimRegistry): string {
  return registry.personality.name === "artifactory" ? "virtual/huge/repo-0" : "huge/repo-0";
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { tags: { type: "string", default: "25000" } } });
  const sim = await Simulator.start({
    registries: everyPersonality({ huge: [Number(values.tags)], repositories: 2, tags: 10 }),
  });
  let failed = 0;
  try {
    for (const registry of sim.registries) {
      const r = await checkRegscanClient(registry, hugeRepository(registry));
      if (!r.ok) failed++;
      const what =
        r.error ??
        `listed ${r.listed}, duplicates ${r.duplicates}, missing ${r.missing}, extra ${r.extra}`;
      console.log(
        `${r.ok ? "ok  " : "FAIL"} ${registry.name.padEnd(14)} truth ${r.truth}: ${what} (${r.requests.length} tag requests, ${r.ms.toFixed(0)} ms)`,
      );
      if (!r.ok) console.log(`     last tag requests: ${r.requests.slice(-2).join(" | ")}`);
    }
  } finally {
    await sim.stop();
  }
  process.exitCode = failed > 0 ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
