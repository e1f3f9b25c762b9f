/**
 * Content negotiation of gzip answers (src/server/gzip-answer.ts): what each `Accept-Encoding`
 * value says, the same when the value comes again (answers are remembered per value), and
 * never one value's answer for another.
 */
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { describe, test } from "node:test";
import { acceptsGzip } from "../../src/server/gzip-answer.js";

function request(acceptEncoding: string | undefined): IncomingMessage {
  const headers = acceptEncoding === undefined ? {} : { "accept-encoding": acceptEncoding };
  return { headers } as IncomingMessage;
}

const CASES: Array<[string | undefined, boolean]> = [
  [undefined, false],
  ["", false],
  ["gzip", true],
  ["gzip, deflate, br", true],
  ["br", false],
  ["identity", false],
  ["gzip;q=0", false],
  ["gzip;q=0.5, identity", false],
  ["identity;q=0.1, gzip", true],
  ["*", true],
  ["*, identity", false], // identity named, gzip only by the wildcard
  ["*;q=0, identity", false],
  [`gzip;q=0, ${"x-custom;q=0.1, ".repeat(40)}identity`, false],
  [`${"x-custom;q=0.1, ".repeat(40)}gzip`, true],
];

describe("acceptsGzip", () => {
  test("says what each Accept-Encoding value asks for", () => {
    for (const [value, gzip] of CASES) assert.equal(acceptsGzip(request(value)), gzip, `${value}`);
  });

  test("the same again, in any order: a remembered answer is never another value's", () => {
    for (let round = 0; round < 3; round++) {
      const order = round === 1 ? [...CASES].reverse() : CASES;
      for (const [value, gzip] of order) {
        assert.equal(acceptsGzip(request(value)), gzip, `round ${round}: ${value}`);
      }
    }
  });

  test("past the values it remembers, it still answers each one right", () => {
    for (let i = 0; i < 600; i++) {
      const gzip = i % 3 !== 0;
      const value = gzip ? `x-${i}, gzip` : `x-${i}, gzip;q=0`;
      assert.equal(acceptsGzip(request(value)), gzip, value);
      assert.equal(acceptsGzip(request(value)), gzip, `${value}, again`);
    }
  });
});
