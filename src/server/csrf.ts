// Cross-site request forgery. Any web page can make a browser POST a form to this API
// (application/x-www-form-urlencoded, multipart/form-data or text/plain bodies are "simple":
// no CORS preflight asks us first). Bearer tokens do not ride along, but anonymous mutations
// (authRegister, password resets) would run, from anyone's browser. So form and plain-text
// bodies are refused outright, and multipart (the upload spec's) must carry a header that a
// form cannot set, which makes the browser preflight it. GET runs queries only (Yoga refuses
// mutations over GET), and JSON or application/graphql bodies are always preflighted.
import type { Plugin } from "graphql-yoga";
import { hasBody } from "./body.ts";
import type { ServerContext } from "./yoga.ts";

/**
 * Any non-empty value of one of these. The last two are the ones Apollo Server accepts, so a
 * client set up for it (an upload link with `Apollo-Require-Preflight`) works unchanged.
 */
export const PREFLIGHT_HEADERS = ["graphql-preflight", "apollo-require-preflight", "x-apollo-operation-name"] as const;

const REFUSED = new Set(["application/x-www-form-urlencoded", "text/plain"]);

/** The media type without parameters, lower-cased: `Text/Plain; charset=x` is `text/plain`. */
export function mediaType(contentType: string | null | undefined): string {
  return (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
}

/** Why a request must not run, or null. Methods without a body (GET, OPTIONS) have nothing to check here. */
export function csrfRefusal(method: string, headers: { get(name: string): string | null }) {
  if (!hasBody(method)) return null;
  const type = mediaType(headers.get("content-type"));
  if (type === "multipart/form-data") {
    if (PREFLIGHT_HEADERS.some((h) => headers.get(h)?.trim())) return null;
    return {
      status: 400,
      code: "CSRF_HEADER_REQUIRED",
      message: "Multipart requests need a non-empty GraphQL-Preflight header.",
    };
  }
  if (!type || REFUSED.has(type)) {
    return {
      status: 415,
      code: "UNSUPPORTED_MEDIA_TYPE",
      message: "Send application/json (or multipart/form-data with a GraphQL-Preflight header).",
    };
  }
  return null;
}

export function useCsrfPrevention(): Plugin<Record<string, unknown>, ServerContext> {
  return {
    onRequest({ request, serverContext, fetchAPI, endResponse }) {
      const refusal = csrfRefusal(request.method, request.headers);
      if (!refusal) return;
      const body = JSON.stringify({
        errors: [{ message: refusal.message, extensions: { code: refusal.code, requestId: serverContext?.requestId } }],
      });
      endResponse(
        new fetchAPI.Response(body, {
          status: refusal.status,
          headers: { "content-type": "application/json; charset=utf-8" },
        }),
      );
    },
  };
}
