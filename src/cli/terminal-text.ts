/**
 * Text from a registry (label values, annotations, media types) shown on a terminal: control
 * characters, escape sequences and bidirectional overrides are written as `\u{...}`, so an
 * image's labels can neither move the cursor, set the terminal's title nor reorder a line.
 * JSON output needs none of this: JSON.stringify escapes control characters itself.
 */

// C0 controls (but tab), DEL, C1 controls, and the bidi embeddings, overrides and isolates.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/gu;

/** `text` with every character a terminal would act on written out as `\u{hex}`. */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u{${c.codePointAt(0)?.toString(16)}}`);
}
