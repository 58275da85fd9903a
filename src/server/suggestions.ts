// "Did you mean …" hints, removed from every error when GRAPHQL_SUGGESTIONS is off (the
// production default): they name fields, arguments, types and enum values a caller never
// asked for, so that a schema with introspection off can still be read off its errors.
// graphql-js adds them in validation (fields, arguments, types, enum literals, sub-selections)
// and the executor in variable coercion (enum values, input fields); armor's
// blockFieldSuggestion only knew the first shape. An envelop plugin: every transport.
import { type ExecutionResult, GraphQLError } from "graphql";
import { isAsyncIterable, type Plugin } from "graphql-yoga";
import { withMessage } from "../schema/errors.ts";

// didYouMean() appends " Did you mean X?" (X: quoted names, "the enum value …", "to use an
// inline fragment on …"); ScalarLeafsRule says `Did you mean "field { ... }"?`. Names never
// hold a "?", so the hint ends at the first one.
const HINT = /\s*Did you mean\b[^?]*\?/g;

export function withoutSuggestions(message: string): string {
  return message.includes("Did you mean") ? message.replace(HINT, "") : message;
}

function hidden(error: GraphQLError): GraphQLError {
  const message = withoutSuggestions(error.message);
  return message === error.message ? error : withMessage(error, message);
}

type Settable = { result: ExecutionResult; setResult: (result: ExecutionResult) => void };

function inResult({ result, setResult }: Settable) {
  if (result.errors?.some((e) => e.message.includes("Did you mean")))
    setResult({ ...result, errors: result.errors.map(hidden) });
}

/** A single result, or each result of a stream. */
function onResult({ result, setResult }: { result: unknown; setResult: (result: ExecutionResult) => void }) {
  if (isAsyncIterable(result)) return { onNext: inResult };
  inResult({ result: result as ExecutionResult, setResult });
  return undefined;
}

export function useHiddenSuggestions(): Plugin {
  return {
    // Runs on results from Yoga's validation cache too: its hook stores what validation gave
    // and hands it back, and this one rewrites it every time.
    onValidate:
      () =>
      ({ result, setResult }) => {
        if (result.some((e) => e.message.includes("Did you mean")))
          setResult(result.map((e) => (e instanceof GraphQLError ? hidden(e) : e)));
      },
    onExecute: () => ({ onExecuteDone: onResult }),
    onSubscribe: () => ({ onSubscribeResult: onResult }),
  };
}
