/**
 * The shape of a cloud credential source (AWS ECR, Google, Azure) that `Credentials.resolve`
 * asks last, after static entries and credential helpers.
 */
import type { OperationOptions } from "../registry.js";
import type { HostCredential } from "./credentials.js";

/** Produces credentials for the registry hosts of one cloud. */
export interface CloudCredentialProvider {
  /** `aws-ecr`, `gcp` or `azure`; used in errors and logs. */
  readonly name: string;
  /** Whether `host` is one of this cloud's registries; cheap, loads no SDK. */
  matches(host: string): boolean;
  /** A credential for `host`, or `undefined` when this cloud has none to give here. */
  credentialFor(host: string, opts?: OperationOptions): Promise<HostCredential | undefined>;
}
