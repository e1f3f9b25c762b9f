/**
 * What a request's wait for its host's budget costs in CPU (bench/results/rate-limiters.json):
 * 300 requesters of 16 scans on one host, as a warmer's scans at a saturated budget are (16 connections,
 * a rate that makes most of them nap, a wake-up per answer), with the real clock's timers
 * against a clock without `timer` (each nap then sleeps on an AbortSignal of its own, as
 * every wait did before), alternated in the same process.
 */
import { setMaxListeners } from "node:events";
import { mkdirSync, writeFileSync } from "node:fs";
import { abortableSleep } from "../src/abort.js";
import { type Clock, RateLimiters, systemClock } from "../src/registry/http/rate-limiters.js";

const HOST = "registry.bench";
const REQUESTERS = 300;
const SCANS = 16;
const GRANTS = 20_000;
const ROUNDS = 3;

/** The clock without `timer`: naps sleep on an AbortSignal. */
const signalClock: Clock = { now: () => Date.now(), sleep: abortableSleep };

async function run(clock: Clock): Promise<{ cpuUsPerGrant: number; wallMs: number }> {
  // 8,000 a second: a grant every 125 µs, so most requesters nap between turns.
  const limiters = new RateLimiters({ rps: 8000, burst: 20, clock });
  // Each scan passes its signal to its requests' waits: 16 scans of about 19 requesters.
  const scans = Array.from({ length: SCANS }, () => new AbortController());
  for (const scan of scans) setMaxListeners(REQUESTERS, scan.signal);
  let granted = 0;
  const requester = async (n: number) => {
    const signal = (scans[n % SCANS] as AbortController).signal;
    while (granted < GRANTS) {
      const release = await limiters.waitToSend(HOST, { signal });
      granted++;
      // The answer's headers come a moment later and give the connection back.
      await new Promise((resolve) => setImmediate(resolve));
      release();
    }
  };
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(Array.from({ length: REQUESTERS }, (_, n) => requester(n)));
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { cpuUsPerGrant: (used.user + used.system) / granted, wallMs };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main() {
  await run(systemClock); // warm-up
  const timers: number[] = [];
  const signals: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    timers.push((await run(systemClock)).cpuUsPerGrant);
    signals.push((await run(signalClock)).cpuUsPerGrant);
  }
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    requesters: REQUESTERS,
    grantsPerRun: GRANTS,
    rounds: ROUNDS,
    cpuUsPerGrant: { timers: timers.map(round), signals: signals.map(round) },
    medianCpuUsPerGrant: { timers: round(median(timers)), signals: round(median(signals)) },
    ratio: round(median(timers) / median(signals), 3),
  };
  console.log(
    `CPU per granted request: ${result.medianCpuUsPerGrant.timers} µs with timers, ${result.medianCpuUsPerGrant.signals} µs with a signal per nap (ratio ${result.ratio})`,
  );
  mkdirSync("bench/results", { recursive: true });
  writeFileSync("bench/results/rate-limiters.json", `${JSON.stringify(result, null, 2)}\n`);
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

await main();
