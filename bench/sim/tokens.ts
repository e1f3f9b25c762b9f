/**
 * Bearer tokens of the simulated registries: `GET /token?service=..&scope=..` issues an
 * HMAC-signed token naming the repositories it may pull, and every registry request is
 * checked against it. Verified tokens are remembered so a check costs a map lookup.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

interface Grant {
  registry: string;
  repositories: Set<string>;
  /** Epoch ms. */
  expires: number;
}

const MAX_REMEMBERED = 50_000;

export class TokenIssuer {
  readonly #secret = randomBytes(32);
  readonly #verified = new Map<string, Grant>();
  constructor(readonly expiresInSeconds = 300) {}

  /** A token for `registry` pulling the repositories named by `repository:NAME:pull` scopes. */
  issue(
    registry: string,
    scopes: string[],
    now = Date.now(),
  ): { token: string; expiresIn: number } {
    const repositories: string[] = [];
    for (const scope of scopes) {
      const first = scope.indexOf(":");
      const last = scope.lastIndexOf(":");
      if (first < 0 || last <= first || scope.slice(0, first) !== "repository") continue;
      if (
        !scope
          .slice(last + 1)
          .split(",")
          .includes("pull")
      )
        continue;
      repositories.push(scope.slice(first + 1, last));
    }
    const payload = Buffer.from(
      JSON.stringify({ g: registry, r: repositories, e: now + this.expiresInSeconds * 1000 }),
    ).toString("base64url");
    return { token: `sim.${payload}.${this.#sign(payload)}`, expiresIn: this.expiresInSeconds };
  }

  /** Whether `authorization` carries a live token of `registry` for `repository` (any if undefined). */
  allows(
    authorization: string | undefined,
    registry: string,
    repository: string | undefined,
    now = Date.now(),
  ): boolean {
    if (authorization === undefined || !authorization.startsWith("Bearer ")) return false;
    const token = authorization.slice(7).trim();
    const grant = this.#verified.get(token) ?? this.#verify(token);
    if (grant === undefined || grant.registry !== registry || grant.expires <= now) return false;
    return repository === undefined || grant.repositories.has(repository);
  }

  #verify(token: string): Grant | undefined {
    const parts = token.split(".");
    if (parts.length !== 3 || parts[0] !== "sim") return undefined;
    const payload = parts[1] as string;
    const given = Buffer.from(parts[2] as string);
    const expected = Buffer.from(this.#sign(payload));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    } catch {
      return undefined;
    }
    const p = parsed as { g?: unknown; r?: unknown; e?: unknown };
    if (typeof p.g !== "string" || !Array.isArray(p.r) || typeof p.e !== "number") return undefined;
    const grant: Grant = {
      registry: p.g,
      repositories: new Set(p.r.filter((x): x is string => typeof x === "string")),
      expires: p.e,
    };
    if (this.#verified.size >= MAX_REMEMBERED) this.#verified.clear();
    this.#verified.set(token, grant);
    return grant;
  }

  #sign(payload: string): string {
    return createHmac("sha256", this.#secret).update(payload).digest("base64url");
  }
}
