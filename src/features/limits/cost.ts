// An operation's cost (schema/complexity.ts), measured once per request with its own variables
// and operation name, on a document already validated. Not a rule of Yoga's validation: Yoga
// caches validation by document, and a cost depends on the variables (`first: $n`).
import { createComplexityRule } from "@pothos/plugin-complexity";
import { type DocumentNode, type GraphQLSchema, getOperationAST, getVariableValues, validate } from "graphql";

/**
 * The cost, or undefined when it cannot be measured because the variables do not fit the
 * operation (execution then reports that). An argument the schema refuses to read (a malformed
 * global id) throws its own error: the operation cannot be measured, so it is not run either.
 */
export function operationCost(args: {
  schema: GraphQLSchema;
  document: DocumentNode;
  variableValues?: Record<string, unknown> | null;
  operationName?: string | null;
  contextValue: object;
}): number | undefined {
  // The complexity rule coerces the variables with no cap on errors, each of which prints the
  // whole input: an object of 15,000 unknown fields held the event loop for minutes. One error
  // is enough to know the variables do not fit.
  const operation = getOperationAST(args.document, args.operationName);
  if (!operation) return undefined;
  const coerced = getVariableValues(args.schema, operation.variableDefinitions ?? [], args.variableValues ?? {}, {
    maxErrors: 1,
  });
  if (coerced.errors) return undefined;
  let cost: number | undefined;
  const rule = createComplexityRule({
    context: args.contextValue,
    variableValues: args.variableValues ?? {},
    operationName: args.operationName,
    onResult: (result) => {
      cost = result.complexity;
    },
  });
  validate(args.schema, args.document, [rule]);
  if (cost === undefined) return undefined;
  // Multipliers are bounded (page sizes, list lengths), but a deep enough document could still
  // reach numbers past any budget: they are simply the most any budget can hold.
  return Number.isFinite(cost) ? Math.max(0, Math.ceil(cost)) : Number.MAX_SAFE_INTEGER;
}
