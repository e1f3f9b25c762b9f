/**
 * Finds the next page of a paginated listing (`Link: </v2/x/tags/list?n=100&last=a>;
 * rel="next"`, RFC 8288) and resolves it against the URL of the request that returned it.
 */

// Headers are small; a bound keeps a hostile one from costing much.
const MAX_HEADER = 16 * 1024;

interface LinkValue {
  target: string;
  params: Map<string, string>;
}

/** Splits a `Link` header into link-values; commas inside `<...>` and quotes do not split. */
function parseLinks(header: string): LinkValue[] {
  const out: LinkValue[] = [];
  let i = 0;
  const n = header.length;
  while (i < n) {
    while (i < n && (header[i] === "," || header[i] === " " || header[i] === "\t")) i++;
    if (i >= n) break;
    if (header[i] !== "<") {
      // Not a link-value: skip to the next top-level comma.
      i = skipToComma(header, i);
      continue;
    }
    const close = header.indexOf(">", i + 1);
    if (close < 0) break;
    const target = header.slice(i + 1, close).trim();
    i = close + 1;
    const params = new Map<string, string>();
    for (;;) {
      while (i < n && (header[i] === " " || header[i] === "\t")) i++;
      if (header[i] !== ";") break;
      i++;
      while (i < n && (header[i] === " " || header[i] === "\t")) i++;
      let name = "";
      while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header[i] as string)) name += header[i++];
      while (i < n && (header[i] === " " || header[i] === "\t")) i++;
      let value = "";
      if (header[i] === "=") {
        i++;
        while (i < n && (header[i] === " " || header[i] === "\t")) i++;
        if (header[i] === '"') {
          i++;
          while (i < n && header[i] !== '"') {
            if (header[i] === "\\" && i + 1 < n) i++;
            value += header[i++];
          }
          i++;
        } else {
          while (i < n && !/[;,\s]/.test(header[i] as string)) value += header[i++];
        }
      }
      const key = name.toLowerCase();
      if (key !== "" && !params.has(key)) params.set(key, value);
    }
    out.push({ target, params });
    i = skipToComma(header, i);
  }
  return out;
}

function skipToComma(s: string, from: number): number {
  let i = from;
  let quoted = false;
  let angled = false;
  while (i < s.length) {
    const c = s[i];
    if (quoted) {
      if (c === "\\") i++;
      else if (c === '"') quoted = false;
    } else if (angled) {
      if (c === ">") angled = false;
    } else if (c === '"') quoted = true;
    else if (c === "<") angled = true;
    else if (c === ",") return i;
    i++;
  }
  return i;
}

/** What a `Link` header says about the next page: nothing, a URL, or a link that cannot be used. */
export type NextPage = undefined | { url: URL } | { unusable: string };

/**
 * The `rel="next"` link of a `Link` header (several values, or an array of headers),
 * resolved against `requestUrl`. A link that is there but may not be followed (too long a
 * header, not a URL, another origin, userinfo) is reported as `unusable` rather than
 * dropped, so that a listing can fail instead of silently stopping early.
 */
export function nextPageOf(
  header: string | readonly string[] | undefined | null,
  requestUrl: string | URL,
): NextPage {
  if (header === undefined || header === null) return undefined;
  const value = typeof header === "string" ? header : header.join(", ");
  let base: URL;
  try {
    base = new URL(requestUrl);
  } catch {
    return { unusable: "the request URL is not a URL" };
  }
  if (value.length > MAX_HEADER) return { unusable: `Link header over ${MAX_HEADER} bytes` };
  for (const link of parseLinks(value)) {
    const rels = (link.params.get("rel") ?? "").toLowerCase().split(/\s+/);
    if (!rels.includes("next")) continue;
    let next: URL;
    try {
      next = new URL(link.target, base);
    } catch {
      return { unusable: "next link is not a URL" };
    }
    if (lostPort(next, base)) next.port = base.port;
    // The next request carries the registry's credentials: a link elsewhere would send
    // them to a host they were not meant for (no registry paginates across origins).
    if (next.origin !== base.origin) {
      return { unusable: `next link is on another origin (${next.origin})` };
    }
    if (next.username !== "" || next.password !== "") {
      return { unusable: "next link carries user info" };
    }
    next.hash = "";
    return { url: next };
  }
  return undefined;
}

/**
 * Nexus writes absolute next links without its connector's port (`http://host/v2/...` for
 * a listing on `http://host:8082`): same scheme and host name, no port (or the scheme's
 * default) where the request had another. That link means the request's own origin; it is
 * put back there, so credentials still go only where they went. Any other difference
 * (scheme, host, an explicit other port) stays another origin.
 */
function lostPort(next: URL, base: URL): boolean {
  return (
    next.protocol === base.protocol &&
    next.hostname === base.hostname &&
    next.port === "" &&
    base.port !== ""
  );
}

/**
 * The URL of the next page (see `nextPageOf`), or `undefined` when there is no `rel="next"`
 * link or it may not be followed (another origin, user info, not a URL).
 */
export function nextLink(
  header: string | readonly string[] | undefined | null,
  requestUrl: string | URL,
): URL | undefined {
  const next = nextPageOf(header, requestUrl);
  return next !== undefined && "url" in next ? next.url : undefined;
}
