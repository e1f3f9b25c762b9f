/**
 * The built dist/ that process-level tests run (bin/regscan.mjs) and the package test packs.
 * `npm test` builds it before the tests; a test file run alone has no such step, so the first
 * use in a process runs scripts/build-dist.mjs --if-stale, which rebuilds it when a source
 * file is newer than its last build (a stat of src/ otherwise, ~50 ms), so that an edit to
 * src/ is never tested against the dist/ from before it.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BUILD_DIST = fileURLToPath(new URL("../../scripts/build-dist.mjs", import.meta.url));

let checked = false;

/** Rebuilds dist/ if it is older than the source (once per process). */
export function ensureDist(): void {
  if (checked) return;
  // Synchronous: callers build command lines synchronously. It blocks only while it builds.
  const r = spawnSync(process.execPath, [BUILD_DIST, "--if-stale"], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 300_000,
  });
  if (r.status !== 0) {
    throw new Error(
      `scripts/build-dist.mjs --if-stale failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`,
    );
  }
  checked = true;
}
