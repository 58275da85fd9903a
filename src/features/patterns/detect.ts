// The detection rules, as pure functions over one user's events. Analysis is incremental and
// exact: the patterns always equal what a full rescan of the analysed events would give,
// however late or out of order events arrive. A new event that lands between two analysed
// ones replaces their pair (A -> C) with two (A -> B, B -> C); the diff below does that.

export const SEQUENCE_GAP_MS = 300_000;
export const TOGETHER_WINDOW_MS = 30_000;
const RECENT_PATHS = 3;
const SEQUENCE_FILES = 5;

export interface AnalysedEvent {
  id: string;
  occurredAt: Date;
  eventType: string;
  filePath: string | null;
  fileExtension: string | null;
  tool: string | null;
  inputPaths: string[];
  outputPaths: string[];
}

export interface ExtensionDelta {
  count: number;
  lastUsedAt: Date;
  tools: Set<string>;
  /** Newest first. */
  recentPaths: { path: string; at: Date }[];
}

export interface SequenceDelta {
  fromType: string;
  toType: string;
  /** May be negative: a pair split by a late event. */
  count: number;
  gapMs: number;
  lastSeenAt: Date | null;
  files: string[];
}

export type Relation = "ACCESSED_TOGETHER" | "GENERATES" | "CONSUMES";

export interface RelationDelta {
  sourcePath: string;
  targetPath: string;
  relationType: Relation;
  weight: number;
  firstSeenAt: Date;
  lastSeenAt: Date;
}

export interface Deltas {
  extensions: Map<string, ExtensionDelta>;
  sequences: Map<string, SequenceDelta>;
  relations: Map<string, RelationDelta>;
}

/** A stretch of time holding fresh events and every analysed event of the same user within it. */
export interface Segment {
  analysed: AnalysedEvent[];
  fresh: AnalysedEvent[];
}

/** Events at the same instant keep the order they were stored in (UUIDv7 ids sort by time). */
export function byTime(a: AnalysedEvent, b: AnalysedEvent) {
  return a.occurredAt.getTime() - b.occurredAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * Groups time-sorted fresh events into segments whose bounds reach SEQUENCE_GAP_MS beyond
 * their first and last event: every analysed event that could pair with a fresh one, or
 * whose pair a fresh one could split, lies inside a segment.
 */
export function segmentBounds(fresh: AnalysedEvent[]): { from: Date; to: Date; fresh: AnalysedEvent[] }[] {
  const segments: { from: Date; to: Date; fresh: AnalysedEvent[] }[] = [];
  for (const event of fresh) {
    const t = event.occurredAt.getTime();
    const last = segments.at(-1);
    if (last && t - SEQUENCE_GAP_MS <= last.to.getTime()) {
      last.to = new Date(t + SEQUENCE_GAP_MS);
      last.fresh.push(event);
    } else segments.push({ from: new Date(t - SEQUENCE_GAP_MS), to: new Date(t + SEQUENCE_GAP_MS), fresh: [event] });
  }
  return segments;
}

export function detect(segments: Segment[]): Deltas {
  const deltas: Deltas = { extensions: new Map(), sequences: new Map(), relations: new Map() };
  for (const { analysed, fresh } of segments) {
    const freshIds = new Set(fresh.map((e) => e.id));
    const merged = [...analysed, ...fresh].sort(byTime);
    const before = [...analysed].sort(byTime);
    countPairs(deltas, before, -1);
    countPairs(deltas, merged, +1);
    relate(deltas, before, merged, freshIds);
    for (const event of fresh) extension(deltas, event);
  }
  return deltas;
}

/** Consecutive events under SEQUENCE_GAP_MS apart make "typeA -> typeB"; sign -1 takes a list's pairs away. */
function countPairs(deltas: Deltas, events: AnalysedEvent[], sign: 1 | -1) {
  for (let i = 1; i < events.length; i++) {
    const a = events[i - 1] as AnalysedEvent;
    const b = events[i] as AnalysedEvent;
    const gap = b.occurredAt.getTime() - a.occurredAt.getTime();
    if (gap >= SEQUENCE_GAP_MS) continue;
    const key = `${a.eventType}\u0000${b.eventType}`;
    let entry = deltas.sequences.get(key);
    if (!entry) {
      entry = { fromType: a.eventType, toType: b.eventType, count: 0, gapMs: 0, lastSeenAt: null, files: [] };
      deltas.sequences.set(key, entry);
    }
    entry.count += sign;
    entry.gapMs += sign * gap;
    if (sign > 0) {
      if (!entry.lastSeenAt || b.occurredAt > entry.lastSeenAt) entry.lastSeenAt = b.occurredAt;
      for (const path of [a.filePath, b.filePath])
        if (path && entry.files.length < SEQUENCE_FILES && !entry.files.includes(path)) entry.files.push(path);
    }
  }
}

/**
 * Consecutive file events under TOGETHER_WINDOW_MS apart, on different files, are accessed
 * together (both ways). Consecutive, not every pair in the window: a burst of n files (a
 * checkout, a build) makes n relationships, not n². Counted like sequences, as the
 * difference between the pairs with and without the fresh events, so late events split pairs
 * exactly. Script runs link script -> output and input -> script.
 */
function relate(deltas: Deltas, analysed: AnalysedEvent[], merged: AnalysedEvent[], freshIds: Set<string>) {
  togetherPairs(deltas, analysed, -1);
  togetherPairs(deltas, merged, +1);
  for (const e of merged) {
    if (!freshIds.has(e.id) || e.eventType !== "script_run" || !e.filePath) continue;
    for (const output of e.outputPaths) link(deltas, e.filePath, output, "GENERATES", e.occurredAt, 1);
    for (const input of e.inputPaths) link(deltas, input, e.filePath, "CONSUMES", e.occurredAt, 1);
  }
}

function togetherPairs(deltas: Deltas, events: AnalysedEvent[], sign: 1 | -1) {
  const files = events.filter((e) => e.filePath);
  for (let i = 1; i < files.length; i++) {
    const a = files[i - 1] as AnalysedEvent;
    const b = files[i] as AnalysedEvent;
    if (a.filePath === b.filePath || b.occurredAt.getTime() - a.occurredAt.getTime() >= TOGETHER_WINDOW_MS) continue;
    link(deltas, a.filePath as string, b.filePath as string, "ACCESSED_TOGETHER", b.occurredAt, sign);
    link(deltas, b.filePath as string, a.filePath as string, "ACCESSED_TOGETHER", b.occurredAt, sign);
  }
}

function link(deltas: Deltas, sourcePath: string, targetPath: string, relationType: Relation, at: Date, sign: 1 | -1) {
  if (sourcePath === targetPath) return;
  const key = `${sourcePath}\u0000${targetPath}\u0000${relationType}`;
  const entry = deltas.relations.get(key);
  if (!entry) {
    // A removal alone carries no times: far-off bounds leave the stored ones as they are.
    const [firstSeenAt, lastSeenAt] = sign > 0 ? [at, at] : [new Date(8.64e15), new Date(0)];
    deltas.relations.set(key, { sourcePath, targetPath, relationType, weight: sign, firstSeenAt, lastSeenAt });
    return;
  }
  entry.weight += sign;
  // Times of a removed pair say nothing about when the relationship was seen.
  if (sign < 0) return;
  if (at < entry.firstSeenAt) entry.firstSeenAt = at;
  if (at > entry.lastSeenAt) entry.lastSeenAt = at;
}

function extension(deltas: Deltas, event: AnalysedEvent) {
  if (!event.fileExtension || !event.filePath) return;
  let entry = deltas.extensions.get(event.fileExtension);
  if (!entry) {
    entry = { count: 0, lastUsedAt: event.occurredAt, tools: new Set(), recentPaths: [] };
    deltas.extensions.set(event.fileExtension, entry);
  }
  entry.count++;
  if (event.occurredAt > entry.lastUsedAt) entry.lastUsedAt = event.occurredAt;
  if (event.tool) entry.tools.add(event.tool);
  entry.recentPaths = mergeRecent(entry.recentPaths, [{ path: event.filePath, at: event.occurredAt }]);
}

/** The newest RECENT_PATHS distinct paths of two lists, newest first. */
export function mergeRecent(a: { path: string; at: Date }[], b: { path: string; at: Date }[]) {
  const newest = new Map<string, Date>();
  for (const { path, at } of [...a, ...b]) {
    const seen = newest.get(path);
    if (!seen || at > seen) newest.set(path, at);
  }
  return [...newest]
    .map(([path, at]) => ({ path, at }))
    .sort((x, y) => y.at.getTime() - x.at.getTime() || (x.path < y.path ? -1 : 1))
    .slice(0, RECENT_PATHS);
}
