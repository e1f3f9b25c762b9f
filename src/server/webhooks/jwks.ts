/**
 * The keys that sign Pub/Sub push tokens, fetched from the issuer's JWKS URL with a deadline
 * and kept for a while (and through the issuer's outages). At most one fetch is made per
 * cool-down, so that forged key IDs or a failing issuer cannot make regscan hammer it.
 */
import {
  createLocalJWKSet,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWTHeaderParameters,
} from "jose";
import { type Dispatcher, getGlobalDispatcher, request } from "undici";
import { JwksUnavailableError } from "./errors.js";

/** Where and how the keys are fetched. */
export interface JwksOptions {
  /** The JWKS URL (Google's: https://www.googleapis.com/oauth2/v3/certs). */
  url: string;
  /** Longest a fetch may take, in milliseconds (default 5 s). */
  timeoutMs?: number | undefined;
  /** How long fetched keys are used before they are fetched again (default 1 h). */
  cacheMs?: number | undefined;
  /** Least time between two fetches caused by an unknown key ID (default 30 s). */
  cooldownMs?: number | undefined;
  /** The dispatcher to fetch through (proxy, CA); undici's global one by default. */
  dispatcher?: Dispatcher | undefined;
  /** Milliseconds since the epoch; injectable for tests. */
  now?: (() => number) | undefined;
}

/** Largest JWKS document read. */
const MAX_JWKS_BYTES = 262_144;

type KeyGetter = ReturnType<typeof createLocalJWKSet>;

/** A cached JWKS. */
export class JwksCache {
  #keys: KeyGetter | undefined;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #attemptedAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<KeyGetter> | undefined;
  readonly #now: () => number;
  readonly #opts: JwksOptions;

  constructor(opts: JwksOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  /** A key resolver for `jwtVerify`, bound to the caller's signal. */
  resolver(
    signal: AbortSignal,
  ): (header: JWTHeaderParameters, token: FlattenedJWSInput) => ReturnType<KeyGetter> {
    return async (header, token) => {
      const keys = await this.#currentKeys(signal, false);
      try {
        return await keys(header, token);
      } catch (err) {
        if ((err as { code?: string }).code !== "ERR_JWKS_NO_MATCHING_KEY") throw err;
        // The issuer may have rotated its keys since they were fetched.
        const again = await this.#currentKeys(signal, true);
        if (again === keys) throw err;
        return again(header, token);
      }
    };
  }

  /**
   * The current keys: fetched when there are none, when they are old, or (`rotated`) when a
   * token names a key not among them; at most one fetch per cool-down, and the old keys
   * are kept when a fetch fails.
   */
  async #currentKeys(signal: AbortSignal, rotated: boolean): Promise<KeyGetter> {
    const now = this.#now();
    const old = now - this.#fetchedAt >= (this.#opts.cacheMs ?? 3_600_000);
    if (this.#keys && !old && !rotated) return this.#keys;
    if (now - this.#attemptedAt < (this.#opts.cooldownMs ?? 30_000)) {
      if (this.#keys) return this.#keys;
      throw new JwksUnavailableError(this.#opts.url, "the last fetch failed moments ago");
    }
    try {
      return await this.#fetch(signal);
    } catch (err) {
      if (this.#keys) return this.#keys;
      throw err;
    }
  }

  #fetch(signal: AbortSignal): Promise<KeyGetter> {
    if (this.#inflight === undefined) this.#attemptedAt = this.#now();
    this.#inflight ??= this.#load(signal).finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #load(signal: AbortSignal): Promise<KeyGetter> {
    const url = this.#opts.url;
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(this.#opts.timeoutMs ?? 5_000)]);
    let text: string;
    try {
      const res = await request(url, {
        method: "GET",
        signal: deadline,
        dispatcher: this.#opts.dispatcher ?? getGlobalDispatcher(),
        headers: { accept: "application/json" },
      });
      if (res.statusCode !== 200) {
        await res.body.dump();
        throw new JwksUnavailableError(url, `HTTP ${res.statusCode}`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > MAX_JWKS_BYTES) {
          res.body.destroy();
          throw new JwksUnavailableError(url, `larger than ${MAX_JWKS_BYTES} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      text = Buffer.concat(chunks).toString("utf8");
    } catch (err) {
      if (err instanceof JwksUnavailableError) throw err;
      const reason = deadline.aborted && !signal.aborted ? "timed out" : (err as Error).message;
      throw new JwksUnavailableError(url, reason, { cause: err });
    }
    let keys: KeyGetter;
    try {
      keys = createLocalJWKSet(JSON.parse(text) as JSONWebKeySet);
    } catch (err) {
      throw new JwksUnavailableError(url, "not a JSON Web Key Set", { cause: err });
    }
    this.#keys = keys;
    this.#fetchedAt = this.#now();
    return keys;
  }
}
