/**
 * `imageCredsWithAWSAuth` against a local server speaking the ECR API: region and account
 * rules, one call per region, reuse until expiry, the embargo after a failure, `preflight()`.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { inspect } from "node:util";
import {
  EKS_SYSTEM_ACCOUNT,
  EKS_SYSTEM_ACCOUNT_CN,
  imageCredsWithAWSAuth,
} from "../../../src/registry/credentials/aws-image-creds.js";
import { Credentials } from "../../../src/registry/credentials/credentials.js";
import { EcrTokenCache, ecrCloudProvider } from "../../../src/registry/credentials/ecr.js";
import type { EcrApi } from "../../../src/registry/credentials/ecr-api.js";
import { saveEnv } from "../../support/env.js";
import { type FakeAws, startFakeAws } from "../../support/fake-cloud/aws.js";
import { captureLogger } from "./capture-logger.js";

const AWS_SECRET = "fakeAwsSecretKey/DoNotLog+0123456789abcdef";
const A = "111111111111";
const B = "222222222222";
const C = "333333333333";
const D = "444444444444";
const ecr = ({ acct, region, repo = "app" }: { acct: string; region: string; repo?: string }) =>
  `${acct}.dkr.ecr.${region}.amazonaws.com/${repo}`;
const HOUR = 3600_000;

function setAwsEnv(fake: FakeAws): void {
  for (const k of [
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
  ]) {
    delete process.env[k];
  }
  process.env.AWS_ACCESS_KEY_ID = "AKIAFAKEFAKEFAKE0000";
  process.env.AWS_SECRET_ACCESS_KEY = AWS_SECRET;
  process.env.AWS_CONFIG_FILE = "/nonexistent/regscan-test/aws-config";
  process.env.AWS_SHARED_CREDENTIALS_FILE = "/nonexistent/regscan-test/aws-credentials";
  process.env.AWS_ENDPOINT_URL_ECR = fake.url;
  process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = fake.url;
  delete process.env.AWS_EC2_METADATA_DISABLED;
}

describe("imageCredsWithAWSAuth against a local ECR API", () => {
  let fake: FakeAws;
  let now: number;
  const clock = () => now;
  let restoreEnv: () => void;
  before(async () => {
    restoreEnv = saveEnv();
    fake = await startFakeAws();
    setAwsEnv(fake);
  });
  after(async () => {
    restoreEnv?.();
    await fake.close();
  });
  beforeEach(() => {
    fake.calls.length = 0;
    fake.failing = false;
    now = Date.now();
    fake.expiresAt = () => now + 12 * HOUR;
  });

  const images = () =>
    new Map<string, Credentials>([
      [ecr({ acct: A, region: "us-east-1" }), Credentials.none()],
      [ecr({ acct: B, region: "us-east-1", repo: "other/repo" }), Credentials.none()],
      [ecr({ acct: C, region: "eu-west-1" }), Credentials.none()],
      [ecr({ acct: D, region: "ap-south-1" }), Credentials.none()],
      [
        ecr({ acct: EKS_SYSTEM_ACCOUNT, region: "us-east-1", repo: "eks/coredns" }),
        Credentials.none(),
      ],
      [
        `${EKS_SYSTEM_ACCOUNT_CN}.dkr.ecr.cn-north-1.amazonaws.com.cn/eks/pause`,
        Credentials.none(),
      ],
      ["ghcr.io/org/app", Credentials.none()],
      ["public.ecr.aws/nginx/nginx", Credentials.none()],
      ["weird.s3.amazonaws.com/repo", Credentials.none()],
    ]);

  it("regions and default exclusions: one call per region for all its accounts", async () => {
    const log = captureLogger();
    const input = images();
    const auth = imageCredsWithAWSAuth(() => input, log.logger, {
      regions: ["us-east-1", "eu-west-1", "cn-north-1"],
      clock,
    });
    await auth.preflight();
    const out = await auth.lookup();
    assert.deepEqual(
      [...out.keys()].sort(),
      [
        ecr({ acct: A, region: "us-east-1" }),
        ecr({ acct: B, region: "us-east-1", repo: "other/repo" }),
        ecr({ acct: C, region: "eu-west-1" }),
        "ghcr.io/org/app",
        "public.ecr.aws/nginx/nginx",
        "weird.s3.amazonaws.com/repo",
      ].sort(),
      "other regions and the EKS system accounts are dropped",
    );
    assert.deepEqual(fake.calls.map((c) => `${c.region}:${c.registryIds.join(",")}`).sort(), [
      `eu-west-1:${C}`,
      `us-east-1:${A},${B}`,
    ]);
    const a = await out
      .get(ecr({ acct: A, region: "us-east-1" }))!
      .resolve(`${A}.dkr.ecr.us-east-1.amazonaws.com`);
    assert.equal(a?.username, "AWS");
    assert.equal(a?.password, fake.passwordFor(A, "us-east-1"));
    assert.equal(a?.provenance, "aws-ecr:us-east-1");
    assert.equal(out.get("ghcr.io/org/app"), input.get("ghcr.io/org/app"), "non-ECR untouched");
    assert.equal(out.get("public.ecr.aws/nginx/nginx"), input.get("public.ecr.aws/nginx/nginx"));
    assert.equal(
      await out.get("public.ecr.aws/nginx/nginx")!.resolve("public.ecr.aws"),
      undefined,
      "ECR Public is anonymous",
    );
    assert.ok(
      log.lines.some(
        (l) => l.includes("not in expected format") && l.includes("weird.s3.amazonaws.com"),
      ),
      "a malformed ECR-suffix host is logged",
    );
    assert.ok(!log.text().includes(fake.passwordFor(A, "us-east-1")));
    assert.ok(!log.text().includes(AWS_SECRET));
  });

  it("included accounts only; excluded accounts never; exclusions can be overridden", async () => {
    const log = captureLogger();
    const onlyA = imageCredsWithAWSAuth(images, log.logger, {
      regions: ["us-east-1"],
      accountIds: [A, EKS_SYSTEM_ACCOUNT],
      clock,
    });
    const out = await onlyA.lookup();
    assert.ok(out.has(ecr({ acct: A, region: "us-east-1" })));
    assert.ok(!out.has(ecr({ acct: B, region: "us-east-1", repo: "other/repo" })));
    assert.ok(
      !out.has(ecr({ acct: EKS_SYSTEM_ACCOUNT, region: "us-east-1", repo: "eks/coredns" })),
      "excluded beats included",
    );
    const noExclusions = imageCredsWithAWSAuth(images, log.logger, {
      regions: ["us-east-1"],
      excludeAccountIds: [B],
      clock,
    });
    const out2 = await noExclusions.lookup();
    assert.ok(
      out2.has(ecr({ acct: EKS_SYSTEM_ACCOUNT, region: "us-east-1", repo: "eks/coredns" })),
    );
    assert.ok(!out2.has(ecr({ acct: B, region: "us-east-1", repo: "other/repo" })));
  });

  it("reuses a region's tokens until the earliest expiresAt, then refreshes", async () => {
    fake.expiresAt = (acct) => now + (acct === A ? 2 * HOUR : 1 * HOUR);
    const auth = imageCredsWithAWSAuth(images, captureLogger().logger, {
      regions: ["us-east-1"],
      clock,
    });
    const t0 = now;
    await auth.lookup();
    await auth.lookup();
    assert.equal(fake.calls.length, 1);
    now = t0 + 59 * 60_000;
    await auth.lookup();
    assert.equal(fake.calls.length, 1, "still valid");
    now = t0 + 61 * 60_000;
    const out = await auth.lookup();
    assert.equal(fake.calls.length, 2, "refreshed after the earliest expiry (B's, 1 h)");
    assert.equal(
      out
        .get(ecr({ acct: A, region: "us-east-1" }))
        ?.credsFor(`${A}.dkr.ecr.us-east-1.amazonaws.com`)?.username,
      "AWS",
    );
  });

  it("keeps tokens 12 hours at most", async () => {
    fake.expiresAt = () => now + 48 * HOUR;
    const auth = imageCredsWithAWSAuth(images, captureLogger().logger, {
      regions: ["eu-west-1"],
      clock,
    });
    const t0 = now;
    await auth.lookup();
    now = t0 + 11 * HOUR;
    await auth.lookup();
    assert.equal(fake.calls.length, 1);
    now = t0 + 12 * HOUR + 1000;
    await auth.lookup();
    assert.equal(fake.calls.length, 2);
  });

  it("a new account in a region gets tokens for all its accounts in one call", async () => {
    const list = new Map([[ecr({ acct: A, region: "us-east-1" }), Credentials.none()]]);
    const auth = imageCredsWithAWSAuth(() => new Map(list), captureLogger().logger, {
      regions: ["us-east-1"],
      clock,
    });
    await auth.lookup();
    list.set(ecr({ acct: B, region: "us-east-1" }), Credentials.none());
    await auth.lookup();
    assert.deepEqual(
      fake.calls.map((c) => c.registryIds.join(",")),
      [A, `${A},${B}`],
    );
  });

  it("after a failure the region is left alone for 10 minutes", async () => {
    const log = captureLogger();
    const own = Credentials.parse(
      "own",
      JSON.stringify({ auths: { "x.example": { auth: Buffer.from("u:p").toString("base64") } } }),
    );
    const list = () => new Map([[ecr({ acct: C, region: "eu-west-1" }), own]]);
    const auth = imageCredsWithAWSAuth(list, log.logger, { regions: ["eu-west-1"], clock });
    const t0 = now;
    fake.failing = true;
    const out = await auth.lookup();
    assert.equal(fake.calls.length, 1);
    assert.equal(
      out.get(ecr({ acct: C, region: "eu-west-1" })),
      own,
      "kept, with its own credentials only",
    );
    assert.ok(log.lines.some((l) => l.includes("fetching ECR credentials for AWS region failed")));
    assert.ok(!log.text().includes(AWS_SECRET));
    fake.failing = false;
    now = t0 + 9 * 60_000;
    await auth.lookup();
    assert.equal(fake.calls.length, 1, "embargoed");
    now = t0 + 10 * 60_000 + 1;
    const out2 = await auth.lookup();
    assert.equal(fake.calls.length, 2);
    const merged = out2.get(ecr({ acct: C, region: "eu-west-1" }))!;
    assert.equal(merged.credsFor(`${C}.dkr.ecr.eu-west-1.amazonaws.com`)?.username, "AWS");
    assert.equal(merged.credsFor("x.example")?.username, "u", "the image's own are kept");
  });

  it("the image's own credentials win over ECR tokens", async () => {
    const host = `${A}.dkr.ecr.us-east-1.amazonaws.com`;
    const own = Credentials.parse(
      "pull-secret",
      JSON.stringify({ auths: { [host]: { username: "mine", password: "p" } } }),
    );
    const auth = imageCredsWithAWSAuth(
      () => new Map([[ecr({ acct: A, region: "us-east-1" }), own]]),
      captureLogger().logger,
      {
        regions: ["us-east-1"],
        clock,
      },
    );
    const out = await auth.lookup();
    assert.equal(out.get(ecr({ acct: A, region: "us-east-1" }))?.credsFor(host)?.username, "mine");
  });

  it("detects the region from IMDS, and runs the preflight check once", async () => {
    fake.imdsRegion = "eu-west-1";
    const before = fake.imdsRequests;
    const log = captureLogger();
    const auth = imageCredsWithAWSAuth(images, log.logger, { clock });
    await auth.preflight();
    await auth.preflight();
    const out = await auth.lookup();
    assert.equal(fake.imdsRequests - before, 2, "one token PUT and one region GET, once");
    assert.ok(out.has(ecr({ acct: C, region: "eu-west-1" })));
    assert.ok(!out.has(ecr({ acct: A, region: "us-east-1" })));
    assert.ok(
      log.lines.some(
        (l) => l.includes("detected cluster region") && l.includes("instance metadata"),
      ),
    );
  });

  it("detects the region from the AWS configuration first", async () => {
    process.env.AWS_REGION = "us-east-1";
    try {
      const before = fake.imdsRequests;
      const auth = imageCredsWithAWSAuth(images, captureLogger().logger, { clock });
      const out = await auth.lookup();
      assert.equal(fake.imdsRequests, before);
      assert.ok(out.has(ecr({ acct: A, region: "us-east-1" })));
      assert.ok(!out.has(ecr({ acct: C, region: "eu-west-1" })));
    } finally {
      delete process.env.AWS_REGION;
    }
  });

  it("reaches the ECR API through the endpoint option as well", async () => {
    delete process.env.AWS_ENDPOINT_URL_ECR;
    try {
      const auth = imageCredsWithAWSAuth(images, captureLogger().logger, {
        regions: ["eu-west-1"],
        endpoint: fake.url,
        clock,
      });
      const out = await auth.lookup();
      assert.equal(fake.calls.length, 1);
      assert.equal(
        out
          .get(ecr({ acct: C, region: "eu-west-1" }))
          ?.credsFor(`${C}.dkr.ecr.eu-west-1.amazonaws.com`)?.username,
        "AWS",
      );
    } finally {
      process.env.AWS_ENDPOINT_URL_ECR = fake.url;
    }
  });

  it("when the AWS API is not available: preflight fails once, constraints still apply, a warning per included image", async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, key: process.env.AWS_SECRET_ACCESS_KEY };
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    process.env.AWS_EC2_METADATA_DISABLED = "true";
    try {
      const log = captureLogger();
      const auth = imageCredsWithAWSAuth(images, log.logger, { regions: ["us-east-1"], clock });
      const e1 = await auth.preflight().then(
        () => undefined,
        (e: unknown) => e,
      );
      const e2 = await auth.preflight().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(e1 instanceof Error);
      assert.equal(e1, e2, "the one check's error");
      assert.ok(!inspect(e1).includes(AWS_SECRET));
      const out = await auth.lookup();
      assert.ok(out.has(ecr({ acct: A, region: "us-east-1" })), "included images are kept");
      assert.ok(!out.has(ecr({ acct: C, region: "eu-west-1" })), "constraints apply");
      assert.equal(fake.calls.length, 0);
      const warnings = log.lines.filter((l) => l.includes("AWS API is not available"));
      assert.equal(warnings.length, 2, "one per included ECR image (A and B)");

      const noRegion = imageCredsWithAWSAuth(images, log.logger, { clock });
      const out2 = await noRegion.lookup();
      assert.ok(![...out2.keys()].some((k) => k.includes(".dkr.ecr.")), "no region: no ECR image");
      await assert.rejects(noRegion.preflight());
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved.id;
      process.env.AWS_SECRET_ACCESS_KEY = saved.key;
      delete process.env.AWS_EC2_METADATA_DISABLED;
    }
  });

  it("the ECR cloud provider answers resolve() for an ECR host", async () => {
    const creds = Credentials.fromCloud([ecrCloudProvider({ clock })]);
    const host = `${D}.dkr.ecr.ap-south-1.amazonaws.com`;
    const c = await creds.resolve(host);
    assert.equal(c?.username, "AWS");
    assert.equal(c?.password, fake.passwordFor(D, "ap-south-1"));
    await creds.resolve(host);
    assert.equal(fake.calls.length, 1);
    assert.ok(!String(c).includes(c?.password ?? "?"));
    assert.equal(await creds.resolve("ghcr.io"), undefined);
  });
});

describe("EcrTokenCache with concurrent callers", () => {
  it("the caller who started a region's fetch giving up does not fail a caller waiting for it", async () => {
    let calls = 0;
    const api: EcrApi = {
      detectRegion: async () => undefined,
      checkCredentials: async () => {},
      getAuthorizationTokens: (region, accounts, opts = {}) => {
        calls++;
        return new Promise((resolve, reject) => {
          const timer = setTimeout(
            () =>
              resolve(
                accounts.map((a) => ({
                  host: `${a}.dkr.ecr.${region}.amazonaws.com`,
                  username: "AWS",
                  password: "ecr-password",
                  expiresAt: undefined,
                })),
              ),
            20,
          );
          opts.signal?.addEventListener("abort", () => {
            clearTimeout(timer);
            reject(opts.signal?.reason);
          });
        });
      },
    };
    const cache = new EcrTokenCache(api);
    const gone = new AbortController();
    const first = cache.ensure("eu-west-1", [A], { signal: gone.signal });
    const second = cache.ensure("eu-west-1", [A]);
    gone.abort(new Error("first caller gave up"));
    await assert.rejects(first, /first caller gave up/);
    const creds = await second;
    assert.equal(creds?.credsFor(`${A}.dkr.ecr.eu-west-1.amazonaws.com`)?.username, "AWS");
    assert.equal(calls, 2, "the waiting caller fetched on its own");
  });
});
