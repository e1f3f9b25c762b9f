/**
 * The `WWW-Authenticate` parser: Bearer and Basic challenges as registries send them, and
 * (property) no input throws anything but the typed errors.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  type AuthChallenge,
  formatChallenge,
  InvalidChallengeError,
  parseWwwAuthenticate,
  parseWwwAuthenticateStrict,
  selectChallenge,
} from "../../../src/registry/http/www-authenticate.js";

describe("parseWwwAuthenticate", () => {
  it("reads a Docker Hub Bearer challenge", () => {
    const h =
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"';
    assert.deepEqual(parseWwwAuthenticate(h), [
      {
        scheme: "bearer",
        params: {
          realm: "https://auth.docker.io/token",
          service: "registry.docker.io",
          scope: "repository:library/alpine:pull",
        },
      },
    ]);
  });

  it("reads several challenges in one header, and several headers", () => {
    const h = 'Basic realm="Registry Realm", Bearer realm="https://a.example/token", service="a"';
    const expected = [
      { scheme: "basic", params: { realm: "Registry Realm" } },
      { scheme: "bearer", params: { realm: "https://a.example/token", service: "a" } },
    ];
    assert.deepEqual(parseWwwAuthenticate(h), expected);
    assert.deepEqual(
      parseWwwAuthenticate([
        'Basic realm="Registry Realm"',
        'Bearer realm="https://a.example/token",service=a',
      ]),
      expected,
    );
  });

  it("handles quoted commas, escapes, case, spaces around '=' and token68", () => {
    const h =
      'NEWAUTH REALM = "a, \\"b\\" \\\\ c" , Type=1, , Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==, Negotiate';
    assert.deepEqual(parseWwwAuthenticate(h), [
      { scheme: "newauth", params: { realm: 'a, "b" \\ c', type: "1" } },
      { scheme: "basic", params: {}, token68: "QWxhZGRpbjpvcGVuIHNlc2FtZQ==" },
      { scheme: "negotiate", params: {} },
    ]);
  });

  it("keeps the first of duplicate parameters", () => {
    assert.deepEqual(parseWwwAuthenticate('Bearer realm="a", realm="b"'), [
      { scheme: "bearer", params: { realm: "a" } },
    ]);
  });

  it("lenient: returns the challenges before a syntax error; strict throws", () => {
    const h = 'Bearer realm="https://a/token", service="s", Basic realm="unterminated';
    assert.deepEqual(parseWwwAuthenticate(h), [
      { scheme: "bearer", params: { realm: "https://a/token", service: "s" } },
    ]);
    assert.throws(() => parseWwwAuthenticateStrict(h), InvalidChallengeError);
    for (const garbage of [
      '"',
      "=",
      "Bearer =x",
      "Bearer realm=;",
      'Bearer realm="a" junk',
      "@@",
    ]) {
      assert.deepEqual(parseWwwAuthenticate(garbage), [], garbage);
      assert.throws(() => parseWwwAuthenticateStrict(garbage), InvalidChallengeError, garbage);
    }
    // `realm=` alone is a token68 by the grammar, not a parameter.
    assert.deepEqual(parseWwwAuthenticate("Bearer realm="), [
      { scheme: "bearer", params: {}, token68: "realm=" },
    ]);
    assert.deepEqual(parseWwwAuthenticate(undefined), []);
    assert.deepEqual(parseWwwAuthenticate(null), []);
    assert.deepEqual(parseWwwAuthenticate(""), []);
    assert.deepEqual(parseWwwAuthenticate("x".repeat(20_000)), []);
  });

  it("selectChallenge prefers Bearer with a realm, then Basic", () => {
    assert.deepEqual(
      selectChallenge(
        parseWwwAuthenticate('Basic realm="r", Bearer realm="https://t", service="s", scope="x"'),
      ),
      { scheme: "bearer", realm: "https://t", service: "s", scope: "x" },
    );
    assert.deepEqual(selectChallenge(parseWwwAuthenticate('Bearer service="s", Basic realm="r"')), {
      scheme: "basic",
      realm: "r",
    });
    assert.deepEqual(selectChallenge(parseWwwAuthenticate("Basic")), { scheme: "basic" });
    assert.equal(selectChallenge(parseWwwAuthenticate("Negotiate")), undefined);
  });

  it("property: arbitrary strings give arrays (lenient) or InvalidChallengeError (strict)", () => {
    const alphabet = fc.constantFrom(...' \t,=";\\abBrReE1/+~'.split(""));
    const arb = fc.oneof(
      fc.string(),
      fc.string({ unit: alphabet, maxLength: 60 }),
      fc.string({ unit: "binary" }),
    );
    fc.assert(
      fc.property(arb, (s) => {
        const lenient = parseWwwAuthenticate(s);
        assert.ok(Array.isArray(lenient));
        for (const c of lenient) {
          assert.equal(typeof c.scheme, "string");
          assert.ok(c.scheme.length > 0);
        }
        try {
          const strict = parseWwwAuthenticateStrict(s);
          assert.deepEqual(strict, lenient);
        } catch (err) {
          assert.ok(err instanceof InvalidChallengeError, String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("a parameter named __proto__ is a plain parameter, not the object's prototype", () => {
    const [c] = parseWwwAuthenticateStrict('Bearer __proto__="x", realm="https://a.example/t"');
    assert.ok(c);
    assert.ok(Object.hasOwn(c.params, "__proto__"));
    assert.equal(Object.getPrototypeOf(c.params), Object.prototype);
    assert.deepEqual(Object.keys(c.params), ["__proto__", "realm"]);
    assert.equal(c.params.realm, "https://a.example/t");
  });

  it("property: generated challenges round-trip through formatChallenge", () => {
    const token = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/);
    const value = fc.string({
      unit: fc.constantFrom(...' ,=;"\\abc:/?&é\t'.split("")),
      maxLength: 20,
    });
    const challenge: fc.Arbitrary<AuthChallenge> = fc.oneof(
      fc
        .record({
          scheme: token,
          params: fc.uniqueArray(fc.tuple(token, value), {
            selector: ([k]) => k.toLowerCase(),
            maxLength: 4,
          }),
        })
        .map(({ scheme, params }) => ({
          scheme: scheme.toLowerCase(),
          params: Object.fromEntries(params.map(([k, v]) => [k.toLowerCase(), v])),
        })),
      fc
        .record({ scheme: token, t: fc.stringMatching(/^[A-Za-z0-9._~+/-]{1,20}={0,2}$/) })
        .map(({ scheme, t }) => ({ scheme: scheme.toLowerCase(), params: {}, token68: t })),
    );
    fc.assert(
      fc.property(fc.array(challenge, { minLength: 1, maxLength: 4 }), (challenges) => {
        const header = challenges.map(formatChallenge).join(", ");
        assert.deepEqual(parseWwwAuthenticateStrict(header), challenges);
      }),
      { numRuns: 1000 },
    );
  });
});
