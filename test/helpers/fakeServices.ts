// Stand-ins for GitHub, Slack, Google Drive, Dropbox, S3 and any webhook, on a local port:
// each route answers as the real API does and records exactly what it was sent, so tests
// can check every request (method, path, auth header, body).
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface Recorded {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  /** Node's flat ["name", "value", …] list, as a service might dump it. */
  rawHeaders: string[];
  body: string;
  /** The client's port: two requests on one kept-alive connection share it. */
  remotePort: number | undefined;
}

type Handler = (req: Recorded, res: ServerResponse) => void;

const flaky = new Map<string, number>();
/** Answers of /held/<key> requests, sent when the test calls release(path). */
const held = new Map<string, () => void>();

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};

const ROUTES: [string, RegExp, Handler][] = [
  ["GET", /^\/repos\/[^/]+\/[^/]+$/, (_q, res) => json(res, 200, { id: 1, full_name: "acme/reports" })],
  ["PUT", /^\/repos\/[^/]+\/[^/]+\/contents\/.+$/, (_q, res) => json(res, 201, { content: { sha: "abc123" } })],
  ["POST", /^\/slack\/hook$/, (_q, res) => res.writeHead(200).end("ok")],
  ["GET", /^\/drive\/v3\/files\/[^/?]+\?fields=id,name$/, (_q, res) => json(res, 200, { id: "F1", name: "Reports" })],
  ["POST", /^\/upload\/drive\/v3\/files\?uploadType=multipart$/, (_q, res) => json(res, 200, { id: "file-1" })],
  ["POST", /^\/2\/users\/get_current_account$/, (_q, res) => json(res, 200, { account_id: "dbid:1" })],
  ["POST", /^\/2\/files\/upload$/, (_q, res) => json(res, 200, { id: "id:1", path_display: "/Floyo/x" })],
  ["HEAD", /^\/bucket-1$/, (_q, res) => res.writeHead(200).end()],
  ["PUT", /^\/bucket-1\/.+$/, (_q, res) => res.writeHead(200, { etag: '"e"' }).end()],
  ["GET", /^\/ping$/, (_q, res) => json(res, 200, { pong: true })],
  ["POST", /^\/hook$/, (_q, res) => json(res, 202, { accepted: true })],
  // Fails twice per key, then answers: for retries.
  [
    "GET",
    /^\/flaky\/[\w-]+$/,
    (q, res) => {
      const seen = (flaky.get(q.path) ?? 0) + 1;
      flaky.set(q.path, seen);
      if (seen <= 2) json(res, 503, { error: "try again" });
      else json(res, 200, { ok: true, attempt: seen });
    },
  ],
  ["GET", /^\/echo-auth$/, (q, res) => json(res, 401, { error: `bad credentials ${q.headers.authorization}` })],
  // Echoes the whole request back (status from ?status=), as JSON or, under /echo-text, as raw
  // header lines: a service that reflects credentials, for the scrubbing tests.
  [
    "*",
    /^\/echo(\?|\/|$)/,
    (q, res) => {
      const status = Number(new URL(q.path, "http://x").searchParams.get("status") ?? 200);
      json(res, status, { method: q.method, path: q.path, headers: q.headers, body: q.body });
    },
  ],
  [
    "*",
    /^\/echo-text(\?|\/|$)/,
    (q, res) => {
      const lines = Object.entries(q.headers).map(([k, v]) => `${k}: ${String(v)}`);
      res
        .writeHead(200, { "content-type": "text/plain" })
        .end(`${q.method} ${q.path}\n${lines.join("\n")}\n\n${q.body}`);
    },
  ],
  // Answers 400 with n characters of padding, then the raw header list: a service error that
  // reflects the Authorization header at any offset. With ?prefix=k, only its first k characters
  // (a service that cut it off itself).
  [
    "*",
    /^\/err\/\d+(\?|$)/,
    (q, res) => {
      const url = new URL(q.path, "http://x");
      const pad = "x".repeat(Number(url.pathname.split("/")[2]));
      const prefix = url.searchParams.get("prefix");
      const tail =
        prefix === null ? JSON.stringify(q.rawHeaders) : String(q.headers.authorization).slice(0, Number(prefix));
      res.writeHead(400, { "content-type": "text/plain" }).end(`${pad}${tail}`);
    },
  ],
  // The request's credentials re-encoded the ways services do: upper case, lower-case
  // percent-encoding, hex, base64 of the bearer token alone, and header lists in the layouts of
  // Node's rawHeaders and of HAR. As JSON, or (?as=text) the same as plain text.
  [
    "*",
    /^\/forms(\?|$)/,
    (q, res) => {
      const auth = String(q.headers.authorization ?? "");
      const token = auth.replace(/^Bearer\s+/i, "");
      const forms = {
        upper: auth.toUpperCase(),
        lower: auth.toLowerCase(),
        percentLower: encodeURIComponent(auth).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
        tokenPercent: encodeURIComponent(token),
        hex: Buffer.from(auth).toString("hex"),
        hexUpper: Buffer.from(auth).toString("hex").toUpperCase(),
        tokenHex: Buffer.from(token).toString("hex"),
        tokenBase64: Buffer.from(token).toString("base64"),
        tokenBase64url: Buffer.from(token).toString("base64url"),
        inText: `token=${Buffer.from(token).toString("base64url")};`,
        rawHeaders: q.rawHeaders,
        har: Object.entries(q.headers).map(([name, value]) => ({ name, value })),
        harReversed: Object.entries(q.headers).map(([name, value]) => ({ value, name })),
      };
      if (new URL(q.path, "http://x").searchParams.get("as") === "text") {
        res.writeHead(200, { "content-type": "text/plain" }).end(JSON.stringify(forms));
      } else json(res, 200, forms);
    },
  ],
  // Text PostgreSQL cannot store, escaped in valid JSON: a lone surrogate and a NUL.
  ["GET", /^\/unstorable$/, (_q, res) => res.writeHead(200).end('{"lone":"\\ud800","nul":"a\\u0000b"}')],
  // Answers only when the test releases it, with the Authorization header it was sent (under a
  // name the scrubber does not know): a call still in flight while the test changes things.
  ["*", /^\/held\/[\w-]+$/, (q, res) => held.set(q.path, () => json(res, 200, { sent: q.headers.authorization }))],
  // Never answers: for timeouts.
  ["GET", /^\/hang$/, () => undefined],
];

export async function startFakeServices() {
  const requests: Recorded[] = [];
  const waiting: { match: (r: Recorded) => boolean; resolve: (r: Recorded) => void }[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      body += chunk;
    });
    req.on("end", () => {
      const recorded = {
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body,
        remotePort: req.socket.remotePort,
      };
      requests.push(recorded);
      for (const w of waiting.filter((w) => w.match(recorded))) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(recorded);
      }
      const route = ROUTES.find(([m, p]) => (m === "*" || m === recorded.method) && p.test(recorded.path));
      if (route) route[2](recorded, res);
      else json(res, 404, { error: "not found" });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    /** The requests recorded since `from` (an index into requests). */
    since: (from: number) => requests.slice(from),
    /** The first request (already recorded, or the next) that matches. */
    received: (match: (r: Recorded) => boolean) =>
      new Promise<Recorded>((resolve) => {
        const seen = requests.find(match);
        if (seen) resolve(seen);
        else waiting.push({ match, resolve });
      }),
    /** Sends the answer of a request held at /held/<key>. */
    release(path: string) {
      held.get(path)?.();
      held.delete(path);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
