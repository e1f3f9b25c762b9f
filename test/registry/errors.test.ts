/**
 * Registry errors: the mapping of error answers to classes with stable codes, their
 * messages and context, `Retry-After`, and sanitising of what a registry sends back.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import { RegscanError } from "../../src/errors.js";
import { sanitizeText } from "../../src/redact.js";
import {
  DeniedError,
  DigestMismatchError,
  InvalidManifestError,
  ManifestUnknownError,
  NameUnknownError,
  NetworkError,
  RegistryError,
  RegistryResponseError,
  TimeoutError,
  TooLargeError,
  TooManyRequestsError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from "../../src/registry/errors.js";
import { headerValue, parseRetryAfter } from "../../src/registry/http/headers.js";
import { isRetryable, RETRY_POLICY } from "../../src/registry/http/retry.js";
import { parseRegistryErrors, registryErrorFromResponse } from "../../src/registry/http/status.js";

const body = (...errors: { code: string; message?: string }[]) => JSON.stringify({ errors });

describe("registryErrorFromResponse", () => {
  const base = { host: "registry.example.com", repository: "team/app" };

  it("maps MANIFEST_UNKNOWN with host, repository, reference, status and registry code", () => {
    const err = registryErrorFromResponse({
      ...base,
      reference: "v1",
      status: 404,
      body: body({ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }),
    });
    assert.ok(err instanceof ManifestUnknownError);
    assert.ok(err instanceof RegistryError);
    assert.ok(err instanceof RegscanError);
    assert.equal(err.code, "MANIFEST_UNKNOWN");
    assert.equal(err.status, 404);
    assert.equal(err.host, "registry.example.com");
    assert.equal(err.repository, "team/app");
    assert.equal(err.reference, "v1");
    assert.equal(err.registryCode, "MANIFEST_UNKNOWN");
    assert.match(err.message, /registry\.example\.com\/team\/app:v1/);
    assert.match(err.message, /HTTP 404/);
    assert.match(err.message, /MANIFEST_UNKNOWN: manifest unknown/);
  });

  it("maps NAME_UNKNOWN, and a bare 404 by whether a reference was asked for", () => {
    assert.ok(
      registryErrorFromResponse({
        ...base,
        status: 404,
        body: body({ code: "NAME_UNKNOWN" }),
      }) instanceof NameUnknownError,
    );
    assert.ok(registryErrorFromResponse({ ...base, status: 404 }) instanceof NameUnknownError);
    assert.ok(
      registryErrorFromResponse({
        ...base,
        status: 404,
        reference: "latest",
        body: "not json",
      }) instanceof ManifestUnknownError,
    );
  });

  it("maps 401 / UNAUTHORIZED and 403 / DENIED", () => {
    assert.ok(registryErrorFromResponse({ ...base, status: 401 }) instanceof UnauthorizedError);
    assert.ok(
      registryErrorFromResponse({
        ...base,
        status: 400,
        body: body({ code: "UNAUTHORIZED" }),
      }) instanceof UnauthorizedError,
    );
    const denied = registryErrorFromResponse({
      ...base,
      status: 403,
      body: body({ code: "DENIED" }),
    });
    assert.ok(denied instanceof DeniedError);
    assert.equal(denied.code, "DENIED");
    assert.ok(registryErrorFromResponse({ ...base, status: 403 }) instanceof DeniedError);
  });

  it("maps 429 with Retry-After in seconds (fetch Headers) and as an HTTP date (undici record)", () => {
    const a = registryErrorFromResponse({
      ...base,
      status: 429,
      headers: new Headers({ "Retry-After": "7" }),
      body: body({ code: "TOOMANYREQUESTS", message: "slow down" }),
    });
    assert.ok(a instanceof TooManyRequestsError);
    assert.equal(a.retryAfterMs, 7000);
    assert.equal(a.code, "TOO_MANY_REQUESTS");
    const now = Date.parse("2024-01-01T00:00:00Z");
    const b = registryErrorFromResponse({
      ...base,
      status: 429,
      headers: { "retry-after": "Mon, 01 Jan 2024 00:00:30 GMT" },
      now,
    });
    assert.ok(b instanceof TooManyRequestsError);
    assert.equal(b.retryAfterMs, 30_000);
    const c = registryErrorFromResponse({ ...base, status: 429 });
    assert.ok(c instanceof TooManyRequestsError);
    assert.equal(c.retryAfterMs, undefined);
  });

  it("maps other statuses and codes to REGISTRY_ERROR", () => {
    const err = registryErrorFromResponse({
      ...base,
      status: 400,
      body: body({ code: "TAG_INVALID", message: "bad" }),
    });
    assert.ok(err instanceof RegistryResponseError);
    assert.equal(err.code, "REGISTRY_ERROR");
    assert.equal(err.registryCode, "TAG_INVALID");
    assert.equal(registryErrorFromResponse({ status: 503 }).code, "REGISTRY_ERROR");
  });

  it("never puts a URL's userinfo or query, or a token, in the message", () => {
    const err = registryErrorFromResponse({
      host: "user:hunter2@registry.example.com",
      repository: "team/app",
      status: 401,
      body: body({
        code: "UNAUTHORIZED",
        message:
          "go to https://alice:s3cret@auth.example.com/token?access_token=tok123&x=1 with Bearer abc.def.ghi password=pw1",
      }),
    });
    const all = `${err.message} ${String(err)} ${JSON.stringify(err)} ${inspect(err)}`;
    for (const secret of ["hunter2", "s3cret", "tok123", "abc.def.ghi", "pw1"]) {
      assert.ok(!all.includes(secret), `${secret} leaked: ${all}`);
    }
    assert.equal(err.host, "registry.example.com");
  });

  it("bounds the registry's message and the number of errors kept", () => {
    const many = Array.from({ length: 50 }, (_, i) => ({
      code: `C${i}`,
      message: "x".repeat(10_000),
    }));
    const err = registryErrorFromResponse({ status: 400, body: JSON.stringify({ errors: many }) });
    assert.ok(err.message.length < 2000, `message is ${err.message.length} long`);
    assert.equal(err.registryErrors.length, 5);
  });
});

describe("parseRegistryErrors / parseRetryAfter / headerValue / sanitizeText", () => {
  it("ignores bodies without a proper errors list", () => {
    for (const b of ["", "null", "[]", "{}", '{"errors":"x"}', '{"errors":[1,{"code":3},{}]}']) {
      assert.deepEqual(parseRegistryErrors(b), []);
    }
    assert.deepEqual(parseRegistryErrors(body({ code: "denied", message: "no" })), [
      { code: "DENIED", message: "no" },
    ]);
  });

  it("reads Retry-After, capped at a day", () => {
    assert.equal(parseRetryAfter(undefined), undefined);
    assert.equal(parseRetryAfter("soon"), undefined);
    assert.equal(parseRetryAfter(" 2 "), 2000);
    assert.equal(parseRetryAfter("99999999"), 24 * 3600 * 1000);
    assert.equal(parseRetryAfter("Mon, 01 Jan 2024 00:00:00 GMT", Date.parse("2024-02-01")), 0);
  });

  it("reads headers from fetch Headers and from plain records, case-insensitively", () => {
    assert.equal(headerValue(new Headers({ "X-A": "1" }), "x-a"), "1");
    assert.equal(headerValue({ "X-A": ["1", "2"] }, "x-a"), "1, 2");
    assert.equal(headerValue({}, "x-a"), undefined);
    assert.equal(headerValue(undefined, "x-a"), undefined);
  });

  it("sanitizes control characters", () => {
    assert.equal(sanitizeText("a\nb\u0000c"), "a b c");
  });
});

describe("error classes", () => {
  it("take one context, which may bring a message of its own", () => {
    const a = new NetworkError({ host: "h:5000", causeCode: "ECONNRESET" });
    assert.equal(a.code, "NETWORK");
    assert.equal(a.causeCode, "ECONNRESET");
    assert.match(a.message, /ECONNRESET/);
    assert.match(a.message, /h:5000/);
    const b = new NetworkError({ message: "cannot reach h", host: "h", causeCode: "ENOTFOUND" });
    assert.match(b.message, /^cannot reach h/);
    assert.equal(new TimeoutError({ timeoutMs: 5 }).code, "TIMEOUT");
    const big = new TooLargeError({ what: "manifest", limit: 4, size: 9 });
    assert.equal(big.code, "TOO_LARGE");
    assert.match(big.message, /manifest too large: 9 bytes, over the limit of 4 bytes/);
    const mm = new DigestMismatchError({
      expected: "sha256:aa",
      actual: "sha256:bb",
      what: "config blob",
    });
    assert.equal(mm.code, "DIGEST_MISMATCH");
    assert.match(mm.message, /config blob/);
    assert.equal(new UnsupportedMediaTypeError({ mediaType: "x/y" }).mediaType, "x/y");
    assert.equal(new InvalidManifestError({ reason: "bad" }).code, "INVALID_MANIFEST");
    assert.equal(a.name, "NetworkError");
  });

  it("isRetryable: 429, 502, 503, 504 and connection resets only", () => {
    assert.equal(isRetryable(new TooManyRequestsError({ status: 429 })), true);
    for (const status of [502, 503, 504]) {
      assert.equal(isRetryable(new RegistryResponseError({ status })), true, String(status));
    }
    for (const status of [500, 400, 404]) {
      assert.equal(isRetryable(new RegistryResponseError({ status })), false, String(status));
    }
    assert.equal(isRetryable(new NetworkError({ causeCode: "ECONNRESET" })), true);
    assert.equal(isRetryable(new NetworkError({ causeCode: "UND_ERR_SOCKET" })), true);
    assert.equal(isRetryable(new NetworkError({ causeCode: "CERT_HAS_EXPIRED" })), false);
    assert.equal(isRetryable(new NetworkError()), false);
    assert.equal(isRetryable(new ManifestUnknownError()), false);
    assert.equal(isRetryable(new TimeoutError()), false);
    assert.equal(isRetryable(new Error("x")), false);
    assert.equal(isRetryable(new DOMException("aborted", "AbortError")), false);
  });

  it("the retry policy names no timeout code: the send layer reports those as TIMEOUT", () => {
    for (const code of RETRY_POLICY.networkCodes) assert.doesNotMatch(code, /TIMEOUT|TIMEDOUT/);
    assert.equal(isRetryable(new NetworkError({ causeCode: "ETIMEDOUT" })), false);
    assert.equal(isRetryable(new NetworkError({ causeCode: "ECONNREFUSED" })), true);
  });
});
