/**
 * Recognises the registry hosts of each cloud from the host name alone, so that an SDK is
 * loaded only when one of its hosts is met.
 */

/** The parts of an ECR registry host `<account>.dkr.ecr.<region>.amazonaws.com[.cn]`. */
export interface EcrHost {
  accountId: string;
  region: string;
}

const ECR_SUFFIXES = [".amazonaws.com", ".amazonaws.com.cn"];
const ECR_HOST = /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/;

/**
 * `"other"` for hosts outside AWS, `"malformed"` for hosts under the AWS suffixes that are
 * not ECR registry hosts, else the account and region.
 */
export function parseEcrHost(host: string): EcrHost | "other" | "malformed" {
  const h = host.toLowerCase();
  if (!ECR_SUFFIXES.some((s) => h.endsWith(s))) return "other";
  const m = ECR_HOST.exec(h);
  if (!m) return "malformed";
  return { accountId: m[1] ?? "", region: m[2] ?? "" };
}

/** `gcr.io`, `*.gcr.io` and Artifact Registry's `*-docker.pkg.dev`. */
export function isGcpRegistryHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === "gcr.io" || h.endsWith(".gcr.io") || /^[a-z0-9-]+-docker\.pkg\.dev$/.test(h);
}

const ACR_SUFFIXES = [".azurecr.io", ".azurecr.cn", ".azurecr.de", ".azurecr.us"];

/** `*.azurecr.io` and the sovereign clouds' `.cn`, `.de`, `.us`. */
export function isAzureRegistryHost(host: string): boolean {
  const h = host.toLowerCase();
  return ACR_SUFFIXES.some((s) => h.endsWith(s) && h.length > s.length);
}
