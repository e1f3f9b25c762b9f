import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  authModeOf,
  describeWebhooks,
  webhooksFromFlags,
  webhooksSchema,
} from "../../../src/server/webhooks/config.js";

function problems(input: unknown): string[] {
  const result = webhooksSchema.safeParse(input);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

describe("webhooks: configuration", () => {
  test("each kind's default authentication", () => {
    const config = webhooksSchema.parse({
      distribution: { secret: "env:A" },
      github: { secret: "file:/run/secrets/gh" },
      dockerhub: { secret: "env:B" },
      acr: { secret: "env:C", header: "X-Regscan-Token" },
      gar: {
        audience: "https://r.example.com/v1/webhooks/gar",
        serviceAccount: "push@p.iam.gserviceaccount.com",
      },
      generic: { unauthenticated: true },
    });
    const modes = Object.fromEntries(
      (["distribution", "github", "dockerhub", "acr", "gar", "generic"] as const).map((k) => {
        const r = config[k];
        assert.ok(r);
        return [k, authModeOf(k, r)];
      }),
    );
    assert.deepEqual(modes, {
      distribution: "bearer",
      github: "hmac",
      dockerhub: "path",
      acr: "header",
      gar: "oidc",
      generic: "none",
    });
    assert.equal(config.gar?.issuer, "https://accounts.google.com");
  });

  test("a receiver with no credential is refused unless marked unauthenticated", () => {
    assert.match(problems({ harbor: {} }).join("\n"), /harbor: the harbor receiver has no secret/);
    assert.match(problems(["quay"]).join("\n"), /quay: the quay receiver has no secret/);
    assert.match(
      problems({ gar: {} }).join("\n"),
      /gar: the gar receiver needs audience and serviceAccount/,
    );
    assert.deepEqual(problems({ harbor: { unauthenticated: true } }), []);
  });

  test("secrets only as env:NAME or file:PATH, and options only where they apply", () => {
    const inline = problems({ github: { secret: "hunter2-inline" } }).join("\n");
    assert.match(inline, /github\.secret: expected "env:NAME" or "file:PATH"/);
    assert.ok(!inline.includes("hunter2"), "the value is not repeated");
    assert.match(
      problems({ github: { secret: "env:X", header: "X-Token" } }).join("\n"),
      /does not take a header/,
    );
    assert.match(
      problems({ dockerhub: { secret: "env:X", audience: "a" } }).join("\n"),
      /only the gar receiver takes audience/,
    );
    assert.match(
      problems({ generic: { unauthenticated: true, secret: "env:X" } }).join("\n"),
      /takes no secret/,
    );
    assert.match(problems({ nexus: {} }).join("\n"), /nexus|Unrecognized/i);
  });

  test("--webhook and --webhook-secret over the file", () => {
    const { value, problems: flagProblems } = webhooksFromFlags(
      { github: { secret: "env:OLD" } },
      ["distribution", "github"],
      ["github=file:/run/gh", "distribution=env:DIST", "oops-no-kind-but-a-long-secret"],
    );
    assert.deepEqual(value, {
      github: { secret: "file:/run/gh" },
      distribution: { secret: "env:DIST" },
    });
    assert.equal(flagProblems.length, 1);
    assert.ok(!flagProblems[0]?.includes("long-secret"));
    assert.deepEqual(problems(value), []);
  });

  test("config check shows how each receiver authenticates, never a secret", () => {
    const lines = describeWebhooks(
      webhooksSchema.parse({
        github: { secret: "env:GH" },
        quay: { secret: "file:/run/q" },
        generic: { unauthenticated: true },
      }),
    );
    assert.deepEqual(lines, [
      "github: HMAC-SHA256 signature, key from env:GH",
      "quay: secret in the URL path (/v1/webhooks/quay/SECRET) from file:/run/q",
      "generic: UNAUTHENTICATED",
    ]);
  });
});
