#!/usr/bin/env node
// The installed entry point: runs the compiled CLI, built into dist/ by `npm run build`
// (which `npm ci` / `npm install` run through the `prepare` script).
import { main } from "../dist/cli/main.js";

process.exitCode = await main(process.argv);
