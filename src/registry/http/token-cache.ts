/**
 * Bearer tokens by realm + service + scope + credential, kept until shortly before they
 * expire, with concurrent requests for the same key sharing one fetch. Shared by every
 * client of a factory; the credential part of the key is a hash, never the secret.
 */
import { createHash } from "node:crypto";
import type { HostCredential } from "../credentials/credentials.js";

/** A token and when it stops being usable (epoch ms, margin already taken off). */
export interface CachedToken {
  token: string;
  expiresAt: number;
}

/** How long a token is kept. */
export interface TokenCacheOptions {
  /** For tests. */
  now?: (() => number) | undefined;
  /** Most tokens kept (default 10,000); the oldest go first. */
  maxEntries?: number | undefined;
}

/** The token cache. */
export class TokenCache {
  readonly #tokens = new Map<string, CachedToken>();
  readonly #inFlight = new Map<string, Promise<CachedToken>>();
  readonly #now: () => number;
  readonly #max: number;

  constructor(opts: TokenCacheOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#max = opts.maxEntries ?? 10_000;
  }

  /** The key for a realm, service, scope and credential. */
  static key(of: {
    realm: string;
    service?: string | undefined;
    scope: string;
    /** Anonymous when absent. */
    cred?: HostCredential | undefined;
  }): string {
    const { realm, service, scope, cred } = of;
    return JSON.stringify([realm, service ?? "", scope, credentialFingerprint(cred)]);
  }

  /** Whether a still-valid token is cached under `key`. */
  has(key: string): boolean {
    const cached = this.#tokens.get(key);
    return cached !== undefined && cached.expiresAt > this.#now();
  }

  /** A still-valid cached token, or `fetch` a new one (shared with concurrent callers). */
  async get(
    key: string,
    fetch: () => Promise<{ token: string; expiresInMs: number }>,
  ): Promise<CachedToken> {
    const cached = this.#tokens.get(key);
    if (cached && cached.expiresAt > this.#now()) return cached;
    let p = this.#inFlight.get(key);
    if (!p) {
      p = fetch().then(({ token, expiresInMs }) => {
        const entry = { token, expiresAt: this.#now() + expiresInMs - expiryMargin(expiresInMs) };
        this.#set(key, entry);
        return entry;
      });
      this.#inFlight.set(key, p);
      const clear = () => this.#inFlight.delete(key);
      p.then(clear, clear);
    }
    return p;
  }

  /** Drops a token the registry refused (only if it is still the one that was refused). */
  invalidate(key: string, token: string): void {
    if (this.#tokens.get(key)?.token === token) this.#tokens.delete(key);
  }

  get size(): number {
    return this.#tokens.size;
  }

  #set(key: string, entry: CachedToken): void {
    // Expired tokens go as new ones come: scanning 10,000 repositories, one token each, the
    // table otherwise held every token past its life (2.7 MB of a replica's heap). Tokens
    // are kept in the order they came, which is the order they expire in for one lifetime;
    // a longer-lived one in front only delays this until it expires too.
    const now = this.#now();
    for (const [oldKey, old] of this.#tokens) {
      if (old.expiresAt > now) break;
      this.#tokens.delete(oldKey);
    }
    this.#tokens.delete(key);
    this.#tokens.set(key, entry);
    while (this.#tokens.size > this.#max) {
      const oldest = this.#tokens.keys().next().value;
      if (oldest === undefined) break;
      this.#tokens.delete(oldest);
    }
  }
}

/** A token is given up a little before it expires: 10 % of its life, at most 30 s. */
function expiryMargin(lifeMs: number): number {
  return Math.min(30_000, lifeMs / 10);
}

function credentialFingerprint(cred: HostCredential | undefined): string {
  if (!cred) return "anonymous";
  const h = createHash("sha256");
  for (const part of [cred.username, cred.password, cred.identityToken, cred.registryToken]) {
    h.update(part ?? "\0");
    h.update("\0\0");
  }
  return h.digest("hex");
}
