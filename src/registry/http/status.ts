/**
 * What a registry's error answer means, and the one status check of the registry side: an
 * answer whose status the caller does not expect becomes the error class its status and its
 * `{"errors":[...]}` body say, read with a size bound and named with the caller's context.
 */

import { withoutUndefined } from "../../without-undefined.js";
import {
  DeniedError,
  MAX_REGISTRY_ERRORS,
  ManifestUnknownError,
  NameUnknownError,
  type RegistryError,
  type RegistryErrorContext,
  type RegistryErrorDetail,
  RegistryResponseError,
  TooManyRequestsError,
  UnauthorizedError,
} from "../errors.js";
import { ERROR_BODY_LIMIT, type HttpResponse, readTextPrefix } from "./exchange.js";
import { type HeaderSource, headerValue, parseRetryAfter } from "./headers.js";

/** The statuses a caller takes: one, a list, or a test. */
export type ExpectedStatus = number | readonly number[] | ((status: number) => boolean);

/** Returns when `res.status` is expected; otherwise reads the error body and throws. */
export async function expectStatus(
  res: HttpResponse,
  ok: ExpectedStatus,
  ctx: Pick<RegistryErrorContext, "host" | "repository" | "reference">,
): Promise<void> {
  if (isExpected(res.status, ok)) return;
  const body = await readTextPrefix(res, ERROR_BODY_LIMIT);
  throw registryErrorFromResponse({ ...ctx, status: res.status, headers: res.headers, body });
}

function isExpected(status: number, ok: ExpectedStatus): boolean {
  if (typeof ok === "number") return status === ok;
  if (typeof ok === "function") return ok(status);
  return ok.includes(status);
}

/** Reads `{"errors":[{code,message}]}` from a body; anything else gives `[]`. */
export function parseRegistryErrors(body: string | undefined): RegistryErrorDetail[] {
  if (!body) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return [];
  }
  if (typeof parsed !== "object" || parsed === null) return [];
  const errors = (parsed as { errors?: unknown }).errors;
  if (!Array.isArray(errors)) return [];
  const out: RegistryErrorDetail[] = [];
  for (const e of errors.slice(0, MAX_REGISTRY_ERRORS)) {
    if (typeof e !== "object" || e === null) continue;
    const code = (e as { code?: unknown }).code;
    const message = (e as { message?: unknown }).message;
    if (typeof code !== "string" || code === "") continue;
    out.push(
      withoutUndefined<RegistryErrorDetail>({
        code: code.toUpperCase(),
        message: typeof message === "string" && message !== "" ? message : undefined,
      }),
    );
  }
  return out;
}

/** What `registryErrorFromResponse` needs to know about an error answer. */
export interface RegistryErrorResponse {
  status: number;
  headers?: HeaderSource | undefined;
  /** The body, already read with a size bound (a few KiB is plenty). */
  body?: string | undefined;
  host?: string | undefined;
  repository?: string | undefined;
  /** The tag or digest asked for; a `404` without a registry code means the manifest is unknown when set, the repository otherwise. */
  reference?: string | undefined;
  /** Clock for an HTTP-date `Retry-After`. */
  now?: number | undefined;
}

/**
 * Maps a registry's error answer to the right error class: the registry's code decides first
 * (MANIFEST_UNKNOWN, NAME_UNKNOWN, UNAUTHORIZED, DENIED, TOOMANYREQUESTS), then the status.
 */
export function registryErrorFromResponse(res: RegistryErrorResponse): RegistryError {
  const registryErrors = parseRegistryErrors(res.body);
  const ctx: RegistryErrorContext = {
    status: res.status,
    registryErrors,
    host: res.host,
    repository: res.repository,
    reference: res.reference,
  };
  const codes = new Set(registryErrors.map((e) => e.code));
  if (res.status === 429 || codes.has("TOOMANYREQUESTS") || codes.has("TOO_MANY_REQUESTS")) {
    const retryAfterMs = parseRetryAfter(headerValue(res.headers, "retry-after"), res.now);
    return new TooManyRequestsError(retryAfterMs === undefined ? ctx : { ...ctx, retryAfterMs });
  }
  if (codes.has("MANIFEST_UNKNOWN")) return new ManifestUnknownError(ctx);
  if (codes.has("NAME_UNKNOWN")) return new NameUnknownError(ctx);
  if (codes.has("DENIED") || res.status === 403) return new DeniedError(ctx);
  if (codes.has("UNAUTHORIZED") || res.status === 401) return new UnauthorizedError(ctx);
  if (res.status === 404 && registryErrors.length === 0) {
    return res.reference === undefined ? new NameUnknownError(ctx) : new ManifestUnknownError(ctx);
  }
  return new RegistryResponseError(ctx);
}
