// Dashboard numbers over a user's (or, for admins, everyone's) events in an organization:
// counts per kind, top tools and extensions, activity by hour of day and by day.
import { type Context, NOBODY } from "../../context.ts";
import { ValidationError } from "../../errors.ts";
import { Prisma } from "../../generated/prisma/client.ts";
import { roleIn } from "../auth/access.ts";
import { actingUserId } from "./visibility.ts";

export interface InsightsInput {
  organizationId: string;
  userId?: string | null;
  since?: Date | null;
  until?: Date | null;
  timeZone: string;
  top: number;
}

const MAX_DAYS = 1000;

function checkTimeZone(timeZone: string) {
  try {
    new Intl.DateTimeFormat("en", { timeZone });
  } catch {
    throw new ValidationError(`"${timeZone}" is not a time zone.`, [
      { path: "timeZone", message: 'must be an IANA time zone, e.g. "Europe/Paris"' },
    ]);
  }
}

/** A zone the runtime knows but PostgreSQL does not (an old alias such as US/Pacific-New). */
function zoneRefused(err: unknown): never {
  if (/time zone/i.test(String((err as Error)?.message ?? ""))) {
    throw new ValidationError("PostgreSQL does not know this time zone.", [
      { path: "timeZone", message: 'must be an IANA time zone PostgreSQL knows, e.g. "America/Los_Angeles"' },
    ]);
  }
  throw err;
}

/** Whose events: a named user (admins, or yourself), everyone's (admins), or your own. */
async function scope(ctx: Context, input: InsightsInput): Promise<string | null> {
  const role = await roleIn(ctx, input.organizationId);
  const admin = role === "OWNER" || role === "ADMIN";
  const self = actingUserId(ctx);
  if (admin) return input.userId ?? null;
  if (input.userId && input.userId !== self) return NOBODY;
  return self ?? NOBODY;
}

export async function eventInsights(ctx: Context, input: InsightsInput) {
  checkTimeZone(input.timeZone);
  const userId = await scope(ctx, input);
  const where: Prisma.EventWhereInput = {
    organizationId: input.organizationId,
    userId: userId ?? undefined,
    occurredAt: { gte: input.since ?? undefined, lt: input.until ?? undefined },
  };
  const sqlWhere = Prisma.sql`organization_id = ${input.organizationId}::uuid
    ${userId ? Prisma.sql`AND user_id = ${userId}::uuid` : Prisma.empty}
    ${input.since ? Prisma.sql`AND occurred_at >= ${input.since}` : Prisma.empty}
    ${input.until ? Prisma.sql`AND occurred_at < ${input.until}` : Prisma.empty}`;
  const tz = input.timeZone;
  const [total, pending, kinds, tools, extensions, hours, days] = await Promise.all([
    ctx.prisma.event.count({ where }),
    ctx.prisma.event.count({ where: { ...where, analyzedAt: null } }),
    ctx.prisma.event.groupBy({ by: ["eventType"], where, _count: { _all: true } }),
    ctx.prisma.event.groupBy({
      by: ["tool"],
      where: { ...where, tool: { not: null } },
      _count: { _all: true },
      orderBy: [{ _count: { tool: "desc" } }, { tool: "asc" }],
      take: input.top,
    }),
    ctx.prisma.event.groupBy({
      by: ["fileExtension"],
      where: { ...where, fileExtension: { not: null } },
      _count: { _all: true },
      orderBy: [{ _count: { fileExtension: "desc" } }, { fileExtension: "asc" }],
      take: input.top,
    }),
    ctx.prisma.$queryRaw<{ hour: number; count: number }[]>`
      SELECT extract(hour FROM occurred_at AT TIME ZONE ${tz})::int AS hour, count(*)::int AS count
      FROM events WHERE ${sqlWhere} GROUP BY 1 ORDER BY 1`.catch(zoneRefused),
    ctx.prisma.$queryRaw<{ day: string; count: number }[]>`
      SELECT to_char(occurred_at AT TIME ZONE ${tz}, 'YYYY-MM-DD') AS day, count(*)::int AS count
      FROM events WHERE ${sqlWhere} GROUP BY 1 ORDER BY 1 DESC LIMIT ${MAX_DAYS}`.catch(zoneRefused),
  ]);
  const perHour = new Map(hours.map((h) => [h.hour, h.count]));
  return {
    total,
    pending,
    byType: kinds
      .map((k) => ({ type: k.eventType, count: k._count._all }))
      .sort((a, b) => b.count - a.count || a.type.localeCompare(b.type)),
    topTools: tools.map((t) => ({ name: t.tool as string, count: t._count._all })),
    topExtensions: extensions.map((e) => ({ name: e.fileExtension as string, count: e._count._all })),
    byHour: Array.from({ length: 24 }, (_, hour) => ({ hour, count: perHour.get(hour) ?? 0 })),
    byDay: days.reverse().map((d) => ({ date: d.day, count: d.count })),
  };
}
