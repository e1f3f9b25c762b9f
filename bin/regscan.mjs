#!/usr/bin/env node
// The installed entry point: runs the compiled CLI, built into dist/ by `npm run build`
// (which `npm ci` / `npm install` run through the `prepare` script).
import { setFlagsFromString } from "node:v8";

// `tags` and `inspect` make a few requests and exit. Without this, V8 recompiles undici's
// WebAssembly HTTP parser with its optimising compiler once it gets busy, and Node waits for
// that compilation to finish before the process may exit (tens of milliseconds, more than the
// requests took). Only for these short runs: `scan` and `serve` parse HTTP for long enough
// that the optimised parser pays off. Set before anything compiles WebAssembly.
const SHORT_RUNS = new Set(["tags", "inspect"]);
const command = process.argv.slice(2).find((arg) => !arg.startsWith("-"));
if (command !== undefined && SHORT_RUNS.has(command)) setFlagsFromString("--liftoff-only");

const { main } = await import("../dist/cli/main.js");
process.exitCode = await main(process.argv);
