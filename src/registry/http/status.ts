/**
 * The one status check of the registry side: an answer whose status is not one the caller
 * expects becomes the error class its status and its `{"errors":[...]}` body say, read with
 * a size bound and named with the caller's host, repository and reference.
 */
import { type RegistryErrorContext, registryErrorFromResponse } from "../errors.js";
import { ERROR_BODY_LIMIT, type HttpResponse, readTextPrefix } from "./exchange.js";

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
  throw registryErrorFromResponse({ status: res.status, headers: res.headers, body, ...ctx });
}

function isExpected(status: number, ok: ExpectedStatus): boolean {
  if (typeof ok === "number") return status === ok;
  if (typeof ok === "function") return ok(status);
  return ok.includes(status);
}
