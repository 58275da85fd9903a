// Turns learned per-extension usage patterns into concrete automation suggestions. Pure on
// purpose: `now` is a parameter and nothing here reads the clock, the database or randomness,
// so the same patterns always give the same suggestions and the rules can be tested as a table.
import { sampleCode } from "./templates.ts";

export type ConnectorKey = "github" | "slack" | "google_drive" | "dropbox" | "s3" | "smtp" | "http";
export const CONNECTOR_KEYS: readonly ConnectorKey[] = [
  "github",
  "slack",
  "google_drive",
  "dropbox",
  "s3",
  "smtp",
  "http",
];

export interface PatternInput {
  /** Lowercase, with the dot: ".py". */
  fileExtension: string;
  count: number;
  lastUsedAt: Date;
  tools: string[];
  /** Newest first, 0..3 entries. */
  recentPaths: string[];
}

export interface SuggestionDraft {
  /** Stable identity of the idea, e.g. "ext:.py:dropbox" or "chain:.docx+.py:http"; lowercase, no spaces. */
  triggerKey: string;
  title: string;
  trigger: string;
  toolsInvolved: string[];
  suggestedIntegration: ConnectorKey;
  sampleCode: string;
  reasoning: string;
  /** Up to 3 real paths; empty when real paths are not to be shown. */
  filePaths: string[];
  /** In [0.05, 0.95], rounded to 2 decimals. */
  confidence: number;
}

export interface SuggestionOptions {
  maxSuggestions: number;
  useRealFilePaths: boolean;
}

interface Idea {
  connector: ConnectorKey;
  title: string;
  why: string;
}

interface ChainRule extends Idea {
  /** [source, payload]: the payload is what the integration ships, and names the sample's placeholder. */
  exts: readonly [string, string];
}

const DAY_MS = 86_400_000;
const RECENT_DAYS = 7;
const MIN_CONFIDENCE = 0.05;
const MAX_CONFIDENCE = 0.95;
const MAX_PATHS = 3;
const MAX_TOOLS = 5;
// An unknown extension says little about what the user wants; only steady use earns a generic idea.
const GENERIC_MIN_COUNT = 5;

const idea = (connector: ConnectorKey, title: string, why: string): Idea => ({ connector, title, why });

const IMAGE_IDEAS = [
  idea("dropbox", "Back up your images to Dropbox", "Images are hard to recreate, so a synced copy is cheap insurance"),
  idea("google_drive", "Share your images on Google Drive", "A shared folder beats attaching screenshots one by one"),
];

const IDEAS: ReadonlyMap<string, readonly Idea[]> = new Map(
  Object.entries({
    ".py": [
      idea("dropbox", "Sync your Python outputs to Dropbox", "Script outputs stay backed up and on every device"),
      idea("smtp", "Email your Python script results", "Results reach your inbox without copying them by hand"),
      idea("slack", "Get a Slack message when your Python script finishes", "No more watching the terminal"),
      idea("s3", "Archive your Python outputs to S3", "Every run's output is kept, cheaply and durably"),
    ],
    ".csv": [
      idea("google_drive", "Share your CSV files on Google Drive", "Colleagues always open the latest data"),
      idea("s3", "Archive your CSV files to S3", "Dated copies make it easy to compare or restore data"),
      idea("smtp", "Email your CSV files as a report", "A scheduled report replaces manual sends"),
    ],
    ".json": [
      idea("http", "Post your JSON files to a webhook", "JSON is what most services accept as is"),
      idea("s3", "Archive your JSON data to S3", "Exports and snapshots stay queryable later"),
      idea("github", "Version your JSON configs on GitHub", "Config changes get a history and a review"),
    ],
    ".sql": [
      idea("github", "Version your SQL queries on GitHub", "Queries that drive reports deserve a history"),
      idea("s3", "Store your SQL exports in S3", "Query results are kept next to the data they came from"),
      idea("slack", "Share SQL query results in Slack", "The team sees the numbers without asking for them"),
    ],
    ".md": [
      idea("github", "Commit your Markdown docs to GitHub", "Docs get versions, reviews and a rendered view"),
      idea("google_drive", "Share your Markdown notes on Google Drive", "Notes reach people outside your editor"),
    ],
    ".sh": [
      idea("github", "Version your shell scripts on GitHub", "Scripts you rerun are worth a history and a backup"),
      idea("http", "Call a webhook when your shell script runs", "Other systems can react the moment it finishes"),
    ],
    ".js": [
      idea("github", "Version your JavaScript on GitHub", "Scripts you rerun are worth a history and a backup"),
      idea("http", "Call a webhook when your JavaScript runs", "Other systems can react the moment it finishes"),
    ],
    ".ts": [
      idea("github", "Version your TypeScript on GitHub", "Scripts you rerun are worth a history and a backup"),
      idea("http", "Call a webhook when your TypeScript runs", "Other systems can react the moment it finishes"),
    ],
    ".vba": [
      idea("github", "Version your VBA macros on GitHub", "Macros hidden in workbooks are easy to lose"),
      idea("smtp", "Email what your VBA macros produce", "The report goes out as soon as the macro is done"),
    ],
    ".xlsx": [
      idea("google_drive", "Share your spreadsheets on Google Drive", "Everyone works from one current copy"),
      idea("smtp", "Email your spreadsheets as a report", "A scheduled report replaces manual sends"),
      idea("dropbox", "Back up your spreadsheets to Dropbox", "Workbooks you edit often deserve a synced copy"),
    ],
    ".docx": [
      idea("google_drive", "Share your Word documents on Google Drive", "Reviewers always open the latest version"),
      idea("dropbox", "Back up your Word documents to Dropbox", "Documents you edit often deserve a synced copy"),
      idea("smtp", "Email your Word documents when they change", "Recipients get the new version without a reminder"),
    ],
    ".pdf": [
      idea("google_drive", "File your PDFs on Google Drive", "PDFs are usually meant to be shared"),
      idea("dropbox", "Back up your PDFs to Dropbox", "Final documents deserve a synced copy"),
      idea("smtp", "Email your PDFs automatically", "Finished documents go out without a manual step"),
    ],
    ".ipynb": [
      idea("github", "Version your notebooks on GitHub", "Notebooks change fast, and GitHub renders them"),
      idea("s3", "Archive your notebook outputs to S3", "Experiment results are kept run by run"),
      idea("slack", "Post to Slack when your notebook run finishes", "Long runs report back on their own"),
    ],
    ".txt": [
      idea("dropbox", "Sync your text files to Dropbox", "Notes and outputs follow you to every device"),
      idea("google_drive", "Share your text files on Google Drive", "Plain text is easy for anyone to open"),
    ],
    ".log": [
      idea("slack", "Send log alerts to Slack", "Errors reach you while they still matter"),
      idea("s3", "Archive your logs to S3", "Old logs stay searchable without filling your disk"),
    ],
    ".png": IMAGE_IDEAS,
    ".jpg": IMAGE_IDEAS,
    ".jpeg": IMAGE_IDEAS,
  }),
);

const chain = (from: string, payload: string, connector: ConnectorKey, title: string, why: string): ChainRule => ({
  exts: [from, payload],
  ...idea(connector, title, why),
});

// Extensions that show up together usually mean one step feeds the next; these are the pairs
// common enough to name a concrete workflow for.
const CHAINS: readonly ChainRule[] = [
  chain(".py", ".docx", "http", "Chain your Python scraper with Word automation", "A webhook starts the Word step"),
  chain(".py", ".docx", "dropbox", "Pass your Python output to Word via Dropbox", "A shared folder links the two"),
  chain(
    ".py",
    ".csv",
    "google_drive",
    "Python writes CSV, share it on Google Drive",
    "The data reaches others at once",
  ),
  chain(".sql", ".csv", "s3", "Export your SQL query results to S3", "Query exports land in dated storage"),
  chain(".ipynb", ".csv", "google_drive", "Share your notebook's CSV output on Drive", "Results are shared at once"),
  chain(".js", ".json", "http", "Post the JSON your JavaScript writes to a webhook", "The next system gets it at once"),
  chain(".ts", ".json", "http", "Post the JSON your TypeScript writes to a webhook", "The next system gets it at once"),
  chain(".vba", ".xlsx", "smtp", "Email the Excel report your VBA macro builds", "No manual send after each run"),
  chain(
    ".md",
    ".sh",
    "github",
    "Version your shell scripts with their docs on GitHub",
    "Scripts and docs change together",
  ),
];

const round2 = (x: number): number => Math.round(x * 100) / 100;
const clampConfidence = (x: number): number =>
  Number.isNaN(x) ? MIN_CONFIDENCE : Math.min(MAX_CONFIDENCE, Math.max(MIN_CONFIDENCE, x));
const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

// A clock skew can put lastUsedAt slightly in the future; that counts as "just now".
const daysSince = (at: Date, now: Date): number => Math.max(0, (now.getTime() - at.getTime()) / DAY_MS);

/**
 * Frequency f = 1 - e^(-count/10) saturates, so the 50th use adds little over the 20th;
 * recency r = e^(-days/7) halves the weight roughly every five days, so last month's habit
 * fades. confidence = clamp(0.05, 0.95, round2(0.15 + 0.8·f·r)): the 0.15 floor keeps any
 * recent pattern visible, and the cap admits we are never certain a user wants an automation.
 */
export function confidenceFor(count: number, lastUsedAt: Date, now: Date): number {
  const f = 1 - Math.exp(-Math.max(0, count) / 10);
  const r = Math.exp(-daysSince(lastUsedAt, now) / RECENT_DAYS);
  return clampConfidence(round2(0.15 + 0.8 * f * r));
}

// Keys are compared as identities, so any casing or stray whitespace from the caller must not split them.
const normalizeExt = (ext: string): string => {
  const e = ext.trim().toLowerCase().replace(/\s+/g, "");
  return e.startsWith(".") ? e : `.${e}`;
};

const unique = (items: readonly string[], max: number): string[] =>
  [...new Set(items.filter((s) => s.trim().length > 0))].slice(0, max);

const agoPhrase = (days: number): string => {
  const whole = Math.floor(days);
  return whole === 0 ? "today" : whole === 1 ? "1 day ago" : `${whole} days ago`;
};

const listPhrase = (items: readonly string[]): string =>
  items.length <= 1 ? (items[0] ?? "") : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;

const usage = (p: PatternInput, ext: string, now: Date): string =>
  `${ext} files ${p.count} ${p.count === 1 ? "time" : "times"}, last used ${agoPhrase(daysSince(p.lastUsedAt, now))}`;

const withTools = (tools: readonly string[]): string => (tools.length > 0 ? `, with ${listPhrase(tools)}` : "");

interface Recent {
  ext: string;
  pattern: PatternInput;
  confidence: number;
}

/** Pure and deterministic: same inputs, same output (order included). */
export function buildSuggestions(patterns: PatternInput[], now: Date, options: SuggestionOptions): SuggestionDraft[] {
  const max = Math.floor(options.maxSuggestions);
  if (!(max > 0)) return [];

  const recent: Recent[] = patterns
    .filter((p) => p.count >= 1 && now.getTime() - p.lastUsedAt.getTime() <= RECENT_DAYS * DAY_MS)
    .map((p) => ({
      ext: normalizeExt(p.fileExtension),
      pattern: p,
      confidence: confidenceFor(p.count, p.lastUsedAt, now),
    }))
    .filter((r) => r.ext !== ".");

  const pathsOf = (...ps: PatternInput[]): string[] => {
    if (!options.useRealFilePaths) return [];
    // Interleaved so that a chain shows files from both sides, not three from the first.
    const longest = Math.max(0, ...ps.map((p) => p.recentPaths.length));
    const mixed = Array.from({ length: longest }, (_, i) => ps.flatMap((p) => p.recentPaths[i] ?? [])).flat();
    return unique(mixed, MAX_PATHS);
  };

  const drafts: SuggestionDraft[] = [];
  for (const { ext, pattern, confidence } of recent) {
    const ideas =
      IDEAS.get(ext) ??
      (pattern.count >= GENERIC_MIN_COUNT
        ? [idea("http", `Call a webhook when you work on ${ext} files`, "Any other tool can then react to it")]
        : []);
    const tools = unique(pattern.tools, MAX_TOOLS);
    const filePaths = pathsOf(pattern);
    for (const { connector, title, why } of ideas) {
      drafts.push({
        triggerKey: `ext:${ext}:${connector}`,
        title,
        trigger: `You work with ${ext} files`,
        toolsInvolved: [...tools],
        suggestedIntegration: connector,
        sampleCode: sampleCode(connector, { filePaths, extension: ext, tools }),
        reasoning: `You've used ${usage(pattern, ext, now)}${withTools(tools)}. ${why}.`,
        filePaths: [...filePaths],
        confidence,
      });
    }
  }

  // Duplicate patterns for one extension are possible; the most confident one speaks for it.
  const best = (ext: string): Recent | undefined =>
    recent.filter((r) => r.ext === ext).sort((x, y) => y.confidence - x.confidence)[0];
  for (const rule of CHAINS) {
    const [a, b] = [...rule.exts].sort(compareText) as [string, string];
    const left = best(a);
    const right = best(b);
    if (!left || !right) continue;
    const tools = unique([...left.pattern.tools, ...right.pattern.tools], MAX_TOOLS);
    const filePaths = pathsOf(left.pattern, right.pattern);
    drafts.push({
      triggerKey: `chain:${a}+${b}:${rule.connector}`,
      title: rule.title,
      trigger: `You work with ${a} and ${b} files`,
      toolsInvolved: tools,
      suggestedIntegration: rule.connector,
      sampleCode: sampleCode(rule.connector, { filePaths, extension: rule.exts[1], tools }),
      reasoning: `You've used ${usage(left.pattern, a, now)}, and ${usage(right.pattern, b, now)}${withTools(tools)}. ${rule.why}.`,
      filePaths,
      // A two-step workflow is only as likely as its weaker half, and a little less than either.
      confidence: clampConfidence(round2(Math.min(left.confidence, right.confidence) * 0.9)),
    });
  }

  drafts.sort((x, y) => y.confidence - x.confidence || compareText(x.triggerKey, y.triggerKey));
  // Sorted first, so when a key repeats (duplicate patterns) the most confident draft is the one kept.
  const seen = new Set<string>();
  const result: SuggestionDraft[] = [];
  for (const d of drafts) {
    if (seen.has(d.triggerKey)) continue;
    seen.add(d.triggerKey);
    result.push(d);
  }
  return result.slice(0, max);
}
