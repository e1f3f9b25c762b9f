/**
 * The bytes a signed Docker schema 1 manifest's digest is computed over. The registry's
 * digest (`Docker-Content-Digest`) of a `+prettyjws` manifest covers the JWS payload (the
 * manifest without its `signatures`), not the bytes sent, so verification must rebuild it.
 */
import { InvalidManifestError, type RegistryErrorContext } from "../errors.js";
import { parseJsonObject } from "./json.js";

function fromBase64Url(s: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(s)) return undefined;
  return Buffer.from(s, "base64url");
}

/**
 * The bytes to hash for a manifest's digest: for a schema 1 manifest with `signatures`,
 * the JWS payload (`bytes[0, formatLength)` + `formatTail`, from the first signature's
 * `protected` header, as libtrust builds it); for everything else, the bytes as they are.
 * Throws `InvalidManifestError` when the signature block is malformed; nothing else.
 */
export function manifestDigestBytes(bytes: Uint8Array, ctx: RegistryErrorContext = {}): Uint8Array {
  // Only JSON with a top-level "signatures" can be a signed manifest; skip parsing otherwise.
  if (!Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes('"signatures"')) {
    return bytes;
  }
  const fail = (reason: string): never => {
    throw new InvalidManifestError({ ...ctx, reason: `schema 1 signature: ${reason}` });
  };
  let obj: Record<string, unknown>;
  try {
    obj = parseJsonObject(bytes, fail);
  } catch {
    // Not JSON: the decoder will say so; the digest is then over the bytes as sent.
    return bytes;
  }
  if (obj.schemaVersion !== 1 || !Array.isArray(obj.signatures)) return bytes;
  const first: unknown = obj.signatures[0];
  if (typeof first !== "object" || first === null) return fail("no signature");
  const protectedHeader = (first as { protected?: unknown }).protected;
  if (typeof protectedHeader !== "string") return fail("no `protected` header");
  const decoded = fromBase64Url(protectedHeader);
  if (decoded === undefined) return fail("`protected` header is not base64url");
  let header: unknown;
  try {
    header = JSON.parse(decoded.toString("utf8"));
  } catch {
    return fail("`protected` header is not JSON");
  }
  if (typeof header !== "object" || header === null)
    return fail("`protected` header is not an object");
  const { formatLength, formatTail } = header as { formatLength?: unknown; formatTail?: unknown };
  if (
    typeof formatLength !== "number" ||
    !Number.isSafeInteger(formatLength) ||
    formatLength < 0 ||
    formatLength > bytes.byteLength
  ) {
    return fail("bad formatLength");
  }
  if (typeof formatTail !== "string") return fail("bad formatTail");
  const tail = fromBase64Url(formatTail);
  if (tail === undefined) return fail("formatTail is not base64url");
  return Buffer.concat([bytes.subarray(0, formatLength), tail]);
}
