// Argument values are checked once, before any field runs, on every transport (Yoga, the fast
// path, graphql-ws and SSE all execute through envelop): how deep they nest, how many values
// they hold, how long each list is, and that every string (and object key) is well-formed
// Unicode. Variables and literals alike, JSON scalars included. Both are walked with explicit
// stacks: a value nested 50,000 levels must be refused, not overflow the code refusing it.
// A refused mutation is still audited: the audit plugin, registered before this one, sees the
// refusal as an error without a path, as it sees variables that do not fit their types.
import {
  type ASTNode,
  BREAK,
  type DocumentNode,
  GraphQLError,
  type GraphQLSchema,
  Kind,
  TypeInfo,
  visit,
  visitWithTypeInfo,
} from "graphql";
import type { Plugin } from "graphql-yoga";
import type { Config } from "../config.ts";
import { ValidationError } from "../errors.ts";
import { toGraphQLError } from "../schema/errors.ts";
import { isWellFormed, storable } from "../text.ts";

type Limits = Pick<Config["limits"], "maxInputDepth" | "maxInputValues" | "maxListItems">;

interface Problem {
  path: string;
  message: string;
  node?: ASTNode;
}

/** An argument whose list has a tighter maximum (`extensions.maxItems`), given by a variable. */
interface ListBound {
  variable: string;
  max: number;
  where: string;
}

/** What a document's own literals allow, once per document (Yoga's parser cache reuses them). */
interface DocumentCheck {
  problem: Problem | null;
  bounds: ListBound[];
  values: number;
}

const WELL_FORMED = "must be well-formed Unicode (no lone surrogates)";

export function useInputGuard(limits: Limits): Plugin {
  const checked = new WeakMap<DocumentNode, DocumentCheck>();
  const refusal = (args: { schema: GraphQLSchema; document: DocumentNode; variableValues?: unknown }) => {
    let document = checked.get(args.document);
    if (!document) {
      document = checkDocument(args.schema, args.document, limits);
      checked.set(args.document, document);
    }
    const problem = document.problem ?? checkVariables(args.variableValues, document, limits);
    if (!problem) return null;
    const error = new ValidationError(`Invalid input: ${problem.path}: ${problem.message}`, [
      { path: problem.path, message: problem.message },
    ]);
    return { errors: [toGraphQLError(new GraphQLError(error.message, { nodes: problem.node, originalError: error }))] };
  };
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const refused = refusal(args);
      if (refused) setResultAndStopExecution(refused);
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const refused = refusal(args);
      if (refused) setResultAndStopExecution(refused);
    },
  };
}

/** The document's literals (arguments and variable defaults), and the arguments with their own list maximum. */
function checkDocument(schema: GraphQLSchema, document: DocumentNode, limits: Limits): DocumentCheck {
  const typeInfo = new TypeInfo(schema);
  const result: DocumentCheck = { problem: null, bounds: [], values: 0 };
  let depth = 0;
  let where = "";
  const refuse = (node: ASTNode, message: string) => {
    result.problem = { path: where, message, node };
    return BREAK;
  };
  const container = (node: ASTNode, items: number) => {
    result.values += 1;
    depth += 1;
    if (depth > limits.maxInputDepth) return refuse(node, `nests deeper than ${limits.maxInputDepth} levels`);
    if (items > limits.maxListItems) return refuse(node, `has ${items} items; at most ${limits.maxListItems}`);
    return undefined;
  };
  const leave = () => {
    depth -= 1;
  };
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      VariableDefinition(node) {
        where = `$${node.variable.name.value} (default)`;
      },
      Argument(node) {
        const owner = typeInfo.getDirective() ? `@${typeInfo.getDirective()?.name}` : typeInfo.getFieldDef()?.name;
        where = `${owner ?? "?"}(${node.name.value}:)`;
        const max = typeInfo.getArgument()?.extensions?.maxItems;
        if (typeof max !== "number") return undefined;
        if (node.value.kind === Kind.VARIABLE) result.bounds.push({ variable: node.value.name.value, max, where });
        else if (node.value.kind === Kind.LIST && node.value.values.length > max)
          return refuse(node, `takes at most ${max} items; got ${node.value.values.length}`);
        return undefined;
      },
      ObjectValue: { enter: (node) => container(node, 0), leave },
      ListValue: { enter: (node) => container(node, node.values.length), leave },
      StringValue(node) {
        result.values += 1;
        return isWellFormed(node.value) ? undefined : refuse(node, WELL_FORMED);
      },
      IntValue: count,
      FloatValue: count,
      BooleanValue: count,
      NullValue: count,
      EnumValue: count,
    }),
  );
  function count() {
    result.values += 1;
  }
  return result;
}

interface Frame {
  value: unknown;
  depth: number;
  key: string | number;
  parent: Frame | null;
}

/** Every variable value, walked depth first with an explicit stack. */
function checkVariables(variables: unknown, document: DocumentCheck, limits: Limits): Problem | null {
  if (variables === null || typeof variables !== "object") return null;
  const vars = variables as Record<string, unknown>;
  for (const bound of document.bounds) {
    // The name comes from the document: an own property only ("constructor" names nothing).
    const value = Object.hasOwn(vars, bound.variable) ? vars[bound.variable] : undefined;
    if (Array.isArray(value) && value.length > bound.max)
      return { path: bound.where, message: `takes at most ${bound.max} items; got ${value.length}` };
  }
  let values = document.values;
  const stack: Frame[] = Object.keys(vars)
    .reverse()
    .map((name) => ({ value: vars[name], depth: 0, key: `$${name}`, parent: null }));
  for (let frame = stack.pop(); frame; frame = stack.pop()) {
    const { value } = frame;
    values += 1;
    if (values > limits.maxInputValues) return at(frame, `holds more than ${limits.maxInputValues} values in all`);
    if (typeof value === "string") {
      if (!isWellFormed(value)) return at(frame, WELL_FORMED);
      continue;
    }
    if (value === null || typeof value !== "object") continue;
    const depth = frame.depth + 1;
    if (depth > limits.maxInputDepth) return at(frame, `nests deeper than ${limits.maxInputDepth} levels`);
    if (Array.isArray(value)) {
      if (value.length > limits.maxListItems)
        return at(frame, `has ${value.length} items; at most ${limits.maxListItems}`);
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], depth, key: i, parent: frame });
      continue;
    }
    // JSON holds plain objects only; anything else (an uploaded File) is a value of its own.
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) continue;
    const keys = Object.keys(value);
    if (values + keys.length > limits.maxInputValues)
      return at(frame, `holds more than ${limits.maxInputValues} values in all`);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i] as string;
      const child = { value: (value as Record<string, unknown>)[key], depth, key, parent: frame };
      if (!isWellFormed(key)) return at(child, `has a key that ${WELL_FORMED}`);
      stack.push(child);
    }
  }
  return null;
}

function at(frame: Frame, message: string): Problem {
  const keys: (string | number)[] = [];
  for (let f: Frame | null = frame; f; f = f.parent) keys.push(f.key);
  // A key that is not well-formed would make the error itself unprintable.
  return {
    path: keys
      .reverse()
      .map((k) => (typeof k === "string" ? storable(k) : k))
      .join("."),
    message,
  };
}
