// What each field costs, for @pothos/plugin-complexity: 1, and what is selected under a field
// is counted as many times as the field may return items. A connection returns a page of
// `first` (or `last`) items, at most the page size its resolver would fetch (Pothos's defaults,
// 20 and at most 100, which no connection here overrides); its edges are that page, not a
// further multiple. Any other list of objects counts 10, or the number of ids it is given.
import { getConnectionPageSize } from "@pothos/core";
import type { FieldComplexityValue } from "@pothos/plugin-complexity";
import {
  type GraphQLField,
  type GraphQLOutputType,
  getNamedType,
  isListType,
  isNonNullType,
  isObjectType,
} from "graphql";

/** A plain list's items, when nothing says how many: the plugin's own default. */
export const LIST_MULTIPLIER = 10;

export function fieldComplexity<Ctx>(args: Record<string, unknown>, _ctx: Ctx, field: GraphQLField<unknown, Ctx>) {
  if (isConnection(field)) return { field: 1, multiplier: pageSize(args) } satisfies FieldComplexityValue;
  if (!isList(field.type)) return 1;
  if (isEdgeList(field)) return { field: 1, multiplier: 1 };
  return { field: 1, multiplier: Array.isArray(args.ids) ? args.ids.length : LIST_MULTIPLIER };
}

/** The items a page holds, as the resolver computes it; never negative (a negative `first` is refused when run). */
function pageSize(args: Record<string, unknown>) {
  const count = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : undefined);
  const { expectedSize } = getConnectionPageSize({ args: { first: count(args.first), last: count(args.last) } });
  return Math.max(0, expectedSize);
}

function isList(type: GraphQLOutputType): boolean {
  return isListType(isNonNullType(type) ? type.ofType : type);
}

function isConnection<Ctx>(field: GraphQLField<unknown, Ctx>) {
  const type = getNamedType(field.type);
  return (
    isObjectType(type) &&
    Object.hasOwn(type.getFields(), "edges") &&
    Object.hasOwn(type.getFields(), "pageInfo") &&
    field.args.some((a) => a.name === "first")
  );
}

/** A connection's `edges`: its items were counted by the connection field above it. */
function isEdgeList<Ctx>(field: GraphQLField<unknown, Ctx>) {
  const type = getNamedType(field.type);
  return (
    field.name === "edges" &&
    isObjectType(type) &&
    Object.hasOwn(type.getFields(), "node") &&
    Object.hasOwn(type.getFields(), "cursor")
  );
}
