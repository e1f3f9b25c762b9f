/**
 * Runs `skopeo` (Debian package `skopeo`) against a harness registry, for tests and the
 * benchmark that compare regscan with it. Fails naming the package when it is missing.
 */
import { execFile } from "node:child_process";
import { requireBinary } from "../support/processes.js";
import type { RegistryHandle } from "../support/registry.js";

/** `skopeo ARGS... docker://HOST/REPO[:TAG]` with the registry's first user (or none). */
export function skopeo(reg: RegistryHandle, args: string[], image: string): Promise<Buffer> {
  const bin = requireBinary("skopeo", "skopeo");
  const first = Object.entries(reg.users)[0];
  const auth = first ? ["--creds", `${first[0]}:${first[1]}`] : ["--no-creds"];
  const full = [...args, "--tls-verify=false", ...auth, `docker://${image}`];
  return new Promise((resolve, reject) => {
    execFile(
      bin,
      full,
      {
        encoding: "buffer",
        maxBuffer: 64 * 1024 * 1024,
        timeout: 120_000,
        env: { ...process.env, REGISTRY_AUTH_FILE: "/dev/null/none.json" },
      },
      (err, stdout, stderr) => {
        if (err)
          reject(
            new Error(`skopeo ${args[0]} ${image} failed: ${stderr.toString().trim()}`, {
              cause: err,
            }),
          );
        else resolve(stdout);
      },
    );
  });
}
