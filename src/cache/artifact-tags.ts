/**
 * Tags that name artifacts of another image rather than images: cosign's signatures,
 * attestations and SBOMs (`sha256-<hex>.sig`, `.att`, `.sbom`) and the OCI 1.1 referrers
 * fallback tag (`sha256-<hex>`). The warmer excludes them by name, without fetching them.
 */

/** What kind of artifact a tag holds. */
export type ArtifactKind = "signature" | "attestation" | "sbom" | "referrers";

/** An artifact tag: its kind and the digest of the image it belongs to. */
export interface ArtifactTag {
  kind: ArtifactKind;
  /** `sha256:<64 hex>`, the image the artifact describes. */
  subject: string;
}

const ARTIFACT_TAG = /^sha256-([0-9a-f]{64})(?:\.(sig|att|sbom))?$/;
const KINDS: Record<string, ArtifactKind> = { sig: "signature", att: "attestation", sbom: "sbom" };

/** The artifact a tag names, or undefined for an ordinary tag. */
export function artifactTag(tag: string): ArtifactTag | undefined {
  const m = ARTIFACT_TAG.exec(tag);
  if (!m) return undefined;
  const suffix = m[2];
  return { kind: suffix ? (KINDS[suffix] ?? "referrers") : "referrers", subject: `sha256:${m[1]}` };
}

const WORDING: Record<ArtifactKind, string> = {
  signature: "cosign signature",
  attestation: "cosign attestation",
  sbom: "cosign SBOM",
  referrers: "OCI referrers fallback index",
};

/** The excluded reason stored for an artifact tag, naming its kind and subject digest. */
export function artifactExcludedReason(artifact: ArtifactTag): string {
  return `artifact tag: ${WORDING[artifact.kind]} of ${artifact.subject}, not an image`;
}

/** Whether an excluded reason is one {@link artifactExcludedReason} wrote. */
export function isArtifactExcludedReason(reason: string | undefined): boolean {
  return reason?.startsWith("artifact tag: ") === true;
}
