/**
 * An independent statement of `docker pull`'s reference parser for differential tests: the
 * distribution grammar as one anchored regular expression (as reference/regexp.go builds
 * it), the Docker Hub domain split of normalize.go, go-digest's algorithm check, and the
 * familiar form FamiliarString prints.
 */

const alphanumeric = "[a-z0-9]+";
const separator = "(?:[._]|__|[-]+)";
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const domainNameComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const ipv6address = "\\[(?:[a-fA-F0-9:]+)\\]";
const domainAndPort = `(?:${domainName}|${ipv6address})(?::[0-9]+)?`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const tag = "[\\w][\\w.-]{0,127}";
const digestPat = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}";
const referenceRegexp = new RegExp(
  `^((?:(${domainAndPort})/)?(${remoteName}))(?::(${tag}))?(?:@(${digestPat}))?$`,
);
const identifier = /^[a-f0-9]{64}$/;
const digestHex: Record<string, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha384: /^[a-f0-9]{96}$/,
  sha512: /^[a-f0-9]{128}$/,
};

export interface OracleRef {
  domain: string;
  path: string;
  tag: string | undefined;
  digest: string | undefined;
}

function splitDockerDomain(name: string): [string, string] {
  const i = name.indexOf("/");
  if (i === -1) return ["docker.io", `library/${name}`];
  const maybeDomain = name.slice(0, i);
  const rest = name.slice(i + 1);
  let domain: string;
  let remote: string;
  if (maybeDomain === "localhost") [domain, remote] = [maybeDomain, rest];
  else if (maybeDomain === "index.docker.io") [domain, remote] = ["docker.io", rest];
  else if (/[.:]/.test(maybeDomain)) [domain, remote] = [maybeDomain, rest];
  else if (maybeDomain.toLowerCase() !== maybeDomain) [domain, remote] = [maybeDomain, rest];
  else [domain, remote] = ["docker.io", name];
  if (domain === "docker.io" && !remote.includes("/")) remote = `library/${remote}`;
  return [domain, remote];
}

/** What distribution's ParseNormalizedNamed makes of `s`, or undefined when it refuses it. */
export function distributionParse(s: string): OracleRef | undefined {
  if (identifier.test(s)) return undefined;
  const [domain, remainder] = splitDockerDomain(s);
  const tagSep = remainder.indexOf(":");
  const remote = tagSep > -1 ? remainder.slice(0, tagSep) : remainder;
  if (remote.toLowerCase() !== remote) return undefined;
  const m = referenceRegexp.exec(`${domain}/${remainder}`);
  if (m === null) return undefined;
  // For a first component such as "a_b.c" that is taken for a domain but is not a valid
  // one, distribution falls back to a reference with an empty domain, which names no
  // registry; regscan refuses it with "invalid domain" instead.
  if (m[2] === undefined) return undefined;
  // distribution takes any digits as a port; regscan refuses 0 and ports past 65535, which
  // no URL can carry.
  const port = /:(\d+)$/.exec(m[2])?.[1];
  if (port !== undefined && !(Number(port) >= 1 && Number(port) <= 65535)) return undefined;
  if ((m[1] ?? "").length > 255) return undefined;
  const digest = m[5];
  if (digest !== undefined) {
    const colon = digest.indexOf(":");
    const check = digestHex[digest.slice(0, colon)];
    if (check === undefined || !check.test(digest.slice(colon + 1))) return undefined;
  }
  return { domain: m[2] ?? "", path: m[3] ?? "", tag: m[4], digest };
}

/**
 * What distribution's FamiliarString prints for a parsed reference (familiarizeName in
 * normalize.go): Docker Hub's domain dropped, and `library/` too when one component is left.
 */
export function distributionFamiliar(ref: OracleRef): string {
  let name = `${ref.domain}/${ref.path}`;
  if (ref.domain === "docker.io") {
    const rest = ref.path.startsWith("library/") ? ref.path.slice("library/".length) : undefined;
    name = rest !== undefined && !rest.includes("/") ? rest : ref.path;
  }
  return `${name}${ref.tag !== undefined ? `:${ref.tag}` : ""}${ref.digest !== undefined ? `@${ref.digest}` : ""}`;
}
