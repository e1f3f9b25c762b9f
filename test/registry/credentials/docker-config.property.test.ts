/**
 * Properties of the docker config parser: any input gives credentials or a
 * `CredentialsFileError` naming the file, nothing else.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Credentials } from "../../../src/registry/credentials/credentials.js";
import { CredentialsFileError } from "../../../src/registry/credentials/errors.js";

const FILE = "/prop/config.json";
const SECRET = "Zq9-PROPERTY-SECRET-xY7";

/** Parses and says what came out; anything but Credentials or the typed error fails. */
function outcome(bytes: Uint8Array | string): Credentials | CredentialsFileError {
  try {
    return Credentials.parse(FILE, bytes);
  } catch (err) {
    assert.ok(err instanceof CredentialsFileError, `unexpected ${String(err)}`);
    assert.equal(err.file, FILE);
    assert.ok(err.message.includes(FILE));
    return err;
  }
}

const fieldValue = fc.oneof(
  fc.string(),
  fc.constant(Buffer.from(`user:${SECRET}`).toString("base64")),
  fc.constant(Buffer.from(SECRET).toString("base64")),
  fc.constant(SECRET),
  fc.integer(),
  fc.constant(null),
  fc.boolean(),
  fc.array(fc.string(), { maxLength: 2 }),
);
const serverKey = fc.oneof(
  fc.string(),
  fc.constantFrom(
    "docker.io",
    "https://index.docker.io/v1/",
    "http://localhost:5000/v2/",
    "[::1]:5000",
    "ghcr.io",
  ),
  fc.domain(),
);
const plain = fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.boolean());
// The secret goes into secret fields only: a username is shown on purpose.
const entry = fc.record(
  {
    auth: fieldValue,
    username: plain,
    password: fieldValue,
    identitytoken: fieldValue,
    registrytoken: fieldValue,
    email: plain,
  },
  { requiredKeys: [] },
);
const configDoc = fc.oneof(
  fc.record(
    {
      auths: fc.oneof(fc.dictionary(serverKey, entry, { maxKeys: 4 }), fieldValue),
      credsStore: fc.oneof(fc.constantFrom("desktop", "pass"), plain),
      credHelpers: fc.oneof(fc.dictionary(serverKey, plain), plain),
    },
    { requiredKeys: [] },
  ),
  fc.dictionary(serverKey, fc.oneof(entry, fieldValue), { maxKeys: 4 }),
);

describe("docker config parser (properties)", () => {
  it("any bytes give Credentials or a CredentialsFileError naming the file", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        outcome(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it("any JSON value gives Credentials or a CredentialsFileError naming the file", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        outcome(JSON.stringify(v));
      }),
      { numRuns: 1000 },
    );
  });

  it("docker-config-shaped documents give Credentials or the typed error, never showing a secret", () => {
    fc.assert(
      fc.property(configDoc, (doc) => {
        const out = outcome(JSON.stringify(doc));
        const text =
          out instanceof CredentialsFileError ? out.message : `${out}${JSON.stringify(out)}`;
        assert.ok(!text.includes(SECRET), text);
        if (!(out instanceof CredentialsFileError)) {
          for (const h of out.hosts()) assert.ok(out.credsFor(h), `host ${h} is found again`);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
