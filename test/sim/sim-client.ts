/**
 * A minimal Distribution API reader for the simulator's tests: learns the Bearer challenge,
 * fetches a token per repository, and follows tag-list `Link` headers the way a client
 * would, with a hook to see (and repair) each next link before it is followed.
 */
import { createHash } from "node:crypto";
import { Agent, request } from "undici";

export interface SimResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export function sha256(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string {
  const v = headers[name];
  return Array.isArray(v) ? v.join(", ") : (v ?? "");
}

/** Parses `Bearer realm="..",service="..",scope=".."`. */
export function parseChallenge(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of value.replace(/^Bearer\s+/i, "").matchAll(/(\w+)="([^"]*)"/g)) {
    out[m[1] as string] = m[2] as string;
  }
  return out;
}

export class SimReader {
  readonly #agent = new Agent({ connections: 8 });
  readonly #tokens = new Map<string, string>();
  constructor(readonly base: string) {}

  async get(
    path: string,
    opts: { method?: "GET" | "HEAD"; token?: string | null; repository?: string } = {},
  ): Promise<SimResponse> {
    const url = new URL(path, this.base);
    let token = opts.token;
    if (token === undefined && opts.repository !== undefined)
      token = await this.token(opts.repository);
    const res = await request(url, {
      method: opts.method ?? "GET",
      dispatcher: this.#agent,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(30_000),
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) headers[k] = header({ [k]: v }, k);
    return { status: res.statusCode, headers, body };
  }

  /** A pull token for `repository`, from the realm the registry's challenge names. */
  async token(repository: string): Promise<string> {
    const cached = this.#tokens.get(repository);
    if (cached !== undefined) return cached;
    const ping = await this.get("/v2/", { token: null });
    const challenge = parseChallenge(ping.headers["www-authenticate"] ?? "");
    const realm = new URL(challenge.realm ?? "");
    realm.searchParams.set("service", challenge.service ?? "");
    realm.searchParams.set("scope", `repository:${repository}:pull`);
    const res = await this.get(realm.href, { token: null });
    const token = (JSON.parse(res.body.toString("utf8")) as { token: string }).token;
    this.#tokens.set(repository, token);
    return token;
  }

  /**
   * Every page of `repository`'s tags from `first` on, following `Link: rel="next"`.
   * `fixNext` sees each next link (as sent) and returns the URL to follow.
   */
  async listAll(
    repository: string,
    first: string,
    fixNext: (link: string) => string = (l) => l,
  ): Promise<{ tags: string[]; pages: number; links: string[] }> {
    const tags: string[] = [];
    const links: string[] = [];
    let next: string | undefined = first;
    let pages = 0;
    let token = await this.token(repository);
    while (next !== undefined) {
      if (++pages > 10_000) throw new Error("listing does not end");
      const res = await this.get(next, { token });
      if (res.status === 401) {
        // A fixed link may name the repository differently; it must still be this one.
        throw new Error(`401 following ${next}`);
      }
      if (res.status !== 200) throw new Error(`HTTP ${res.status} for ${next}: ${res.body}`);
      tags.push(...(JSON.parse(res.body.toString("utf8")) as { tags: string[] }).tags);
      const link = res.headers.link;
      if (link === undefined || link === "") break;
      const m = /<([^>]*)>\s*;\s*rel="next"/.exec(link);
      if (m === null) throw new Error(`no next link in ${link}`);
      links.push(m[1] as string);
      next = fixNext(m[1] as string);
      token = await this.token(repository);
    }
    return { tags, pages, links };
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}
