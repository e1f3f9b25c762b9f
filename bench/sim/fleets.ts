/**
 * Ready-made fleets: one registry per personality. `everyPersonality` is what the tests and
 * the throughput bench start; `bench:scale` sizes its own.
 */
import type { FleetSpec } from "./content.js";
import { PERSONALITY_NAMES } from "./personalities.js";
import type { SimRegistrySpec } from "./simulator.js";

export interface EveryPersonalityOptions {
  seed?: string;
  /** Generated repositories per registry (besides the huge ones). */
  repositories?: number;
  /** Tags over those repositories, per registry. */
  tags?: number;
  /** Repositories with exactly this many tags, per registry. */
  huge?: number[];
}

/** One registry of every personality; Artifactory's repositories sit under `virtual/`. */
export function everyPersonality(opts: EveryPersonalityOptions = {}): SimRegistrySpec[] {
  return PERSONALITY_NAMES.map((personality) => {
    const fleet: FleetSpec = {
      seed: `${opts.seed ?? "regscan-sim"}/${personality}`,
      repositories: opts.repositories ?? 20,
      tags: opts.tags ?? 400,
      huge: opts.huge ?? [],
      namePrefix: personality === "artifactory" ? "virtual/" : undefined,
    };
    return { name: personality, personality, fleet };
  });
}
