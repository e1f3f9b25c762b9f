/**
 * Operator-named files are read only when regular and never past their bound: `/dev/zero`,
 * a FIFO with no writer, a directory and an oversized file are refused at once with a typed
 * error naming the file, by the reader itself and by every place that reads such a file
 * (docker config, pull secrets, configuration and token file, images file, CA bundles, the
 * Azure cloud config).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { openStore } from "../../src/cache/open-store.js";
import { ConfigError } from "../../src/config/errors.js";
import { loadConfig } from "../../src/config/load.js";
import {
  FileTooLargeError,
  NotRegularFileError,
  readBoundedFile,
  readBoundedFileSync,
  readBoundedTextFile,
} from "../../src/files/bounded-file.js";
import { parseImageName } from "../../src/image/ref.js";
import { AcrTokenSource } from "../../src/registry/credentials/azure.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { CredentialsFileError } from "../../src/registry/credentials/errors.js";
import { readDockerConfigFile } from "../../src/registry/credentials/image-creds.js";
import { loadPullSecrets } from "../../src/registry/credentials/pull-secrets.js";
import { RemoteClientFactory } from "../../src/registry/factory.js";
import { ImagesFileSource } from "../../src/sources/images-file-source.js";

let dir: string;
let fifo: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "regscan-bounded-"));
  fifo = join(dir, "fifo");
  execFileSync("mkfifo", [fifo]);
});

after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * `work`, failed if it takes longer than `ms`: the old code hung on a FIFO forever and read
 * `/dev/zero` until memory ran out, so a bound in time is what makes these tests fail there.
 */
async function within<T>(ms: number, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work(), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail("expected a rejection");
}

describe("readBoundedFile", () => {
  it("reads a regular file up to and including its bound", async () => {
    const file = join(dir, "exact");
    writeFileSync(file, "x".repeat(1000));
    assert.equal((await readBoundedFile(file, 1000)).length, 1000);
    assert.equal(await readBoundedTextFile(file, 5000), "x".repeat(1000));
    assert.equal(readBoundedFileSync(file, 1000).length, 1000);
  });

  it("refuses a file one byte over its bound, naming it", async () => {
    const file = join(dir, "big");
    writeFileSync(file, "x".repeat(200_001));
    const err = await rejection(readBoundedFile(file, 200_000));
    assert.ok(err instanceof FileTooLargeError);
    assert.equal(err.code, "FILE_TOO_LARGE");
    assert.equal(err.path, file);
    assert.match(err.message, /big: larger than the 200000 bytes allowed/);
    assert.throws(() => readBoundedFileSync(file, 200_000), FileTooLargeError);
  });

  it("bounds a file whose size says nothing (/proc reports 0)", async () => {
    const text = await readBoundedTextFile("/proc/self/status", 1024 * 1024);
    assert.match(text, /^Name:/);
    await assert.rejects(readBoundedFile("/proc/self/status", 10), FileTooLargeError);
  });

  it("refuses /dev/zero at once", async () => {
    const err = await within(2000, () => rejection(readBoundedFile("/dev/zero", 4096)));
    assert.ok(err instanceof NotRegularFileError);
    assert.equal(err.code, "NOT_A_REGULAR_FILE");
    assert.equal(err.message, "/dev/zero: not a regular file (a character device)");
    assert.throws(() => readBoundedFileSync("/dev/zero", 4096), NotRegularFileError);
  });

  it("refuses a FIFO without waiting for a writer", async () => {
    const err = await within(2000, () => rejection(readBoundedFile(fifo, 4096)));
    assert.ok(err instanceof NotRegularFileError);
    assert.equal(err.kind, "a FIFO");
    assert.throws(() => readBoundedFileSync(fifo, 4096), /not a regular file \(a FIFO\)/);
  });

  it("refuses a directory and passes fs errors through", async () => {
    await assert.rejects(readBoundedFile(dir, 4096), /not a regular file \(a directory\)/);
    await assert.rejects(readBoundedFile(join(dir, "missing"), 4096), { code: "ENOENT" });
  });
});

describe("files operators name", () => {
  it("docker config: /dev/zero, a FIFO and a 5 MiB file are CredentialsFileErrors naming them", async () => {
    const big = join(dir, "big-config.json");
    writeFileSync(big, `{"auths":{},"x":"${"a".repeat(5 * 1024 * 1024)}"}`);
    for (const [path, reason] of [
      ["/dev/zero", "not a regular file (a character device)"],
      [fifo, "not a regular file (a FIFO)"],
      [big, "larger than the 4 MiB allowed"],
    ] as const) {
      const err = await within(2000, () =>
        rejection(readDockerConfigFile(path, { cloudProviders: [] })),
      );
      assert.ok(err instanceof CredentialsFileError, String(err));
      assert.equal(err.message, `credentials file ${path}: cannot be read (${reason})`);
    }
  });

  it("pull secrets: a key file that is a link to a FIFO is not read", async () => {
    const secrets = join(dir, "secrets");
    mkdirSync(join(secrets, "one"), { recursive: true });
    symlinkSync(fifo, join(secrets, "one", ".dockerconfigjson"));
    const creds = await within(2000, () => loadPullSecrets(secrets, { cloudProviders: [] }));
    assert.deepEqual(creds.hosts(), []);
  });

  it("configuration file and API token file: refused with the file named", async () => {
    const config = await within(2000, () => rejection(loadConfig({ file: fifo })));
    assert.ok(config instanceof ConfigError);
    assert.equal(config.message, `${fifo}: cannot read configuration: not a regular file (a FIFO)`);

    for (const path of ["/dev/zero", fifo]) {
      const err = await within(2000, () =>
        rejection(loadConfig({ flags: { apiTokenFile: path } })),
      );
      assert.ok(err instanceof ConfigError);
      assert.match(
        err.message,
        new RegExp(`cannot read the API token file ${path}: not a regular file`),
      );
    }
    const long = join(dir, "long-token");
    writeFileSync(long, "t".repeat(64 * 1024 + 1));
    const tooLong = await rejection(loadConfig({ flags: { apiTokenFile: long } }));
    assert.match(String(tooLong), /larger than the 64 KiB allowed/);
    // The message never carries the token file's content.
    assert.doesNotMatch(String(tooLong), /tttt/);
  });

  it("images file: a FIFO is warned about and watched as empty, without hanging", async () => {
    const lines: string[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => void lines.push(line) });
    const source = new ImagesFileSource(fifo, { logger, pollMs: 60_000 });
    try {
      const images = await within(2000, () => source.images());
      assert.equal(images.size, 0);
      assert.ok(
        lines.some((l) => l.includes("NOT_A_REGULAR_FILE")),
        `warned: ${lines.join("")}`,
      );
    } finally {
      source.close();
    }
  });

  it("Redis CA file: /dev/zero is an invalid store URL naming it", async () => {
    const err = await within(2000, () => rejection(openStore("rediss://127.0.0.1:1?ca=/dev/zero")));
    assert.match(
      String(err),
      /cannot read ca=\/dev\/zero: not a regular file \(a character device\)/,
    );
  });

  it("registry CA bundle: a FIFO is CA_FILE_UNREADABLE naming it, at once", async () => {
    const err = await within(2000, async () => {
      try {
        const factory = new RemoteClientFactory({ caFiles: [fifo], env: {} });
        try {
          await factory.clientFor(parseImageName("127.0.0.1:1/app"), Credentials.none()).tags();
        } finally {
          await factory.close();
        }
      } catch (error) {
        return error;
      }
      assert.fail("the FIFO was taken as a CA bundle");
    });
    assert.equal((err as { code?: string }).code, "CA_FILE_UNREADABLE");
    assert.match(String(err), new RegExp(`${fifo}.*NOT_A_REGULAR_FILE`));
  });

  it("Azure cloud config: /dev/zero is a typed error naming it, at once", async () => {
    const acr = new AcrTokenSource({ azureJsonPath: "/dev/zero" });
    const err = await within(2000, () => rejection(acr.credentialFor("example.azurecr.io")));
    assert.equal((err as { code?: string }).code, "CLOUD_CREDENTIALS_FAILED");
    assert.match(
      String(err),
      /cannot read \/dev\/zero \(NotRegularFileError: \/dev\/zero: not a regular file/,
    );
  });
});
