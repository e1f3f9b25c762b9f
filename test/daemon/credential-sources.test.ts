/**
 * The daemon's credential layers: the configured Azure file is the one the cloud providers
 * read (with or without a docker config file), and `require: [ecr]` stops startup when the
 * ECR pre-flight fails, against a local stand-in for the AWS endpoints.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import { configSchema } from "../../src/config/schema.js";
import { RequiredProviderError, withCredentials } from "../../src/daemon/credential-sources.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { saveEnv } from "../support/env.js";
import { type FakeAws, startFakeAws } from "../support/fake-cloud/aws.js";

const logger = pino({ level: "silent" });
const ACR = "myreg.azurecr.io";
const ECR_A = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/app";
const ECR_B = "222222222222.dkr.ecr.eu-west-1.amazonaws.com/app";

let dir: string;
let fake: FakeAws;
let restoreEnv: () => void;
before(async () => {
  restoreEnv = saveEnv();
  dir = await mkdtemp(join(tmpdir(), "regscan-daemon-creds-"));
  fake = await startFakeAws();
  for (const k of ["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"])
    delete process.env[k];
  process.env.AWS_CONFIG_FILE = join(dir, "no-aws-config");
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, "no-aws-credentials");
  process.env.AWS_ENDPOINT_URL_ECR = fake.url;
  // No instance metadata: without keys in the environment the SDK finds no credentials.
  process.env.AWS_EC2_METADATA_DISABLED = "true";
});
after(async () => {
  restoreEnv?.();
  await fake.close();
  await rm(dir, { recursive: true, force: true });
});

describe("withCredentials", () => {
  const lookup = () => new Map([[`${ACR}/app`, Credentials.none()]]);

  test("the configured azureConfig is read, with no docker config file", async () => {
    const azureJson = join(dir, "azure.json");
    await writeFile(azureJson, JSON.stringify({ aadClientId: "sp-id", aadClientSecret: "sp-pw" }));
    const config = configSchema.parse({ credentials: { azureConfig: azureJson } });
    // DOCKER_CONFIG names an empty directory: there is no docker config file to read.
    const found = await (
      await withCredentials({ lookup, config, env: { DOCKER_CONFIG: dir }, logger })
    )();
    const cred = await found.get(`${ACR}/app`)?.resolve(ACR);
    assert.equal(cred?.username, "sp-id");
    assert.equal(cred?.password, "sp-pw");
  });

  test("the configured azureConfig is read under a docker config file too", async () => {
    const azureJson = join(dir, "azure2.json");
    await writeFile(azureJson, JSON.stringify({ aadClientId: "sp2", aadClientSecret: "pw2" }));
    const dockerConfig = join(dir, "config.json");
    await writeFile(dockerConfig, JSON.stringify({ auths: {} }));
    const config = configSchema.parse({ credentials: { azureConfig: azureJson, dockerConfig } });
    const found = await (await withCredentials({ lookup, config, env: {}, logger }))();
    assert.equal((await found.get(`${ACR}/app`)?.resolve(ACR))?.username, "sp2");
  });

  test("require: [ecr] stops startup when the ECR pre-flight fails", async () => {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    const config = configSchema.parse({
      credentials: { ecr: { regions: ["eu-west-1"] }, require: ["ecr"] },
    });
    await assert.rejects(
      withCredentials({ lookup, config, env: { DOCKER_CONFIG: dir }, logger }),
      (err: unknown) => {
        assert.ok(err instanceof RequiredProviderError, String(err));
        assert.match(err.message, /credentials\.require lists "ecr".*pre-flight check failed/);
        return true;
      },
    );
  });

  test("with the pre-flight passing, ECR images outside includeIds are dropped", async () => {
    process.env.AWS_ACCESS_KEY_ID = "AKIAFAKEFAKEFAKE0000";
    process.env.AWS_SECRET_ACCESS_KEY = "fakeAwsSecretKey/DoNotLog";
    const config = configSchema.parse({
      credentials: {
        ecr: { regions: ["eu-west-1"], includeIds: ["111111111111"] },
        require: ["ecr"],
      },
    });
    const both = () =>
      new Map([
        [ECR_A, Credentials.none()],
        [ECR_B, Credentials.none()],
      ]);
    const found = await (
      await withCredentials({ lookup: both, config, env: { DOCKER_CONFIG: dir }, logger })
    )();
    assert.deepEqual([...found.keys()], [ECR_A]);
    const cred = await found.get(ECR_A)?.resolve("111111111111.dkr.ecr.eu-west-1.amazonaws.com");
    assert.equal(cred?.username, "AWS");
    assert.equal(cred?.password, fake.passwordFor("111111111111", "eu-west-1"));
  });
});
