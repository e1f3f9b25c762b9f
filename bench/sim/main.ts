/**
 * Runs the simulator as its own process: `node --import tsx bench/sim/main.ts [--config
 * FILE.json] [--control-port N]`. The config is a SimulatorOptions JSON (default: one
 * registry of every personality). When ready it prints one JSON line: the control URL and
 * every registry's name, personality and URL. SIGTERM / SIGINT stop it, and so does the end
 * of its stdin with `--exit-with-stdin`.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { everyPersonality } from "./fleets.js";
import { Simulator, type SimulatorOptions } from "./simulator.js";

const { values } = parseArgs({
  options: {
    config: { type: "string" },
    "control-port": { type: "string", default: "0" },
    // For a parent that may die without stopping us: stop when our stdin closes.
    "exit-with-stdin": { type: "boolean", default: false },
  },
});

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
