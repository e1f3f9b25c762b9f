/**
 * Google registries against a local GCE metadata server: the access token, cached until
 * shortly before expiry and refreshed after, and the provider's place in `resolve()`.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Credentials } from "../../../src/registry/credentials/credentials.js";
import { CloudCredentialsError } from "../../../src/registry/credentials/errors.js";
import {
  GcpTokenSource,
  gcpCloudProvider,
  getGCPOAuthToken,
} from "../../../src/registry/credentials/gcp.js";
import { saveEnv } from "../../support/env.js";
import {
  type FakeGceMetadata,
  startFakeGceMetadata,
} from "../../support/fake-cloud/gce-metadata.js";
import { captureLogger } from "./capture-logger.js";

describe("Google registries: tokens from a local GCE metadata server", () => {
  let fake: FakeGceMetadata;
  let gcloudDir: string;
  let restoreEnv: () => void;
  before(async () => {
    restoreEnv = saveEnv();
    fake = await startFakeGceMetadata();
    gcloudDir = await mkdtemp(join(tmpdir(), "regscan-gcloud-"));
    delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    delete process.env.METADATA_SERVER_DETECTION;
    process.env.CLOUDSDK_CONFIG = gcloudDir; // no application_default_credentials.json
    process.env.GCE_METADATA_HOST = `127.0.0.1:${fake.port}`;
    // google-auth-library looks up the project of every credential it makes, from this
    // variable first, else by running `gcloud config config-helper`: where the Cloud SDK is
    // installed that started the machine's gcloud (a Python process, 0.6 s of CPU) for each
    // token source, outside the test's own set-up. regscan never uses the project.
    process.env.GOOGLE_CLOUD_PROJECT = "regscan-test";
  });
  after(async () => {
    restoreEnv?.();
    await fake.close();
    await rm(gcloudDir, { recursive: true, force: true });
  });

  it("fetches a token (username oauth2accesstoken), keeps it until shortly before expiry, then refreshes", async () => {
    let now = 1_700_000_000_000;
    fake.expiresIn = 3600;
    const source = new GcpTokenSource({ clock: () => now, refreshMarginMs: 5 * 60_000 });
    const before = fake.tokenRequests;
    const c1 = await source.credentialFor("gcr.io");
    assert.equal(c1.username, "oauth2accesstoken");
    assert.equal(c1.password, fake.tokenFor(before + 1));
    assert.equal(c1.provenance, "gcp:application-default-credentials");
    const c2 = await source.credentialFor("europe-docker.pkg.dev");
    const c3 = await source.credentialFor("eu.gcr.io");
    assert.equal(c2.password, c1.password);
    assert.equal(c3.host, "eu.gcr.io");
    assert.equal(fake.tokenRequests, before + 1, "one token for every Google host");
    now += 54 * 60_000;
    await source.credentialFor("gcr.io");
    assert.equal(fake.tokenRequests, before + 1, "still valid 6 minutes before expiry");
    now += 2 * 60_000;
    const c4 = await source.credentialFor("gcr.io");
    assert.equal(fake.tokenRequests, before + 2, "refreshed within the margin");
    assert.equal(c4.password, fake.tokenFor(before + 2));
    assert.ok(!String(c4).includes(c4.password ?? "?"));
    assert.ok(!JSON.stringify(c4).includes(c4.password ?? "?"));
  });

  it("getGCPOAuthToken answers for GCR hosts and refuses others", async () => {
    const c = await getGCPOAuthToken("us-docker.pkg.dev");
    assert.equal(c.username, "oauth2accesstoken");
    await assert.rejects(getGCPOAuthToken("ghcr.io"), CloudCredentialsError);
  });

  it("resolve() asks the Google provider only for Google hosts, after static entries", async () => {
    const log = captureLogger();
    const creds = Credentials.parse(
      "cfg",
      JSON.stringify({ auths: { "eu.gcr.io": { username: "_json_key", password: "static" } } }),
      { cloudProviders: [gcpCloudProvider({ logger: log.logger })] },
    );
    assert.equal((await creds.resolve("eu.gcr.io"))?.username, "_json_key");
    assert.equal((await creds.resolve("gcr.io"))?.username, "oauth2accesstoken");
    assert.equal(await creds.resolve("ghcr.io"), undefined);
    assert.ok(!log.text().includes("fake-gce-token"));
  });

  it("with no Google credentials at all, getGCPOAuthToken fails clearly and resolve() goes anonymous", async () => {
    process.env.METADATA_SERVER_DETECTION = "none";
    try {
      await assert.rejects(new GcpTokenSource().credentialFor("gcr.io"), (err: unknown) => {
        assert.ok(err instanceof CloudCredentialsError);
        assert.match(err.message, /^gcp credentials for gcr\.io: no access token/);
        return true;
      });
      const log = captureLogger();
      const creds = Credentials.fromCloud([gcpCloudProvider({ logger: log.logger })]);
      assert.equal(await creds.resolve("europe-west1-docker.pkg.dev"), undefined);
      assert.ok(log.lines.some((l) => l.includes("no Google credentials; trying anonymously")));
    } finally {
      delete process.env.METADATA_SERVER_DETECTION;
    }
  });
});
