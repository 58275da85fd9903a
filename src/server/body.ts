// Request bodies, read against one byte limit whatever their content type and transfer
// encoding: a Content-Length is checked before a byte is read, a chunked body as it streams.
import type { IncomingMessage, ServerResponse } from "node:http";

/** GET, HEAD and OPTIONS carry none; any other method may, chunked or with a length. */
export const hasBody = (method: string | undefined) => method !== "GET" && method !== "HEAD" && method !== "OPTIONS";

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super("too large");
  }
}

/** Whether the announced length is over the limit: refused before a byte is read. */
export function announcedTooLarge(req: IncomingMessage, limit: number): boolean {
  return Number(req.headers["content-length"] ?? 0) > limit;
}

/** The whole body, or BodyTooLargeError as soon as more than `limit` bytes have arrived. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // Stop keeping it, but read the rest away so the 413 reaches the client; the
        // connection closes after it.
        req.off("data", onData);
        req.resume();
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export function sendTooLarge(res: ServerResponse, limit: number, requestId: string) {
  refuse(res, 413, "PAYLOAD_TOO_LARGE", `The request body is over ${limit} bytes.`, requestId);
}

export function sendLengthRequired(res: ServerResponse, requestId: string) {
  refuse(res, 411, "LENGTH_REQUIRED", "A multipart request must send a Content-Length.", requestId);
}

/** Answered before the body is read: the connection closes after it, the rest unread. */
function refuse(res: ServerResponse, status: number, code: string, message: string, requestId: string) {
  res.shouldKeepAlive = false;
  res.writeHead(status, { "content-type": "application/json", connection: "close" });
  res.end(JSON.stringify({ errors: [{ message, extensions: { code, requestId } }] }));
}
