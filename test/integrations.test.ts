// Integrations: each connector speaks its service's real API (checked request by request on
// local stand-ins), configuration is validated against the connector's schema, secrets are
// sealed and never shown, hosts are allow-listed and calls time out.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { errorCode, fieldErrorPaths } from "./helpers/api.ts";
import { gql } from "./helpers/client.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { startFakeServices } from "./helpers/fakeServices.ts";
import { type MailCatcher, startMailCatcher } from "./helpers/mail.ts";
import { type ServerProcess, spawnServer } from "./helpers/process.ts";
import { startServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
let fake: Awaited<ReturnType<typeof startFakeServices>>;
let mail: MailCatcher;
let url: string;
beforeAll(async () => {
  fake = await startFakeServices();
  mail = await startMailCatcher();
  server = await startServer({ CONNECTOR_ALLOWED_HOSTS: "127.0.0.1:*", CONNECTOR_TIMEOUT_MS: "500" });
  url = server.graphqlUrl;
});
afterAll(async () => {
  await server.stop();
  await fake.close();
  await mail.close();
});

const FIELDS = "id name config secrets { name isSet } lastSyncAt lastError secretsKeyId connector { key }";

async function create(user: TestUser, connector: string, config: unknown, secrets?: unknown, name = connector) {
  return gql<{ integrationCreate: { id: string; secrets: { name: string; isSet: boolean }[] } }>(
    url,
    `mutation($input: IntegrationCreateInput!) { integrationCreate(input: $input) { ${FIELDS} } }`,
    { token: user.token, variables: { input: { organizationId: user.org.id, connector, name, config, secrets } } },
  );
}

async function test(user: TestUser, id: string) {
  const r = await gql<{ integrationTest: { ok: boolean; code: string | null; message: string } }>(
    url,
    "mutation($id: ID!) { integrationTest(id: $id) { ok code message integration { lastSyncAt lastError } } }",
    { token: user.token, variables: { id } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.integrationTest;
}

describe("connectors", () => {
  it("lists the seven connectors with their JSON Schemas", async () => {
    const user = await createUser(url);
    const r = await gql<{ connectors: { key: string; configSchema: { config: { properties: object } } }[] }>(
      url,
      "{ connectors { key name configSchema secretFields } }",
      { token: user.token },
    );
    expect(r.data?.connectors.map((c) => c.key)).toEqual([
      "dropbox",
      "github",
      "google_drive",
      "http",
      "s3",
      "slack",
      "smtp",
    ]);
    const github = r.data?.connectors.find((c) => c.key === "github");
    expect(Object.keys(github?.configSchema.config.properties ?? {}).sort()).toEqual([
      "baseUrl",
      "owner",
      "repository",
    ]);
  });

  it("tests each connector with a real call to its service's API", async () => {
    const user = await createUser(url);
    const cases: [string, unknown, unknown, (from: number) => void][] = [
      [
        "github",
        { baseUrl: fake.url, owner: "acme", repository: "reports" },
        { accessToken: "ghp_secret_1" },
        (from) => {
          const [req] = fake.since(from);
          expect(req).toMatchObject({ method: "GET", path: "/repos/acme/reports" });
          expect(req?.headers.authorization).toBe("Bearer ghp_secret_1");
        },
      ],
      [
        "slack",
        { channel: "#ops" },
        { webhookUrl: `${fake.url}/slack/hook` },
        (from) => {
          const [req] = fake.since(from);
          expect(req).toMatchObject({ method: "POST", path: "/slack/hook" });
          expect(JSON.parse(req?.body ?? "")).toEqual({ text: "Floyo connection test", channel: "#ops" });
        },
      ],
      [
        "google_drive",
        { baseUrl: fake.url, folderId: "F1" },
        { accessToken: "ya29.secret" },
        (from) => {
          const [req] = fake.since(from);
          expect(req).toMatchObject({ method: "GET", path: "/drive/v3/files/F1?fields=id,name" });
          expect(req?.headers.authorization).toBe("Bearer ya29.secret");
        },
      ],
      [
        "dropbox",
        { apiBaseUrl: fake.url, contentBaseUrl: fake.url },
        { accessToken: "sl.secret" },
        (from) => {
          const [req] = fake.since(from);
          expect(req).toMatchObject({ method: "POST", path: "/2/users/get_current_account" });
          expect(req?.headers.authorization).toBe("Bearer sl.secret");
        },
      ],
      [
        "s3",
        { endpoint: fake.url, region: "eu-west-1", bucket: "bucket-1" },
        { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "s3-secret-key" },
        (from) => {
          const [req] = fake.since(from);
          expect(req).toMatchObject({ method: "HEAD", path: "/bucket-1" });
          expect(req?.headers.authorization).toMatch(
            /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/s3\/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/,
          );
          expect(req?.headers["x-amz-content-sha256"]).toBe(
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          );
        },
      ],
      [
        "http",
        { baseUrl: fake.url, testPath: "/ping" },
        { authorization: "Token hook-secret" },
        (from) => {
          const [req] = fake.since(from);
          expect(req).toMatchObject({ method: "GET", path: "/ping" });
          expect(req?.headers.authorization).toBe("Token hook-secret");
        },
      ],
    ];
    for (const [connector, config, secrets, check] of cases) {
      const created = await create(user, connector, config, secrets);
      expect(created.errors, connector).toBeUndefined();
      const from = fake.requests.length;
      const result = await test(user, created.data?.integrationCreate.id as string);
      expect(result, connector).toMatchObject({ ok: true, code: null });
      check(from);
    }
    const smtp = await create(user, "smtp", {
      host: "127.0.0.1",
      port: Number(new URL(mail.url).port),
      fromEmail: "floyo@example.test",
    });
    expect(smtp.errors).toBeUndefined();
    expect(await test(user, smtp.data?.integrationCreate.id as string)).toMatchObject({ ok: true });
  });

  it("validates configuration against the connector's schema, field by field", async () => {
    const user = await createUser(url);
    const bad = await create(user, "github", { baseUrl: "ftp://x", owner: "" }, {});
    expect(errorCode(bad)).toBe("BAD_USER_INPUT");
    expect(fieldErrorPaths(bad).sort()).toEqual([
      "config.baseUrl",
      "config.owner",
      "config.repository",
      "secrets.accessToken",
    ]);
    const extra = await create(
      user,
      "slack",
      { channel: "#x", colour: "red" },
      { webhookUrl: `${fake.url}/slack/hook` },
    );
    expect(fieldErrorPaths(extra)).toEqual(["config"]);
    const unknown = await create(user, "fax", {}, {});
    expect(fieldErrorPaths(unknown)).toEqual(["input.connector"]);
  });

  it("never returns or records a secret, and scrubs one a service echoes back", async () => {
    const user = await createUser(url);
    const secret = "Bearer very-secret-token-42";
    const created = await create(
      user,
      "http",
      { baseUrl: fake.url, testPath: "/echo-auth" },
      { authorization: secret },
    );
    const id = created.data?.integrationCreate.id as string;
    expect(JSON.stringify(created)).not.toContain("very-secret-token-42");
    expect(created.data?.integrationCreate.secrets).toEqual([{ name: "authorization", isSet: true }]);
    const result = await test(user, id);
    expect(result).toMatchObject({ ok: false, code: "CONNECTOR_HTTP_ERROR" });
    expect(result.message).toContain("[redacted]");
    expect(result.message).not.toContain("very-secret-token-42");
    const read = await gql(url, `query($id: ID!) { node(id: $id) { ... on Integration { ${FIELDS} } } }`, {
      token: user.token,
      variables: { id },
    });
    expect(JSON.stringify(read)).not.toContain("very-secret-token-42");
    const audit = await gql(url, "{ viewer { auditLogs(first: 20) { edges { node { action details } } } } }", {
      token: user.token,
    });
    expect(JSON.stringify(audit)).toContain("integrationCreate");
    expect(JSON.stringify(audit)).not.toContain("very-secret-token-42");
  });

  it("refuses hosts outside the allow-list, and times out a service that never answers", async () => {
    const user = await createUser(url);
    const outside = await create(user, "http", { baseUrl: "http://example.com" }, {});
    expect(await test(user, outside.data?.integrationCreate.id as string)).toMatchObject({
      ok: false,
      code: "HOST_NOT_ALLOWED",
    });
    const hanging = await create(user, "http", { baseUrl: fake.url, testPath: "/hang" }, {}, "hang");
    const id = hanging.data?.integrationCreate.id as string;
    expect(await test(user, id)).toMatchObject({ ok: false, code: "CONNECTOR_TIMEOUT" });
    const row = await gql<{ node: { lastError: string; lastSyncAt: string | null } }>(
      url,
      "query($id: ID!) { node(id: $id) { ... on Integration { lastError lastSyncAt } } }",
      { token: user.token, variables: { id } },
    );
    expect(row.data?.node).toMatchObject({ lastSyncAt: null });
    expect(row.data?.node.lastError).toMatch(/^CONNECTOR_TIMEOUT/);
  });

  it("updates config, merges secrets, deletes; other organizations see nothing", async () => {
    const user = await createUser(url);
    const mallory = await createUser(url);
    const created = await create(
      user,
      "s3",
      { region: "eu-west-1", bucket: "bucket-1", endpoint: fake.url },
      {
        accessKeyId: "AKID",
        secretAccessKey: "one",
      },
    );
    const id = created.data?.integrationCreate.id as string;
    const updated = await gql<{ integrationUpdate: { secrets: { name: string; isSet: boolean }[] } }>(
      url,
      `mutation($input: IntegrationUpdateInput!) { integrationUpdate(input: $input) { ${FIELDS} } }`,
      { token: user.token, variables: { input: { id, secrets: { secretAccessKey: "two" }, name: "archive" } } },
    );
    expect(updated.data?.integrationUpdate.secrets).toEqual([
      { name: "accessKeyId", isSet: true },
      { name: "secretAccessKey", isSet: true },
    ]);
    for (const m of [
      `query { node(id: "${id}") { id } }`,
      `mutation { integrationTest(id: "${id}") { ok } }`,
      `mutation { integrationDelete(id: "${id}") }`,
    ]) {
      const r = await gql(url, m, { token: mallory.token });
      expect(r.data?.node === null || errorCode(r) === "NOT_FOUND", m).toBe(true);
    }
    const deleted = await gql(url, `mutation { integrationDelete(id: "${id}") }`, { token: user.token });
    expect(deleted.errors).toBeUndefined();
    expect((await gql(url, `query { node(id: "${id}") { id } }`, { token: user.token })).data).toEqual({ node: null });
  });
});

describe("secrets at rest", () => {
  it("keeps working through a key rotation, and never writes a secret to the logs", async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "floyo-rotate-"));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const k1 = `k1:${randomBytes(32).toString("base64")}`;
    const k2 = `k2:${randomBytes(32).toString("base64")}`;
    const env = { DATA_DIR: dataDir, LOG_LEVEL: "debug", CONNECTOR_ALLOWED_HOSTS: "127.0.0.1:*" };
    const secret = "rotate-me-secret-9f8e7d";
    const lives: ServerProcess[] = [];
    const life = async (keys: string) => {
      const p = await spawnServer({ ...env, SECRETS_KEYS: keys });
      lives.push(p);
      onTestFinished(() => p.kill("SIGKILL").then(() => undefined));
      return p;
    };

    let p = await life(k1);
    const user = await createUser(p.graphqlUrl);
    const created = await gql<{ integrationCreate: { id: string; secretsKeyId: string } }>(
      p.graphqlUrl,
      "mutation($input: IntegrationCreateInput!) { integrationCreate(input: $input) { id secretsKeyId } }",
      {
        token: user.token,
        variables: {
          input: {
            organizationId: user.org.id,
            connector: "http",
            name: "hook",
            config: { baseUrl: fake.url, testPath: "/ping" },
            secrets: { authorization: `Bearer ${secret}` },
          },
        },
      },
    );
    const id = created.data?.integrationCreate.id as string;
    expect(created.data?.integrationCreate.secretsKeyId).toBe("k1");
    const check = async (server: ServerProcess) => {
      const from = fake.requests.length;
      const r = await gql<{ integrationTest: { ok: boolean } }>(
        server.graphqlUrl,
        "mutation($id: ID!) { integrationTest(id: $id) { ok } }",
        { token: user.token, variables: { id } },
      );
      expect(r.data?.integrationTest.ok).toBe(true);
      expect(fake.since(from)[0]?.headers.authorization).toBe(`Bearer ${secret}`);
    };
    await check(p);
    expect(await p.kill("SIGTERM")).toBe(0);

    // The new key first: old secrets still open; resealing moves them to the new key.
    p = await life(`${k2},${k1}`);
    await check(p);
    const resealed = await gql<{ integrationSecretsReseal: number }>(
      p.graphqlUrl,
      "mutation($org: ID!) { integrationSecretsReseal(organizationId: $org) }",
      { token: user.token, variables: { org: user.org.id } },
    );
    expect(resealed.data?.integrationSecretsReseal).toBe(1);
    expect(await p.kill("SIGTERM")).toBe(0);

    // The old key gone: everything opens with the new one.
    p = await life(k2);
    await check(p);
    expect(await p.kill("SIGTERM")).toBe(0);
    for (const l of lives) expect(l.output()).not.toContain(secret);
  });
});
