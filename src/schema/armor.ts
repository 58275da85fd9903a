// Operation limits from config, on HTTP and WebSocket alike (they run in parse and validate).
// graphql-armor's rejections get stable codes so that clients can tell them apart.
import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import { GraphQLError, type ValidationContext } from "graphql";
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

export function armorPlugin(limits: Config["limits"], production: boolean) {
  return EnvelopArmorPlugin({
    maxTokens: { n: limits.maxTokens, ...rejectWith("TOKEN_LIMIT_EXCEEDED") },
    maxDepth: { n: limits.maxDepth, ...rejectWith("DEPTH_LIMIT_EXCEEDED") },
    maxAliases: { n: limits.maxAliases, ...rejectWith("ALIAS_LIMIT_EXCEEDED") },
    maxDirectives: { n: limits.maxDirectives, ...rejectWith("DIRECTIVE_LIMIT_EXCEEDED") },
    costLimit: { maxCost: limits.maxCost, ...rejectWith("COST_LIMIT_EXCEEDED") },
    // "Did you mean …" helps people in GraphiQL and probing clients alike: development only.
    blockFieldSuggestion: { enabled: production },
  });
}
