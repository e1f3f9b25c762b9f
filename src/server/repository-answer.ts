/**
 * A repository's answer written from a stream of its images (`streamImageRepository`): the
 * text itself when it fits the answer cache, else its layout when the images' JSON is small
 * (a 100,000-tag repository over a few hundred images), else nothing to keep, and each
 * reader's text produced as it is read. Every tag of one image shares that image's JSON
 * after `ref`, serialised once.
 */
import { EventLoopTurns } from "../event-loop-turns.js";
import type { ImageInfo } from "../image/info.js";
import type { RepositoryStream } from "../registry/repository-stream.js";
import { imageJsonAfterRef } from "./json-forms.js";

/** Characters of text handed on at once. */
const PIECE_CHARS = 64 * 1024;

/**
 * Images whose JSON is remembered (by their labels object) while writing one answer: tags
 * sharing an image cost a lookup, and an answer over more distinct images than this holds
 * no more of them at once (at about a kilobyte each).
 */
const MAX_TAILS = 2_048;

/** An image's JSON after its `ref`. */
interface Tail {
  info: ImageInfo;
  /** `{"digest":...}`: the image's JSON without `ref`, a string of its own. */
  text: string;
  /** UTF-8 bytes of `text`. */
  bytes: number;
}

/** The image JSON of the answer's tags, remembered for the images seen last. */
class Tails {
  readonly #byLabels = new Map<object, Tail>();

  of(info: ImageInfo): Tail {
    let tail = this.#byLabels.get(info.labels);
    if (tail === undefined || !sameImageJson(tail.info, info)) {
      const text = JSON.stringify(imageJsonAfterRef(info));
      tail = { info, text, bytes: Buffer.byteLength(text) };
      if (this.#byLabels.size >= MAX_TAILS) this.#byLabels.clear();
      this.#byLabels.set(info.labels, tail);
    }
    return tail;
  }
}

/** Whether `a` and `b` print the same image JSON apart from `ref`. */
function sameImageJson(a: ImageInfo, b: ImageInfo): boolean {
  return (
    a.digest === b.digest &&
    a.platformDigest === b.platformDigest &&
    a.imageID === b.imageID &&
    a.mediaType === b.mediaType &&
    a.labels === b.labels &&
    a.annotations === b.annotations &&
    a.indexAnnotations === b.indexAnnotations &&
    a.platform === b.platform &&
    a.platforms === b.platforms &&
    sameTime(a.createdAt, b.createdAt) &&
    sameTime(a.lastFetched, b.lastFetched)
  );
}

function sameTime(a: Date | undefined, b: Date | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.getTime() === b.getTime());
}

/** The answer's text before its first image. */
function headOf(name: string, tags: readonly string[]): string {
  return `{"name":${JSON.stringify(name)},"tags":${JSON.stringify(tags)},"images":{`;
}

const END = "}}\n";

/** What comes before a tag's image JSON: `,"tag":{"ref":"..."`. */
function tagPrefix(n: number, tag: string, ref: string): string {
  return `${n === 0 ? "" : ","}${JSON.stringify(tag)}:{"ref":${JSON.stringify(ref)}`;
}

/** A tag's text: its prefix, then its image's JSON with a comma for its opening brace. */
function tagText(prefix: string, tail: string): string {
  return `${prefix},${tail.slice(1)}`;
}

/**
 * `repositoryJson(name, ...)` as UTF-8 text with a final newline, in pieces of about
 * `pieceChars` characters (default 64 Ki), produced as the images are read: it holds a slice
 * of the stream and at most {@link MAX_TAILS} images' JSON, whatever the size of the
 * repository. The event loop gets a turn every few milliseconds.
 */
export async function* repositoryJsonPieces(
  name: string,
  stream: RepositoryStream,
  pieceChars = PIECE_CHARS,
): AsyncGenerator<string> {
  let piece = headOf(name, stream.tags);
  const tails = new Tails();
  const turns = new EventLoopTurns();
  let n = 0;
  for await (const slice of stream.images()) {
    for (const [tag, info] of slice) {
      piece += tagText(tagPrefix(n, tag, info.ref.toString()), tails.of(info).text);
      n++;
      if (piece.length >= pieceChars) {
        yield piece;
        piece = "";
      }
      if ((n & 255) === 0) await turns.take();
    }
  }
  yield piece + END;
}

/**
 * A repository's answer laid out for writing, without holding the text: its exact UTF-8
 * length (for `content-length`) and, per tag, what its text is made of; the JSON of each
 * distinct image is held once, so a 100,000-tag repository over a few hundred images is a
 * few MiB where its text is 75 MB.
 */
export interface RepositoryJsonLayout {
  /** Bytes of the UTF-8 text, final newline included. */
  readonly byteLength: number;
  /** Bytes the layout itself keeps alive, roughly (what a cache of layouts counts). */
  readonly retainedBytes: number;
  /** The text, in slices of about `sliceChars` characters (default 64 Ki), in order. */
  slices(sliceChars?: number): Generator<string>;
}

/**
 * An answer's whole UTF-8 text, in the pieces it was produced in (about 64 KiB each): never
 * joined, as joining an 8 MB answer held it twice and left an 8 MB hole in the allocator.
 */
export type RepositoryText = readonly Buffer[];

/** Bytes of an answer's text. */
export function textBytes(text: RepositoryText): number {
  let bytes = 0;
  for (const piece of text) bytes += piece.length;
  return bytes;
}

/** What {@link buildRepositoryAnswer} may hold. */
export interface AnswerBounds {
  /** Most bytes of text held: a longer answer is not kept as text. */
  maxBytes: number;
  /**
   * Most characters of distinct images' JSON a layout holds: past it the answer is not
   * laid out either (a 25,000-tag repository over as many images: ~10 MB of them).
   */
  maxLayoutChars: number;
}

/** The layout being built, per tag with an image: its tag, image JSON, and odd `ref`. */
interface LayoutParts {
  tags: string[];
  tails: string[];
  /** The tag's `ref` text, by tag number, when it is not `name:tag`. */
  refs: Map<number, string>;
  /** Each distinct image JSON once (the one kept), and their characters. */
  distinct: Map<string, string>;
  distinctChars: number;
  /** UTF-8 bytes of the text so far, the final `}}\n` included. */
  bytes: number;
}

/**
 * Builds `name`'s answer from `stream` in one pass: its whole text when within
 * `bounds.maxBytes`, else its layout when its distinct images' JSON is within
 * `bounds.maxLayoutChars`, else undefined (stopped as soon as it is neither), holding no
 * more than those bounds and a slice of the stream.
 */
export async function buildRepositoryAnswer(
  name: string,
  stream: RepositoryStream,
  bounds: AnswerBounds,
): Promise<RepositoryText | RepositoryJsonLayout | undefined> {
  const head = headOf(name, stream.tags);
  let text: Buffer[] | undefined = [];
  let held = 0;
  let piece = head;
  let layout: LayoutParts | undefined = {
    tags: [],
    tails: [],
    refs: new Map(),
    distinct: new Map(),
    distinctChars: 0,
    bytes: Buffer.byteLength(head) + END.length,
  };
  const tails = new Tails();
  const turns = new EventLoopTurns();
  let n = 0;
  for await (const slice of stream.images()) {
    for (const [tag, info] of slice) {
      const tail = tails.of(info);
      const ref = info.ref.toString();
      const prefix = tagPrefix(n, tag, ref);
      if (text !== undefined) {
        piece += tagText(prefix, tail.text);
        if (piece.length >= PIECE_CHARS) {
          const buf = Buffer.from(piece, "utf8");
          piece = "";
          held += buf.length;
          text.push(buf);
          if (held > bounds.maxBytes) text = undefined;
        }
      }
      if (layout !== undefined) {
        let kept = layout.distinct.get(tail.text);
        if (kept === undefined) {
          kept = tail.text;
          layout.distinct.set(kept, kept);
          layout.distinctChars += kept.length;
        }
        // The tail's `{` becomes a `,`: the same number of bytes.
        layout.bytes += Buffer.byteLength(prefix) + tail.bytes;
        if (ref !== `${name}:${tag}`) layout.refs.set(n, ref);
        layout.tags.push(tag);
        layout.tails.push(kept);
        if (layout.distinctChars > bounds.maxLayoutChars) layout = undefined;
      }
      if (text === undefined && layout === undefined) return undefined;
      n++;
      if ((n & 255) === 0) await turns.take();
    }
  }
  if (text !== undefined) {
    const last = Buffer.from(piece + END, "utf8");
    if (held + last.length <= bounds.maxBytes) {
      text.push(last);
      return text;
    }
  }
  return layout && laidOut(name, head, layout);
}

function laidOut(
  name: string,
  head: string,
  { tags, tails, refs, distinctChars, bytes }: LayoutParts,
): RepositoryJsonLayout {
  const count = tags.length;
  return {
    byteLength: bytes,
    retainedBytes: head.length + 16 * count + 64 * refs.size + distinctChars,
    *slices(sliceChars = PIECE_CHARS) {
      yield head;
      let slice = "";
      for (let i = 0; i < count; i++) {
        const tag = tags[i] as string;
        const prefix = tagPrefix(i, tag, refs.get(i) ?? `${name}:${tag}`);
        slice += tagText(prefix, tails[i] as string);
        if (slice.length >= sliceChars) {
          yield slice;
          slice = "";
        }
      }
      yield slice + END;
    },
  };
}
