// Sends a case and judges the reply by the rules every hostile request is held to.
import net from "node:net";
import { expect } from "vitest";
import type { Case, HttpRequest, RawRequest, Reply } from "./case.ts";
import type { World } from "./world.ts";

/**
 * The codes the server answers with (src/schema/errors.ts, src/errors.ts and the services'
 * domain errors, graphql-armor's limits, the body and CSRF guards, rate limits). A code not
 * here is either new (add it) or an error that escaped the mapping.
 */
export const KNOWN_CODES = new Set([
  // request shape and transport
  "BAD_REQUEST",
  "UNSUPPORTED_MEDIA_TYPE",
  "CSRF_HEADER_REQUIRED",
  "PAYLOAD_TOO_LARGE",
  "LENGTH_REQUIRED",
  "METHOD_NOT_ALLOWED",
  "GRAPHQL_PARSE_FAILED",
  "GRAPHQL_VALIDATION_FAILED",
  "BAD_USER_INPUT",
  "OPERATION_RESOLUTION_FAILURE",
  "INTROSPECTION_DISABLED",
  "TIMEOUT",
  "DOWNLOAD_LINK_USED",
  "PERSISTED_QUERY_NOT_FOUND",
  "PERSISTED_QUERY_HASH_MISMATCH",
  "PERSISTED_QUERY_ONLY",
  "PERSISTED_QUERY_NOT_SUPPORTED",
  "PERSISTED_QUERY_NOT_ALLOWED",
  // operation limits
  "TOKEN_LIMIT_EXCEEDED",
  "DEPTH_LIMIT_EXCEEDED",
  "ALIAS_LIMIT_EXCEEDED",
  "DIRECTIVE_LIMIT_EXCEEDED",
  "COST_LIMIT_EXCEEDED",
  "RATE_LIMITED",
  "TOO_MANY_REQUESTS",
  // authentication and authorization
  "UNAUTHENTICATED",
  "FORBIDDEN",
  "NOT_FOUND",
  "TOKEN_INVALID",
  "TOKEN_MALFORMED",
  "TOKEN_EXPIRED",
  "TOKEN_NOT_YET_VALID",
  "TOKEN_KEY_UNKNOWN",
  "TOKEN_ALGORITHM_REJECTED",
  "TOKEN_AUDIENCE_INVALID",
  "TOKEN_ISSUER_INVALID",
  "SESSION_REVOKED",
  "REFRESH_TOKEN_INVALID",
  "API_KEY_INVALID",
  "API_KEY_REVOKED",
  "API_KEY_EXPIRED",
  "ACCOUNT_DISABLED",
  "MEMBERSHIP_REVOKED",
  "INVALID_CREDENTIALS",
  // domain rules
  "PERSONAL_ORGANIZATION",
  "LAST_OWNER",
  "ALREADY_MEMBER",
  "INVITE_INVALID",
  "INVITE_ACCEPTED",
  "EMAIL_TAKEN",
  "USERNAME_TAKEN",
  "EMAIL_ALREADY_VERIFIED",
  "WEAK_PASSWORD",
  "STEP_INVALID",
  "WORKFLOW_ARCHIVED",
  "WORKFLOW_RUNNING",
  "CONNECTOR_CONFIG_INVALID",
  "CONNECTOR_INPUT_INVALID",
  "INTEGRATION_NAME_TAKEN",
  "INTEGRATION_INACTIVE",
  "HOST_NOT_ALLOWED",
  "IMPORT_INVALID",
  "UNSUPPORTED_FILE_TYPE",
  "NOT_EXECUTED",
]);

/** What must never reach a client: stack frames, source paths, driver internals. */
const LEAKS: [string, RegExp][] = [
  ["a stack frame", /\bat [\w.<>$]+ \(|\n\s+at /],
  ["a source path", /(\/work\/|\/src\/|\/test\/|node_modules|file:\/\/|\.ts:\d+)/],
  ["a Prisma internal", /prisma\.\w+\.|PrismaClient|Invalid `/],
  ["a SQL error", /\bSQLSTATE\b|syntax error at or near|relation "\w+" does not exist/i],
  ["a stack property", /"stack"\s*:/],
  ["an internal error's own message", /"originalError"\s*:/],
];

export async function send(world: World, request: HttpRequest | RawRequest): Promise<Reply> {
  if ("raw" in request) return sendRaw(world.base, request.raw, request.halfClose);
  const headers: Record<string, string> = {};
  if (request.as === "attacker") headers.authorization = `Bearer ${world.attacker.user.token}`;
  if (request.as === "attackerKey") headers["x-api-key"] = world.attacker.apiKey;
  let body: BodyInit | undefined;
  if (request.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(request.json);
  } else if (typeof request.body === "function") body = request.body();
  else body = request.body as BodyInit | undefined;
  Object.assign(headers, request.headers);
  const response = await fetch(`${world.base}${request.path ?? "/graphql"}`, {
    method: request.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    body,
    ...(typeof request.body === "function" ? { duplex: "half" } : {}),
  } as RequestInit);
  const text = await response.text();
  // A subscription over SSE answers 200 with its errors in the first event.
  const sse = response.headers.get("content-type")?.startsWith("text/event-stream");
  const event = sse ? (/^data: ?(.*)$/m.exec(text)?.[1] ?? "") : text;
  return { status: response.status, headers: response.headers, text, json: parseJson(event) };
}

function parseJson(text: string): Reply["json"] {
  try {
    const parsed = JSON.parse(text);
    return parsed && typeof parsed === "object" ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One request over a fresh connection, written as is; the reply is the first response the
 * server writes (read to its end by its length or last chunk), or nothing if it closes first.
 */
function sendRaw(base: string, raw: string | Uint8Array, halfClose = false): Promise<Reply> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(parseRaw(Buffer.concat(chunks).toString("utf8")));
    };
    socket.on("connect", () => (halfClose ? socket.end(raw) : socket.write(raw)));
    socket.on("data", (c) => {
      chunks.push(c);
      if (complete(Buffer.concat(chunks).toString("utf8"))) finish();
    });
    socket.on("error", (err) => (chunks.length ? finish() : reject(err)));
    socket.on("close", finish);
  });
}

function complete(text: string): boolean {
  const at = text.indexOf("\r\n\r\n");
  if (at < 0) return false;
  const head = text.slice(0, at).toLowerCase();
  const body = text.slice(at + 4);
  const length = /\r\ncontent-length: *(\d+)/.exec(head)?.[1];
  if (length !== undefined) return Buffer.byteLength(body) >= Number(length);
  if (/\r\ntransfer-encoding: *chunked/.test(head))
    return body.includes("\r\n0\r\n\r\n") || body.startsWith("0\r\n\r\n");
  return false;
}

function parseRaw(text: string): Reply {
  const [head = "", ...rest] = text.split("\r\n\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  const headers = new Headers();
  for (const line of head.split("\r\n").slice(1)) {
    const at = line.indexOf(":");
    if (at > 0) headers.append(line.slice(0, at).trim(), line.slice(at + 1).trim());
  }
  const body = rest.join("\r\n\r\n");
  return { status, headers, text: body, json: parseJson(dechunk(body, headers)) };
}

function dechunk(body: string, headers: Headers): string {
  if (headers.get("transfer-encoding") !== "chunked") return body;
  let out = "";
  let rest = body;
  for (;;) {
    const eol = rest.indexOf("\r\n");
    const size = Number.parseInt(rest.slice(0, eol), 16);
    if (!size) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 4 + size);
  }
}

/** The rules every reply is held to, then the case's own. */
export function judge(c: Case, reply: Reply, world: World) {
  const shown = `${c.name}: ${reply.status} ${reply.text.slice(0, 600)}`;
  const { status, code, data, check } = c.expect ?? {};
  // A raw request the HTTP parser could not take may end with the connection closed, unanswered.
  if (reply.status === 0) {
    expect([status].flat(), `${shown}\nclosed without a reply`).toContain(0);
    return;
  }
  expect(reply.status, shown).toBeGreaterThanOrEqual(200);
  expect(reply.status, shown).toBeLessThan(500);
  for (const [what, pattern] of LEAKS) expect(pattern.test(reply.text), `${shown}\nleaks ${what}`).toBe(false);
  const errors = reply.json?.errors ?? [];
  // The request id comes back with every error the server writes, in a form safe to log and to echo.
  const requestId = reply.headers.get("x-request-id");
  if (requestId !== null || errors.length) expect(requestId ?? "", shown).toMatch(/^[\w.:-]{1,128}$/);
  for (const error of errors) {
    const errorCode = error.extensions?.code;
    expect(errorCode, `${shown}\nerror without a code`).toBeTypeOf("string");
    expect(KNOWN_CODES.has(errorCode as string), `${shown}\nunknown code ${String(errorCode)}`).toBe(true);
  }
  if (data) {
    expect(reply.status, shown).toBe(200);
    expect(errors, shown).toEqual([]);
    expect(reply.json?.data, shown).toBeTruthy();
    data(reply.json?.data as Record<string, unknown>, world);
  } else {
    // Refused: by status, or by a GraphQL error with its code.
    expect(reply.status >= 400 || errors.length > 0, `${shown}\nwas not refused`).toBe(true);
  }
  if (status !== undefined) expect([status].flat(), shown).toContain(reply.status);
  // Several limits may answer one document (depth and cost): one of the errors has the code.
  if (code !== undefined) {
    const codes = errors.map((e) => e.extensions?.code);
    expect(
      codes.some((c) => [code].flat().includes(c as string)),
      `${shown}\nexpected code ${String(code)}`,
    ).toBe(true);
  }
  check?.(reply, world);
}
