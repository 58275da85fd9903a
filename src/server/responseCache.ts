// The response cache: a query's answer is kept per caller and reused until something in its
// scope changes. Correctness first:
// - the key holds the document, the variables, the caller (user and session, or API key) and
//   the X-Organization-Id header: an answer never crosses a caller or a tenant;
// - credentials are checked before the cache is asked (the context is built first): a revoked
//   session or key never reads an answer made for it;
// - an answer depends on its caller's scopes: the user and every organization they belong to
//   (an API key: its organization). A change bumps its scopes (infra/responseCache.ts):
//   every committed notice of the live outbox (mutations and background work alike: analysis,
//   executions, imports) bumps its organization, every audited mutation its organization and
//   actor, and retention cleanups their organizations. A removed membership or a role change
//   is a change in the organization, so the member's answers are dead with it.
// - superusers, anonymous callers, answers with errors, and documents that select a field
//   marked `responseCache: false` (live cursors, the scheduler's state) are never kept.
// When the store is unreachable, queries run as if there were no cache; a bump that fails is
// retried, and this instance serves nothing from the cache until it has gone through.
import { createHash } from "node:crypto";
import { type DocumentNode, type GraphQLSchema, getOperationAST, print, visit } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { Context } from "../context.ts";
import type { Logger } from "../infra/logger.ts";
import type { Metrics } from "../infra/metrics.ts";
import type { ResponseStore } from "../infra/responseCache.ts";
import { cachedAnswer } from "./cachedAnswer.ts";

const RETRY_MS = 1_000;

export interface ScopeChange {
  organizations?: Iterable<string | null | undefined>;
  users?: Iterable<string | null | undefined>;
  /** The change's scopes could not be told: every answer is dead. */
  everything?: boolean;
}

/** A scope every answer depends on: bumped when a change's own scopes cannot be told. */
const EVERYTHING = "all";

export interface ResponseCache {
  /** After a change has committed: every answer made under these scopes is dead. */
  invalidate(change: ScopeChange): void;
  /** Bumps still waiting for the store (0 when all went through). */
  pending(): number;
  /** The envelop plugin that answers from the cache and fills it. */
  plugin(schema: GraphQLSchema): Plugin<Context>;
  stop(): void;
}

export function createResponseCache(deps: {
  store: ResponseStore | null;
  logger: Logger;
  maxEntryBytes: number;
  metrics: Metrics;
}): ResponseCache {
  const { store, logger } = deps;
  const waiting = new Set<string>();
  let retry: NodeJS.Timeout | null = null;

  function flush() {
    if (!store || !waiting.size) return;
    const scopes = [...waiting];
    waiting.clear();
    store.bump(scopes).then(
      () => {
        if (!waiting.size && retry) {
          clearInterval(retry);
          retry = null;
          logger.info("response cache: invalidations went through");
        }
      },
      (err: unknown) => {
        for (const s of scopes) waiting.add(s);
        if (!retry) {
          logger.warn(
            { err: (err as Error).message },
            "response cache: invalidation failed; not serving from it until it goes through",
          );
          retry = setInterval(flush, RETRY_MS);
          retry.unref();
        }
      },
    );
  }

  return {
    invalidate(change) {
      if (!store) return;
      for (const id of change.organizations ?? []) if (id) waiting.add(`org:${id}`);
      for (const id of change.users ?? []) if (id) waiting.add(`user:${id}`);
      if (change.everything) waiting.add(EVERYTHING);
      flush();
    },
    pending: () => waiting.size,
    stop() {
      if (retry) clearInterval(retry);
    },
    plugin(schema) {
      const uncacheable = new Set(
        Object.values(schema.getQueryType()?.getFields() ?? {})
          .filter((f) => f.extensions?.responseCache === false)
          .map((f) => f.name),
      );
      // Per parsed document (Yoga caches them): its hash, or null when it must not be kept.
      const documents = new WeakMap<DocumentNode, string | null>();
      const documentKey = (document: DocumentNode) => {
        let key = documents.get(document);
        if (key === undefined) {
          let kept = true;
          visit(document, {
            Field(node) {
              if (uncacheable.has(node.name.value) || node.name.value === "__schema" || node.name.value === "__type")
                kept = false;
            },
          });
          key = kept ? createHash("sha256").update(print(document)).digest("base64url") : null;
          documents.set(document, key);
        }
        return key;
      };
      const counted = deps.metrics.responseCache;

      return {
        async onExecute({ args, setResultAndStopExecution }) {
          if (!store) return;
          const ctx = args.contextValue as Context;
          const principal = ctx.principal;
          const operation = getOperationAST(args.document, args.operationName);
          if (operation?.operation !== "query" || !principal || (principal.kind === "user" && principal.isSuperuser))
            return;
          const doc = documentKey(args.document);
          if (!doc || waiting.size) {
            counted.inc({ result: "skip" });
            return;
          }
          const caller =
            principal.kind === "user" ? `u:${principal.userId}:${principal.sessionId}` : `k:${principal.apiKeyId}`;
          const key = createHash("sha256")
            .update(
              JSON.stringify([
                doc,
                operation.name?.value ?? args.operationName ?? null,
                args.variableValues ?? null,
                caller,
                ctx.requestedOrganizationId,
              ]),
            )
            .digest("base64url");
          let scopes: string[];
          let generations: string[];
          try {
            const hit = await store.get(key);
            if (hit !== null) {
              counted.inc({ result: "hit" });
              setResultAndStopExecution(cachedAnswer(hit));
              return;
            }
            // The caller's own generation first: a membership added while the list below is
            // read bumps it, so an answer that saw the new organization without depending on it
            // is dead on arrival.
            const own = ownScope(principal);
            const [ownGeneration] = await store.generations([own]);
            const organizations = await organizationScopes(ctx);
            scopes = [own, ...organizations];
            generations = [ownGeneration as string, ...(await store.generations(organizations))];
          } catch (err) {
            logger.debug({ err: (err as Error).message }, "response cache unreachable; running the query");
            counted.inc({ result: "skip" });
            return;
          }
          return {
            onExecuteDone({ result }) {
              if (Symbol.asyncIterator in result || result.errors?.length || !result.data) return;
              const body = JSON.stringify({ data: result.data });
              if (Buffer.byteLength(body) > deps.maxEntryBytes) return;
              counted.inc({ result: "miss" });
              store.set(key, scopes, generations, body).catch((err: unknown) => {
                logger.debug({ err: (err as Error).message }, "response cache: answer not kept");
              });
            },
          };
        },
      };
    },
  };
}

function ownScope(principal: NonNullable<Context["principal"]>) {
  return principal.kind === "user" ? `user:${principal.userId}` : `org:${principal.organizationId}`;
}

/** The organizations a caller's answers may show: every one a user belongs to (a key: its own, in ownScope). */
async function organizationScopes(ctx: Context): Promise<string[]> {
  const principal = ctx.principal;
  if (principal?.kind !== "user") return [];
  const memberships = await ctx.prisma.organizationMember.findMany({
    where: { userId: principal.userId },
    select: { organizationId: true },
  });
  return memberships.map((m) => `org:${m.organizationId}`);
}
