// GET /downloads/*: files a browser fetches by following a short-lived signed link (a
// mutation hands it out), since a link cannot carry an Authorization header.
//   /downloads/export     the signed-in user's data as a ZIP (a header works too)
//   /downloads/analytics  events or patterns of an organization as CSV or JSON
// A link is not a bearer credential for whoever holds it: it works once (a copy found later in
// a proxy log, the browser history or a shared screen is spent), for five minutes, and a
// request that also carries credentials must be the same user's.
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type AppDeps, buildContext } from "../context.ts";
import { AppError } from "../errors.ts";
import type { Principal } from "../features/auth/principal.ts";
import { verifyDownloadToken } from "../features/auth/tokens.ts";
import { checkExport, type ExportParams, exportChunks } from "../features/events/eventExport.ts";
import { writeUserExport } from "../features/users/export.ts";
import type { Once } from "../infra/once.ts";

export const EXPORT_PATH = "/downloads/export";
export const ANALYTICS_PATH = "/downloads/analytics";

type Caller = { principal: Principal | null; params: Record<string, unknown>; refusal?: Refusal };
type Refusal = [status: number, code: string, message: string];
const UNAVAILABLE: Refusal = [
  503,
  "SERVICE_UNAVAILABLE",
  "Downloads are unavailable for a moment; try the link again.",
];

export function createDownloadRoutes(deps: AppDeps, once: Once) {
  /** The signed-in user the link (or the header) speaks for, and what it was signed for. */
  async function who(req: IncomingMessage, url: URL, purpose: string, headerAllowed: boolean): Promise<Caller | null> {
    const token = url.searchParams.get("token");
    const authorization = req.headers.authorization;
    const apiKey = req.headers["x-api-key"];
    const header = await deps.principals.resolve(authorization, typeof apiKey === "string" ? apiKey : undefined);
    if (!token) return headerAllowed ? { principal: header?.principal ?? null, params: {} } : null;
    const claims = verifyDownloadToken(token, purpose, deps.config.jwt);
    const principal = await deps.principals.forClaims(claims);
    // Credentials sent along must be the link's user's: another user (or an API key) holding
    // the link gets nothing, and does not spend it.
    if (header && (header.principal.kind !== "user" || header.principal.userId !== claims.sub)) {
      return { principal, params: {}, refusal: [403, "FORBIDDEN", "This link was made for another user."] };
    }
    // Spent on first use, on every instance, until it would have expired anyway. While the
    // mark cannot be set (Redis unreachable) the link is refused, unspent, as worth a retry.
    let fresh: boolean;
    try {
      fresh = await once.claim(
        `download:${createHash("sha256").update(token).digest("hex")}`,
        claims.expMs - Date.now(),
      );
    } catch {
      return { principal, params: {}, refusal: UNAVAILABLE };
    }
    if (!fresh)
      return {
        principal,
        params: {},
        refusal: [410, "DOWNLOAD_LINK_USED", "This link was used already; ask for a new one."],
      };
    return { principal, params: claims.params };
  }

  return async function handle(req: IncomingMessage, res: ServerResponse, requestId: string) {
    const url = new URL(req.url ?? "/", "http://localhost");
    const route = url.pathname === EXPORT_PATH ? "export" : url.pathname === ANALYTICS_PATH ? "analytics" : null;
    if (!route) return fail(res, 404, "NOT_FOUND", "Not found.", requestId);
    if (req.method !== "GET") return fail(res, 405, "METHOD_NOT_ALLOWED", "Use GET.", requestId);
    let caller: Caller | null;
    try {
      caller = await who(req, url, route, route === "export");
    } catch (err) {
      if (err instanceof AppError) return fail(res, 401, err.code, err.message, requestId);
      throw err;
    }
    if (caller?.refusal) return fail(res, ...caller.refusal, requestId);
    const principal = caller?.principal;
    if (principal?.kind !== "user") return fail(res, 401, "UNAUTHENTICATED", "Sign in to download this.", requestId);
    const day = new Date().toISOString().slice(0, 10);

    if (route === "export") {
      res.writeHead(200, {
        "content-type": "application/zip",
        "content-disposition": `attachment; filename="floyo-export-${day}.zip"`,
        "cache-control": "no-store",
      });
      return writeUserExport(deps.prisma, principal.userId, res);
    }

    const params = caller?.params as unknown as ExportParams;
    const ctx = {
      ...(await buildContext(deps, {
        requestId,
        ip: req.socket.remoteAddress ?? null,
        userAgent: req.headers["user-agent"] ?? null,
        authorization: null,
        apiKey: null,
        organization: null,
        transport: "http",
      })),
      principal,
    };
    try {
      // Checked again now: the link outlives a membership that ended after it was made.
      await checkExport(ctx, params);
    } catch (err) {
      if (err instanceof AppError) {
        const status = err.code === "NOT_FOUND" ? 404 : err.code === "FORBIDDEN" ? 403 : 400;
        return fail(res, status, err.code, err.message, requestId);
      }
      throw err;
    }
    const csv = params.format === "CSV";
    res.writeHead(200, {
      "content-type": csv ? "text/csv; charset=utf-8" : "application/json; charset=utf-8",
      "content-disposition": `attachment; filename="floyo-${params.dataset.toLowerCase()}-${day}.${csv ? "csv" : "json"}"`,
      "cache-control": "no-store",
    });
    // pipeline: backpressure from the socket, and a client that goes away stops the queries.
    await pipeline(Readable.from(exportChunks(ctx, params)), res).catch((err: unknown) => {
      // A client that hung up is not a failure of ours.
      if ((err as { code?: string }).code !== "ERR_STREAM_PREMATURE_CLOSE")
        deps.logger.error({ err, requestId }, "export failed part-way");
    });
  };
}

function fail(res: ServerResponse, status: number, code: string, message: string, requestId: string) {
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    ...(status === 503 ? { "retry-after": "1" } : {}),
  });
  res.end(JSON.stringify({ errors: [{ message, extensions: { code, requestId } }] }));
}
