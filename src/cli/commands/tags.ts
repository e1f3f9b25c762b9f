/** `regscan tags` — PLACEHOLDER until its issue's work lands. */
import type { Command } from "commander";
import type { CliContext } from "../context.js";

export function registerTagsCommand(_program: Command, _ctx: CliContext): void {}
