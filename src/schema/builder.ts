// The one Pothos builder. Plugin order matters: scope-auth wraps every resolver first, the resolver
// shortcuts sit around plugin-prisma (see resolverShortcuts.plugin.ts).
import SchemaBuilder from "@pothos/core";
import ComplexityPlugin from "@pothos/plugin-complexity";
import PrismaPlugin from "@pothos/plugin-prisma";
import RelayPlugin from "@pothos/plugin-relay";
import ScopeAuthPlugin from "@pothos/plugin-scope-auth";
import { DateTimeResolver, JSONObjectResolver, JSONResolver, SafeIntResolver } from "graphql-scalars";
import type { Context } from "../context.ts";
import { ForbiddenError, UnauthenticatedError } from "../errors.ts";
import type PrismaTypes from "../generated/pothos-types.ts";
import { getDatamodel } from "../generated/pothos-types.ts";
import { fieldComplexity } from "./complexity.ts";
import { decodeId } from "./globalId.ts";
import { ResolverShortcutsInnerPlugin, ResolverShortcutsOuterPlugin } from "./resolverShortcuts.plugin.ts";

/** How many ids one `nodes` query may name. */
const MAX_NODE_IDS = 100;

export const builder = new SchemaBuilder<{
  Context: Context;
  PrismaTypes: PrismaTypes;
  AuthScopes: {
    /** Anyone, signed in or not: said explicitly, so that every field declares its access. */
    public: boolean;
    /** A signed-in user or an API key. */
    authenticated: boolean;
    /** A signed-in user: account and credential operations are not for API keys. */
    user: boolean;
  };
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSONObject: { Input: Record<string, unknown>; Output: unknown };
    JSON: { Input: unknown; Output: unknown };
    SafeInt: { Input: number; Output: number | bigint };
    File: { Input: File; Output: never };
  };
}>({
  plugins: [
    ScopeAuthPlugin,
    ResolverShortcutsOuterPlugin,
    PrismaPlugin,
    ResolverShortcutsInnerPlugin,
    RelayPlugin,
    ComplexityPlugin,
  ],
  defaultFieldNullability: false,
  // Costs only: each operation is measured and limited once, with its variables, by
  // features/limits (MAX_COST and the budgets), not again by each root resolver.
  complexity: { fieldComplexity, disabled: true },
  scopeAuth: {
    authorizeOnSubscribe: true,
    // A type's scopes are checked once per object (in isTypeOf) rather than in a wrapper around
    // each of its fields: the answer is the same for every field of the object, and a page of
    // 100 rows has hundreds of fields. A refused object fails the field that returns it.
    runScopesOnType: true,
    authScopes: (ctx) => ({
      public: true,
      authenticated: ctx.principal !== null,
      user: ctx.principal?.kind === "user",
    }),
    unauthorizedError: (_parent, ctx) =>
      ctx.principal
        ? new ForbiddenError(
            ctx.principal.kind === "apiKey" ? "This needs a signed-in user; API keys cannot do it." : undefined,
          )
        : new UnauthenticatedError(),
  },
  prisma: {
    client: (ctx) => ctx.prisma,
    dmmf: getDatamodel(),
    // Count only when a client selects totalCount.
    filterConnectionTotalCount: true,
  },
  relay: {
    clientMutationId: "omit",
    cursorType: "String",
    decodeGlobalID: (globalId) => decodeId(globalId),
    nodeQueryOptions: { authScopes: { public: true } },
    nodesQueryOptions: {
      authScopes: { public: true },
      // Each id is a lookup: a bounded page of them, refused before any is loaded (server/inputGuard.ts reads maxItems).
      args: {
        ids: { description: `At most ${MAX_NODE_IDS} ids.`, extensions: { maxItems: MAX_NODE_IDS } },
      },
    },
  },
});

builder.addScalarType("DateTime", DateTimeResolver);
builder.addScalarType("JSONObject", JSONObjectResolver);
builder.addScalarType("JSON", JSONResolver);
// Byte counts are BigInt columns; every value the API stores fits in 2^53.
builder.addScalarType("SafeInt", SafeIntResolver, {
  serialize: (value) => SafeIntResolver.serialize(typeof value === "bigint" ? Number(value) : value),
});
// Multipart uploads (the GraphQL multipart request spec): Yoga puts a WHATWG File in the variables.
builder.scalarType("File", {
  description: "A file sent as part of a multipart request.",
  serialize: () => {
    throw new Error("File is an input-only scalar.");
  },
  // Yoga's File is its fetch ponyfill's, not the global class: recognised by shape.
  parseValue: (value) => {
    const file = value as Partial<File> | null;
    if (file && typeof file.stream === "function" && typeof file.name === "string") return value as File;
    throw new TypeError("Expected a file sent as a multipart upload.");
  },
});
builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});

/** The builder's type parameters, for helpers that take or return its refs. */
export type PothosTypes = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;
