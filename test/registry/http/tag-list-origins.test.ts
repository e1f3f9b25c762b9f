/**
 * Next links and credentials, against the real registry with htpasswd and token auth: a
 * tag-list page whose next link points at another origin (another port, host or scheme,
 * with or without a port) stops the listing with TAG_LIST_LIMIT, and that origin (a second
 * real registry, recording what reaches it) never gets a request, so never a credential.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parseImageName } from "../../../src/image/ref.js";
import { Credentials } from "../../../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../../../src/registry/factory.js";
import { withFault } from "../../support/faults.js";
import { ImageBuilder } from "../../support/image-builder.js";
import { type RegistryHandle, type RegistryMode, startRegistry } from "../../support/registry.js";

let elsewhere: RegistryHandle;
const registries = new Map<RegistryMode, RegistryHandle>();

before(async () => {
  elsewhere = await startRegistry({ mode: "anonymous" });
  for (const mode of ["htpasswd", "token"] as const) {
    const reg = await startRegistry({ mode });
    const b = new ImageBuilder(reg);
    await b.pushImage("app", ["v1", "v2"]);
    await b.close();
    registries.set(mode, reg);
  }
});

after(async () => {
  await Promise.all([...registries.values(), elsewhere].map((r) => r?.stop()));
});

function credsFor(reg: RegistryHandle): Credentials {
  const [user, pass] = Object.entries(reg.users)[0] ?? [];
  assert.ok(user !== undefined && pass !== undefined, "the registry has a user");
  return Credentials.parse(
    "test-config.json",
    JSON.stringify({ auths: { [reg.host]: { username: user, password: pass } } }),
  );
}

describe("a next link to another origin carries no credentials", () => {
  for (const mode of ["htpasswd", "token"] as const) {
    test(mode, async () => {
      const reg = registries.get(mode) as RegistryHandle;
      const scheme = new URL(reg.url).protocol;
      const otherScheme = scheme === "https:" ? "http:" : "https:";
      const [user, pass] = Object.entries(reg.users)[0] as [string, string];
      const targets = [
        // Same host name and scheme, another explicit port: a real registry listening there.
        `${elsewhere.url}/v2/app/tags/list?last=v1`,
        `${scheme}//localhost:${new URL(elsewhere.url).port}/v2/app/tags/list?last=v1`,
        // No port, but another host or scheme: not the Nexus case.
        `${scheme}//localhost/v2/app/tags/list?last=v1`,
        `${otherScheme}//127.0.0.1/v2/app/tags/list?last=v1`,
      ];
      const factory = new RemoteClientFactory({ insecureHosts: [reg.host, elsewhere.host] });
      try {
        const client = factory.clientFor(parseImageName(`${reg.host}/app`), credsFor(reg));
        // The credentials work: the listing is authenticated.
        assert.deepEqual((await client.tags()).sort(), ["v1", "v2"]);
        for (const target of targets) {
          elsewhere.resetRequests();
          let answered = 0;
          await withFault(
            reg,
            (req) => {
              if (req.path !== "/v2/app/tags/list") return undefined;
              answered++;
              return {
                status: 200,
                headers: { "content-type": "application/json", link: `<${target}>; rel="next"` },
                body: { name: "app", tags: ["v1"] },
              };
            },
            async () => {
              const err = await client.tags().then(
                () => assert.fail(`the listing went on to ${target}`),
                (e: unknown) => e as Error & { code?: string },
              );
              assert.equal(err.code, "TAG_LIST_LIMIT", `${target}: ${err.message}`);
              assert.match(err.message, /next link is on another origin/);
              assert.ok(!err.message.includes(pass) && !err.message.includes(user));
            },
          );
          assert.equal(answered, 1, target);
          assert.deepEqual(elsewhere.requests(), [], `nothing reached ${target}`);
        }
        // A page with an authorization reached only the registry itself.
        assert.ok(reg.requests().some((r) => r.hasAuthorization));
      } finally {
        await factory.close();
      }
    });
  }
});
