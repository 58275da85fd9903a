// Requests Yoga itself parses (GET, multipart, application/graphql+json) fail in its parsers
// in ways that are the client's doing: `?variables={nope` throws a bare SyntaxError (a 500 as
// it stood), a multipart `operations` that is not JSON a GraphQLError without a code (which
// the mapping took for a validation error, answered 200), an invalid JSON body a 400 that
// quoted the body back in `extensions.originalError`. Each becomes a 400 (413 when a form
// field is over the size limit) with a stable code. The JSON fast path parses its own bodies.
import { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";

export function useRequestParseErrors(): Plugin {
  return {
    onRequestParse({ requestParser, setRequestParser }) {
      if (!requestParser) return;
      setRequestParser(async (request) => {
        try {
          return await requestParser(request);
        } catch (error) {
          throw asRequestError(error);
        }
      });
    },
  };
}

function asRequestError(error: unknown): unknown {
  if (error instanceof GraphQLError) {
    // Busboy's field limit: a body over MAX_BODY_BYTES, as the byte limit answers elsewhere.
    if (/Field value size exceeded/.test(error.message)) return coded(error.message, "PAYLOAD_TOO_LARGE", 413);
    if (!error.extensions.code) return coded(error.message, "BAD_REQUEST", 400);
    // Yoga adds the JSON parser's own message, which quotes the body back: the message says enough.
    const { originalError: quoted, ...extensions } = error.extensions;
    return quoted === undefined ? error : new GraphQLError(error.message, { extensions });
  }
  // JSON.parse of the `variables` or `extensions` parameter of a GET (or of a form field).
  if (error instanceof SyntaxError) return coded("A request parameter is not valid JSON.", "BAD_REQUEST", 400);
  return error;
}

function coded(message: string, code: string, status: number) {
  return new GraphQLError(message, { extensions: { code, http: { status } } });
}
