// The API readers of bench/scale (measure.ts `apiLoad`) on a thread of their own (plain JS:
// Node 20 does not run tsx's hooks for a worker's entry module). It reads the repositories
// the bench posts (`{ add: [...] }`: ones the fill has completed), waiting while there is
// none. A latency is taken on the event loop that sends the request and reads the answer:
// on the bench's main thread it carried the bench's own pauses (parsing whole repositories
// for the fill's end, its major GCs of 50 ms and more) as the replica's. Reads until `maxMs` passes or a `stop` message
// comes, then posts the latencies of 200 answers, when each was asked, the statuses and
// this thread's own event-loop delay.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parentPort, workerData } from "node:worker_threads";

const { apis, clients, maxMs } = workerData;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const names = [];
let stopped = false;
parentPort.on("message", (m) => {
  if (m === "stop") stopped = true;
  else if (Array.isArray(m?.add)) names.push(...m.add);
});

const latencies = [];
const askedAt = [];
const byStatus = {};
let errors = 0;
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
        const res = await fetch(`${api}/v1/repositories/${name}`, {
          signal: AbortSignal.timeout(10_000),
        });
        await res.arrayBuffer();
        const ms = performance.now() - t0;
        byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
        if (res.status === 200) {
          latencies.push(ms);
          askedAt.push(t0 - start);
        } else await sleep(50);
      } catch {
        errors++;
        await sleep(50);
      }
    }
  }),
);
loop.disable();
parentPort.postMessage({
  latencies,
  askedAt,
  byStatus,
  errors,
  loop: { p99Ms: loop.percentile(99) / 1e6, maxMs: loop.max / 1e6 },
});
parentPort.close();
