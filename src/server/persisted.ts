// Persisted operations: which document a request runs when it names one by hash, and which
// callers may send documents of their own. One resolver for every path a request can take
// (the JSON fast path, Yoga's handler for GET, SSE and other media types, graphql-ws).
//
// - Automatic persisted queries, as Apollo's and urql's links speak them: a hash alone runs
//   the document registered under it, or answers PERSISTED_QUERY_NOT_FOUND (the link then
//   sends the text with the hash, which registers it once it validates).
// - Trusted documents: manifests of hash -> document (the SDK's, built by codegen, and the web
//   app's), named by `documentId` or by the same hash. Caller kinds listed in
//   TRUSTED_DOCUMENTS_ONLY may run only these.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { CallerKind, Config } from "../config.ts";
import type { DocumentStore } from "../infra/documentStore.ts";
import type { Logger } from "../infra/logger.ts";
import type { Metrics } from "../infra/metrics.ts";

export interface OperationParams {
  query?: unknown;
  extensions?: unknown;
  documentId?: unknown;
}

const SHA256 = /^[a-f0-9]{64}$/;

export class TrustedDocumentsError extends Error {
  override name = "TrustedDocumentsError";
}

function refusal(message: string, code: string, status: number) {
  return new GraphQLError(message, { extensions: { code, http: { status } } });
}

export function createPersistedDocuments(
  settings: Config["documents"],
  store: DocumentStore,
  logger: Logger,
  metrics: Metrics,
) {
  const trusted = loadManifests(settings.trustedFiles);
  const restricted = new Set<CallerKind>(settings.trustedOnly);
  // Params whose text is to be registered under their hash once the document validates.
  const toRegister = new WeakMap<object, string>();
  logger.info({ trusted: trusted.size, trustedOnly: [...restricted] }, "persisted documents loaded");

  /**
   * The document text to run (undefined: the params name none, left to the transport to
   * refuse as it does any request without a query), or the error to answer with.
   */
  async function resolve(params: OperationParams, kind: CallerKind): Promise<string | undefined | GraphQLError> {
    const answer = await resolveDocument(params, kind);
    // Refused before any envelop hook runs: counted here, as the metrics plugin counts the rest.
    if (answer instanceof GraphQLError) metrics.errors.inc({ code: metrics.errorCode(answer.extensions.code) });
    return answer;
  }

  async function resolveDocument(
    params: OperationParams,
    kind: CallerKind,
  ): Promise<string | undefined | GraphQLError> {
    const hash = requestedHash(params);
    if (hash instanceof GraphQLError) return hash;
    const text = typeof params.query === "string" && params.query !== "" ? params.query : undefined;
    const trustedOnly = restricted.has(kind);
    if (text !== undefined) {
      if (!hash && !trustedOnly) return text;
      const actual = sha256(text);
      if (hash && hash !== actual) {
        return refusal(
          "The document's sha256 does not match the hash sent with it.",
          "PERSISTED_QUERY_HASH_MISMATCH",
          400,
        );
      }
      if (trusted.has(actual)) return text;
      if (trustedOnly) return onlyTrusted(kind);
      if (settings.persistedQueries) toRegister.set(params, actual);
      return text;
    }
    if (!hash) return undefined;
    const document = trusted.get(hash);
    if (document !== undefined) return document;
    if (trustedOnly) return onlyTrusted(kind);
    if (!settings.persistedQueries) {
      // Apollo's link stops sending hashes alone on this message.
      return refusal("PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED", 400);
    }
    // Redis away: the client sends the text next, which runs.
    const stored = await store.get(hash).catch(() => null);
    if (stored !== null) return stored;
    // The message is the protocol: the links retry with the text on exactly this.
    return new GraphQLError("PersistedQueryNotFound", { extensions: { code: "PERSISTED_QUERY_NOT_FOUND" } });
  }

  return {
    resolve,
    /**
     * Registers a document sent with its hash once it has validated, on every path: nothing
     * that cannot run takes space in the store.
     */
    plugin(): Plugin<{ params?: object }> {
      return {
        onValidate({ context }) {
          const params = context.params;
          const hash = params && toRegister.get(params);
          if (!params || !hash) return;
          return ({ valid }) => {
            toRegister.delete(params);
            const text = (params as OperationParams).query as string;
            if (valid)
              store.set(hash, text).catch((err: unknown) => {
                logger.debug({ err: (err as Error).message }, "persisted query not registered");
              });
          };
        },
      };
    },
  };
}

export type PersistedDocuments = ReturnType<typeof createPersistedDocuments>;

function onlyTrusted(kind: CallerKind) {
  return refusal(
    `This API accepts only trusted documents from ${kind === "anonymous" ? "anonymous callers" : kind === "user" ? "signed-in users" : "API keys"}: send a documentId from the published manifest.`,
    "PERSISTED_QUERY_ONLY",
    403,
  );
}

/** The hash a request names: `extensions.persistedQuery` (APQ) or `documentId`. */
function requestedHash(params: OperationParams): string | undefined | GraphQLError {
  const { extensions, documentId } = params;
  if (documentId != null) {
    const id = typeof documentId === "string" ? documentId.replace(/^sha256:/, "") : "";
    if (!SHA256.test(id)) return refusal("documentId must be a sha256 hash (64 hex digits).", "BAD_REQUEST", 400);
    return id;
  }
  const persisted =
    extensions && typeof extensions === "object" && Object.hasOwn(extensions, "persistedQuery")
      ? (extensions as { persistedQuery: unknown }).persistedQuery
      : undefined;
  if (persisted == null) return undefined;
  const { version, sha256Hash } = (typeof persisted === "object" ? persisted : {}) as Record<string, unknown>;
  if (version !== 1) return refusal("PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED", 400);
  if (typeof sha256Hash !== "string" || !SHA256.test(sha256Hash))
    return refusal("persistedQuery.sha256Hash must be 64 hex digits.", "BAD_REQUEST", 400);
  return sha256Hash;
}

function sha256(text: string) {
  return createHash("sha256").update(text).digest("hex");
}

/** Manifests as codegen writes them: { "sha256:<hex>": "<document>" }. Checked, once, at start. */
function loadManifests(files: string[]): Map<string, string> {
  const documents = new Map<string, string>();
  for (const file of files) {
    let manifest: unknown;
    try {
      manifest = JSON.parse(readFileSync(file, "utf8"));
    } catch (err) {
      throw new TrustedDocumentsError(
        `TRUSTED_DOCUMENTS: ${file} could not be read (${(err as Error).message}). Generate the SDK's with \`npm run generate\`, or set TRUSTED_DOCUMENTS="" to trust none.`,
      );
    }
    if (!manifest || typeof manifest !== "object" || Array.isArray(manifest)) {
      throw new TrustedDocumentsError(`TRUSTED_DOCUMENTS: ${file} is not a JSON object of hash -> document.`);
    }
    for (const [key, document] of Object.entries(manifest)) {
      const hash = key.replace(/^sha256:/, "");
      if (typeof document !== "string" || sha256(document) !== hash) {
        throw new TrustedDocumentsError(
          `TRUSTED_DOCUMENTS: ${file} maps ${hash.slice(0, 16)}… to something whose sha256 differs: regenerate it with sha256 hashes.`,
        );
      }
      documents.set(hash, document);
    }
  }
  return documents;
}
