// Operation limits from config, on HTTP and WebSocket alike (they run in parse and validate).
// graphql-armor's rejections get stable codes so that clients can tell them apart.
import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import { GraphQLError, Lexer, Source, TokenKind, type ValidationContext } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { Config } from "../config.ts";

function rejectWith(code: string) {
  return {
    propagateOnRejection: false,
    exposeLimits: true,
    onReject: [
      (ctx: ValidationContext | null, error: GraphQLError) => {
        const coded = new GraphQLError(error.message.replace(/^Syntax Error: /, ""), { extensions: { code } });
        // Validation rules report through their context; the token limit runs in the parser, which has none.
        if (ctx) ctx.reportError(coded);
        else throw coded;
      },
    ],
  };
}

export function armorPlugin(limits: Config["limits"]): Plugin {
  const armor = EnvelopArmorPlugin({
    maxTokens: { n: limits.maxTokens, ...rejectWith("TOKEN_LIMIT_EXCEEDED") },
    maxDepth: { n: limits.maxDepth, ...rejectWith("DEPTH_LIMIT_EXCEEDED") },
    maxAliases: { n: limits.maxAliases, ...rejectWith("ALIAS_LIMIT_EXCEEDED") },
    maxDirectives: { n: limits.maxDirectives, ...rejectWith("DIRECTIVE_LIMIT_EXCEEDED") },
    // Cost is measured once, with the request's variables, by server/limitsPlugin.ts (MAX_COST).
    costLimit: { enabled: false },
    // Off here: it hid field suggestions only; server/suggestions.ts hides every kind.
    blockFieldSuggestion: { enabled: false },
  });
  // Selections (an inline fragment may add a level to each), one argument list, then a value.
  const maxNesting = 2 * limits.maxDepth + limits.maxInputDepth + 4;
  const nesting = nestingLimit(maxNesting, limits.maxTokens);
  return {
    onPluginInit({ addPlugin }) {
      // After armor: its token limit replaces the parse function outright; this one wraps
      // whatever it finds, so it must come last to run first.
      addPlugin(armor as Plugin);
      addPlugin(nesting);
    },
  };
}

const OPENING = new Set<string>([TokenKind.BRACE_L, TokenKind.BRACKET_L, TokenKind.PAREN_L]);
const CLOSING = new Set<string>([TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R]);

/**
 * graphql-js parses nesting by recursion, and so do armor's depth and cost rules: a document
 * nested a few thousand levels (within a raised MAX_TOKENS) overflows the stack before any
 * limit answers. Its brackets are counted first, by the lexer, in a loop, over no more tokens
 * than the parser would read.
 */
function nestingLimit(maxNesting: number, maxTokens: number): Plugin {
  return {
    // Wraps the parse function rather than checking here: a document from Yoga's parser cache
    // is never parsed again, so it is not lexed again either.
    onParse({ parseFn, setParseFn }) {
      setParseFn((source, options) => {
        const body = typeof source === "string" ? source : source.body;
        if (deeperThan(body, maxNesting, maxTokens)) {
          throw new GraphQLError(`The document nests deeper than ${maxNesting} levels.`, {
            extensions: { code: "DEPTH_LIMIT_EXCEEDED" },
          });
        }
        return parseFn(source, options);
      });
    },
  };
}

function deeperThan(body: string, maxNesting: number, maxTokens: number): boolean {
  // Most documents hold fewer brackets than the limit in all: no need to lex them.
  let brackets = 0;
  for (let i = 0; i < body.length && brackets <= maxNesting; i++) {
    const c = body.charCodeAt(i);
    if (c === 0x7b || c === 0x5b || c === 0x28) brackets++;
  }
  if (brackets <= maxNesting) return false;
  const lexer = new Lexer(new Source(body));
  let depth = 0;
  try {
    for (let n = 0, token = lexer.advance(); token.kind !== TokenKind.EOF && n <= maxTokens; n++) {
      if (OPENING.has(token.kind) && ++depth > maxNesting) return true;
      if (CLOSING.has(token.kind)) depth--;
      token = lexer.advance();
    }
  } catch {
    // A syntax error: the parser reports it.
  }
  return false;
}
