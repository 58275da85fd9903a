// Graceful shutdown: stop accepting, let in-flight requests finish, close WebSockets with
// 1001, close pools, and exit 0 on SIGTERM.
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import WebSocket from "ws";
import { spawnServer } from "./helpers/process.ts";
import { startServer } from "./helpers/server.ts";

describe("graceful shutdown", () => {
  it("finishes an in-flight request, refuses new connections, and closes WebSockets with 1001", async () => {
    // A deadline longer than the test's timeout: the test passes only if shutdown completes
    // because the work is done, not because the deadline cut it short.
    const server = await startServer({ SHUTDOWN_TIMEOUT_MS: "120000" });
    const { port } = new URL(server.url);

    const socket = new WebSocket(server.wsUrl, "graphql-transport-ws");
    await once(socket, "open");
    socket.send(JSON.stringify({ type: "connection_init" }));
    await once(socket, "message");
    const wsClosed = once(socket, "close");

    // A request whose body has only half arrived when shutdown begins.
    const body = JSON.stringify({ query: "{ __typename }" });
    const received = once(server.app.server, "request");
    const request = http.request({
      host: "127.0.0.1",
      port,
      path: "/graphql",
      method: "POST",
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
    });
    const responded = once(request, "response") as Promise<[http.IncomingMessage]>;
    request.write(body.slice(0, 5));
    await received;

    const stopped = server.stop();

    const [code, reason] = (await wsClosed) as [number, Buffer];
    expect(code).toBe(1001);
    expect(reason.toString()).toMatch(/going away/i);

    const refused = await fetch(`${server.url}/health/liveness`).then(
      () => "accepted",
      (err: Error & { cause?: { code?: string } }) => err.cause?.code,
    );
    expect(refused).toBe("ECONNREFUSED");

    request.end(body.slice(5));
    const [response] = await responded;
    let text = "";
    for await (const chunk of response) text += chunk;
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(text)).toMatchObject({ data: { __typename: "Query" } });
    await stopped;
  });

  it("exits 0 on SIGTERM", async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "floyo-sigterm-"));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const server = await spawnServer({ DATA_DIR: dataDir });
    expect(
      (
        await fetch(server.graphqlUrl, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: '{"query":"{ __typename }"}',
        })
      ).status,
    ).toBe(200);
    expect(await server.kill("SIGTERM")).toBe(0);
    expect(server.output()).toMatch(/"msg":"shut down"/);
  });
});
