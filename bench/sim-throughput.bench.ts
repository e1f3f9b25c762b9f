/**
 * The registry-fleet simulator alone (bench/sim): how many requests per second it serves
 * in its own process, with a realistic warm-pass mix (tag pages, manifest HEADs and GETs by
 * tag and by digest, config blobs) sent from this process through keep-alive, pipelined
 * undici pools on loopback. Prints req/s against the 5,000 req/s target of issue 13, and
 * req per CPU-second of the simulator (its capacity on one core, whatever else the machine
 * runs). Writes bench/results/sim.json. `SIM_PROFILE=DIR` writes the simulator's CPU profile
 * there.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { measureCapacity, WARM_PASS_MIX } from "./sim/capacity.js";
import { everyPersonality } from "./sim/fleets.js";
import type { SimulatorOptions } from "./sim/simulator.js";

const TARGET_RPS = 5000;
const ROUNDS = 3;
const ROUND_MS = 5000;
const WARMUP_MS = 1000;
/** Requests in flight over all registries. */
const IN_FLIGHT = 128;
const LOAD_WORKERS = 2;
const CONNECTIONS_PER_REGISTRY = 4;
const PIPELINING = 4;
const SAMPLES_PER_REGISTRY = 400;
const START_TIMEOUT_MS = 30_000;

interface Started {
  control: string;
  registries: Array<{ name: string; personality: string; url: string; host: string }>;
}

/** Starts bench/sim/main.ts as a child and waits for its ready line (bounded). */
async function startSimulator(
  configFile: string,
): Promise<{ child: ChildProcess; started: Started }> {
  const child = spawn(
    process.execPath,
    [
      ...(process.env.SIM_PROFILE
        ? ["--cpu-prof", `--cpu-prof-dir=${process.env.SIM_PROFILE}`]
        : []),
      "--import",
      "tsx",
      "bench/sim/main.ts",
      "--config",
      configFile,
      "--exit-with-stdin",
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const started = await new Promise<Started>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error("simulator did not start in time")),
      START_TIMEOUT_MS,
    );
    child.once("exit", (code) => reject(new Error(`simulator exited with ${code}`)));
    lines.once("line", (line) => {
      clearTimeout(timer);
      resolve(JSON.parse(line) as Started);
    });
  });
  return { child, started };
}

async function main(): Promise<void> {
  const specs = everyPersonality({
    seed: "sim-bench",
    repositories: 500,
    tags: 50_000,
    huge: [25_000],
  }).map((s) =>
    // Docker Hub's quota would answer 429 after 100 pulls; the headers are still computed.
    s.personality === "dockerhub" ? { ...s, pullQuota: { limit: 1e9, windowSeconds: 21_600 } } : s,
  );
  const options: SimulatorOptions = { registries: specs };
  const dir = mkdtempSync(join(tmpdir(), "regscan-sim-bench-"));
  const configFile = join(dir, "sim.json");
  writeFileSync(configFile, JSON.stringify(options));
  const { child, started } = await startSimulator(configFile);
  try {
    const load = {
      inFlight: IN_FLIGHT,
      loadWorkers: LOAD_WORKERS,
      connectionsPerRegistry: CONNECTIONS_PER_REGISTRY,
      pipelining: PIPELINING,
    };
    const c = await measureCapacity({
      control: started.control,
      specs,
      registries: started.registries,
      rounds: ROUNDS,
      roundMs: ROUND_MS,
      warmupMs: WARMUP_MS,
      samplesPerRegistry: SAMPLES_PER_REGISTRY,
      ...load,
    });
    const result = {
      date: new Date().toISOString(),
      target: TARGET_RPS,
      registries: specs.map((s) => s.personality),
      fleetPerRegistry: { repositories: 500 + 1, tags: 50_000 + 25_000 },
      load: {
        ...load,
        distinctRequests: c.distinctRequests,
        mix: WARM_PASS_MIX,
        roundMs: ROUND_MS,
      },
      rps: c.rps,
      rpsPerSimCpuSecond: c.rpsPerSimCpuSecond,
      ratio: c.rps / TARGET_RPS,
      statuses: c.statuses,
      errors: c.errors,
      rounds: c.rounds,
    };
    mkdirSync("bench/results", { recursive: true });
    writeFileSync("bench/results/sim.json", `${JSON.stringify(result, null, 2)}\n`);
    console.log(
      `simulator: ${result.rps.toFixed(0)} req/s (target ${TARGET_RPS}, ratio ${result.ratio.toFixed(2)}); ${result.rpsPerSimCpuSecond.toFixed(0)} req per CPU-second of the simulator process (its one-core capacity); simulator busy ${(c.simCpuShare * 100).toFixed(0)}% of a core; ${c.errors} non-200 answers; counts agree: ${c.rounds.every((r) => r.countedBySimulator >= r.requests)}`,
    );
    if (c.errors > 0) {
      throw new Error(
        `the simulator answered ${c.errors} requests with an error, e.g. ${c.failures.join("; ")}`,
      );
    }
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => {
      const t = setTimeout(() => {
        child.kill("SIGKILL");
        r(undefined);
      }, 5000);
      child.once("exit", () => {
        clearTimeout(t);
        r(undefined);
      });
    });
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
