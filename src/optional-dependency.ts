/**
 * Optional dependencies (the Kubernetes client and the cloud SDKs) are loaded when a feature
 * first needs one; when the package is not installed, the feature fails with a typed error
 * naming the package and how to install it, instead of Node's ERR_MODULE_NOT_FOUND.
 */
import { RegscanError } from "./errors.js";

/** A feature needs an optional package that is not installed. */
export class MissingDependencyError extends RegscanError {
  readonly code = "MISSING_DEPENDENCY";
  /** The npm package to install, e.g. `@kubernetes/client-node`. */
  readonly packageName: string;
  /** What needed it, e.g. `the Kubernetes image source`. */
  readonly feature: string;

  /** `cause`: the loader's error, when there was one. */
  constructor(missing: { packageName: string; feature: string; cause?: unknown }) {
    const { packageName, feature, cause } = missing;
    super(
      `${feature} needs the optional package ${packageName}, which is not installed (npm install ${packageName})`,
      cause === undefined ? undefined : { cause },
    );
    this.packageName = packageName;
    this.feature = feature;
  }
}

/**
 * Runs `load` (an `import()` of `packageName`, written at the call site so that bundlers and
 * type-checkers see the specifier) and turns "that package is not installed" into a
 * `MissingDependencyError`; every other failure passes through unchanged.
 */
export async function importOptional<T>(optional: {
  /** The npm package `load` imports, e.g. `@kubernetes/client-node`. */
  packageName: string;
  /** What needs it, as the error names it, e.g. `the Kubernetes image source`. */
  feature: string;
  load: () => Promise<T>;
}): Promise<T> {
  const { packageName, feature, load } = optional;
  try {
    return await load();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    const missing =
      (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") &&
      (err as Error).message.includes(`'${packageName}'`);
    if (missing) throw new MissingDependencyError({ packageName, feature, cause: err });
    throw err;
  }
}
