import { builder } from "./builder.ts";

export const SortDirectionRef = builder.enumType("SortDirection", { values: ["ASC", "DESC"] as const });

export type SortDirection = "ASC" | "DESC";

/** Prisma's spelling, with the id as the tie-breaker every cursor needs. */
export function orderOf<F extends string>(field: F, direction: SortDirection | null | undefined) {
  const dir = direction === "ASC" ? ("asc" as const) : ("desc" as const);
  return [{ [field]: dir } as { [K in F]: "asc" | "desc" }, { id: dir }];
}
