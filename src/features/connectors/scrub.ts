// What a run stores (outputs, logs, errors) is read by every member, viewers included, so it
// must not carry a credential: not an integration's secret (in any spelling a service might
// echo it back in: raw, JSON-escaped, URL-encoded, hex, base64, in any letter case), and not a
// credential-shaped header or field that a service reflected (httpbin's /headers, a debug
// endpoint, a dump of Node's rawHeaders or of a HAR).
//
// Text is scrubbed whole and only then cut (`clip`): a secret cut in half is no longer any
// spelling the scrubber knows. Not covered (documented limits): a secret reversed, split
// across fields, or spelled with HTML entities.

// SECRET_NAME: a field whose name says it holds a credential, in parsed JSON (the audit trail's rule too).
import { CREDENTIAL_NAME, SECRET_NAME } from "../../secretNames.ts";
import { storable } from "../../text.ts";

export const REDACTED = "[redacted]";

/** Secrets shorter than this are left alone: "t" would shred every output. */
const MIN_SECRET = 4;
/** Derived pieces (a token after "Bearer", a URL's path) must be longer to count. */
const MIN_PIECE = 8;
/** At a cut, a trailing start of a secret this long or longer is dropped as well. */
const MIN_FRAGMENT = 4;
/** Deeper than this, a value is not worth walking: it is replaced. */
const MAX_DEPTH = 64;

/** A credential's name in text: "Authorization: Bearer x", `"x-api-key":"k"`, "api_key=k" (JSON in a string included). */
const CREDENTIAL_TEXT = new RegExp(
  `((?:^|[^a-z0-9_-])${CREDENTIAL_NAME}\\\\?["']?[ \\t]*[:=][ \\t]*\\\\?["']?)([^"'\\\\\\r\\n]+)`,
  "gi",
);
/** A quote, optionally JSON-escaped (JSON inside a JSON string). */
const Q = `\\\\?["']`;
/** Header lists: Node's rawHeaders `"authorization","Bearer x"`, HAR's `"name":"cookie","value":"x"`. */
const CREDENTIAL_LIST_TEXT = new RegExp(
  `(${Q}${CREDENTIAL_NAME}${Q}\\s*,\\s*(?:${Q}value${Q}\\s*:\\s*)?${Q})([^"'\\\\\\r\\n]+)`,
  "gi",
);
/** HAR with the value first: `"value":"x","name":"cookie"`. */
const CREDENTIAL_VALUE_FIRST_TEXT = new RegExp(
  `(${Q}value${Q}\\s*:\\s*${Q})([^"'\\\\\\r\\n]+)(${Q}\\s*,\\s*${Q}(?:name|key)${Q}\\s*:\\s*${Q}${CREDENTIAL_NAME}${Q})`,
  "gi",
);
/** In parsed JSON, the field of a {name, value} pair that names the header. */
const PAIR_NAME_KEYS = ["name", "key", "header"];

const base64 = (s: string) => Buffer.from(s).toString("base64");

/**
 * The stable middle of s's base64 at each of the three alignments it can have inside a
 * longer encoded string (e.g. "user:secret" in a Basic header).
 */
function base64Cores(s: string): string[] {
  const bytes = Buffer.byteLength(s);
  return [0, 1, 2].map((k) => {
    const encoded = base64(`${"\0".repeat(k)}${s}`);
    const skip = [0, 2, 3][k] as number;
    return encoded.slice(skip, Math.floor((k + bytes) / 3) * 4);
  });
}

/** Every spelling of a secret worth looking for, the longest first (matching also ignores case). */
export function secretForms(secret: string): string[] {
  if (secret.length < MIN_SECRET) return [];
  const forms = new Set<string>([secret, JSON.stringify(secret).slice(1, -1), hex(secret), ...urlSpellings(secret)]);
  const pieces: string[] = [];
  // "Bearer <token>", "Basic <b64>": the credential part alone, and its own encodings (a
  // service that base64s or hex-dumps the token it received).
  const words = secret.split(/\s+/).filter((w) => w.length >= MIN_PIECE && w !== secret);
  for (const s of [secret, ...words]) {
    // Whole encodings too (their last characters are outside every core).
    pieces.push(s, hex(s), base64(s), Buffer.from(s).toString("base64url"), ...urlSpellings(s));
    for (const core of base64Cores(s)) pieces.push(core, core.replace(/\+/g, "-").replace(/\//g, "_"));
  }
  if (/^https?:\/\//i.test(secret)) {
    try {
      const url = new URL(secret);
      // A webhook URL's secret is its path (Slack: /services/T/B/<token>) or query: the whole
      // of them, and the parts that look like a token. Not every part: "services" would be
      // redacted in every output (and in keys, merging two of them).
      const parts = [...url.pathname.split("/").map(decodePart), ...url.searchParams.values()];
      pieces.push(`${url.pathname}${url.search}`, ...parts.filter(looksSecret));
      if (url.password) pieces.push(decodeURIComponent(url.password));
    } catch {
      // Not a URL after all.
    }
  }
  for (const p of pieces) if (p.length >= MIN_PIECE) forms.add(p);
  return [...forms].filter((f) => f.length >= MIN_SECRET).sort((a, b) => b.length - a.length);
}

/** A path segment or query value that may be a token: long, or letters and digits mixed. */
export function looksSecret(part: string): boolean {
  if (part.length >= 16) return true;
  return part.length >= MIN_PIECE && /[a-z]/i.test(part) && /\d/.test(part);
}

function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

const hex = (s: string) => Buffer.from(s).toString("hex");

/** Percent-encoded, as a whole and as a URL; lower-case "%2f" is matched by ignoring case. */
function urlSpellings(s: string): string[] {
  try {
    return [encodeURIComponent(s), encodeURI(s)];
  } catch {
    return []; // A lone surrogate: no URL spelling.
  }
}

/**
 * Lower case for A-Z only: the text keeps its length, so a place found in the lowered text
 * is the same place in the original. Slow: only for text whose full lowering changes its
 * length ("İ"), and for short tails.
 */
const asciiLower = (s: string) => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());

/** A value a credential field holds: a string or number, or a list of them (set-cookie). */
const isLeaf = (v: unknown): boolean =>
  typeof v === "string" || typeof v === "number" || (Array.isArray(v) && v.every((x) => typeof x !== "object"));

const namesCredential = (v: unknown) => typeof v === "string" && SECRET_NAME.test(v);

/** `{ name: "authorization", value: … }` (HAR, Postman): its value is a credential. */
const isCredentialPair = (o: object) =>
  PAIR_NAME_KEYS.some((k) => Object.hasOwn(o, k) && namesCredential((o as Record<string, unknown>)[k]));

/** key, or key suffixed " (2)", " (3)"…: the first of them not yet taken (and now taken). */
function distinct(key: string, taken: Set<string>): string {
  let name = key;
  for (let n = 2; taken.has(name); n++) name = `${key} (${n})`;
  taken.add(name);
  return name;
}

export interface Scrubber {
  text(value: string): string;
  /** A copy of a JSON-like value with every string (keys included) scrubbed. */
  value(value: unknown): unknown;
  /**
   * text(value), cut to at most max characters. The only way service text is shortened: the
   * whole text is scrubbed first, and a cut never ends in the start of a secret.
   */
  clip(value: string, max: number): string;
}

export function scrubberFor(secrets: Iterable<string>): Scrubber {
  const forms = [...new Set([...secrets].flatMap(secretForms))].sort((a, b) => b.length - a.length);
  const unique = (list: string[]) => [...new Set(list)];
  // As spelled, too, where lowering is not plain (Greek's final sigma lowers by context).
  const nonAscii = forms.filter((f) => [...f].some((c) => c.charCodeAt(0) > 127));
  // Lowered the two ways a text is: fully when that keeps its length (the fast case), else A-Z only.
  const folded = {
    full: unique(forms.map((f) => f.toLowerCase())),
    ascii: unique(forms.map(asciiLower)),
  };
  /** Every place a form occurs, case ignored, merged where they overlap and replaced once each. */
  const redactForms = (value: string) => {
    const found: [number, number][] = [];
    const search = (haystack: string, needles: string[]) => {
      for (const form of needles) {
        for (let at = haystack.indexOf(form); at !== -1; at = haystack.indexOf(form, at + form.length)) {
          found.push([at, at + form.length]);
        }
      }
    };
    search(value, nonAscii);
    const lower = value.toLowerCase();
    if (lower.length === value.length) search(lower, folded.full);
    else search(asciiLower(value), folded.ascii);
    if (!found.length) return value;
    found.sort((a, b) => a[0] - b[0]);
    let clean = "";
    let from = 0;
    for (const [start, end] of found) {
      if (end <= from) continue;
      if (start >= from) clean += `${value.slice(from, start)}${REDACTED}`;
      from = end;
    }
    return clean + value.slice(from);
  };
  const text = (value: string) => {
    const clean = redactForms(value)
      .replace(CREDENTIAL_LIST_TEXT, (_m, before: string) => `${before}${REDACTED}`)
      .replace(
        CREDENTIAL_VALUE_FIRST_TEXT,
        (_m, before: string, _v: string, after: string) => `${before}${REDACTED}${after}`,
      )
      .replace(CREDENTIAL_TEXT, (_m, name: string) => `${name}${REDACTED}`);
    // Storable too: a service's "\ud800" must not make the write of a run's result fail.
    return storable(clean);
  };
  /** How many characters at the end of text are the start of a secret (0 if fewer than MIN_FRAGMENT). */
  const secretStartAtEnd = (value: string) => {
    if (!forms[0]) return 0;
    const tail = asciiLower(value.slice(-forms[0].length));
    let longest = 0;
    for (const form of folded.ascii) {
      for (let n = Math.min(form.length - 1, tail.length); n >= Math.max(MIN_FRAGMENT, longest + 1); n--) {
        if (tail.endsWith(form.slice(0, n))) {
          longest = n;
          break;
        }
      }
    }
    return longest;
  };
  const clip = (value: string, max: number) => {
    const clean = text(value);
    if (clean.length <= max) return clean;
    // One character for the ellipsis; storable again, as the cut may halve a surrogate pair.
    const cut = clean.slice(0, Math.max(0, max - 1));
    return storable(`${cut.slice(0, cut.length - secretStartAtEnd(cut))}\u2026`);
  };
  const walk = (value: unknown, depth: number): unknown => {
    if (typeof value === "string") return text(value);
    if (value === null || typeof value !== "object") return value;
    if (depth > MAX_DEPTH) return "[too deep]";
    // Node's rawHeaders: ["authorization", "Bearer x", …], the value after a credential's name.
    if (Array.isArray(value)) {
      return value.map((v, i) => (namesCredential(value[i - 1]) && isLeaf(v) ? REDACTED : walk(v, depth + 1)));
    }
    const pair = isCredentialPair(value);
    // Keys are scrubbed too; two that become the same ("[redacted]") are both kept, the later
    // one suffixed, so scrubbing never drops a value.
    const taken = new Set<string>();
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        distinct(text(k), taken),
        (SECRET_NAME.test(k) || (pair && k === "value")) && isLeaf(v) ? REDACTED : walk(v, depth + 1),
      ]),
    );
  };
  return { text, value: (value) => walk(value, 0), clip };
}
