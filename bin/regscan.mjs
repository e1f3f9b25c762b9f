#!/usr/bin/env node
// The installed entry point: runs the compiled CLI (built by `npm run build`, which
// `npm ci` / `npm install` run through the `prepare` script).
import { main } from "../dist/cli/main.js";

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`regscan: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
