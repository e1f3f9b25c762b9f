/**
 * The webhook receivers, independent of the HTTP server: given a request's kind, headers,
 * raw body, path secret and client address, answer with a status and the events it carries.
 * Never throws and never answers 5xx: whatever a sender posts, the answer is one of 202,
 * 400, 401, 404, 413, 415 or 429, with no detail on authentication failures.
 */
import type { IncomingMessage } from "node:http";
import type { Dispatcher } from "undici";
import { type AuthFailureLimit, AuthFailureLimiter } from "./auth-failures.js";
import { authModeOf, type WebhookAuthMode } from "./auth-mode.js";
import type { WebhookConfig } from "./config.js";
import { InvalidWebhookBodyError, WebhookBodyAbortedError } from "./errors.js";
import { isWebhookKind, type NormalisedEvent, WEBHOOK_KINDS, type WebhookKind } from "./event.js";
import { parseAcr } from "./formats/acr.js";
import { DISTRIBUTION_MEDIA_TYPES, parseDistribution } from "./formats/distribution.js";
import { parseDockerHub } from "./formats/dockerhub.js";
import { parseEcr } from "./formats/ecr.js";
import type { ParsedBody } from "./formats/entries.js";
import { parseGar } from "./formats/gar.js";
import { parseGeneric } from "./formats/generic.js";
import { parseGitHub } from "./formats/github.js";
import { parseHarbor } from "./formats/harbor.js";
import { parseQuay } from "./formats/quay.js";
import { headerValue, mediaType, type WebhookHeaders } from "./headers.js";
import type { JwksCache } from "./jwks.js";
import type { checkPubSubToken, PubSubTokenPolicy, TokenCheck } from "./pubsub-token.js";
import { readWebhookSecret, type WebhookSecret } from "./secret.js";

/** Largest webhook body accepted. */
export const MAX_WEBHOOK_BODY_BYTES = 1_048_576;

/** One request to a receiver. */
export interface WebhookRequest {
  /** The `{kind}` of `/v1/webhooks/{kind}`. */
  kind: string;
  headers: WebhookHeaders;
  /** The body as received (at most `MAX_WEBHOOK_BODY_BYTES` + 1 bytes need be read). */
  rawBody: Buffer;
  /** The `{secret}` of `/v1/webhooks/{kind}/{secret}`, percent-decoded. */
  pathSecret?: string | undefined;
  /** The client's address, for the failed-authentication limit. */
  remoteAddress?: string;
  /** Aborts work on the request's behalf (the OIDC keys fetch). */
  signal?: AbortSignal;
}

/** How a request ended, for logs and `regscan_webhooks_total{kind,result}`. */
export type WebhookResult =
  | "accepted"
  | "ignored"
  | "invalid"
  | "unauthorized"
  | "auth_unavailable"
  | "rate_limited"
  | "too_large"
  | "unsupported_media_type"
  | "unknown_kind";

/** The answer to one webhook request. */
export interface WebhookResponse {
  status: 202 | 400 | 401 | 404 | 413 | 415 | 429;
  result: WebhookResult;
  /** The changes the body reports (only with 202). */
  events: NormalisedEvent[];
  /** Entries of the body skipped because they did not validate (with 202). */
  rejected: number;
  /** A stable code and a message safe to send back (no secret, no auth detail). */
  code?: string;
  message?: string;
  /** With 429: seconds before the client may try again. */
  retryAfterSeconds?: number;
}

/** Options of the receivers besides their configuration. */
export interface WebhookReceiversOptions {
  /** Where `env:NAME` secrets are read (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Failed-authentication limit per client address. */
  authFailures?: AuthFailureLimit;
  /** Deadline of one OIDC keys fetch, in milliseconds (default 5 s). */
  jwksTimeoutMs?: number;
  /** The dispatcher OIDC keys are fetched through (proxy, CA). */
  dispatcher?: Dispatcher;
  now?: () => number;
}

interface Receiver {
  kind: WebhookKind;
  mode: WebhookAuthMode | "none";
  secret?: WebhookSecret;
  header?: string;
  oidc?: { policy: PubSubTokenPolicy; keys: JwksCache; check: typeof checkPubSubToken };
}

type Parser = (text: string, headers: WebhookHeaders) => ParsedBody;

const PARSERS: Readonly<Record<WebhookKind, Parser>> = {
  distribution: (text) => parseDistribution(text),
  harbor: parseHarbor,
  dockerhub: parseDockerHub,
  github: parseGitHub,
  quay: parseQuay,
  acr: parseAcr,
  gar: parseGar,
  ecr: parseEcr,
  generic: parseGeneric,
};

const JSON_TYPES = ["application/json"];
const MEDIA_TYPES: Readonly<Record<WebhookKind, readonly string[]>> = {
  distribution: [...DISTRIBUTION_MEDIA_TYPES, ...JSON_TYPES],
  acr: [...DISTRIBUTION_MEDIA_TYPES, ...JSON_TYPES],
  harbor: JSON_TYPES,
  dockerhub: JSON_TYPES,
  github: JSON_TYPES,
  quay: JSON_TYPES,
  gar: JSON_TYPES,
  ecr: JSON_TYPES,
  generic: JSON_TYPES,
};

/** Longest path secret compared. */
const MAX_PATH_SECRET = 1024;

/** The configured receivers. */
export class WebhookReceivers {
  readonly #failures: AuthFailureLimiter;

  readonly #receivers: ReadonlyMap<WebhookKind, Receiver>;

  private constructor(
    receivers: ReadonlyMap<WebhookKind, Receiver>,
    opts: WebhookReceiversOptions,
  ) {
    this.#receivers = receivers;
    this.#failures = new AuthFailureLimiter(opts.authFailures, opts.now);
  }

  /**
   * Reads every receiver's secret; throws `WebhookSecretError` naming the first source that
   * cannot be read (start-up stops rather than run a receiver that rejects everything).
   */
  static async create(
    config: WebhookConfig,
    opts: WebhookReceiversOptions = {},
  ): Promise<WebhookReceivers> {
    const receivers = new Map<WebhookKind, Receiver>();
    for (const kind of WEBHOOK_KINDS) {
      const r = config[kind];
      if (r === undefined) continue;
      const mode = authModeOf(kind, r);
      const receiver: Receiver = { kind, mode };
      if (r.secret !== undefined && mode !== "none" && mode !== "oidc") {
        receiver.secret = await readWebhookSecret(r.secret, opts.env);
      }
      if (r.header !== undefined) receiver.header = r.header.toLowerCase();
      if (mode === "oidc" && r.audience !== undefined && r.serviceAccount !== undefined) {
        // Loaded only for a receiver that checks tokens: the JOSE library and the HTTP client
        // are megabytes of memory the others do without.
        const [{ JwksCache }, { checkPubSubToken }] = await Promise.all([
          import("./jwks.js"),
          import("./pubsub-token.js"),
        ]);
        receiver.oidc = {
          check: checkPubSubToken,
          policy: { audience: r.audience, serviceAccountEmail: r.serviceAccount, issuer: r.issuer },
          keys: new JwksCache({
            url: r.jwksUrl,
            timeoutMs: opts.jwksTimeoutMs,
            now: opts.now,
            dispatcher: opts.dispatcher,
          }),
        };
      }
      receivers.set(kind, receiver);
    }
    return new WebhookReceivers(receivers, opts);
  }

  /** The kinds turned on. */
  kinds(): WebhookKind[] {
    return [...this.#receivers.keys()];
  }

  /** True when `kind`'s receiver takes its secret in the URL path. */
  usesPathSecret(kind: string): boolean {
    return isWebhookKind(kind) && this.#receivers.get(kind)?.mode === "path";
  }

  /** Answers one request; never throws. */
  async handle(req: WebhookRequest): Promise<WebhookResponse> {
    try {
      return await this.#answer(req);
    } catch {
      // Unreachable by design (every step returns its own answer); a bug must not be a 500.
      return refuse({
        status: 400,
        result: "invalid",
        code: "INVALID_WEBHOOK_BODY",
        message: "the body could not be read",
      });
    }
  }

  async #answer(req: WebhookRequest): Promise<WebhookResponse> {
    const receiver = isWebhookKind(req.kind) ? this.#receivers.get(req.kind) : undefined;
    // A path secret where none is expected is a path that does not exist, and the reverse.
    if (receiver === undefined || (req.pathSecret !== undefined) !== (receiver.mode === "path")) {
      return refuse({
        status: 404,
        result: "unknown_kind",
        code: "NOT_FOUND",
        message: "no such webhook receiver",
      });
    }
    const client = req.remoteAddress ?? "unknown";
    const wait = this.#failures.retryAfter(client);
    if (wait > 0) {
      return {
        ...refuse({
          status: 429,
          result: "rate_limited",
          code: "TOO_MANY_REQUESTS",
          message: "too many failed attempts; slow down",
        }),
        retryAfterSeconds: wait,
      };
    }
    if (req.rawBody.length > MAX_WEBHOOK_BODY_BYTES) {
      return refuse({
        status: 413,
        result: "too_large",
        code: "PAYLOAD_TOO_LARGE",
        message: `webhook body over ${MAX_WEBHOOK_BODY_BYTES} bytes`,
      });
    }
    const auth = await this.#authenticate(receiver, req);
    if (auth !== "valid") {
      // Keys that could not be fetched are not the client's fault: not counted against it.
      if (auth === "invalid") this.#failures.fail(client);
      return refuse({
        status: 401,
        result: auth === "invalid" ? "unauthorized" : "auth_unavailable",
        code: "UNAUTHORIZED",
        message: "unauthorized",
      });
    }
    const type = mediaType(req.headers);
    if (type !== undefined && !MEDIA_TYPES[receiver.kind].includes(type)) {
      return refuse({
        status: 415,
        result: "unsupported_media_type",
        code: "UNSUPPORTED_MEDIA_TYPE",
        message: `expected ${MEDIA_TYPES[receiver.kind].join(" or ")}`,
      });
    }
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(req.rawBody);
    } catch {
      return refuse({
        status: 400,
        result: "invalid",
        code: "INVALID_WEBHOOK_BODY",
        message: `${receiver.kind} webhook body: not UTF-8`,
      });
    }
    let parsed: ParsedBody;
    try {
      parsed = PARSERS[receiver.kind](text, req.headers);
    } catch (err) {
      const message =
        err instanceof InvalidWebhookBodyError
          ? err.message
          : `${receiver.kind} webhook body could not be read`;
      return refuse({ status: 400, result: "invalid", code: "INVALID_WEBHOOK_BODY", message });
    }
    return {
      status: 202,
      result: parsed.events.length > 0 ? "accepted" : "ignored",
      events: parsed.events,
      rejected: parsed.rejected,
    };
  }

  async #authenticate(receiver: Receiver, req: WebhookRequest): Promise<TokenCheck> {
    const ok = (yes: boolean): TokenCheck => (yes ? "valid" : "invalid");
    switch (receiver.mode) {
      case "none":
        return "valid";
      case "path": {
        const given = req.pathSecret;
        return ok(
          given !== undefined &&
            given.length <= MAX_PATH_SECRET &&
            receiver.secret?.equals(given) === true,
        );
      }
      case "bearer": {
        const m = /^Bearer[ ]+(\S+)\s*$/i.exec(headerValue(req.headers, "authorization") ?? "");
        return ok(m?.[1] !== undefined && receiver.secret?.equals(m[1]) === true);
      }
      case "header": {
        const given = receiver.header ? headerValue(req.headers, receiver.header) : undefined;
        return ok(given !== undefined && receiver.secret?.equals(given) === true);
      }
      case "hmac": {
        const header = headerValue(req.headers, "x-hub-signature-256");
        const hex = header?.startsWith("sha256=") ? header.slice(7) : undefined;
        return ok(receiver.secret?.signs(req.rawBody, hex) === true);
      }
      case "oidc": {
        if (receiver.oidc === undefined) return "invalid";
        const signal = req.signal ?? AbortSignal.timeout(10_000);
        return receiver.oidc.check({
          authorization: headerValue(req.headers, "authorization"),
          policy: receiver.oidc.policy,
          keys: receiver.oidc.keys,
          signal,
        });
      }
    }
  }
}

/** A refusal: what is answered, and how it is counted. */
interface Refusal {
  status: WebhookResponse["status"];
  result: WebhookResult;
  code: string;
  message: string;
}

function refuse({ status, result, code, message }: Refusal): WebhookResponse {
  return { status, result, events: [], rejected: 0, code, message };
}

/**
 * Reads a request body, stopping one byte past `max`: the receiver then answers 413, and the
 * caller should send it with `Connection: close` rather than read the rest. Rejects with
 * `WebhookBodyAbortedError` when the client goes away first.
 */
export function readWebhookBody(
  req: IncomingMessage,
  max: number = MAX_WEBHOOK_BODY_BYTES,
): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > max) return Promise.resolve(Buffer.alloc(max + 1));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (outcome: () => void) => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onAbort);
      req.off("close", onAbort);
      outcome();
    };
    const body = () => Buffer.concat(chunks, Math.min(size, max + 1));
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > max) {
        // Paused, not destroyed: the socket must stay open for the 413.
        req.pause();
        finish(() => resolve(body()));
      }
    };
    const onEnd = () => finish(() => resolve(body()));
    const onAbort = () => finish(() => reject(new WebhookBodyAbortedError()));
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onAbort);
    req.once("close", onAbort);
  });
}
