/**
 * A child process for the SIGKILL test: writes values into a SQLite store as fast as it
 * can and prints `committed KEY SHA256` after each write has returned (is committed).
 */
import { createHash, randomBytes } from "node:crypto";
import { SqliteStore } from "../../../src/cache/stores/sqlite.js";

const path = process.argv[2];
if (!path) throw new Error("usage: sqlite-writer.ts PATH");
const store = new SqliteStore(path);
const deadline = new Date(Date.now() + 3_600_000);
// Bounded in count and time in case the parent dies without killing it.
const stopAt = Date.now() + 60_000;
for (let i = 0; i < 1_000_000 && Date.now() < stopAt; i++) {
  const key = `regscan:v1:tag:localhost:5000/app:t${i % 500}`;
  const value = randomBytes(4096 + (i % 7) * 16_384);
  await store.set(key, deadline, value);
  process.stdout.write(`committed ${key} ${createHash("sha256").update(value).digest("hex")}\n`);
}
