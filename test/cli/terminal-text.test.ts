import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { imageText, table } from "../../src/cli/output.js";
import { terminalSafe } from "../../src/cli/terminal-text.js";
import { parseImageRef } from "../../src/image/ref.js";

describe("terminal-safe text output", () => {
  test("control characters, escape sequences and bidi overrides are written out", () => {
    assert.equal(terminalSafe("a\x1b]0;pwned\x07b"), "a\\u{1b}]0;pwned\\u{7}b");
    assert.equal(terminalSafe("x\ny\rz\x9b"), "x\\u{a}y\\u{d}z\\u{9b}");
    assert.equal(terminalSafe("evil\u202egnp.exe"), "evil\\u{202e}gnp.exe");
    // Printable text, tabs and non-ASCII letters are left as they are.
    assert.equal(terminalSafe("Grüße\tv1.2 日本"), "Grüße\tv1.2 日本");
  });

  test("an image's labels and annotations cannot write escape sequences to the terminal", () => {
    const ref = parseImageRef("registry.example/app:v1");
    const text = imageText(ref, {
      ref,
      digest: `sha256:${"a".repeat(64)}`,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      labels: { title: "\x1b]0;owned\x07", "k\x1b[2J": "v" },
      annotations: { "org.opencontainers.image.source": "x\x1b[31mred" },
      platforms: [],
    });
    assert.ok(!text.includes("\x1b"), text);
    assert.ok(!text.includes("\x07"), text);
    assert.match(text, /title=\\u\{1b\}\]0;owned\\u\{7\}/);
    assert.match(text, /x\\u\{1b\}\[31mred/);
  });

  test("table cells are escaped and aligned by their escaped width", () => {
    const lines = table(
      ["TAG", "DIGEST"],
      [
        ["v1\x1b[1m", "d1"],
        ["v22", "d2"],
      ],
    );
    assert.ok(lines.every((l) => !l.includes("\x1b")));
    assert.equal(lines[1]?.indexOf("d1"), lines[2]?.indexOf("d2"));
  });
});
