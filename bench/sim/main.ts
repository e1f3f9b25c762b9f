/**
 * Runs the simulator as its own process: `node --import tsx bench/sim/main.ts [--config
 * FILE.json] [--control-port N] [--nice N]`. The config is a SimulatorOptions JSON (default: one
 * registry of every personality). When ready it prints one JSON line: the control URL and
 * every registry's name, personality and URL. SIGTERM / SIGINT stop it, and so does the end
 * of its stdin with `--exit-with-stdin`.
 */
import { readdirSync, readFileSync } from "node:fs";
import { setPriority } from "node:os";
import { parseArgs } from "node:util";
import { everyPersonality } from "./fleets.js";
import { Simulator, type SimulatorOptions } from "./simulator.js";

const { values } = parseArgs({
  options: {
    config: { type: "string" },
    "control-port": { type: "string", default: "0" },
    // For a parent that may die without stopping us: stop when our stdin closes.
    "exit-with-stdin": { type: "boolean", default: false },
    nice: { type: "string", default: "-10" },
  },
});

/**
 * The simulator stands for registries on machines of their own, and a registry counts a
 * request when it handles it: on a busy machine a simulator waiting for a CPU while requests
 * queue in its sockets counts a second's requests in the next, over a client's budget. So
 * every thread of the process (the event loop, V8's GC helpers: a parallel scavenge waits
 * for them) gets `--nice` (default -10) where the process may raise its priority (root or
 * CAP_SYS_NICE; threads started later inherit it); elsewhere it stays as it was. It uses a
 * tenth of a core or so in a fill, so the rest of the machine hardly notices.
 */
function renice(nice: number): void {
  let tasks: string[];
  try {
    tasks = readdirSync("/proc/self/task");
  } catch {
    return; // not Linux: left as it is
  }
  for (const tid of tasks) {
    try {
      setPriority(Number(tid), nice);
    } catch {
      return; // not permitted: left as it is
    }
  }
}
renice(Number(values.nice));

const opts: SimulatorOptions =
  values.config !== undefined
    ? (JSON.parse(readFileSync(values.config, "utf8")) as SimulatorOptions)
    : { registries: everyPersonality() };
opts.controlPort = Number(values["control-port"]);

const sim = await Simulator.start(opts);
process.stdout.write(
  `${JSON.stringify({
    control: sim.controlUrl,
    registries: sim.registries.map((r) => ({
      name: r.name,
      personality: r.personality.name,
      url: r.url,
      host: r.host,
    })),
  })}\n`,
);
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  sim.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on("SIGTERM", stop);
if (values["exit-with-stdin"]) {
  process.stdin.on("end", stop);
  process.stdin.on("close", stop);
  process.stdin.resume();
}
process.on("SIGINT", stop);
