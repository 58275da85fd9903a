// When a schedule's occurrences fall: a cron expression in a time zone (five fields, or six
// with seconds), or a fixed interval counted from the schedule's creation.
import { CronExpressionParser } from "cron-parser";

export interface ScheduleSpec {
  cron: string | null;
  intervalSeconds: number | null;
  timezone: string;
  anchor: Date;
}

/** The first occurrence strictly after `after`. */
export function nextAfter(spec: ScheduleSpec, after: Date): Date {
  if (spec.cron) {
    return CronExpressionParser.parse(spec.cron, { currentDate: after, tz: spec.timezone }).next().toDate();
  }
  const step = (spec.intervalSeconds ?? 60) * 1000;
  const k = Math.floor((after.getTime() - spec.anchor.getTime()) / step) + 1;
  return new Date(spec.anchor.getTime() + Math.max(k, 1) * step);
}

/** The last occurrence at or before `at` (the anchor itself for an interval not yet begun). */
export function latestAtOrBefore(spec: ScheduleSpec, at: Date): Date {
  if (spec.cron) {
    return CronExpressionParser.parse(spec.cron, { currentDate: new Date(at.getTime() + 1), tz: spec.timezone })
      .prev()
      .toDate();
  }
  const step = (spec.intervalSeconds ?? 60) * 1000;
  const k = Math.floor((at.getTime() - spec.anchor.getTime()) / step);
  return new Date(spec.anchor.getTime() + Math.max(k, 1) * step);
}

/** Occurrences from `from` (inclusive) to `to` (inclusive), oldest first, at most `limit`. */
export function occurrences(spec: ScheduleSpec, from: Date, to: Date, limit: number): Date[] {
  const out: Date[] = [];
  for (let t = nextAfter(spec, new Date(from.getTime() - 1)); t <= to && out.length < limit; t = nextAfter(spec, t)) {
    out.push(t);
  }
  return out;
}

/** The next `count` occurrences after now: what the API shows. */
export function upcoming(spec: ScheduleSpec, count: number, now = new Date()): Date[] {
  const out: Date[] = [];
  for (let t = nextAfter(spec, now); out.length < count; t = nextAfter(spec, t)) out.push(t);
  return out;
}

/** A cron expression's problem in words, or null when it is valid. */
export function cronProblem(cron: string, timezone: string): string | null {
  const fields = cron.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6)
    return "must have 5 fields (minute hour day month weekday), or 6 with seconds first";
  try {
    CronExpressionParser.parse(cron, { tz: timezone });
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}
