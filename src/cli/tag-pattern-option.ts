/**
 * `--include` / `--exclude` of `regscan scan`: each pattern is compiled as the flag is read,
 * so that a pattern that cannot work stops the command before any registry is contacted.
 */
import { compileTagFilter } from "../cache/tag-filter.js";
import { CliError } from "./context.js";

/** An argument parser that compiles each pattern and collects them (the flag is repeatable). */
export function collectTagPattern(flag: string) {
  return (value: string, previous: string[]): string[] => {
    try {
      compileTagFilter({ include: [value] });
    } catch (error) {
      throw new CliError(`${flag}: ${(error as Error).message}`);
    }
    return [...previous, value];
  };
}
