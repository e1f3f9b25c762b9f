import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, test } from "node:test";
import { createLogger, prettyLine } from "../../src/daemon/logger.js";

function sink(): { stream: Writable; text: () => string } {
  let text = "";
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  return { stream, text: () => text };
}

describe("daemon logger", () => {
  test("json lines at the level asked", () => {
    const out = sink();
    const logger = createLogger({ level: "warn", format: "json", stream: out.stream });
    logger.info("hidden");
    logger.warn({ repository: "a/b" }, "shown");
    const lines = out.text().trim().split("\n");
    assert.equal(lines.length, 1);
    const record = JSON.parse(lines[0] ?? "{}") as Record<string, unknown>;
    assert.equal(record.msg, "shown");
    assert.equal(record.repository, "a/b");
    assert.match(String(record.time), /^\d{4}-\d\d-\d\dT/);
  });

  test("pretty lines are readable", () => {
    const out = sink();
    createLogger({ level: "info", format: "pretty", stream: out.stream }).info(
      { n: 2, msg2: "a b" },
      "hello",
    );
    assert.match(out.text(), /^\S+Z INFO {2}hello n=2 msg2="a b"\n$/);
    assert.equal(prettyLine("not json"), "not json");
  });
});
