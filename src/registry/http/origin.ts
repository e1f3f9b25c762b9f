/**
 * The origin layer (go-containerregistry's `schemer`): owns each host's policy — its API
 * base URL, the fallback to plain http for a host listed as insecure, and the challenge it
 * answered the ping with — so that nothing above it needs to know a scheme or ping a host.
 */
import { raceAbort } from "../../abort.js";
import type { HttpRequest, Layer, RegistryPath, Transport } from "./exchange.js";
import { type InsecurePolicy, insecureHostPolicy } from "./insecure-hosts.js";
import { type HostPolicy, pingHost } from "./ping.js";

/** How the origin layer is made. */
export interface OriginOptions {
  /** Hosts (with or without port) that may skip TLS verification and fall back to plain HTTP. */
  insecureHosts: readonly string[];
  /** The chain pings go through: the pipeline below auth (this layer lets absolute URLs by). */
  ping: Transport;
  /** The same without retries, for the quick first look at an insecure host. */
  probe: Transport;
}

/** Each host's policy, learnt once per factory and shared by every client. */
export class Origins {
  readonly #isInsecure: InsecurePolicy;
  readonly #opts: OriginOptions;
  readonly #policies = new Map<string, Promise<HostPolicy>>();
  /**
   * The policies learnt, for requests to take without waiting: raced against each request's
   * signal, a learnt policy cost two abort listeners per request on a scan's signal, whose
   * hundreds of listeners each add walks (1.8% of a replica's CPU at 2,000,000 tags).
   */
  readonly #known = new Map<string, HostPolicy>();

  constructor(opts: OriginOptions) {
    this.#opts = opts;
    this.#isInsecure = insecureHostPolicy(opts.insecureHosts);
  }

  /**
   * The layer: a registry path goes to its host's base URL; every request is marked with
   * its host's TLS policy for the dispatcher.
   */
  readonly layer: Layer = (next) => async (req) => {
    const url = req.url instanceof URL ? req.url : await this.#resolve(req.url, req);
    return next({ ...req, url, skipTlsVerify: this.#isInsecure(url.host) });
  };

  /** Whether the user listed `host` (`name[:port]`) as insecure. */
  isInsecure(host: string): boolean {
    return this.#isInsecure(host);
  }

  /**
   * The host's policy, pinging it the first time. A failed ping is forgotten so that the
   * next request tries again; the first caller's signal does not cancel a shared ping.
   */
  policy(host: string, signal?: AbortSignal): Promise<HostPolicy> {
    const known = this.#known.get(host);
    if (known) return signal?.aborted ? Promise.reject(signal.reason) : Promise.resolve(known);
    let p = this.#policies.get(host);
    if (!p) {
      p = pingHost(host, {
        transport: this.#opts.ping,
        probe: this.#opts.probe,
        isInsecure: this.#isInsecure,
      });
      this.#policies.set(host, p);
      p.then(
        (learnt) => this.#known.set(host, learnt),
        () => this.#policies.delete(host),
      );
    }
    return raceAbort(p, signal);
  }

  async #resolve(path: RegistryPath, req: HttpRequest): Promise<URL> {
    const { base } = await this.policy(path.host, req.signal);
    return new URL(path.path, base);
  }
}
