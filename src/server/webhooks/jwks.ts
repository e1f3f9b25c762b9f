/**
 * The keys that sign Pub/Sub push tokens, fetched from the issuer's JWKS URL with a deadline
 * and kept for a while; a token signed by a key not yet known causes one refetch at most per
 * cool-down, so that forged key IDs cannot make regscan hammer the issuer.
 */
import {
  createLocalJWKSet,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWTHeaderParameters,
} from "jose";
import { request } from "undici";
import { JwksUnavailableError } from "./errors.js";

/** Where and how the keys are fetched. */
export interface JwksOptions {
  /** The JWKS URL (Google's: https://www.googleapis.com/oauth2/v3/certs). */
  url: string;
  /** Longest a fetch may take, in milliseconds (default 5 s). */
  timeoutMs?: number;
  /** How long fetched keys are used before they are fetched again (default 1 h). */
  cacheMs?: number;
  /** Least time between two fetches caused by an unknown key ID (default 30 s). */
  cooldownMs?: number;
  now?: () => number;
}

/** Largest JWKS document read. */
const MAX_JWKS_BYTES = 262_144;

type KeyGetter = ReturnType<typeof createLocalJWKSet>;

/** A cached JWKS. */
export class JwksCache {
  #keys: KeyGetter | undefined;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<KeyGetter> | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: JwksOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** A key resolver for `jwtVerify`, bound to the caller's signal. */
  resolver(
    signal: AbortSignal,
  ): (header: JWTHeaderParameters, token: FlattenedJWSInput) => ReturnType<KeyGetter> {
    return async (header, token) => {
      const fresh = this.now() - this.#fetchedAt < (this.opts.cacheMs ?? 3_600_000);
      const keys = fresh && this.#keys ? this.#keys : await this.fetch(signal);
      try {
        return await keys(header, token);
      } catch (err) {
        const unknownKey = (err as { code?: string }).code === "ERR_JWKS_NO_MATCHING_KEY";
        if (!unknownKey || this.now() - this.#fetchedAt < (this.opts.cooldownMs ?? 30_000))
          throw err;
        // The issuer may have rotated its keys since they were fetched.
        return (await this.fetch(signal))(header, token);
      }
    };
  }

  private fetch(signal: AbortSignal): Promise<KeyGetter> {
    this.#inflight ??= this.load(signal).finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  private async load(signal: AbortSignal): Promise<KeyGetter> {
    const url = this.opts.url;
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(this.opts.timeoutMs ?? 5_000)]);
    let text: string;
    try {
      const res = await request(url, {
        method: "GET",
        signal: deadline,
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
    this.#fetchedAt = this.now();
    return keys;
  }
}
