/**
 * A service principal's Entra ID client-credentials grant end to end: `@azure/identity` and
 * MSAL talk HTTPS to a local authority (trusted the way a user behind an in-house CA would,
 * NODE_EXTRA_CA_CERTS, so in a child process), the token is exchanged for an ACR refresh token,
 * both are cached and renewed, and the client secret goes to the authority and nowhere else.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { inspect } from "node:util";
import pino from "pino";
import { AcrTokenSource, azureCloudProvider } from "../../../src/registry/credentials/azure.js";
import type { HostCredential } from "../../../src/registry/credentials/credentials.js";
import { Credentials } from "../../../src/registry/credentials/credentials.js";
import { generateCa, generateServerCert } from "../../support/certs.js";
import { type FakeEntraId, startFakeEntraId } from "../../support/fake-cloud/entra-id.js";
import { makeTempDir, startProcess } from "../../support/processes.js";

const DRIVER_ENV = "REGSCAN_ACR_AUTHORITY_DRIVER";

type Step =
  | { op: "get"; host: string }
  | { op: "resolve"; host: string }
  | { op: "advance"; ms: number }
  /** Waits in real time until this long after the first lookup ended (MSAL's clock is real). */
  | { op: "sleepUntil"; sinceFirstLookupMs: number };

interface DriverConfig {
  azureJsonPath: string;
  exchangeUrl: string;
  authorityHost?: string;
  disableInstanceDiscovery: boolean;
  steps: Step[];
}

interface StepResult {
  op: "get" | "resolve";
  host: string;
  ok: boolean;
  // Undefined ones are left out of the JSON line the child prints.
  username?: string | undefined;
  password?: string | undefined;
  provenance?: string | undefined;
  code?: string | undefined;
  message?: string | undefined;
  /** String(), JSON.stringify() and util.inspect() of the credential or the error. */
  renderings: string[];
}

// ---- the child: runs the steps with the token source and prints one JSON line per lookup ----

function renderings(value: unknown): string[] {
  let json: string;
  try {
    json = JSON.stringify(value) ?? "";
  } catch (err) {
    json = String(err);
  }
  return [String(value), json, inspect(value, { depth: 5 })];
}

function credentialResult(op: StepResult["op"], host: string, c: HostCredential): StepResult {
  return {
    op,
    host,
    ok: true,
    username: c.username,
    password: c.password,
    provenance: c.provenance,
    renderings: renderings(c),
  };
}

async function runDriver(config: DriverConfig): Promise<void> {
  let offset = 0;
  const clock = () => Date.now() + offset;
  const options = {
    azureJsonPath: config.azureJsonPath,
    exchangeUrl: () => config.exchangeUrl,
    clock,
    refreshMarginMs: 5 * 60_000,
    authorityHost: config.authorityHost,
    disableInstanceDiscovery: config.disableInstanceDiscovery,
  };
  const source = new AcrTokenSource(options);
  const logger = pino({ level: "trace" }, pino.destination(2));
  const creds = Credentials.fromCloud([azureCloudProvider({ ...options, logger })]);
  let firstLookupDone: number | undefined;
  for (const step of config.steps) {
    if (step.op === "advance") {
      offset += step.ms;
    } else if (step.op === "sleepUntil") {
      const wait = (firstLookupDone ?? Date.now()) + step.sinceFirstLookupMs - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    } else {
      let result: StepResult;
      try {
        const c =
          step.op === "get"
            ? await source.credentialFor(step.host)
            : await creds.resolve(step.host);
        result = c
          ? credentialResult(step.op, step.host, c)
          : { op: step.op, host: step.host, ok: false, renderings: [] };
      } catch (err) {
        result = {
          op: step.op,
          host: step.host,
          ok: false,
          message: err instanceof Error ? err.message : undefined,
          code:
            typeof err === "object" && err !== null && "code" in err ? String(err.code) : undefined,
          renderings: renderings(err),
        };
      }
      firstLookupDone ??= Date.now();
      process.stdout.write(`${JSON.stringify(result)}\n`);
    }
  }
}

// ---- the test process: the fake authority and registry, and the child's environment ----

interface DriverRun {
  results: StepResult[];
  stdout: string;
  stderr: string;
}

async function runChild(
  extraCa: string,
  env: Record<string, string>,
  config: DriverConfig,
): Promise<DriverRun> {
  const childEnv: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // Nothing Azure from this machine, and no node:test context: the child is not a test run.
    if (/^(AZURE_|IDENTITY_|MSI_|IMDS_)/.test(k) || k.startsWith("NODE_TEST")) continue;
    childEnv[k] = v;
  }
  Object.assign(childEnv, env, {
    NODE_EXTRA_CA_CERTS: extraCa,
    // The SDK's own logging at its most talkative, so that the search for secrets means something.
    AZURE_LOG_LEVEL: "verbose",
    [DRIVER_ENV]: JSON.stringify(config),
  });
  const proc = await startProcess({
    name: "acr-authority-driver",
    command: process.execPath,
    args: ["--import", "tsx", new URL(import.meta.url).pathname],
    env: childEnv,
  });
  let stdout = "";
  let stderr = "";
  proc.child.stdout?.on("data", (c: Buffer) => {
    stdout += c.toString("utf8");
  });
  proc.child.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString("utf8");
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      void proc.stop();
      reject(new Error(`driver did not finish within 25 s\n${proc.output().slice(-3000)}`));
    }, 25_000);
    proc.child.once("exit", (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  assert.equal(code, 0, `driver failed:\n${stderr.slice(-3000)}`);
  const results = stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as StepResult);
  return { results, stdout, stderr };
}

function refreshNumber(result: StepResult | undefined): number {
  const payload = result?.password?.split(".")[1];
  assert.ok(payload, `no refresh token in ${JSON.stringify(result)}`);
  return (JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { n: number }).n;
}

function requestText(r: { url: string; headers: object; body: string }): string {
  return `${r.url}\n${JSON.stringify(r.headers)}\n${r.body}`;
}

function testSuite(): void {
  describe("ACR through an Entra ID service principal at an in-house HTTPS authority", () => {
    let fake: FakeEntraId;
    let caFile: string;
    let dir: string;
    before(async () => {
      dir = makeTempDir("regscan-entra-");
      const ca = generateCa(dir);
      caFile = ca.certFile;
      fake = await startFakeEntraId(generateServerCert(dir, ca, "authority"));
    });
    after(async () => {
      await fake?.close();
    });

    it("fetches with the secret sent only to the authority, exchanges, caches, refreshes", async () => {
      // MSAL renews 300 s early and rounds to whole seconds from the grant's request: good for 3
      // to 4 real seconds, time enough for the three lookups that must still use it (a grant and
      // two exchanges on loopback) under load, and a short sleep past it for the renewal.
      fake.accessTokenLifetime = 303;
      const h = 3600_000;
      const run = await runChild(
        caFile,
        {
          AZURE_TENANT_ID: fake.tenant,
          AZURE_CLIENT_ID: fake.clientId,
          AZURE_CLIENT_SECRET: fake.clientSecret,
          AZURE_AUTHORITY_HOST: fake.authorityHost,
        },
        {
          azureJsonPath: join(dir, "no-azure.json"),
          exchangeUrl: fake.exchangeUrl,
          disableInstanceDiscovery: true,
          steps: [
            { op: "get", host: "myreg.azurecr.io" },
            { op: "get", host: "myreg.azurecr.io" },
            { op: "advance", ms: 3 * h - 6 * 60_000 },
            { op: "get", host: "myreg.azurecr.io" },
            { op: "advance", ms: 2 * 60_000 },
            { op: "get", host: "myreg.azurecr.io" },
            { op: "sleepUntil", sinceFirstLookupMs: 4_500 },
            { op: "advance", ms: 3 * h },
            { op: "get", host: "myreg.azurecr.io" },
            { op: "get", host: "other.azurecr.io" },
          ],
        },
      );
      const gets = run.results;
      assert.equal(gets.length, 6, run.stdout);
      for (const g of gets) assert.ok(g.ok, JSON.stringify(g));
      assert.deepEqual(
        gets.map(refreshNumber),
        [1, 1, 1, 2, 3, 4],
        "cached until 5 minutes before the refresh token's exp, then exchanged again",
      );
      for (const g of gets) {
        assert.equal(g.username, "00000000-0000-0000-0000-000000000000");
        assert.equal(g.provenance, "azure:entra-id-exchange");
      }

      // The authority: discovery under the tenant, then client-credentials grants.
      assert.equal(
        fake.tokenRequests.length,
        2,
        `one Entra ID token, renewed once by MSAL: ${JSON.stringify(fake.exchanges)}`,
      );
      for (const t of fake.tokenRequests) {
        assert.equal(t.tenant, fake.tenant);
        assert.equal(t.form.grant_type, "client_credentials");
        assert.equal(t.form.client_id, fake.clientId);
        assert.equal(t.form.client_secret, fake.clientSecret);
        assert.equal(t.form.scope, "https://management.azure.com/.default");
      }
      const paths = fake.authorityRequests.map((r) => `${r.method} ${r.url.split("?")[0]}`);
      assert.deepEqual(
        [...new Set(paths)].sort(),
        [
          `GET /${fake.tenant}/v2.0/.well-known/openid-configuration`,
          `POST /${fake.tenant}/oauth2/v2.0/token`,
        ],
        "no instance discovery, nothing outside the tenant",
      );

      // The exchange: the Entra ID token traded for ACR refresh tokens, per registry.
      assert.deepEqual(fake.exchanges, [
        {
          service: "myreg.azurecr.io",
          tenant: fake.tenant,
          accessTokenNumber: 1,
          refreshTokenNumber: 1,
        },
        {
          service: "myreg.azurecr.io",
          tenant: fake.tenant,
          accessTokenNumber: 1,
          refreshTokenNumber: 2,
        },
        {
          service: "myreg.azurecr.io",
          tenant: fake.tenant,
          accessTokenNumber: 2,
          refreshTokenNumber: 3,
        },
        {
          service: "other.azurecr.io",
          tenant: fake.tenant,
          accessTokenNumber: 2,
          refreshTokenNumber: 4,
        },
      ]);

      // The secret: in the grant's body and nowhere else.
      const secret = fake.clientSecret;
      const carrying = fake.authorityRequests.filter((r) => requestText(r).includes(secret));
      assert.equal(carrying.length, 2);
      for (const r of carrying) assert.match(r.url, /\/oauth2\/v2\.0\/token(\?|$)/);
      for (const r of fake.registryRequests) assert.ok(!requestText(r).includes(secret));
      assert.match(run.stderr, /ClientSecretCredential/, "the SDK's verbose log was captured");
      assert.ok(!run.stdout.includes(secret), "secret in the driver's output");
      assert.ok(!run.stderr.includes(secret), "secret in the logs");
      for (const g of gets) {
        for (const text of g.renderings) assert.ok(!text.includes(g.password ?? "?"));
        assert.ok(!run.stderr.includes(g.password ?? "?"), "refresh token in the logs");
      }
    });

    it("a wrong secret through the authorityHost option: typed error and a log line, no secret", async () => {
      const before = fake.tokenRequests.length;
      const wrong = "wrong~Secret.value-9Kp_zz";
      const run = await runChild(
        caFile,
        {
          AZURE_TENANT_ID: fake.tenant,
          AZURE_CLIENT_ID: fake.clientId,
          AZURE_CLIENT_SECRET: wrong,
        },
        {
          azureJsonPath: join(dir, "no-azure.json"),
          exchangeUrl: fake.exchangeUrl,
          authorityHost: fake.authorityHost,
          disableInstanceDiscovery: true,
          steps: [
            { op: "get", host: "myreg.azurecr.io" },
            { op: "resolve", host: "myreg.azurecr.io" },
          ],
        },
      );
      const [direct, resolved] = run.results;
      assert.equal(direct?.ok, false);
      assert.equal(direct?.code, "CLOUD_CREDENTIALS_FAILED");
      assert.match(direct?.message ?? "", /myreg\.azurecr\.io: no Entra ID token/);
      assert.equal(resolved?.ok, false, "resolve() falls back to anonymous");
      assert.match(run.stderr, /no Azure credentials/);

      const refused = fake.tokenRequests.slice(before);
      assert.ok(refused.length >= 1, "the authorityHost option routed the grant to the authority");
      for (const t of refused) {
        assert.equal(t.issued, undefined);
        assert.equal(t.form.client_secret, wrong);
      }
      for (const text of [run.stdout, run.stderr, ...(direct?.renderings ?? [])]) {
        assert.ok(!text.includes(wrong), "wrong secret leaked");
        assert.ok(!text.includes(fake.clientSecret), "right secret leaked");
      }
    });
  });
}

const driverConfig = process.env[DRIVER_ENV];
if (driverConfig !== undefined) {
  await runDriver(JSON.parse(driverConfig) as DriverConfig);
} else {
  testSuite();
}
