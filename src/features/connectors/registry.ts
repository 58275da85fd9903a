// The seven connectors: each one's configuration (public) and secrets as zod schemas (their
// JSON Schema is what the API shows), its connection test, and the actions workflow steps
// call. Every call is the service's real API against a base URL that can be configured.
// A step's action may be delivered more than once (a retry after a lost answer, a run taken
// up again after its worker died): each action does what its service allows so that a
// repeat is harmless, keyed by the step's idempotency key (see each connector).
import { createHash } from "node:crypto";
import { isIP } from "node:net";
import { z } from "zod";
import {
  allowedAddresses,
  ConnectorError,
  type ConnectorNetwork,
  connectorFetch,
  withIdempotencyKey,
} from "./connectorHttp.ts";
import { encodeKey, signS3 } from "./sigv4.ts";

export interface ConnectorCall {
  config: Record<string, unknown>;
  secrets: Record<string, string>;
  network: ConnectorNetwork;
  signal?: AbortSignal;
  /** The same for every delivery of one step of one run (none for a connection test). */
  idempotencyKey?: string;
}

export type ActionInput = Record<string, unknown>;

export interface ConnectorDefinition {
  key: string;
  name: string;
  description: string;
  config: z.ZodObject;
  secrets: z.ZodObject;
  /** A real, harmless call that proves the configuration and credentials work. */
  test(call: ConnectorCall): Promise<string>;
  actions: Record<string, (call: ConnectorCall, input: ActionInput) => Promise<unknown>>;
}

const url = z.url({ protocol: /^https?$/ });
const text = (input: ActionInput, key: string) => String(input[key] ?? "");
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const json = { "content-type": "application/json" };

const github: ConnectorDefinition = {
  key: "github",
  name: "GitHub",
  description: "Commits files to a repository (the contents API).",
  config: z.object({
    baseUrl: url.default("https://api.github.com"),
    owner: z.string().min(1).max(100),
    repository: z.string().min(1).max(100),
  }),
  secrets: z.object({ accessToken: z.string().min(1) }),
  async test({ config, secrets, network, signal }) {
    const c = config as { baseUrl: string; owner: string; repository: string };
    await connectorFetch(network, `${c.baseUrl}/repos/${c.owner}/${c.repository}`, {
      method: "GET",
      headers: { ...bearer(secrets.accessToken as string), accept: "application/vnd.github+json" },
      signal,
    });
    return `Repository ${c.owner}/${c.repository} is reachable.`;
  },
  actions: {
    /**
     * Commits the file unless it already holds this content: a repeat makes no second commit.
     * An existing file is replaced by its current sha (which the API requires), or by the
     * step's `sha` when given, so a file changed meanwhile is refused (409), not overwritten.
     */
    async putFile({ config, secrets, network, signal }, input) {
      const c = config as { baseUrl: string; owner: string; repository: string };
      const path = text(input, "path");
      const target = `${c.baseUrl}/repos/${c.owner}/${c.repository}/contents/${encodeKey(path)}`;
      const headers = { ...bearer(secrets.accessToken as string), accept: "application/vnd.github+json" };
      const content = Buffer.from(text(input, "content"));
      const existing = await githubFileSha(network, target, headers, signal);
      if (existing && existing === gitBlobSha(content)) {
        return { content: { path, sha: existing }, commit: null, unchanged: true };
      }
      const sha = input.sha ? text(input, "sha") : existing;
      const res = await connectorFetch(network, target, {
        method: "PUT",
        headers: { ...headers, ...json },
        body: JSON.stringify({
          message: text(input, "message") || `Update ${path} from Floyo`,
          content: content.toString("base64"),
          ...(sha ? { sha } : {}),
        }),
        signal,
      });
      return res.json();
    },
  },
};

/** The blob sha of a file in the repository, or null when there is none (404). */
async function githubFileSha(
  network: ConnectorNetwork,
  target: string,
  headers: Record<string, string>,
  signal?: AbortSignal,
): Promise<string | null> {
  try {
    const found = (await connectorFetch(network, target, { method: "GET", headers, signal })).json();
    const sha = (found as { sha?: unknown } | null)?.sha;
    return typeof sha === "string" ? sha : null;
  } catch (err) {
    if (err instanceof ConnectorError && err.details?.status === 404) return null;
    throw err;
  }
}

/** Git's object id of a blob: what the contents API reports as a file's sha. */
const gitBlobSha = (content: Buffer) =>
  createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");

const slack: ConnectorDefinition = {
  key: "slack",
  name: "Slack",
  description: "Posts messages through an incoming webhook.",
  config: z.object({ channel: z.string().max(100).optional() }),
  secrets: z.object({ webhookUrl: url }),
  async test(call) {
    await slack.actions.postMessage?.(call, { text: "Floyo connection test" });
    return "The webhook accepted a test message.";
  },
  actions: {
    // Incoming webhooks (like chat.postMessage) take no idempotency key: a repeat posts again.
    async postMessage({ config, secrets, network, signal }, input) {
      const channel = (config as { channel?: string }).channel;
      await connectorFetch(network, secrets.webhookUrl as string, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ text: text(input, "text"), ...(channel ? { channel } : {}) }),
        signal,
      });
      return { posted: true };
    },
  },
};

const googleDrive: ConnectorDefinition = {
  key: "google_drive",
  name: "Google Drive",
  description: "Uploads files into a folder (Drive API v3, multipart upload).",
  config: z.object({ baseUrl: url.default("https://www.googleapis.com"), folderId: z.string().min(1).max(200) }),
  secrets: z.object({ accessToken: z.string().min(1) }),
  async test({ config, secrets, network, signal }) {
    const c = config as { baseUrl: string; folderId: string };
    await connectorFetch(network, `${c.baseUrl}/drive/v3/files/${encodeURIComponent(c.folderId)}?fields=id,name`, {
      method: "GET",
      headers: bearer(secrets.accessToken as string),
      signal,
    });
    return "The folder is reachable.";
  },
  actions: {
    /**
     * Drive takes no idempotency key, but a file carries private app properties that a search
     * can match: the step's key is one, and a file that has it is this step's earlier upload.
     */
    async uploadFile({ config, secrets, network, signal, idempotencyKey }, input) {
      const c = config as { baseUrl: string; folderId: string };
      const earlier = idempotencyKey
        ? await driveFileWith(c.baseUrl, secrets.accessToken as string, idempotencyKey, network, signal)
        : null;
      if (earlier) return { ...earlier, unchanged: true };
      const boundary = `floyo${Date.now().toString(36)}`;
      const metadata = JSON.stringify({
        name: text(input, "name"),
        parents: [c.folderId],
        ...(idempotencyKey ? { appProperties: { [DRIVE_KEY_PROPERTY]: idempotencyKey } } : {}),
      });
      const body = [
        `--${boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n${metadata}\r\n`,
        `--${boundary}\r\ncontent-type: ${text(input, "mimeType") || "application/octet-stream"}\r\n\r\n${text(input, "content")}\r\n`,
        `--${boundary}--\r\n`,
      ].join("");
      const res = await connectorFetch(network, `${c.baseUrl}/upload/drive/v3/files?uploadType=multipart`, {
        method: "POST",
        headers: {
          ...bearer(secrets.accessToken as string),
          "content-type": `multipart/related; boundary=${boundary}`,
        },
        body,
        signal,
      });
      return res.json();
    },
  },
};

const DRIVE_KEY_PROPERTY = "floyoIdempotencyKey";

/**
 * The file an earlier delivery of the step uploaded, if any. A search the service refuses
 * (an HTTP error) does not hold the upload up: it goes ahead, as it did before keys existed.
 */
async function driveFileWith(
  baseUrl: string,
  accessToken: string,
  key: string,
  network: ConnectorNetwork,
  signal?: AbortSignal,
): Promise<{ id: string; name: string } | null> {
  // The key is hex: nothing in it needs escaping inside the query's quotes.
  const q = `appProperties has { key='${DRIVE_KEY_PROPERTY}' and value='${key}' } and trashed = false`;
  try {
    const res = await connectorFetch(
      network,
      `${baseUrl}/drive/v3/files?q=${encodeURIComponent(q)}&fields=${encodeURIComponent("files(id,name)")}`,
      { method: "GET", headers: bearer(accessToken), signal },
    );
    const found = res.json() as { files?: { id: string; name: string }[] } | null;
    return found?.files?.[0] ?? null;
  } catch (err) {
    if (err instanceof ConnectorError && err.code === "CONNECTOR_HTTP_ERROR") return null;
    throw err;
  }
}

const dropbox: ConnectorDefinition = {
  key: "dropbox",
  name: "Dropbox",
  description: "Uploads files into a folder (files/upload).",
  config: z.object({
    apiBaseUrl: url.default("https://api.dropboxapi.com"),
    contentBaseUrl: url.default("https://content.dropboxapi.com"),
    folderPath: z.string().startsWith("/").max(500).default("/Floyo"),
  }),
  secrets: z.object({ accessToken: z.string().min(1) }),
  async test({ config, secrets, network, signal }) {
    const c = config as { apiBaseUrl: string };
    await connectorFetch(network, `${c.apiBaseUrl}/2/users/get_current_account`, {
      method: "POST",
      headers: bearer(secrets.accessToken as string),
      signal,
    });
    return "The account is reachable.";
  },
  actions: {
    async uploadFile({ config, secrets, network, signal }, input) {
      const c = config as { contentBaseUrl: string; folderPath: string };
      const name = text(input, "name");
      if (!name || /[\\/]/.test(name) || name === "." || name === "..") {
        throw new ConnectorError("CONNECTOR_INPUT_INVALID", "The file name must be a plain name, without folders.");
      }
      const path = `${c.folderPath.replace(/\/$/, "")}/${name}`;
      // A repeat is harmless as it is: Dropbox writes nothing when the file at the path already
      // has these contents (its conflict rule), and autorename is off, so no "name (1)" copy.
      // Dropbox wants the argument header in ASCII: anything else escaped.
      const arg = JSON.stringify({ path, mode: "overwrite", autorename: false }).replace(
        /[\u007f-\uffff]/g,
        (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
      );
      const res = await connectorFetch(network, `${c.contentBaseUrl}/2/files/upload`, {
        method: "POST",
        headers: {
          ...bearer(secrets.accessToken as string),
          "content-type": "application/octet-stream",
          "dropbox-api-arg": arg,
        },
        body: text(input, "content"),
        signal,
      });
      return res.json();
    },
  },
};

const s3: ConnectorDefinition = {
  key: "s3",
  name: "Amazon S3 (or compatible)",
  description: "Puts objects into a bucket, signed with AWS Signature V4 (path-style URLs).",
  config: z.object({
    endpoint: url.optional(),
    region: z.string().regex(/^[a-z0-9-]{2,32}$/),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,62}$/),
  }),
  secrets: z.object({ accessKeyId: z.string().min(1), secretAccessKey: z.string().min(1) }),
  async test(call) {
    await s3Request(call, "HEAD", "", "");
    return "The bucket is reachable.";
  },
  actions: {
    // Idempotent as it is: a PUT of one key with one body leaves the same object (a bucket
    // with versioning keeps an identical extra version). No condition is sent: If-None-Match
    // would refuse the next run's overwrite of the same key.
    async putObject(call, input) {
      await s3Request(call, "PUT", text(input, "key"), text(input, "body"), text(input, "contentType"));
      return { key: text(input, "key") };
    },
  },
};

function s3Request(call: ConnectorCall, method: string, key: string, body: string, contentType?: string) {
  const c = call.config as { endpoint?: string; region: string; bucket: string };
  const endpoint = (c.endpoint ?? `https://s3.${c.region}.amazonaws.com`).replace(/\/$/, "");
  const target = new URL(`${endpoint}/${c.bucket}${key ? `/${encodeKey(key)}` : ""}`);
  const headers = signS3({
    method,
    url: target,
    region: c.region,
    accessKeyId: call.secrets.accessKeyId as string,
    secretAccessKey: call.secrets.secretAccessKey as string,
    body,
    headers: contentType ? { "content-type": contentType } : {},
  });
  delete headers.host;
  return connectorFetch(call.network, target.toString(), {
    method,
    headers,
    body: method === "PUT" ? body : undefined,
    signal: call.signal,
  });
}

const smtp: ConnectorDefinition = {
  key: "smtp",
  name: "Email (SMTP)",
  description: "Sends mail through your SMTP server.",
  config: z.object({
    host: z.string().min(1).max(255),
    port: z.number().int().min(1).max(65535).default(587),
    secure: z.boolean().default(false),
    username: z.string().max(255).optional(),
    fromEmail: z.email(),
  }),
  secrets: z.object({ password: z.string().optional() }),
  async test(call) {
    await (await transport(call)).verify();
    return "The SMTP server accepted the connection.";
  },
  actions: {
    async sendMail(call, input) {
      const c = call.config as { fromEmail: string };
      const to = Array.isArray(input.to) ? input.to.map(String) : [text(input, "to")];
      const info = await (await transport(call)).sendMail({
        // The step's key as the Message-ID: mail systems that drop a repeated Message-ID
        // (Gmail does, in one mailbox) show a repeated delivery once.
        ...(call.idempotencyKey ? { messageId: `<${call.idempotencyKey}@${c.fromEmail.split("@").pop()}>` } : {}),
        from: c.fromEmail,
        to,
        subject: text(input, "subject"),
        text: text(input, "text"),
      });
      return { messageId: info.messageId, accepted: info.accepted };
    },
  },
};

/** SMTP's usual ports; any other needs a "host:port" entry. */
const SMTP_PORTS = [465, 587, 25] as const;

/** A transport to the checked address, with TLS still verifying the configured name. */
async function transport({ config, secrets, network, signal }: ConnectorCall) {
  const c = config as { host: string; port: number; secure: boolean; username?: string };
  const hostname = c.host.replace(/^\[|\]$/g, "");
  // The first checked address: nodemailer connects to one host, it does not fall back.
  const [pinned] = await allowedAddresses(network, { hostname, port: c.port, usualPorts: SMTP_PORTS }, signal);
  // Loaded when an email step first runs: not a cost every start pays (see infra/mailer.ts).
  const { default: nodemailer } = await import("nodemailer");
  return nodemailer.createTransport({
    host: (pinned as { address: string }).address,
    ...(isIP(hostname) ? {} : { servername: hostname }),
    port: c.port,
    secure: c.secure,
    auth: c.username ? { user: c.username, pass: secrets.password ?? "" } : undefined,
    connectionTimeout: network.timeoutMs,
    greetingTimeout: network.timeoutMs,
    socketTimeout: network.timeoutMs,
    tls: { rejectUnauthorized: true },
  });
}

const http: ConnectorDefinition = {
  key: "http",
  name: "HTTP / webhook",
  description: "Calls any HTTP endpoint on an allowed host, with an optional Authorization header.",
  config: z.object({ baseUrl: url, testPath: z.string().startsWith("/").default("/") }),
  secrets: z.object({ authorization: z.string().optional() }),
  async test(call) {
    const c = call.config as { testPath: string };
    await http.actions.request?.(call, { method: "GET", path: c.testPath });
    return "The endpoint answered.";
  },
  actions: {
    async request({ config, secrets, network, signal, idempotencyKey }, input) {
      const c = config as { baseUrl: string };
      const method = (text(input, "method") || "POST").toUpperCase();
      const body = input.body === undefined ? undefined : JSON.stringify(input.body);
      const target = withinBase(c.baseUrl, text(input, "path") || "/");
      const headers = {
        ...(body ? json : {}),
        ...(secrets.authorization ? { authorization: secrets.authorization } : {}),
      };
      const res = await connectorFetch(network, target, {
        method,
        headers: withIdempotencyKey(headers, method, idempotencyKey),
        body,
        signal,
      });
      try {
        return { status: res.status, body: res.json() };
      } catch {
        // Whole, like a JSON body (MAX_RESPONSE_BYTES bounds both): cut here, before the runner
        // scrubs it, the start of a secret would survive.
        return { status: res.status, body: res.body };
      }
    },
  },
};

/** base + path, refused unless it stays on the base's origin and under its path (no "..", no ":port"). */
function withinBase(baseUrl: string, path: string): string {
  const base = new URL(baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`);
  if (!path.startsWith("/") || /(^|\/)\.\.?(\/|$)/.test(path)) {
    throw new ConnectorError(
      "CONNECTOR_INPUT_INVALID",
      'The path must start with "/" and contain no "." or ".." segments.',
    );
  }
  const target = new URL(`${base.pathname.replace(/\/$/, "")}${path}`, base);
  if (target.origin !== base.origin || !`${target.pathname}/`.startsWith(base.pathname)) {
    throw new ConnectorError("CONNECTOR_INPUT_INVALID", "The path leaves the integration's base URL.");
  }
  return target.toString();
}

type Action = ConnectorDefinition["actions"][string];

/**
 * A connector's action by a name from a workflow definition: its own actions only, so
 * "constructor", "__proto__" or "toString" are no action at all (they would resolve to
 * Object's members and hand the call, secrets included, back as the step's output).
 */
export function actionOf(connector: ConnectorDefinition, name: string): Action | undefined {
  if (!Object.hasOwn(connector.actions, name)) return undefined;
  const action = connector.actions[name];
  return typeof action === "function" ? action : undefined;
}

export const actionNames = (connector: ConnectorDefinition) => Object.keys(connector.actions);

export const CONNECTORS: readonly ConnectorDefinition[] = [github, slack, googleDrive, dropbox, s3, smtp, http];
export const connectorByKey = new Map(CONNECTORS.map((c) => [c.key, c]));
