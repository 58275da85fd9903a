// The events filter, as Prisma conditions: one definition for the events connection and for
// exports (whose filter travels inside the signed download link).
import type { Prisma } from "../../generated/prisma/client.ts";
import { decodeId } from "../../schema/globalId.ts";
import { containsText } from "../../validation.ts";
import { type EventKind, eventTypeOf } from "./eventInput.ts";

export interface EventFilterInput {
  kinds?: EventKind[] | null;
  customType?: string | null;
  tool?: string | null;
  extension?: string | null;
  userId?: string | number | null;
  since?: Date | string | null;
  until?: Date | string | null;
  search?: string | null;
}

export function eventWhere(filter: EventFilterInput | null | undefined): Prisma.EventWhereInput {
  if (!filter) return {};
  const types = filter.kinds?.map((k) => (k === "CUSTOM" ? null : eventTypeOf(k))).filter((k) => k !== null);
  const search = filter.search?.trim();
  return {
    AND: [
      filter.kinds
        ? {
            OR: [
              ...(types?.length ? [{ eventType: { in: types } }] : []),
              ...(filter.kinds.includes("CUSTOM") ? [{ eventType: { startsWith: "custom:" } }] : []),
            ],
          }
        : {},
      filter.customType ? { eventType: eventTypeOf("CUSTOM", filter.customType) } : {},
      filter.tool ? { tool: filter.tool.toLowerCase() } : {},
      filter.extension ? { fileExtension: filter.extension.toLowerCase() } : {},
      filter.userId ? { userId: decodeId(String(filter.userId), "User").id } : {},
      filter.since || filter.until
        ? { occurredAt: { gte: filter.since ?? undefined, lt: filter.until ?? undefined } }
        : {},
      search
        ? {
            OR: [
              { filePath: containsText(search, "filter.search") },
              { operation: containsText(search, "filter.search") },
            ],
          }
        : {},
    ],
  };
}
