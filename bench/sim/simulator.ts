/**
 * The registry-fleet simulator: several simulated registries in this process, each on its
 * own loopback port with its personality and content, a churn generator, and a control API
 * (`/_sim/...` on its own port) for processes that run it as a child (bench/sim/main.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { ChurnGenerator, type ChurnOptions } from "./churn.js";
import { type FleetSpec, RegistryContent } from "./content.js";
import { ListingLog } from "./listings.js";
import { LoopDelayMonitor } from "./loop-delay.js";
import { PERSONALITIES, type PersonalityName } from "./personalities.js";
import { type Faults, SimRegistry } from "./registry-server.js";
import { TokenIssuer } from "./tokens.js";

export interface SimRegistrySpec {
  /** Also the token `service`; unique in the simulator. */
  name: string;
  personality: PersonalityName;
  fleet: FleetSpec;
  faults?: Faults;
  /** Overrides Docker Hub's quota (`null`: none). */
  pullQuota?: { limit: number; windowSeconds: number } | null;
  /** Fixed port (default: any free one). */
  port?: number;
}

export interface SimulatorOptions {
  registries: SimRegistrySpec[];
  /** Port of the control API: a number (0 = any), or false for none (default false). */
  controlPort?: number | false;
  /** `expires_in` of issued tokens (default 300 s). */
  tokenExpiresInSeconds?: number;
}

export class Simulator {
  readonly registries: SimRegistry[];
  /** When each repository was listed (tag-list requests answered 200). */
  readonly listings: ListingLog;
  #churn: ChurnGenerator | undefined;
  #control: Server | undefined;
  #controlUrl: string | undefined;
  readonly #started = Date.now();
  readonly #cpuAtStart = process.cpuUsage();
  /** Whether this process stalled (a registry counts a request when it handles it). */
  readonly #loop = new LoopDelayMonitor();

  private constructor(registries: SimRegistry[]) {
    this.registries = registries;
    this.listings = new ListingLog(registries);
    this.#loop.start();
  }

  /** Starts every registry (and the control API when asked for). */
  static async start(opts: SimulatorOptions): Promise<Simulator> {
    const tokens = new TokenIssuer(opts.tokenExpiresInSeconds ?? 300);
    const names = new Set<string>();
    const registries: SimRegistry[] = [];
    for (const spec of opts.registries) {
      if (names.has(spec.name)) throw new Error(`two simulated registries named ${spec.name}`);
      names.add(spec.name);
      const personality = PERSONALITIES[spec.personality];
      if (personality === undefined) throw new Error(`unknown personality ${spec.personality}`);
      registries.push(
        new SimRegistry({
          name: spec.name,
          personality,
          content: new RegistryContent(spec.fleet),
          tokens,
          faults: spec.faults,
          pullQuota: spec.pullQuota,
        }),
      );
    }
    const sim = new Simulator(registries);
    try {
      await Promise.all(registries.map((r, i) => r.listen(opts.registries[i]?.port ?? 0)));
      if (opts.controlPort !== undefined && opts.controlPort !== false) {
        await sim.#listenControl(opts.controlPort);
      }
    } catch (err) {
      await sim.stop();
      throw err;
    }
    return sim;
  }

  registry(name: string): SimRegistry {
    const r = this.registries.find((x) => x.name === name);
    if (r === undefined) throw new Error(`no simulated registry ${name}`);
    return r;
  }

  /** The control API's base URL, when it was started. */
  get controlUrl(): string | undefined {
    return this.#controlUrl;
  }

  /** Starts (or replaces) the churn generator. */
  async startChurn(opts: ChurnOptions): Promise<ChurnGenerator> {
    await this.#churn?.stop();
    this.#churn = new ChurnGenerator(this.registries, opts);
    this.#churn.start();
    return this.#churn;
  }

  async stopChurn(): Promise<void> {
    await this.#churn?.stop();
  }

  get churn(): ChurnGenerator | undefined {
    return this.#churn;
  }

  /**
   * Counts of every registry over the last `seconds`, and this process's CPU time, memory
   * and event-loop delay (its stalls over those seconds).
   */
  stats(seconds = 60) {
    const cpu = process.cpuUsage(this.#cpuAtStart);
    return {
      process: {
        uptimeMs: Date.now() - this.#started,
        cpuUserMs: cpu.user / 1000,
        cpuSystemMs: cpu.system / 1000,
        rss: process.memoryUsage().rss,
        loop: this.#loop.snapshot(Date.now() - seconds * 1000),
      },
      registries: Object.fromEntries(
        this.registries.map((r) => [
          r.name,
          {
            personality: r.personality.name,
            totals: r.stats.totals,
            pullsRemaining: r.pullsRemaining() ?? null,
            images: r.content.imageCounts(),
            perSecond: r.stats.perSecond(seconds),
          },
        ]),
      ),
    };
  }

  async stop(): Promise<void> {
    this.#loop.stop();
    this.listings.stop();
    await this.#churn?.stop();
    const control = this.#control;
    if (control !== undefined) {
      await new Promise<void>((resolve) => {
        control.closeAllConnections();
        control.close(() => resolve());
      });
    }
    await Promise.all(this.registries.map((r) => r.close()));
  }

  async #listenControl(port: number): Promise<void> {
    const server = createServer((req, res) => {
      this.#controlRequest(req, res).catch((err: unknown) => {
        sendJson(res, 500, { error: err instanceof Error ? err.message : String(err) });
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    const addr = server.address();
    if (addr === null || typeof addr === "string") throw new Error("control API has no port");
    this.#control = server;
    this.#controlUrl = `http://127.0.0.1:${addr.port}`;
  }

  async #controlRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://sim.invalid");
    const q = url.searchParams;
    const route = `${req.method} ${url.pathname}`;
    switch (route) {
      case "GET /_sim/registries":
        return sendJson(
          res,
          200,
          this.registries.map((r) => ({
            name: r.name,
            personality: r.personality.name,
            url: r.url,
            host: r.host,
            repositories: r.content.repositories().length,
          })),
        );
      case "GET /_sim/stats":
        return sendJson(res, 200, this.stats(Number(q.get("seconds") ?? 60)));
      case "GET /_sim/repositories":
        return sendJson(res, 200, this.registry(q.get("registry") ?? "").content.repositories());
      case "GET /_sim/truth": {
        const content = this.registry(q.get("registry") ?? "").content;
        const repository = q.get("repository") ?? "";
        if (!content.hasRepository(repository))
          return sendJson(res, 404, { error: "no such repository" });
        return sendJson(
          res,
          200,
          q.get("digests") === "1" ? content.truth(repository) : content.tags(repository),
        );
      }
      case "GET /_sim/listings":
        return sendJson(res, 200, this.listings.since(Number(q.get("since") ?? 0)));
      case "GET /_sim/activity":
        return sendJson(res, 200, this.listings.activitySince(Number(q.get("since") ?? 0)));
      case "GET /_sim/changes":
        return sendJson(res, 200, this.#churn?.since(Number(q.get("since") ?? 0)) ?? []);
      case "POST /_sim/faults": {
        const registry = this.registry(q.get("registry") ?? "");
        registry.setFaults(JSON.parse(await readBody(req)) as Faults);
        return sendJson(res, 200, registry.faults);
      }
      case "POST /_sim/churn": {
        const churn = await this.startChurn(JSON.parse(await readBody(req)) as ChurnOptions);
        return sendJson(res, 200, { started: true, changes: churn.changes.length });
      }
      case "DELETE /_sim/churn":
        await this.stopChurn();
        return sendJson(res, 200, { stopped: true, webhooks: this.#churn?.webhooks ?? null });
      default:
        return sendJson(res, 404, { error: `no route ${route}` });
    }
  }
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = Buffer.from(`${JSON.stringify(value)}\n`);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": String(body.length),
  });
  res.end(body);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > 1024 * 1024) {
        reject(new Error("control request body over 1 MiB"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
