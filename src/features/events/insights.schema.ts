import { builder } from "../../schema/builder.ts";
import { decodeId } from "../../schema/globalId.ts";
import { OrganizationRef, orgPermission } from "../organizations/organization.schema.ts";
import { EventKindRef } from "./event.schema.ts";
import { kindOf } from "./eventInput.ts";
import { eventInsights } from "./insights.service.ts";

type Insights = Awaited<ReturnType<typeof eventInsights>>;

const TypeCount = builder.objectRef<Insights["byType"][number]>("EventTypeCount").implement({
  fields: (t) => ({
    type: t.exposeString("type"),
    kind: t.field({ type: EventKindRef, resolve: (c) => kindOf(c.type) }),
    count: t.exposeInt("count"),
  }),
});
const NameCount = builder.objectRef<{ name: string; count: number }>("NameCount").implement({
  fields: (t) => ({ name: t.exposeString("name"), count: t.exposeInt("count") }),
});
const HourCount = builder.objectRef<{ hour: number; count: number }>("HourCount").implement({
  fields: (t) => ({
    hour: t.exposeInt("hour", { description: "0-23, in the time zone asked for." }),
    count: t.exposeInt("count"),
  }),
});
const DayCount = builder.objectRef<{ date: string; count: number }>("DayCount").implement({
  fields: (t) => ({
    date: t.exposeString("date", { description: "YYYY-MM-DD in the time zone asked for." }),
    count: t.exposeInt("count"),
  }),
});

const EventInsightsRef = builder.objectRef<Insights>("EventInsights").implement({
  fields: (t) => ({
    total: t.exposeInt("total"),
    pending: t.exposeInt("pending", { description: "Events the pattern engine has not counted yet." }),
    byType: t.field({ type: [TypeCount], resolve: (i) => i.byType }),
    topTools: t.field({ type: [NameCount], resolve: (i) => i.topTools }),
    topExtensions: t.field({ type: [NameCount], resolve: (i) => i.topExtensions }),
    byHour: t.field({ type: [HourCount], description: "All 24 hours.", resolve: (i) => i.byHour }),
    byDay: t.field({
      type: [DayCount],
      description: "Days with events, oldest first (up to 1000).",
      resolve: (i) => i.byDay,
    }),
  }),
});

builder.prismaObjectField(OrganizationRef, "eventInsights", (t) =>
  t.field({
    type: EventInsightsRef,
    description: "Counts over your events (owners and admins: everyone's, or one member's).",
    authScopes: orgPermission("read"),
    args: {
      since: t.arg({ type: "DateTime", required: false }),
      until: t.arg({ type: "DateTime", required: false }),
      userId: t.arg.id({ required: false }),
      timeZone: t.arg.string({ required: false, defaultValue: "UTC" }),
      top: t.arg.int({ required: false, defaultValue: 10, description: "How many tools and extensions (1-100)." }),
    },
    resolve: (org, args, ctx) =>
      eventInsights(ctx, {
        organizationId: org.id,
        userId: args.userId ? decodeId(String(args.userId), "User").id : null,
        since: args.since,
        until: args.until,
        timeZone: args.timeZone ?? "UTC",
        top: Math.min(Math.max(args.top ?? 10, 1), 100),
      }),
  }),
);
