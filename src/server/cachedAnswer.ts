// A cached answer is kept as the JSON text `{"data":...}` the client was sent. On a hit it goes
// out as that text: parsing 24 KB only to serialize it again was a fifth of a cache hit's CPU.
// The result handed to the executor still reads like any other: `data` parses on first use
// (Yoga's own paths, other plugins). Extensions (every answer carries its cost) are added with
// `withExtensions`, which keeps the text. Once anything has read `data` (and so may have changed
// it) or added another key (errors), the text no longer speaks for the result and is not used.
import type { ExecutionResult } from "graphql";

const TEXT = Symbol("the answer's JSON text");

type Cached = ExecutionResult & { [TEXT]?: string };

/** The result a cache hit stops execution with, from the JSON text that was stored. */
export function cachedAnswer(text: string): ExecutionResult {
  const result: Cached = { [TEXT]: text };
  let data: ExecutionResult["data"];
  let parsed = false;
  Object.defineProperty(result, "data", {
    enumerable: true,
    configurable: true,
    get() {
      if (!parsed) {
        data = (JSON.parse(text) as ExecutionResult).data;
        parsed = true;
      }
      delete result[TEXT];
      return data;
    },
    set(value: ExecutionResult["data"]) {
      delete result[TEXT];
      data = value;
      parsed = true;
    },
  });
  return result;
}

/** `result` with `extensions` merged into its own; a cache hit stays one (its text is kept). */
export function withExtensions(result: ExecutionResult, extensions: Record<string, unknown>): ExecutionResult {
  const text = (result as Cached)[TEXT];
  const merged = { ...result.extensions, ...extensions };
  if (text === undefined) return { ...result, extensions: merged };
  const next = cachedAnswer(text);
  next.extensions = merged;
  return next;
}

/** The JSON text of `result` when it is an untouched cache hit; undefined otherwise. */
export function answerText(result: ExecutionResult): string | undefined {
  const text = (result as Cached)[TEXT];
  if (text === undefined) return undefined;
  const keys = Object.keys(result);
  if (keys.length === 1 && keys[0] === "data") return text;
  if (keys.length !== 2 || keys[0] !== "data" || keys[1] !== "extensions") return undefined;
  // `{"data":...}` with the extensions after data, as JSON.stringify of the whole would write it.
  return `${text.slice(0, -1)},"extensions":${JSON.stringify(result.extensions)}}`;
}
