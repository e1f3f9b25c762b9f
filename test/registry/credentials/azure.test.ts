/**
 * Azure Container Registry against local Entra ID and ACR exchange servers: the refresh
 * token, cached until it expires; azure.json's service principal; failures without secrets.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  ACR_REFRESH_TOKEN_USERNAME,
  AcrTokenSource,
  azureCloudProvider,
} from "../../../src/registry/credentials/azure.js";
import { Credentials } from "../../../src/registry/credentials/credentials.js";
import { CloudCredentialsError } from "../../../src/registry/credentials/errors.js";
import { saveEnv } from "../../support/env.js";
import { type FakeAzure, startFakeAzure } from "../../support/fake-cloud/azure.js";
import { captureLogger } from "./capture-logger.js";

describe("Azure Container Registry: Entra ID token exchanged for an ACR refresh token", () => {
  let fake: FakeAzure;
  let dir: string;
  const exchangeUrl = () => `${fake.url}/oauth2/exchange`;
  let restoreEnv: () => void;
  before(async () => {
    restoreEnv = saveEnv();
    fake = await startFakeAzure();
    dir = await mkdtemp(join(tmpdir(), "regscan-azure-"));
    for (const k of [
      "AZURE_CLIENT_ID",
      "AZURE_CLIENT_SECRET",
      "AZURE_TENANT_ID",
      "AZURE_FEDERATED_TOKEN_FILE",
      "AZURE_CLIENT_CERTIFICATE_PATH",
      "AZURE_USERNAME",
    ]) {
      delete process.env[k];
    }
    // @azure/identity's managed identity, App Service flavour: the documented override.
    process.env.IDENTITY_ENDPOINT = `${fake.url}/msi/token`;
    process.env.IDENTITY_HEADER = fake.identityHeader;
  });
  after(async () => {
    restoreEnv?.();
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("exchanges, caches until shortly before the refresh token's exp, then exchanges again", async () => {
    let now = Date.now();
    fake.refreshExp = () => Math.floor(now / 1000) + 3 * 3600;
    const source = new AcrTokenSource({
      azureJsonPath: join(dir, "absent.json"),
      exchangeUrl,
      clock: () => now,
      refreshMarginMs: 5 * 60_000,
    });
    const t0 = now;
    const c1 = await source.credentialFor("myreg.azurecr.io");
    assert.equal(c1.username, ACR_REFRESH_TOKEN_USERNAME);
    assert.match(c1.password ?? "", /^ey/);
    assert.equal(c1.provenance, "azure:entra-id-exchange");
    assert.equal(fake.exchanges.length, 1);
    assert.deepEqual(fake.exchanges[0], {
      service: "myreg.azurecr.io",
      tenant: fake.tenant,
      grantType: "access_token",
    });
    assert.ok(fake.entraRequests >= 1);
    await source.credentialFor("myreg.azurecr.io");
    now = t0 + 2 * 3600_000 + 54 * 60_000;
    await source.credentialFor("myreg.azurecr.io");
    assert.equal(fake.exchanges.length, 1, "cached while more than the margin remains");
    now = t0 + 2 * 3600_000 + 56 * 60_000;
    const c2 = await source.credentialFor("myreg.azurecr.io");
    assert.equal(fake.exchanges.length, 2, "exchanged again within the margin");
    assert.notEqual(c2.password, c1.password);
    await source.credentialFor("other.azurecr.io");
    assert.equal(fake.exchanges.length, 3, "a token per registry");
    for (const out of [String(c2), JSON.stringify(c2)])
      assert.ok(!out.includes(c2.password ?? "?"));
  });

  it("uses azure.json's service principal directly, as Flux v1 did", async () => {
    const path = join(dir, "azure.json");
    await writeFile(
      path,
      JSON.stringify({
        tenantId: "t",
        aadClientId: "sp-client-id",
        aadClientSecret: "sp-secret-value-42",
      }),
    );
    const before = fake.exchanges.length;
    const c = await new AcrTokenSource({ azureJsonPath: path, exchangeUrl }).credentialFor(
      "myreg.azurecr.cn",
    );
    assert.equal(c.username, "sp-client-id");
    assert.equal(c.password, "sp-secret-value-42");
    assert.equal(c.provenance, `azure-json:${path}`);
    assert.equal(fake.exchanges.length, before);
  });

  it("a failing exchange is an error naming the host, without the token", async () => {
    const source = new AcrTokenSource({
      azureJsonPath: join(dir, "absent.json"),
      exchangeUrl: () => `${fake.url}/nowhere`,
    });
    await assert.rejects(source.credentialFor("bad.azurecr.io"), (err: unknown) => {
      assert.ok(err instanceof CloudCredentialsError);
      assert.match(err.message, /bad\.azurecr\.io.*HTTP 404/);
      assert.ok(!err.message.includes("ey"));
      return true;
    });
  });

  it("resolve() asks the Azure provider for ACR hosts only; failures are logged, then anonymous", async () => {
    const log = captureLogger();
    const creds = Credentials.fromCloud([
      azureCloudProvider({
        azureJsonPath: join(dir, "absent.json"),
        exchangeUrl,
        logger: log.logger,
      }),
    ]);
    assert.equal((await creds.resolve("team.azurecr.us"))?.username, ACR_REFRESH_TOKEN_USERNAME);
    assert.equal(await creds.resolve("ghcr.io"), undefined);
    const failing = Credentials.fromCloud([
      azureCloudProvider({
        azureJsonPath: join(dir, "absent.json"),
        exchangeUrl: () => `${fake.url}/nowhere`,
        logger: log.logger,
      }),
    ]);
    assert.equal(await failing.resolve("team.azurecr.io"), undefined);
    assert.ok(log.lines.some((l) => l.includes("no Azure credentials")));
    assert.ok(!log.text().includes("acr-refresh"));
    assert.ok(!log.text().includes(fake.identityHeader));
  });
});
