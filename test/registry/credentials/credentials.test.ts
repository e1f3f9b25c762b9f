/**
 * The `Credentials` class: docker config.json and `.dockercfg` parsing, Docker Hub aliases,
 * merging, provenance, and output (`toString`, JSON, inspect) that never shows a secret.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import { Credentials } from "../../../src/registry/credentials/credentials.js";
import { CredentialsFileError } from "../../../src/registry/credentials/errors.js";

const b64 = (s: string) => Buffer.from(s).toString("base64");
const SECRET = "s3cr3t-Pa55-zz9";
const TOKEN = "idtok-7f3a-not-for-logs";

describe("Credentials.parse (docker config.json)", () => {
  it("reads auth, username/password, identitytoken and registrytoken entries", () => {
    const creds = Credentials.parse(
      "/cfg/config.json",
      JSON.stringify({
        auths: {
          "ghcr.io": { auth: b64(`alice:${SECRET}`) },
          "quay.io": { username: "bob", password: SECRET },
          "myacr.azurecr.io": { identitytoken: TOKEN },
          "registry.example": { registrytoken: TOKEN },
        },
      }),
    );
    assert.deepEqual(creds.hosts(), ["ghcr.io", "myacr.azurecr.io", "quay.io", "registry.example"]);
    const g = creds.credsFor("ghcr.io");
    assert.equal(g?.username, "alice");
    assert.equal(g?.password, SECRET);
    assert.equal(g?.provenance, "docker-config:/cfg/config.json");
    assert.equal(creds.credsFor("quay.io")?.password, SECRET);
    assert.equal(creds.credsFor("myacr.azurecr.io")?.identityToken, TOKEN);
    assert.equal(creds.credsFor("registry.example")?.registryToken, TOKEN);
  });

  it("keeps colons in the password of an auth entry", () => {
    const creds = Credentials.parse(
      "c",
      JSON.stringify({ auths: { h: { auth: b64("u:a:b:c") } } }),
    );
    assert.equal(creds.credsFor("h")?.password, "a:b:c");
  });

  it("auth overrides username/password, as docker does", () => {
    const creds = Credentials.parse(
      "c",
      JSON.stringify({ auths: { h: { auth: b64("real:pw"), username: "other", password: "x" } } }),
    );
    assert.equal(creds.credsFor("h")?.username, "real");
  });

  it("reduces URL server keys to host[:port]", () => {
    const creds = Credentials.parse(
      "c",
      JSON.stringify({
        auths: {
          "http://host.example:5000/v2/": { auth: b64("a:1") },
          "https://other.example/v1/": { auth: b64("b:2") },
          "third.example/some/path": { auth: b64("c:3") },
        },
      }),
    );
    assert.deepEqual(creds.hosts(), ["host.example:5000", "other.example", "third.example"]);
    assert.equal(creds.credsFor("host.example:5000")?.username, "a");
    assert.equal(creds.credsFor("host.example"), undefined, "a different port is another registry");
    assert.equal(creds.credsFor("other.example:443")?.username, "b", ":443 is the default port");
    assert.equal(creds.credsFor("OTHER.example")?.username, "b", "host names are case-insensitive");
  });

  for (const key of [
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "https://index.docker.io/v1/",
  ]) {
    it(`Docker Hub credentials stored under ${key} match every alias`, () => {
      const creds = Credentials.parse(
        "c",
        JSON.stringify({ auths: { [key]: { auth: b64("hub:pw") } } }),
      );
      for (const lookup of [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "https://index.docker.io/v1/",
      ]) {
        assert.equal(creds.credsFor(lookup)?.username, "hub", `lookup ${lookup}`);
      }
    });
  }

  it("prefers the key docker looks up verbatim when aliases collide", () => {
    const creds = Credentials.parse(
      "c",
      JSON.stringify({
        auths: {
          "docker.io": { auth: b64("alias:1") },
          "https://index.docker.io/v1/": { auth: b64("canonical:2") },
        },
      }),
    );
    assert.equal(creds.credsFor("docker.io")?.username, "canonical");
  });

  it("reads the Kubernetes .dockercfg form (no auths wrapper)", () => {
    const creds = Credentials.parse(
      "/secrets/.dockercfg",
      JSON.stringify({ "https://registry.example:8443": { auth: b64("k:v"), email: "x@y" } }),
    );
    assert.deepEqual(creds.hosts(), ["registry.example:8443"]);
  });

  it("skips empty entries (left by docker login when a credsStore holds the secret)", () => {
    const creds = Credentials.parse(
      "c",
      JSON.stringify({ auths: { "ghcr.io": {} }, credsStore: "x" }),
    );
    assert.deepEqual(creds.hosts(), []);
  });

  it("accepts a config.json with no auths at all", () => {
    const creds = Credentials.parse("c", JSON.stringify({ psFormat: "table", HttpHeaders: {} }));
    assert.deepEqual(creds.hosts(), []);
    assert.deepEqual(Credentials.parse("c", "{}").hosts(), []);
  });

  const bad: [string, string, string | undefined, RegExp][] = [
    ["not JSON", `{"auths": {"h": {"auth": "${b64(`u:${SECRET}`)}"`, undefined, /not valid JSON/],
    ["array", "[]", undefined, /not a JSON object/],
    ["auths not object", '{"auths": 3}', undefined, /auths is not an object/],
    ["entry not object", '{"auths": {"h.example": "x"}}', "h.example", /not an object/],
    ["bad base64", '{"auths": {"h.example": {"auth": "%%%"}}}', "h.example", /base64/],
    [
      "auth without colon",
      `{"auths": {"h.example": {"auth": "${b64(SECRET)}"}}}`,
      "h.example",
      /username:password/,
    ],
    ["password not a string", '{"auths": {"h.example": {"password": 5}}}', "h.example", /password/],
    [
      "bad server key",
      '{"auths": {"not a host!": {"auth": "dTpw"}}}',
      "not a host!",
      /registry host/,
    ],
    ["bad helper name", '{"credHelpers": {"gcr.io": "../../bin/sh"}}', "gcr.io", /helper name/],
  ];
  for (const [what, text, entry, reason] of bad) {
    it(`rejects ${what} with a typed error naming the file and entry`, () => {
      assert.throws(
        () => Credentials.parse("/etc/regscan/config.json", text),
        (err: unknown) => {
          assert.ok(err instanceof CredentialsFileError);
          assert.equal(err.code, "INVALID_CREDENTIALS_FILE");
          assert.equal(err.file, "/etc/regscan/config.json");
          assert.equal(err.entry, entry);
          assert.match(err.message, /\/etc\/regscan\/config\.json/);
          assert.match(err.message, reason);
          assert.ok(!err.message.includes(SECRET));
          assert.ok(!err.message.includes(b64(`u:${SECRET}`)));
          return true;
        },
      );
    });
  }

  it("rejects bytes that are not UTF-8", () => {
    assert.throws(
      () => Credentials.parse("f", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])),
      CredentialsFileError,
    );
  });
});

describe("Credentials: printing never shows a secret", () => {
  const creds = Credentials.parse(
    "/home/me/.docker/config.json",
    JSON.stringify({
      auths: {
        "ghcr.io": { auth: b64(`alice:${SECRET}`) },
        "acr.azurecr.io": { identitytoken: TOKEN },
      },
      credHelpers: { "gcr.io": "gcloud" },
    }),
  );
  const outputs = () => [
    creds.toString(),
    JSON.stringify(creds),
    inspect(creds, { depth: 10, showHidden: true }),
    String(creds.credsFor("ghcr.io")),
    JSON.stringify(creds.credsFor("ghcr.io")),
    inspect(creds.credsFor("ghcr.io"), { depth: 10, showHidden: true }),
    inspect({ ...creds.credsFor("acr.azurecr.io") }, { showHidden: true }),
    JSON.stringify({ ...creds.credsFor("acr.azurecr.io") }),
  ];

  it("shows hosts, usernames and provenance", () => {
    const s = creds.toString();
    assert.match(s, /alice@ghcr\.io/);
    assert.match(s, /docker-config:\/home\/me\/\.docker\/config\.json/);
    assert.match(s, /credHelpers\[gcr\.io\]=gcloud/);
    assert.match(JSON.stringify(creds), /"username":"alice"/);
  });

  it("toString, toJSON and util.inspect hold no password or token", () => {
    for (const out of outputs()) {
      assert.ok(!out.includes(SECRET), out);
      assert.ok(!out.includes(TOKEN), out);
      assert.ok(!out.includes(b64(`alice:${SECRET}`)), out);
    }
  });
});

describe("Credentials.merge", () => {
  const a = Credentials.parse(
    "a.json",
    JSON.stringify({
      auths: { "one.example": { auth: b64("a1:x") }, "two.example": { auth: b64("a2:x") } },
    }),
  );
  const b = Credentials.parse(
    "b.json",
    JSON.stringify({ auths: { "two.example": { auth: b64("b2:y") } } }),
  );

  it("keeps both sets' hosts; per host, the other set's entry wins", () => {
    const m = a.merge(b);
    assert.deepEqual(m.hosts(), ["one.example", "two.example"]);
    assert.equal(m.credsFor("one.example")?.username, "a1");
    assert.equal(m.credsFor("two.example")?.username, "b2");
    assert.equal(m.credsFor("two.example")?.provenance, "docker-config:b.json");
  });

  it("does not change either input", () => {
    a.merge(b);
    assert.equal(a.credsFor("two.example")?.username, "a2");
    assert.deepEqual(b.hosts(), ["two.example"]);
  });

  it("none() has no hosts and resolves to anonymous", async () => {
    assert.deepEqual(Credentials.none().hosts(), []);
    assert.equal(await Credentials.none().resolve("ghcr.io"), undefined);
    assert.equal(Credentials.none().merge(a).credsFor("one.example")?.username, "a1");
  });

  it("merging an empty set in (or into one) gives the other set itself, not a copy", () => {
    // Each watched repository's set is merged with the configured ones: a copy each was 7 MB
    // of a replica's heap at 10,000 repositories.
    assert.equal(a.merge(Credentials.none()), a);
    assert.equal(Credentials.none().merge(b), b);
    assert.equal(Credentials.none(), Credentials.none(), "one shared empty set");
    assert.notEqual(a.merge(b), a, "a real merge is a new set");
    const withCloud = Credentials.fromCloud([
      { name: "test", matches: () => true, credentialFor: async () => undefined },
    ]);
    assert.notEqual(a.merge(withCloud), a, "a set with only cloud providers is not empty");
    assert.match(a.merge(withCloud).toString(), /cloud=test/);
  });

  it("resolve() answers static entries first", async () => {
    assert.equal((await a.resolve("one.example"))?.username, "a1");
    assert.equal(await a.resolve("three.example"), undefined);
  });
});
