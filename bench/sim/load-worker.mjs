// A load-generator thread for bench/sim/capacity.ts (plain JS: Node 20 does not run
// tsx's hooks for a worker's entry module). On each `{ ms }` message it keeps `inFlight`
// requests going against the simulator for `ms` and answers { done, statuses, failures }.
import { parentPort, workerData } from "node:worker_threads";
import { Pool } from "undici";

const { inFlight, work, connections, pipelining } = workerData;
const pools = new Map();
function poolFor(origin) {
  let p = pools.get(origin);
  if (p === undefined) {
    p = new Pool(origin, { connections, pipelining });
    pools.set(origin, p);
  }
  return p;
}

let next = 0;
parentPort.on("message", async ({ ms }) => {
  const until = performance.now() + ms;
  const statuses = new Map();
  const failures = [];
  let done = 0;
  const one = async () => {
    while (performance.now() < until) {
      const w = work[next++ % work.length];
      const res = await poolFor(w.origin).request({
        method: w.method,
        path: w.path,
        headers: { authorization: `Bearer ${w.token}` },
        // undici closes the connection after a HEAD unless told otherwise.
        reset: false,
      });
      await res.body.dump();
      if (res.statusCode !== 200 && failures.length < 5) {
        failures.push(`${res.statusCode} ${w.method} ${w.path}`);
      }
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      done++;
    }
  };
  try {
    await Promise.all(Array.from({ length: inFlight }, one));
    parentPort.postMessage({ done, statuses: [...statuses], failures });
  } catch (err) {
    parentPort.postMessage({ done, statuses: [...statuses], failures, error: String(err) });
  }
});
