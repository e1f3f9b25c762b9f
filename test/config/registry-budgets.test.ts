/**
 * `registry.budgets` from the YAML file, the environment and repeatable flags, with the
 * source named when a budget is malformed.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ConfigError } from "../../src/config/errors.js";
import { loadConfig } from "../../src/config/load.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "regscan-budgets-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function refused(p: Promise<unknown>): Promise<ConfigError> {
  const err = await p.then(
    () => assert.fail("expected the configuration to be refused"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConfigError, String(err));
  return err;
}

test("budgets come from the file, the environment and flags; burst defaults to the rate", async () => {
  const path = join(dir, "regscan.yaml");
  await writeFile(
    path,
    'registry:\n  budgets:\n    docker.io: { rps: 5, burst: 10 }\n    "*.corp.example": { rps: 2.5 }\n',
  );
  const fromFile = await loadConfig({ file: path });
  assert.deepEqual(fromFile.config.registry.budgets, {
    "docker.io": { rps: 5, burst: 10 },
    "*.corp.example": { rps: 2.5, burst: 3 },
  });
  const fromEnv = await loadConfig({
    env: { REGSCAN_REGISTRY_BUDGETS: "quay.io=2/4, ghcr.io=8" },
  });
  assert.deepEqual(fromEnv.config.registry.budgets, {
    "quay.io": { rps: 2, burst: 4 },
    "ghcr.io": { rps: 8, burst: 8 },
  });
  const fromFlags = await loadConfig({
    flags: { registryBudget: ["docker.io=1/2", "localhost:5000=100/50"] },
  });
  assert.deepEqual(fromFlags.config.registry.budgets, {
    "docker.io": { rps: 1, burst: 2 },
    "localhost:5000": { rps: 100, burst: 50 },
  });
  assert.deepEqual((await loadConfig({})).config.registry.budgets, {});
});

test("a malformed budget is refused, naming where it came from", async () => {
  const shape = await refused(loadConfig({ env: { REGSCAN_REGISTRY_BUDGETS: "docker.io" } }));
  assert.match(shape.message, /REGSCAN_REGISTRY_BUDGETS.*expected HOST=RPS\[\/BURST\]/);
  const zero = await refused(loadConfig({ flags: { registryBudget: ["docker.io=0"] } }));
  assert.match(zero.message, /flag --registry-budget: at registry\.budgets/);
  const host = await refused(loadConfig({ flags: { registryBudget: ["a b=1"] } }));
  assert.match(host.message, /flag --registry-budget: at registry\.budgets\.a b/);
  const proto = await refused(loadConfig({ flags: { registryBudget: ["__proto__=1"] } }));
  assert.match(proto.message, /__proto__/);
  assert.equal(({} as { rps?: unknown }).rps, undefined, "no prototype was touched");
});
