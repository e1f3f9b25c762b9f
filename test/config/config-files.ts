/**
 * What the configuration tests share: a temporary folder for configuration files, removed
 * after the file's tests, and `problem`, which expects a load to be refused with a ConfigError.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { ConfigError } from "../../src/config/errors.js";

export interface ConfigFiles {
  /** The folder; read only inside a test (it is made in a `before` hook). */
  readonly dir: () => string;
  /** Writes `text` to `name` in the folder and returns its path. */
  file(name: string, text: string): Promise<string>;
}

/** Registers the hooks that make and remove the folder for the calling test file. */
export function configFiles(prefix: string): ConfigFiles {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return {
    dir: () => dir,
    async file(name, text) {
      const path = join(dir, name);
      await writeFile(path, text);
      return path;
    },
  };
}

/** Awaits `p`, which must reject with a ConfigError; returns that error. */
export async function problem(p: Promise<unknown>): Promise<ConfigError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.code, "INVALID_CONFIG");
    return err;
  }
  assert.fail("expected the configuration to be refused");
}
