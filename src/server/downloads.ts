// GET /downloads/export: the signed-in user's data as a ZIP. Authenticated by the short-lived
// link from the viewerDataExport mutation (for browsers) or an Authorization header.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AppDeps } from "../context.ts";
import { AppError } from "../errors.ts";
import { verifyDownloadToken } from "../features/auth/tokens.ts";
import { writeUserExport } from "../features/users/export.ts";

export const EXPORT_PATH = "/downloads/export";

export function createDownloadRoutes(deps: AppDeps) {
  return async function handle(req: IncomingMessage, res: ServerResponse, requestId: string) {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== EXPORT_PATH) return fail(res, 404, "NOT_FOUND", "Not found.", requestId);
    if (req.method !== "GET") return fail(res, 405, "METHOD_NOT_ALLOWED", "Use GET.", requestId);
    let userId: string;
    try {
      const token = url.searchParams.get("token");
      const principal = token
        ? await deps.principals.forClaims(verifyDownloadToken(token, "export", deps.config.jwt))
        : await deps.principals.resolve(req.headers.authorization, undefined);
      if (principal?.kind !== "user")
        return fail(res, 401, "UNAUTHENTICATED", "Sign in to download your data.", requestId);
      userId = principal.userId;
    } catch (err) {
      if (err instanceof AppError) return fail(res, 401, err.code, err.message, requestId);
      throw err;
    }
    res.writeHead(200, {
      "content-type": "application/zip",
      "content-disposition": `attachment; filename="floyo-export-${new Date().toISOString().slice(0, 10)}.zip"`,
      "cache-control": "no-store",
    });
    await writeUserExport(deps.prisma, userId, res);
  };
}

function fail(res: ServerResponse, status: number, code: string, message: string, requestId: string) {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  res.end(JSON.stringify({ errors: [{ message, extensions: { code, requestId } }] }));
}
