/**
 * Token realm names: every spelling of a metadata name (trailing dot, case, IDNA) is refused,
 * and a realm given by name is resolved once, its token requests connecting to the address
 * that was checked, against the real registry in token mode (the realm named through the
 * fault proxy's challenge).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parseImageName } from "../../../src/image/ref.js";
import { Credentials } from "../../../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../../../src/registry/factory.js";
import { normaliseHostname } from "../../../src/registry/http/host-names.js";
import { insecureHostPolicy } from "../../../src/registry/http/insecure-hosts.js";
import { checkRealm, isLoopback } from "../../../src/registry/http/realm-policy.js";
import { type FaultHook, withFault } from "../../support/faults.js";
import { ImageBuilder } from "../../support/image-builder.js";
import { type RegistryHandle, startRegistry } from "../../support/registry.js";

const none = () => false;
/** A resolver that must not be asked: the names below are refused before any look-up. */
const noLookup = async (name: string) => {
  throw new Error(`looked up ${name}`);
};

describe("host name spelling", () => {
  test("trailing dots, case, IDNA and brackets have one form", () => {
    assert.equal(normaliseHostname("Metadata.Google.Internal."), "metadata.google.internal");
    assert.equal(normaliseHostname("metadata.google.internal.."), "metadata.google.internal");
    assert.equal(normaliseHostname("BÜCHER.example"), "xn--bcher-kva.example");
    assert.equal(normaliseHostname("[::1]"), "::1");
    assert.equal(normaliseHostname("LOCALHOST."), "localhost");
    assert.equal(isLoopback("localhost."), true);
  });

  test("every spelling of a metadata name is refused, before any look-up", async () => {
    for (const realm of [
      "https://metadata.google.internal./token",
      "https://METADATA.google.internal/token",
      "https://Metadata.Google.Internal.../token",
      "https://metadata./token",
      "https://instance-data.ec2.internal./token",
      "https://169.254.169.254./token",
      "https://0xa9.0xfe.0xa9.0xfe/token",
    ]) {
      await assert.rejects(
        checkRealm(new URL(realm), { registryHost: "r", isInsecure: none, resolve: noLookup }),
        { code: "UNSAFE_REALM" },
        realm,
      );
    }
  });

  test("a name resolving to a metadata address is refused", async () => {
    await assert.rejects(
      checkRealm(new URL("https://auth.example.test/token"), {
        registryHost: "r",
        isInsecure: none,
        resolve: async () => [
          { address: "10.0.0.1", family: 4 },
          { address: "169.254.169.254", family: 4 },
        ],
      }),
      { code: "UNSAFE_REALM", message: /resolves to a link-local or metadata address/ },
    );
  });

  test("an insecure host listed with a trailing dot or in capitals is the same host", () => {
    const insecure = insecureHostPolicy(["Registry.Local.:5000", "other.local."]);
    assert.equal(insecure("registry.local:5000"), true);
    assert.equal(insecure("registry.local.:5000"), true);
    assert.equal(insecure("other.local:443"), true);
    assert.equal(insecure("registry.local:5001"), false);
  });
});

describe("a realm given by name, against the token registry", () => {
  let reg: RegistryHandle;
  const factories: RemoteClientFactory[] = [];
  const REALM_NAME = "auth.regscan-pinning.test";

  before(async () => {
    reg = await startRegistry({ mode: "token", anonymousPull: true });
    const b = new ImageBuilder(reg);
    await b.pushImage("app", ["v1"]);
    await b.close();
  });

  after(async () => {
    await Promise.all(factories.map((f) => f.close()));
    await reg.stop();
  });

  /** The registry's challenge, with the realm renamed to a name only the resolver knows. */
  function renamedRealm(): FaultHook {
    const server = reg.tokenServer;
    assert.ok(server);
    const realm = server.realm.replace("127.0.0.1", REALM_NAME);
    return (req) =>
      req.path === "/v2/"
        ? {
            status: 401,
            headers: {
              "www-authenticate": `Bearer realm="${realm}",service="${server.service}"`,
            },
            body: { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] },
          }
        : undefined;
  }

  test("the token request connects to the checked address; the name is resolved once", async () => {
    const asked: string[] = [];
    // DNS rebinding: the first answer is safe, every later one a metadata address.
    const resolveHost = async (name: string) => {
      asked.push(name);
      return asked.length === 1
        ? [{ address: "127.0.0.1", family: 4 }]
        : [{ address: "169.254.169.254", family: 4 }];
    };
    const f = new RemoteClientFactory({ insecureHosts: [reg.host, REALM_NAME], resolveHost });
    factories.push(f);
    reg.tokenServer?.resetRequests();
    await withFault(reg, renamedRealm(), async () => {
      const c = f.clientFor(parseImageName(`${reg.host}/app`), Credentials.none());
      // The name exists nowhere but in the resolver: without the pin, the connection's own
      // look-up would fail (or, with a rebinding DNS, reach the metadata address).
      assert.deepEqual(await c.tags(), ["v1"]);
    });
    assert.deepEqual(asked, [REALM_NAME]);
    assert.equal(reg.tokenServer?.requests().length, 1);
  });

  test("a name that does not resolve is not looked up a second time by the connection", async () => {
    const f = new RemoteClientFactory({
      insecureHosts: [reg.host, "localhost"],
      resolveHost: async () => [],
    });
    factories.push(f);
    const server = reg.tokenServer;
    assert.ok(server);
    // localhost resolves for the system; the pin (nothing) must win.
    const realm = server.realm.replace("127.0.0.1", "localhost");
    server.resetRequests();
    await withFault(
      reg,
      (req) =>
        req.path === "/v2/"
          ? {
              status: 401,
              headers: {
                "www-authenticate": `Bearer realm="${realm}",service="${server.service}"`,
              },
            }
          : undefined,
      async () => {
        const c = f.clientFor(parseImageName(`${reg.host}/app`), Credentials.none());
        await assert.rejects(c.tags(), { code: "NETWORK", message: /ENOTFOUND/ });
      },
    );
    assert.equal(server.requests().length, 0);
  });
});
