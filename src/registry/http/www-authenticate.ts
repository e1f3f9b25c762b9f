/**
 * Parses `WWW-Authenticate` (RFC 7235 challenges) so the client learns whether a registry
 * wants Bearer tokens (and from which realm, for which service) or Basic credentials.
 *
 * Choice: `parseWwwAuthenticate` never throws. It returns the well-formed challenges that
 * precede the first syntax error, so garbage gives `[]` while a good Bearer challenge
 * followed by junk still works. `parseWwwAuthenticateStrict` throws
 * `InvalidChallengeError` (and nothing else) on any syntax error.
 */
import { RegscanError } from "../../errors.js";
import { withoutUndefined } from "../../without-undefined.js";

/** One challenge: a scheme and its parameters (or a token68). */
export interface AuthChallenge {
  /** The scheme, lower-cased: `bearer`, `basic`, ... */
  scheme: string;
  /** Parameters by lower-cased name; values unquoted and unescaped. First occurrence wins. */
  params: Record<string, string>;
  /** The token68 form (`Basic abc==`), when the challenge used it instead of parameters. */
  token68?: string;
}

/** A `WWW-Authenticate` header that does not follow RFC 7235. */
export class InvalidChallengeError extends RegscanError {
  readonly code = "INVALID_CHALLENGE";
  constructor(
    readonly position: number,
    reason: string,
  ) {
    super(`invalid WWW-Authenticate header at position ${position}: ${reason}`);
  }
}

// Headers are small; a bound keeps a hostile one from costing much.
const MAX_HEADER = 16 * 1024;

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68_CHAR = /[A-Za-z0-9\-._~+/]/;

function isTchar(c: string | undefined): boolean {
  return c !== undefined && TCHAR.test(c);
}

class Parser {
  pos = 0;
  readonly out: AuthChallenge[] = [];
  constructor(readonly s: string) {}

  fail(reason: string): never {
    throw new InvalidChallengeError(this.pos, reason);
  }

  peek(offset = 0): string | undefined {
    return this.s[this.pos + offset];
  }

  skipOws(): void {
    while (this.peek() === " " || this.peek() === "\t") this.pos++;
  }

  token(): string {
    const start = this.pos;
    while (isTchar(this.peek())) this.pos++;
    if (this.pos === start) this.fail("expected a token");
    return this.s.slice(start, this.pos);
  }

  quoted(): string {
    // Caller has seen the opening quote.
    this.pos++;
    let value = "";
    for (;;) {
      const c = this.peek();
      if (c === undefined) this.fail("unterminated quoted string");
      if (c === '"') {
        this.pos++;
        return value;
      }
      if (c === "\\") {
        const next = this.peek(1);
        if (next === undefined) this.fail("unterminated quoted string");
        value += next;
        this.pos += 2;
        continue;
      }
      if (c < " " && c !== "\t") this.fail("control character in quoted string");
      if (c === "\u007f") this.fail("control character in quoted string");
      value += c;
      this.pos++;
    }
  }

  /** At `pos`: a token followed by optional whitespace and `=`, i.e. an auth-param. */
  atParam(): boolean {
    let p = this.pos;
    while (isTchar(this.s[p])) p++;
    if (p === this.pos) return false;
    while (this.s[p] === " " || this.s[p] === "\t") p++;
    return this.s[p] === "=";
  }

  /** At `pos`: a token68 that ends the list element (then end, `,` or whitespace). */
  token68End(): number | undefined {
    let p = this.pos;
    while (this.s[p] !== undefined && TOKEN68_CHAR.test(this.s[p] as string)) p++;
    if (p === this.pos) return undefined;
    while (this.s[p] === "=") p++;
    let q = p;
    while (this.s[q] === " " || this.s[q] === "\t") q++;
    if (this.s[q] === undefined || this.s[q] === ",") return p;
    return undefined;
  }

  parse(): void {
    for (;;) {
      // #rule: empty list elements are allowed.
      while (this.peek() === "," || this.peek() === " " || this.peek() === "\t") this.pos++;
      if (this.peek() === undefined) return;
      this.challenge();
    }
  }

  challenge(): void {
    const scheme = this.token().toLowerCase();
    const challenge: AuthChallenge = { scheme, params: {} };
    const c = this.peek();
    if (c === undefined || c === ",") {
      this.out.push(challenge);
      return;
    }
    if (c !== " " && c !== "\t") this.fail("expected a space after the scheme");
    this.skipOws();
    if (this.peek() === undefined || this.peek() === ",") {
      this.out.push(challenge);
      return;
    }
    // A token68 ends the element (`Basic abc==,`); `name=value` never does, so try it first.
    const end = this.token68End();
    if (end !== undefined) {
      challenge.token68 = this.s.slice(this.pos, end);
      this.pos = end;
      this.skipOws();
      this.out.push(challenge);
      return;
    }
    if (!this.atParam()) this.fail("expected auth-params or a token68");
    for (;;) {
      const name = this.token().toLowerCase();
      this.skipOws();
      if (this.peek() !== "=") this.fail("expected '='");
      this.pos++;
      this.skipOws();
      const value = this.peek() === '"' ? this.quoted() : this.token();
      if (!Object.hasOwn(challenge.params, name)) {
        // Defined, not assigned: a parameter named `__proto__` must stay a plain parameter.
        Object.defineProperty(challenge.params, name, {
          value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      this.skipOws();
      const next = this.peek();
      if (next === undefined) break;
      if (next !== ",") this.fail("expected ',' between parameters");
      // After commas, another param of this challenge, or the next challenge's scheme.
      const save = this.pos;
      while (this.peek() === "," || this.peek() === " " || this.peek() === "\t") this.pos++;
      if (this.peek() === undefined) break;
      if (!this.atParam()) {
        this.pos = save;
        break;
      }
    }
    this.out.push(challenge);
  }
}

function joined(header: string | readonly string[] | undefined | null): string {
  if (header === undefined || header === null) return "";
  return typeof header === "string" ? header : header.join(", ");
}

/**
 * Parses one or more `WWW-Authenticate` values (an array is several headers). Throws
 * `InvalidChallengeError`, and nothing else, on any syntax error.
 */
export function parseWwwAuthenticateStrict(
  header: string | readonly string[] | undefined | null,
): AuthChallenge[] {
  const s = joined(header);
  if (s.length > MAX_HEADER) throw new InvalidChallengeError(MAX_HEADER, "header too long");
  const parser = new Parser(s);
  parser.parse();
  return parser.out;
}

/**
 * Parses one or more `WWW-Authenticate` values leniently: never throws, returns the
 * challenges that were complete before the first syntax error (`[]` for garbage).
 */
export function parseWwwAuthenticate(
  header: string | readonly string[] | undefined | null,
): AuthChallenge[] {
  const s = joined(header);
  if (s.length > MAX_HEADER) return [];
  const parser = new Parser(s);
  try {
    parser.parse();
  } catch (err) {
    if (!(err instanceof InvalidChallengeError)) throw err;
  }
  return parser.out;
}

/** Formats a challenge as a header value (params quoted and escaped), e.g. for test servers. */
export function formatChallenge(challenge: AuthChallenge): string {
  if (challenge.token68 !== undefined) return `${challenge.scheme} ${challenge.token68}`;
  const params = Object.entries(challenge.params).map(
    ([k, v]) => `${k}="${v.replace(/["\\]/g, (m) => `\\${m}`)}"`,
  );
  return params.length ? `${challenge.scheme} ${params.join(", ")}` : challenge.scheme;
}

/** What a Bearer challenge asks for. */
export interface BearerChallenge {
  scheme: "bearer";
  realm: string;
  service?: string;
  scope?: string;
  /** e.g. `insufficient_scope` on a 401 for a repository. */
  error?: string;
}

/** What a Basic challenge asks for. */
export interface BasicChallenge {
  scheme: "basic";
  realm?: string;
}

/**
 * The challenge to answer: the first Bearer challenge with a realm, else the first Basic
 * one, else `undefined` (no challenge regscan can answer).
 */
export function selectChallenge(
  challenges: readonly AuthChallenge[],
): BearerChallenge | BasicChallenge | undefined {
  const bearer = challenges.find((c) => c.scheme === "bearer" && c.params.realm);
  if (bearer?.params.realm) {
    const { realm, service, scope, error } = bearer.params;
    return withoutUndefined<BearerChallenge>({ scheme: "bearer", realm, service, scope, error });
  }
  const basic = challenges.find((c) => c.scheme === "basic");
  if (basic) {
    return basic.params.realm === undefined
      ? { scheme: "basic" }
      : { scheme: "basic", realm: basic.params.realm };
  }
  return undefined;
}
