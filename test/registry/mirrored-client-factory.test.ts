import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ImageEntry } from "../../src/image/info.js";
import { type ImageName, parseImageName, parseImageRef } from "../../src/image/ref.js";
import type { Client, ClientFactory, ManifestHead } from "../../src/registry/client.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { MirroredClientFactory } from "../../src/registry/mirrored-client-factory.js";

class Recorder implements ClientFactory {
  calls: string[] = [];
  succeeded: string[] = [];
  readonly #down: Set<string>;
  constructor(down: Set<string>) {
    this.#down = down;
  }
  clientFor(name: ImageName): Client {
    const host = name.domain;
    const fail = async (what: string) => {
      this.calls.push(`${host} ${what}`);
      if (this.#down.has(host)) throw new Error(`${host} is down`);
    };
    return {
      tags: async () => {
        await fail("tags");
        return [`from-${host}`];
      },
      manifest: async (reference: string): Promise<ImageEntry> => {
        await fail(`manifest ${reference}`);
        return {
          info: {
            ref: parseImageRef(`${name.toString()}:${reference}`),
            digest: "sha256:1",
            mediaType: "x",
            labels: {},
            platforms: [],
          },
        };
      },
      head: async (reference: string): Promise<ManifestHead | undefined> => {
        await fail(`head ${reference}`);
        return host === "mirror-a.local" ? undefined : { digest: "sha256:1", mediaType: "x" };
      },
    };
  }
  succeed(name: ImageName): void {
    this.succeeded.push(name.toString());
  }
}

describe("MirroredClientFactory", () => {
  const name = parseImageName("alpine");
  const mirrors = { "docker.io": ["http://mirror-a.local", "mirror-b.local"] };

  test("asks the first mirror first and describes the image with the origin's name", async () => {
    const inner = new Recorder(new Set());
    const client = new MirroredClientFactory(inner, mirrors).clientFor(name, Credentials.none());
    assert.deepEqual(await client.tags(), ["from-mirror-a.local"]);
    const entry = await client.manifest("3.19");
    assert.equal(entry.info?.ref.toString(), "docker.io/library/alpine:3.19");
    assert.deepEqual(inner.calls, ["mirror-a.local tags", "mirror-a.local manifest 3.19"]);
  });

  test("falls back to the next mirror, then the origin, reporting each fallback", async () => {
    const inner = new Recorder(new Set(["mirror-a.local", "mirror-b.local"]));
    const fallbacks: string[] = [];
    const client = new MirroredClientFactory(inner, mirrors, ({ mirror }) =>
      fallbacks.push(mirror),
    ).clientFor(name, Credentials.none());
    assert.deepEqual(await client.tags(), ["from-docker.io"]);
    assert.deepEqual(fallbacks, ["mirror-a.local", "mirror-b.local"]);
  });

  test("a tag missing on a mirror is asked of the next; the origin's error is the one thrown", async () => {
    const inner = new Recorder(new Set());
    const client = new MirroredClientFactory(inner, mirrors).clientFor(name, Credentials.none());
    assert.equal((await client.head("3.19"))?.digest, "sha256:1");
    assert.deepEqual(inner.calls, ["mirror-a.local head 3.19", "mirror-b.local head 3.19"]);
    const allDown = new MirroredClientFactory(
      new Recorder(new Set(["mirror-a.local", "mirror-b.local", "docker.io"])),
      mirrors,
    ).clientFor(name, Credentials.none());
    await assert.rejects(allDown.tags(), /docker\.io is down/);
  });

  test("registries without mirrors are asked directly; succeed() reaches every host", () => {
    const inner = new Recorder(new Set());
    const factory = new MirroredClientFactory(inner, mirrors);
    factory.clientFor(parseImageName("ghcr.io/org/app"), Credentials.none());
    factory.succeed(name);
    assert.deepEqual(inner.succeeded, [
      "docker.io/library/alpine",
      "mirror-a.local/library/alpine",
      "mirror-b.local/library/alpine",
    ]);
  });
});
