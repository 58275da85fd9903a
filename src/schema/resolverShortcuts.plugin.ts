// Two kinds of field resolve straight from their row, in front of the wrappers other plugins put
// around them, when the row has what they read. Both are fields of every row of a list, so
// their per-field cost is multiplied by the page: on the deep read (20 workflows x 5
// executions) they made up about a third of the API's CPU.
//
// - A leaf field of a Prisma object that only reads columns of its row (every `t.expose*` on
//   an object defined with `select`, and `t.field({ select: { a: true } })`). plugin-prisma
//   wraps each in a lookup of the plan that loaded the row (a path string built and looked up
//   per field per row, and a WeakMap entry for the field's children). A leaf has no children,
//   and a row that carries the columns was loaded with them, so that lookup can only ever end
//   in the resolver. A row without them (loaded some other way) still goes through
//   plugin-prisma, which loads what is missing.
// - The global `id` of a node. plugin-relay's `globalID` resolver is an `async` function, so
//   every node's id is a promise and every object of a page completes asynchronously
//   (Promise.all plus a race with the abort signal per object). The node's own id serializer
//   (which the node config keeps) is synchronous: the id is encoded at once, the same way.
//
// Two plugins because Pothos composes resolvers with reduceRight: `resolverShortcutsInner`
// (listed after Prisma) sees the resolver plugin-prisma is about to wrap and keeps it;
// `resolverShortcutsOuter` (listed right after ScopeAuth) sees the wrapped one and puts the
// direct path in front of it. Scope checks stay outermost either way.
import SchemaBuilder, { BasePlugin, isThenable, type PothosOutputFieldConfig, type SchemaTypes } from "@pothos/core";
import { encodeGlobalID } from "@pothos/plugin-relay";
import type { GraphQLFieldResolver } from "graphql";

type Resolver = GraphQLFieldResolver<unknown, object, object>;
type AnyFieldConfig = PothosOutputFieldConfig<SchemaTypes>;

/** The resolver each leaf-column field had before plugin-prisma wrapped it, by field config. */
const unwrapped = new WeakMap<object, Resolver>();

/** The columns a field reads when its selection is a flat `{ column: true }` and its type a leaf. */
function leafColumns(fieldConfig: AnyFieldConfig): string[] | null {
  if (fieldConfig.kind !== "PrismaObject") return null;
  const type = fieldConfig.type.kind === "List" ? fieldConfig.type.type : fieldConfig.type;
  if (type.kind !== "Scalar" && type.kind !== "Enum") return null;
  const select = fieldConfig.extensions?.pothosPrismaSelect;
  if (typeof select !== "object" || select === null) return null;
  const columns = Object.keys(select);
  const flat = columns.length > 0 && columns.every((c) => (select as Record<string, unknown>)[c] === true);
  return flat ? columns : null;
}

/** A column Prisma selected is on the row (null when NULL); one it did not select is absent. */
function carries(row: unknown, columns: string[]): boolean {
  if (typeof row !== "object" || row === null) return false;
  for (const column of columns) if ((row as Record<string, unknown>)[column] === undefined) return false;
  return true;
}

class ResolverShortcutsInner<Types extends SchemaTypes> extends BasePlugin<Types> {
  override wrapResolve(resolver: Resolver, fieldConfig: PothosOutputFieldConfig<Types>): Resolver {
    if (leafColumns(fieldConfig as AnyFieldConfig)) unwrapped.set(fieldConfig, resolver);
    return resolver;
  }
}

class ResolverShortcutsOuter<Types extends SchemaTypes> extends BasePlugin<Types> {
  override wrapResolve(resolver: Resolver, fieldConfig: PothosOutputFieldConfig<Types>): Resolver {
    return this.nodeId(resolver, fieldConfig) ?? this.leaf(resolver, fieldConfig) ?? resolver;
  }

  private leaf(resolver: Resolver, fieldConfig: PothosOutputFieldConfig<Types>): Resolver | null {
    const direct = unwrapped.get(fieldConfig);
    const columns = direct && leafColumns(fieldConfig as AnyFieldConfig);
    if (!direct || !columns) return null;
    return (parent, args, ctx, info) =>
      carries(parent, columns) ? direct(parent, args, ctx, info) : resolver(parent, args, ctx, info);
  }

  /** A node's `id` (plugin-relay adds it, and keeps the node's options on the type config). */
  private nodeId(resolver: Resolver, fieldConfig: PothosOutputFieldConfig<Types>): Resolver | null {
    const idField = this.builder.options.relay?.idFieldName ?? "id";
    if (fieldConfig.name !== idField || this.builder.options.relay?.encodeGlobalID) return null;
    const typeConfig = this.buildCache.getTypeConfig(fieldConfig.parentType);
    if (!typeConfig.extensions || !Object.hasOwn(typeConfig.extensions, "pothosParseGlobalID")) return null;
    const serialize = (typeConfig.pothosOptions as { id?: { resolve?: unknown } }).id?.resolve;
    if (typeof serialize !== "function") return null;
    const typename = typeConfig.name;
    return (parent, args, ctx, info) => {
      const id: unknown = serialize(parent, args, ctx, info);
      // An id that is still being computed, or none: plugin-relay's own resolver decides.
      if (id === null || id === undefined || isThenable(id)) return resolver(parent, args, ctx, info);
      return encodeGlobalID(typename, String(id));
    };
  }
}

declare global {
  export namespace PothosSchemaTypes {
    export interface Plugins<Types extends SchemaTypes> {
      resolverShortcutsInner: ResolverShortcutsInner<Types>;
      resolverShortcutsOuter: ResolverShortcutsOuter<Types>;
    }
  }
}

SchemaBuilder.registerPlugin("resolverShortcutsInner", ResolverShortcutsInner);
SchemaBuilder.registerPlugin("resolverShortcutsOuter", ResolverShortcutsOuter);

/** Listed after PrismaPlugin. */
export const ResolverShortcutsInnerPlugin = "resolverShortcutsInner" as const;
/** Listed right after ScopeAuthPlugin. */
export const ResolverShortcutsOuterPlugin = "resolverShortcutsOuter" as const;
