/**
 * Takes a copy of process.env; the function it returns puts it back (variables added since
 * removed, changed or removed ones restored). Test files share a process with others (see
 * scripts/run-tests.mjs): one that points a cloud SDK at its stand-in server through
 * AWS_*, GOOGLE_*, GCE_* or IDENTITY_* variables must not leave them for the files after it,
 * naming a server that has closed.
 */
export function saveEnv(): () => void {
  const saved = { ...process.env };
  return () => {
    for (const name of Object.keys(process.env)) {
      if (!(name in saved)) delete process.env[name];
    }
    Object.assign(process.env, saved);
  };
}
