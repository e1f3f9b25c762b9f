/**
 * What a turn of the warmer's loop costs its schedule during a fill (bench/results/schedule.json):
 * 10,000 repositories on 10 hosts, a share of them scanned once (due again in 5 minutes) and
 * the rest never scanned, as a replica's schedule is through bench:scale's full fill; a turn
 * takes the next repository, asks both lanes' next due times and ends the scan. Each share is
 * run alternately, in the same process, with the baseline of a pass over every repository:
 * all scanned and overdue, so that each take ranks all of them. Never-scanned repositories
 * were ranked one by one too before 1ce2237 (they now cost a look per host), so the ratio
 * says what a turn costs now against a whole pass.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { Schedule } from "../src/cache/schedule.js";

const REPOSITORIES = 10_000;
const HOSTS = 10;
const TURNS = 2_000;
const ROUNDS = 5;
const SHARES = [0.1, 0.5, 0.9] as const;

/**
 * Microseconds of CPU per turn with `share` of the repositories scanned once, due in five
 * minutes (`overdue`: due already, the baseline).
 */
function run(share: number, overdue = false): number {
  const schedule = new Schedule({
    hostOf: (name) => name.slice(0, name.indexOf("/")),
    perHostConcurrency: 4,
    latePerHostConcurrency: 16,
    lateAfterMs: 20_000,
    maxWeightInFlight: 60_000,
    hostCost: (name) => ({ requests: name.length * 100, rateRps: 20 }),
  });
  schedule.sync(Array.from({ length: REPOSITORIES }, (_, i) => `h${i % HOSTS}/r${i}`));
  let now = 0;
  const scanned = Math.round(REPOSITORIES * share);
  for (let i = 0; i < scanned; i++) {
    const item = schedule.take(now);
    if (item === undefined) throw new Error(`nothing to take after ${i} scans`);
    // Spread a little, as scans end: due times are not all equal.
    schedule.done(item.name, {
      dueAt: overdue ? now - 1 - (i % 97) : now + 300_000 + (i % 97),
      likelihood: 1,
      weight: 20,
      ran: true,
    });
  }
  const cpu = process.cpuUsage();
  for (let i = 0; i < TURNS; i++) {
    now += 50;
    const item = schedule.take(now);
    schedule.nextDue({});
    schedule.nextDue({ urgentOnly: true });
    if (item)
      schedule.done(item.name, { dueAt: now + 300_000, likelihood: 1, weight: 20, ran: true });
  }
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / TURNS;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function main() {
  run(0.5); // warm-up
  const rows = SHARES.map((share) => {
    const turns: number[] = [];
    const baseline: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      turns.push(run(share));
      baseline.push(run(1, true));
    }
    const ratio = round(median(turns) / median(baseline), 3);
    console.log(
      `${share * 100}% scanned: ${round(median(turns))} µs of CPU a turn against ${round(median(baseline))} µs for a pass over all (ratio ${ratio})`,
    );
    return {
      scannedShare: share,
      cpuUsPerTurn: turns.map((x) => round(x)),
      baselineCpuUsPerTurn: baseline.map((x) => round(x)),
      ratio,
    };
  });
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    repositories: REPOSITORIES,
    hosts: HOSTS,
    turnsPerRun: TURNS,
    rounds: ROUNDS,
    rows,
  };
  mkdirSync("bench/results", { recursive: true });
  writeFileSync("bench/results/schedule.json", `${JSON.stringify(result, null, 2)}\n`);
}

main();
