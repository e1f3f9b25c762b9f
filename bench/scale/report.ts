/**
 * The readable summary of `bench:scale`: each figure beside its target from issue 13's
 * acceptance, marked pass, FAIL or (reported) when it has no target at this size.
 */

export interface Target {
  figure: string;
  value: string | number;
  target: string;
  /** null: nothing to compare (not run, or only reported). */
  pass: boolean | null;
}

export function printSummary(targets: Target[], loadAverage: number[][], output: string): void {
  const width = Math.max(...targets.map((t) => t.figure.length));
  console.log("\nbench:scale summary (targets are issue 13's acceptance for the full run)");
  for (const t of targets) {
    const mark = t.pass === null ? "    " : t.pass ? "pass" : "FAIL";
    console.log(`  ${mark}  ${t.figure.padEnd(width)}  ${t.value}   [target ${t.target}]`);
  }
  console.log(
    `  load average (1/5/15 min) at start and after each phase: ${loadAverage.map((l) => l.join("/")).join(", ")}`,
  );
  console.log(`  written to ${output}`);
}
