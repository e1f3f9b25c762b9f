/**
 * Generates the certificates the harness needs with `openssl`: a test CA, server certificates
 * for 127.0.0.1 / localhost / ::1 signed by it, and the token-signing certificate whose CA the
 * registry trusts (`auth.token.rootcertbundle`). Keys are P-256 so that generation is quick.
 */
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requireBinary } from "./processes.js";

/** A certificate with its private key, as files and as PEM text. */
export interface CertFiles {
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
  /** The certificate in DER, base64 (what a JWT `x5c` header holds). */
  derBase64: string;
}

function openssl(args: string[], cwd: string): void {
  const bin = requireBinary("openssl", "openssl");
  try {
    execFileSync(bin, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const stderr =
      err !== null && typeof err === "object" && "stderr" in err ? String(err.stderr) : "";
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim()}`, { cause: err });
  }
}

function load(certFile: string, keyFile: string): CertFiles {
  const certPem = readFileSync(certFile, "utf8");
  const der = new X509Certificate(certPem).raw;
  return {
    certFile,
    keyFile,
    certPem,
    keyPem: readFileSync(keyFile, "utf8"),
    derBase64: der.toString("base64"),
  };
}

/** Makes a self-signed CA certificate in `dir` as `<name>.crt` / `<name>.key`. */
export function generateCa(dir: string, name = "ca", commonName = "regscan test CA"): CertFiles {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-days",
      "7",
      "-subj",
      `/CN=${commonName}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    ],
    dir,
  );
  return load(certFile, keyFile);
}

export interface LeafOptions {
  commonName: string;
  /** subjectAltName entries, e.g. ["IP:127.0.0.1", "DNS:localhost"]. */
  altNames?: string[];
  /** extendedKeyUsage, e.g. "serverAuth". */
  extendedKeyUsage?: string;
  /** Validity in days; a negative value is not supported by openssl, use `expired`. */
  days?: number;
}

/** Makes a certificate signed by `ca`, written to `<name>.crt` / `<name>.key` in `dir`. */
export function generateLeaf(
  { dir, name, ca }: { dir: string; name: string; ca: CertFiles },
  opts: LeafOptions,
): CertFiles {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  const ext = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature"];
  if (opts.altNames !== undefined && opts.altNames.length > 0) {
    ext.push(`subjectAltName=${opts.altNames.join(",")}`);
  }
  if (opts.extendedKeyUsage !== undefined) ext.push(`extendedKeyUsage=${opts.extendedKeyUsage}`);
  writeFileSync(extFile, `${ext.join("\n")}\n`);
  openssl(
    [
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      csrFile,
      "-subj",
      `/CN=${opts.commonName}`,
    ],
    dir,
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      csrFile,
      "-CA",
      ca.certFile,
      "-CAkey",
      ca.keyFile,
      "-CAcreateserial",
      "-out",
      certFile,
      "-days",
      String(opts.days ?? 7),
      "-extfile",
      extFile,
    ],
    dir,
  );
  return load(certFile, keyFile);
}

/** A server certificate for 127.0.0.1, ::1 and localhost signed by `ca`. */
export function generateServerCert(dir: string, ca: CertFiles, name = "server"): CertFiles {
  return generateLeaf(
    { dir, name, ca },
    {
      commonName: "127.0.0.1",
      altNames: ["IP:127.0.0.1", "IP:::1", "DNS:localhost"],
      extendedKeyUsage: "serverAuth",
    },
  );
}
