// Who may read the schema through __schema and __type (INTROSPECTION): everyone ("public"),
// signed-in users and API keys ("authenticated", the production default: partners generate
// their SDKs), or nobody ("off"). Decided when the operation is about to run, from the
// principal the context verified: a validation rule would be cached by Yoga per document and
// rule name, one caller's verdict served to the next. `__typename` is not introspection.
import { type DocumentNode, GraphQLError, getOperationAST, Kind, type SelectionSetNode } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { Config } from "../config.ts";
import type { Context } from "../context.ts";

const SCHEMA_FIELDS = new Set(["__schema", "__type"]);

/**
 * Whether the operation that runs selects __schema or __type, at any depth, aliased or not,
 * through fragments and inline fragments. Other operations of the document do not count.
 */
export function introspects(document: DocumentNode, operationName?: string | null): boolean {
  const operation = getOperationAST(document, operationName);
  if (!operation) return false;
  const fragments = new Map<string, SelectionSetNode>();
  for (const d of document.definitions)
    if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d.selectionSet);
  // Iterative, each fragment once: documents are depth-limited already, but a cycle of
  // fragments (invalid, yet this may see it first) must not loop.
  const seen = new Set<string>();
  const work: SelectionSetNode[] = [operation.selectionSet];
  for (let set = work.pop(); set; set = work.pop()) {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        if (SCHEMA_FIELDS.has(selection.name.value)) return true;
        if (selection.selectionSet) work.push(selection.selectionSet);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        work.push(selection.selectionSet);
      } else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) work.push(fragment);
      }
    }
  }
  return false;
}

export function useIntrospectionPolicy(policy: Config["introspection"]): Plugin<Context> {
  if (policy === "public") return {};
  const refuse = (args: { document: DocumentNode; operationName?: string | null; contextValue: unknown }) => {
    if (!introspects(args.document, args.operationName)) return null;
    if (policy === "authenticated" && (args.contextValue as Partial<Context>).principal) return null;
    return {
      errors: [
        new GraphQLError(
          policy === "off"
            ? "Introspection is disabled on this server."
            : "Introspection is available to signed-in users and API keys only.",
          { extensions: { code: "INTROSPECTION_DISABLED", http: { status: 403 } } },
        ),
      ],
    };
  };
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const refusal = refuse(args);
      if (refusal) setResultAndStopExecution(refusal);
    },
    // A subscription's fields cannot be __schema, but a field returning Query could hold it.
    onSubscribe({ args, setResultAndStopExecution }) {
      const refusal = refuse(args);
      if (refusal) setResultAndStopExecution(refusal);
    },
  };
}
