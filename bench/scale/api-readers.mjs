// The API readers of bench/scale (measure.ts `apiLoad`) on a thread of their own (plain JS:
// Node 20 does not run tsx's hooks for a worker's entry module). It reads the repositories
// the bench posts (`{ add: [...] }`: ones the fill has completed), waiting while there is
// none. A latency is taken on the event loop that sends the request and reads the answer:
// on the bench's main thread it carried the bench's own pauses (parsing whole repositories
// for the fill's end, its major GCs of 50 ms and more) as the replica's. Reads until `maxMs` passes or a `stop` message
// comes, then posts the latencies of 200 answers, when each was asked, the statuses and
// this thread's own event-loop delay. Requests go through undici's `request` on one agent:
// `fetch` (WHATWG streams, a timeout signal per request) cost about three times the CPU per
// request (a 100-tag answer on loopback: about 300 against 100 us), on 2 cores the replicas
// share, and this thread's loop delay (p99 125 ms in a default run) is in every latency.
// They ask for gzip, as Go's HTTP client, browsers, `fetch` and `curl --compressed` do. A
// latency is the time to an answer's last byte, as it always was here (no answer was parsed
// either): unzipping every one took about half a core from the replicas on these 2 shared
// cores (0.15 ms per 100-tag answer). One answer in 64 is unzipped and checked to be JSON of
// the repository asked for; one that is not counts as an error.
import { setMaxListeners } from "node:events";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parentPort, workerData } from "node:worker_threads";
import { gunzipSync } from "node:zlib";
import { Agent, request } from "undici";

const { apis, clients, maxMs } = workerData;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const names = [];
let stopped = false;
// Headers and body each within 10 s; and whatever is still in flight 20 s past the last
// start is aborted (a stop lets the requests in flight finish).
const agent = new Agent({ headersTimeout: 10_000, bodyTimeout: 10_000 });
const giveUp = AbortSignal.timeout(maxMs + 20_000);
// undici listens on it for a request and for its body: two per client, and a few more.
setMaxListeners(4 * clients, giveUp);
parentPort.on("message", (m) => {
  if (m === "stop") stopped = true;
  else if (Array.isArray(m?.add)) names.push(...m.add);
});

/** Answers that were not the JSON of the repository asked for; the first few, and why. */
let misfitCount = 0;
const misfits = [];
/** Why the first few requests that failed did (a replica killed, a reset, a timeout). */
const failures = [];

/** Whether `body` (gzip-encoded when `zipped`) is the JSON answer of repository `name`. */
function isAnswerOf(name, zipped, body, headers) {
  let why;
  try {
    const got = JSON.parse((zipped ? gunzipSync(body) : body).toString("utf8")).name;
    if (got === name) return true;
    why = `name ${JSON.stringify(got)}`;
  } catch (err) {
    why = err.message;
  }
  misfitCount++;
  if (misfits.length < 5) {
    const length = headers["content-length"];
    misfits.push({ name, zipped, bytes: body.length, length, why });
  }
  return false;
}

const latencies = [];
const askedAt = [];
// Which replica answered each: a stall of one replica shows as a burst of its reads.
const replicaOf = [];
const byStatus = {};
let errors = 0;
let gzipped = 0;
let next = 0;
const start = performance.now();
const deadline = Date.now() + maxMs;
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
await Promise.all(
  Array.from({ length: clients }, async () => {
    while (Date.now() < deadline && !stopped) {
      if (names.length === 0) {
        await sleep(20);
        continue;
      }
      const i = next++;
      const name = names[i % names.length];
      const api = apis[i % apis.length];
      const t0 = performance.now();
      try {
        const res = await request(`${api}/v1/repositories/${name}`, {
          dispatcher: agent,
          signal: giveUp,
          headers: { "accept-encoding": "gzip" },
        });
        const body = Buffer.from(await res.body.arrayBuffer());
        const ms = performance.now() - t0;
        const zipped = res.headers["content-encoding"] === "gzip";
        if (zipped) gzipped++;
        if (
          res.statusCode === 200 &&
          i % 64 === 0 &&
          !isAnswerOf(name, zipped, body, res.headers)
        ) {
          errors++;
          continue;
        }
        byStatus[res.statusCode] = (byStatus[res.statusCode] ?? 0) + 1;
        if (res.statusCode === 200) {
          latencies.push(ms);
          askedAt.push(t0 - start);
          replicaOf.push(i % apis.length);
        } else await sleep(50);
      } catch (err) {
        errors++;
        if (failures.length < 5) {
          failures.push(`replica ${i % apis.length}: ${err.code ?? ""} ${err.message}`);
        }
        await sleep(50);
      }
    }
  }),
);
loop.disable();
await agent.close();
parentPort.postMessage({
  latencies,
  askedAt,
  replicaOf,
  byStatus,
  errors,
  gzipped,
  misfitCount,
  misfits,
  failures,
  loop: { p99Ms: loop.percentile(99) / 1e6, maxMs: loop.max / 1e6 },
});
parentPort.close();
