// GET /downloads/*: files a browser fetches by following a short-lived signed link (a
// mutation hands it out), since a link cannot carry an Authorization header.
//   /downloads/export     the signed-in user's data as a ZIP (a header works too)
//   /downloads/analytics  events or patterns of an organization as CSV or JSON
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type AppDeps, buildContext } from "../context.ts";
import { AppError } from "../errors.ts";
import type { Principal } from "../features/auth/principal.ts";
import { verifyDownloadToken } from "../features/auth/tokens.ts";
import { checkExport, type ExportParams, exportChunks } from "../features/events/eventExport.ts";
import { writeUserExport } from "../features/users/export.ts";

export const EXPORT_PATH = "/downloads/export";
export const ANALYTICS_PATH = "/downloads/analytics";

export function createDownloadRoutes(deps: AppDeps) {
  /** The signed-in user the link (or the header) speaks for, and what it was signed for. */
  async function who(req: IncomingMessage, url: URL, purpose: string, headerAllowed: boolean) {
    const token = url.searchParams.get("token");
    if (!token && !headerAllowed) return null;
    if (token) {
      const claims = verifyDownloadToken(token, purpose, deps.config.jwt);
      return { principal: await deps.principals.forClaims(claims), params: claims.params };
    }
    const authenticated = await deps.principals.resolve(req.headers.authorization, undefined);
    return { principal: authenticated?.principal ?? null, params: {} };
  }

  return async function handle(req: IncomingMessage, res: ServerResponse, requestId: string) {
    const url = new URL(req.url ?? "/", "http://localhost");
    const route = url.pathname === EXPORT_PATH ? "export" : url.pathname === ANALYTICS_PATH ? "analytics" : null;
    if (!route) return fail(res, 404, "NOT_FOUND", "Not found.", requestId);
    if (req.method !== "GET") return fail(res, 405, "METHOD_NOT_ALLOWED", "Use GET.", requestId);
    let caller: { principal: Principal | null; params: Record<string, unknown> } | null;
    try {
      caller = await who(req, url, route, route === "export");
    } catch (err) {
      if (err instanceof AppError) return fail(res, 401, err.code, err.message, requestId);
      throw err;
    }
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
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  res.end(JSON.stringify({ errors: [{ message, extensions: { code, requestId } }] }));
}
