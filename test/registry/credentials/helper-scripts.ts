/**
 * Writes fake `docker-credential-*` programs into a temporary directory for tests to put on
 * PATH. Each records its argv and stdin in a log, so tests can count runs and check that no
 * secret went through argv.
 */
import { chmod, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface HelperDir {
  dir: string;
  log: string;
  /** The lines the helpers logged: `<name> <argv> <stdin>`. */
  runs(): Promise<string[]>;
}

/**
 * Creates helpers: `good` (answers for the hosts in `answers`, else "credentials not
 * found"), `broken` (fails, printing `stderr`), `leaky` (prints a JSON answer then fails),
 * `slow` (sleeps 5 s).
 */
export async function makeHelpers(
  answers: Record<string, { username: string; secret: string }>,
  stderr = "fatal: keychain is locked",
): Promise<HelperDir> {
  const dir = await mkdtemp(join(tmpdir(), "regscan-helpers-"));
  const log = join(dir, "runs.log");
  const cases = Object.entries(answers)
    .map(
      ([url, a]) =>
        `  ${JSON.stringify(url)}) printf '%s' ${shellQuote(
          JSON.stringify({ ServerURL: url, Username: a.username, Secret: a.secret }),
        )} ;;`,
    )
    .join("\n");
  const head = (name: string) =>
    `#!/bin/sh\nurl=$(cat)\necho "${name} $* $url" >> ${shellQuote(log)}\n`;
  const scripts: Record<string, string> = {
    good: `${head("good")}case "$url" in\n${cases}\n  *) echo "credentials not found in native keychain"; exit 1 ;;\nesac\n`,
    broken: `${head("broken")}echo ${shellQuote(stderr)} >&2\nexit 3\n`,
    leaky: `${head("leaky")}echo '{"ServerURL":"x","Username":"u","Secret":"LEAKED-SECRET-123"}'\nexit 1\n`,
    slow: `${head("slow")}exec sleep 5\n`,
    garbage: `${head("garbage")}echo 'not json at all LEAKED-SECRET-123'\n`,
  };
  for (const [name, text] of Object.entries(scripts)) {
    const path = join(dir, `docker-credential-${name}`);
    await writeFile(path, text);
    await chmod(path, 0o755);
  }
  return {
    dir,
    log,
    runs: async () =>
      (await readFile(log, "utf8").catch(() => "")).split("\n").filter((l) => l !== ""),
  };
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
