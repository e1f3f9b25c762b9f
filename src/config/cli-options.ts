/**
 * Registers every configuration setting as a commander option (from the settings table), so
 * that `regscan serve` and `regscan config check` accept the same flags.
 */
import { type Command, Option } from "commander";
import { SETTINGS } from "./settings.js";

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Adds `--config FILE` and one option per setting to `command`. */
export function addConfigOptions(command: Command): Command {
  command.option("-c, --config <file>", "YAML configuration file (see regscan.example.yaml)");
  for (const s of SETTINGS) {
    const repeatable =
      s.kind === "list" ||
      s.kind === "images" ||
      s.kind === "mirrors" ||
      s.kind === "budgets" ||
      s.kind === "webhooks";
    const valueName =
      s.kind === "images"
        ? "ref"
        : s.kind === "mirrors"
          ? "host=mirror"
          : s.kind === "budgets"
            ? "host=rps/burst"
            : s.kind === "duration"
              ? "duration"
              : s.kind === "boolean"
                ? ""
                : "value";
    const flags = valueName
      ? `--${s.flag} <${valueName}>`
      : s.optionalValue
        ? `--${s.flag} [bool]`
        : `--${s.flag}`;
    const option = new Option(flags, `${s.help} [env ${s.env}]`);
    if (repeatable) option.argParser(collect);
    command.addOption(option);
  }
  return command;
}
