/**
 * The processes of the scale bench: the simulator (bench/sim/main.ts, its own process) and
 * `regscan serve` replicas (the built CLI), each on a free loopback port and killed when the
 * bench ends (Redis is test/support/redis.ts's) (test/support/processes, which also sets PR_SET_PDEATHSIG).
 */
import { execFile, spawnSync } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "../../test/support/ports.js";
import {
  type ManagedProcess,
  makeTempDir,
  requireBinary,
  startProcess,
  waitFor,
} from "../../test/support/processes.js";
import type { SimulatorOptions } from "../sim/simulator.js";

const run = promisify(execFile);

/** Brings dist/ up to date with src/ (building only when it is not); says so. */
export function buildIfNeeded(): string {
  const built = "dist/cli/main.js";
  // The tests' own build (emit only, serialised with test runs building at the same time);
  // it tells from its inputs whether dist/ is current, which a file's time cannot, since it
  // leaves unchanged files alone.
  const r = spawnSync(process.execPath, ["scripts/build-dist.mjs", "--if-stale"], {
    stdio: "inherit",
    timeout: 300_000,
  });
  if (r.status !== 0 || !existsSync(built)) {
    throw new Error(`scripts/build-dist.mjs --if-stale failed (exit ${r.status})`);
  }
  return "dist/ current";
}

export interface SimRegistryInfo {
  name: string;
  personality: string;
  url: string;
  host: string;
}

export interface SimProcess {
  proc: ManagedProcess;
  control: string;
  registries: SimRegistryInfo[];
}

export async function startSimulator(opts: SimulatorOptions): Promise<SimProcess> {
  const dir = makeTempDir("regscan-scale-");
  const config = join(dir, "sim.json");
  writeFileSync(config, JSON.stringify(opts));
  const proc = await startProcess({
    name: "simulator",
    command: process.execPath,
    args: ["--import", "tsx", "bench/sim/main.ts", "--config", config, "--control-port", "0"],
  });
  let info: { control: string; registries: SimRegistryInfo[] } | undefined;
  await waitFor(
    () => {
      const line = proc
        .output()
        .split("\n")
        .find((l) => l.startsWith('{"control"'));
      if (line !== undefined) info = JSON.parse(line) as typeof info;
      return info !== undefined;
    },
    {
      what: "the simulator's control line",
      timeoutMs: 120_000,
      giveUp: () => (proc.exited() ? proc.output() : undefined),
    },
  );
  if (info === undefined) throw new Error("the simulator printed no control line");
  return { proc, ...info };
}

async function redisCli(port: number, ...args: string[]): Promise<string> {
  const cli = requireBinary("redis-cli", "redis-tools");
  const { stdout } = await run(cli, ["-h", "127.0.0.1", "-p", String(port), ...args], {
    timeout: 10_000,
  });
  return stdout;
}

/** `used_memory` and the number of keys. */
export async function redisMemory(port: number): Promise<{ usedMemory: number; keys: number }> {
  const info = await redisCli(port, "info", "memory");
  const used = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN);
  const keys = Number((await redisCli(port, "dbsize")).trim());
  return { usedMemory: used, keys };
}

/**
 * The repositories whose lease `owner` holds now (the warmer's `...lease:NAME` keys, whose
 * value is the owner; `lease-holder:` keys do not match the pattern).
 */
export async function leasesHeldBy(port: number, owner: string): Promise<string[]> {
  const keys = (await redisCli(port, "--scan", "--pattern", "*:lease:*"))
    .split("\n")
    .filter((k) => k !== "");
  if (keys.length === 0) return [];
  const values = (await redisCli(port, "mget", ...keys)).split("\n");
  return keys
    .filter((_, i) => values[i] === owner)
    .map((k) => k.slice(k.indexOf(":lease:") + ":lease:".length));
}

export async function redisFlush(port: number): Promise<void> {
  await redisCli(port, "flushall");
}

export interface Replica {
  id: string;
  proc: ManagedProcess;
  url: string;
}

export interface ReplicaConfig {
  redisUrl: string;
  imagesFile: string;
  registries: SimRegistryInfo[];
  budgetRps: number;
  budgetBurst: number;
  intervalSeconds: number;
  /** How far a quiet repository's interval backs off (`--max-interval-factor`); default regscan's. */
  maxIntervalFactor?: number | undefined;
  /** How long a repository lease lasts unless renewed (`--lease-ttl`); default regscan's. */
  leaseTtlSeconds?: number | undefined;
  /** The API on a thread of its own (`--api-thread`), the warmer's thread at this nice value. */
  apiThread?: { warmerNice: number } | undefined;
  webhookToken: string;
}

/**
 * The replicas' configuration file, beside their flags: every client of the bench (its 50
 * readers, its own watch of the fill) comes from 127.0.0.1, where a deployment's would come
 * from many addresses, so the cap on one address's connections (`server.maxConnectionsPerClient`,
 * 64 by default; there is no flag for it) is raised past what the bench opens. At 64,
 * replica-0 refused about a hundred of the readers' connections a run (`ECONNRESET`).
 */
function writeReplicaConfigFile(): string {
  const file = join(makeTempDir("regscan-scale-config-"), "regscan.yaml");
  writeFileSync(file, "server:\n  maxConnectionsPerClient: 1024\n");
  return file;
}

let replicaConfigFile: string | undefined;

/** The replicas' configuration file, written once per bench. */
function replicaConfig(): string {
  replicaConfigFile ??= writeReplicaConfigFile();
  return replicaConfigFile;
}

/** Writes the images file: one `host:port/repository` line per repository of the fleet. */
export function writeImagesFile(names: string[]): string {
  const file = join(makeTempDir("regscan-scale-images-"), "images.txt");
  writeFileSync(file, `${names.join("\n")}\n`);
  return file;
}

export async function startReplica(id: string, cfg: ReplicaConfig): Promise<Replica> {
  let last: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const args = [
      // As the image and the systemd unit run it (Dockerfile: the heap cap), unless
      // REGSCAN_SCALE_NODE_ARGS says otherwise (to try other V8 bounds).
      ...(process.env.REGSCAN_SCALE_NODE_ARGS?.split(" ").filter(Boolean) ?? REPLICA_NODE_ARGS),
      "bin/regscan.mjs",
      "serve",
      "--config",
      replicaConfig(),
      "--listen",
      `127.0.0.1:${port}`,
      "--cache",
      cfg.redisUrl,
      "--replica-id",
      id,
      "--images-file",
      cfg.imagesFile,
      "--refresh-interval",
      `${cfg.intervalSeconds}s`,
      // The warmer re-queues repositories only when it asks its image sources again
      // (warmer.interval, default 1m): as often as the repositories' interval here.
      "--interval",
      `${cfg.intervalSeconds}s`,
      "--log-level",
      "warn",
      "--api-rps",
      "1000000",
      "--api-burst",
      "1000000",
      "--webhook",
      "distribution",
      "--webhook-secret",
      "distribution=env:SCALE_BENCH_HOOK",
    ];
    if (cfg.leaseTtlSeconds !== undefined) args.push("--lease-ttl", `${cfg.leaseTtlSeconds}s`);
    if (cfg.apiThread !== undefined) {
      args.push("--api-thread", "--warmer-nice", String(cfg.apiThread.warmerNice));
    }
    if (cfg.maxIntervalFactor !== undefined) {
      args.push("--max-interval-factor", String(cfg.maxIntervalFactor));
    }
    for (const r of cfg.registries) {
      args.push(
        "--insecure-host",
        r.host,
        "--registry-budget",
        `${r.host}=${cfg.budgetRps}/${cfg.budgetBurst}`,
      );
    }
    try {
      const proc = await startProcess({
        name: `regscan serve ${id}`,
        command: process.execPath,
        args,
        env: { ...process.env, ...replicaEnv(), SCALE_BENCH_HOOK: cfg.webhookToken },
        ready: { tcp: { host: "127.0.0.1", port } },
        readyTimeoutMs: 60_000,
      });
      keepLog(proc, id);
      return { id, proc, url: `http://127.0.0.1:${port}` };
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

/** V8's bounds as the image and the systemd unit set them (`NODE_OPTIONS`; Dockerfile: the heap cap). */
export const REPLICA_NODE_OPTIONS: readonly string[] = [
  "--max-old-space-size=128",
  "--max-semi-space-size=8",
];

/**
 * V8 flags the image and the systemd unit give on Node's command line, where NODE_OPTIONS may
 * not carry them: garbage collected on the main thread (Dockerfile: the entry point).
 */
export const REPLICA_COMMAND_LINE_FLAGS: readonly string[] = ["--single-threaded-gc"];

/** Both: a replica's Node flags as the image runs it. */
const REPLICA_NODE_ARGS: readonly string[] = [
  ...REPLICA_NODE_OPTIONS,
  ...REPLICA_COMMAND_LINE_FLAGS,
];

/**
 * `malloc`'s settings as the image and the systemd unit set them (Dockerfile): buffers of
 * 128 KiB and more are mapped on their own and unmapped when freed. glibc's default threshold
 * rises to the largest buffer freed so far (32 MiB at most), after which answers and store
 * replies of megabytes are carved from its main arena and, freed among small live ones, stay
 * resident.
 */
export const REPLICA_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: "131072",
};

/**
 * jemalloc (Debian's libjemalloc2, which redis-server depends on) preloaded in place of
 * glibc's `malloc`, returning freed pages after a second: tried against glibc's arenas, which
 * keep the holes between live buffers resident. At 200,000 tags it did worse (VmHWM 226-290
 * MiB, fill 1.3x, reads p99 61 ms; `bench/results/scale-10k-200k-a19fcc0-jemalloc-young24.json`).
 */
const JEMALLOC_ENV: Readonly<Record<string, string>> = {
  LD_PRELOAD: "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
  MALLOC_CONF: "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0",
};

/**
 * {@link REPLICA_MALLOC_ENV}, unless REGSCAN_SCALE_MALLOC says `dynamic` (glibc's default, to
 * compare) or `jemalloc` ({@link JEMALLOC_ENV}).
 */
function replicaEnv(): NodeJS.ProcessEnv {
  const choice = process.env.REGSCAN_SCALE_MALLOC;
  if (choice === "dynamic") return {};
  if (choice === "jemalloc") return { ...JEMALLOC_ENV };
  return { ...REPLICA_MALLOC_ENV };
}

/**
 * With REGSCAN_SCALE_LOG_DIR set, everything a replica writes also goes to `DIR/ID.log`: the
 * bench keeps only the last 64 KiB of it, printed when a replica dies, and a long run's
 * stalls are read from the whole log afterwards. The directory is made if missing (a write
 * stream's ENOENT would end the bench after its simulator's minutes of start-up).
 */
function keepLog(proc: ManagedProcess, id: string): void {
  const dir = process.env.REGSCAN_SCALE_LOG_DIR;
  if (dir === undefined || dir === "") return;
  mkdirSync(dir, { recursive: true });
  const file = createWriteStream(join(dir, `${id}.log`), { flags: "a" });
  proc.child.stdout?.pipe(file, { end: false });
  proc.child.stderr?.pipe(file, { end: false });
  proc.child.once("exit", () => file.end());
}

/** Peak and current resident memory of a process, bytes (from /proc). */
export function memoryOf(
  pid: number,
): { hwm: number; rss: number; mallocHeap: number | undefined } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string) =>
      Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
    return { hwm: kb("VmHWM"), rss: kb("VmRSS"), mallocHeap: mallocHeapOf(pid) };
  } catch {
    return undefined;
  }
}

/**
 * Resident bytes of a process's `[heap]` mapping: glibc's main `malloc` arena, where Node's
 * buffers live outside V8's heap (and, freed, may stay resident: see {@link replicaEnv}).
 */
function mallocHeapOf(pid: number): number | undefined {
  try {
    const smaps = readFileSync(`/proc/${pid}/smaps`, "utf8");
    const at = smaps.indexOf("[heap]\n");
    if (at < 0) return 0;
    const rss = /^Rss:\s+(\d+) kB/m.exec(smaps.slice(at));
    return rss ? Number(rss[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds (user + system) a process has used so far (from /proc; clock ticks of 1/100 s,
 * Linux's USER_HZ on every architecture Node runs on).
 */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The fields after the command (which may hold spaces) in parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}
