// Headers every HTTP response carries, set at the top of the request handler before anything
// writes (Node merges them with what a handler passes to writeHead; the handler's win).
// Built once from config, not per request.
import type { IncomingMessage } from "node:http";
import type { Plugin } from "graphql-yoga";
import type { Config } from "../config.ts";

/** What the API sends: JSON (and file downloads), never pages that run scripts or belong in frames. */
const COMMON: [string, string][] = [
  ["X-Content-Type-Options", "nosniff"],
  ["Referrer-Policy", "no-referrer"],
  ["X-Frame-Options", "DENY"],
  // CORP is checked for no-cors loads (<script>, <img>) from other sites; the web app's fetches
  // are CORS requests, which it does not affect.
  ["Cross-Origin-Resource-Policy", "same-origin"],
  // Credentials travel in headers and answers are per caller: no cache keeps a copy.
  ["Cache-Control", "no-store"],
];

export function createSecurityHeaders(config: Pick<Config, "hstsMaxAge" | "graphiql">) {
  // Browsers ignore HSTS over plain HTTP (RFC 6797, 8.1), so it is safe to send always when
  // enabled; in production TLS ends at the proxy in front. Without includeSubDomains: the
  // API's host says nothing about its siblings.
  const hsts: [string, string][] =
    config.hstsMaxAge > 0 ? [["Strict-Transport-Security", `max-age=${config.hstsMaxAge}`]] : [];
  const api = new Map([...COMMON, ...hsts, ["Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"]]);
  // GraphiQL's page loads its scripts and styles from a CDN and runs inline ones: only the
  // framing rule of the policy applies to it.
  const graphiql = new Map([...COMMON, ...hsts, ["Content-Security-Policy", "frame-ancestors 'none'"]]);
  return (req: IncomingMessage): Map<string, string> => (config.graphiql && rendersGraphiQL(req) ? graphiql : api);
}

/** Yoga's own test (shouldRenderGraphiQL): a GET of the endpoint asking for HTML. */
function rendersGraphiQL(req: IncomingMessage): boolean {
  if (req.method !== "GET" || !req.headers.accept?.includes("text/html")) return false;
  const path = req.url?.split("?")[0];
  return path === "/graphql" || path === "/graphql/";
}

/**
 * Yoga answers SSE with its own `Cache-Control: no-cache` (which would win over the one set
 * above): every answer of this API is per caller, and none may be stored.
 */
export function useNoStore(): Plugin {
  return {
    onResponse({ response }) {
      response.headers.set("cache-control", "no-store");
    },
  };
}
