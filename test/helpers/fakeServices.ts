// Stand-ins for GitHub, Slack, Google Drive, Dropbox, S3 and any webhook, on a local port:
// each route answers as the real API does and records exactly what it was sent, so tests
// can check every request (method, path, auth header, body).
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface Recorded {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

type Handler = (req: Recorded, res: ServerResponse) => void;

const flaky = new Map<string, number>();

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
  // Never answers: for timeouts.
  ["GET", /^\/hang$/, () => undefined],
];

export async function startFakeServices() {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      body += chunk;
    });
    req.on("end", () => {
      const recorded = { method: req.method ?? "", path: req.url ?? "", headers: req.headers, body };
      requests.push(recorded);
      const route = ROUTES.find(([m, p]) => m === recorded.method && p.test(recorded.path));
      if (route) route[2](recorded, res);
      else json(res, 404, { error: "not found" });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    /** The requests recorded since `from` (an index into requests). */
    since: (from: number) => requests.slice(from),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
