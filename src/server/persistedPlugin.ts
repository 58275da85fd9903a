// Persisted documents on Yoga's own handler (GET, SSE, multipart, other media types): the
// fast path and graphql-ws call the same resolver on their params (fastPath.ts, ws.ts).
import { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { AppDeps } from "../context.ts";
import { callerKind } from "../features/auth/principal.ts";

export function usePersistedDocuments(deps: Pick<AppDeps, "persisted">): Plugin {
  const { persisted } = deps;
  return {
    onPluginInit({ addPlugin }) {
      // Registration after validation: an envelop hook, so every path registers alike.
      addPlugin(persisted.plugin() as Plugin);
    },
    async onParams({ params, request, setParams }) {
      const headers = request.headers;
      // Yoga's GET parser keeps only query, variables, operationName and extensions.
      const documentId = request.method === "GET" ? new URL(request.url).searchParams.get("documentId") : undefined;
      const sent = documentId ? { ...params, documentId } : params;
      const resolved = await persisted.resolve(
        sent,
        callerKind(headers.get("authorization"), headers.get("x-api-key")),
      );
      // Thrown, not set as the result: the hooks after this one (Yoga's check that a query is
      // there) would otherwise run on and answer with their own error.
      if (resolved instanceof GraphQLError) throw resolved;
      if (resolved !== undefined && resolved !== params.query) setParams({ ...params, query: resolved });
    },
  };
}
