// Sample code shown with a suggestion: a short, runnable starting point the user adapts, not a
// library. Every value that comes from the user's data (paths, extension, tools) goes through
// JSON.stringify so that a quote or backslash in a file name cannot break the generated source,
// and credentials are read from the environment so that nobody pastes a secret into a script.
import type { ConnectorKey } from "./rules.ts";

export interface TemplateInput {
  filePaths: string[];
  extension: string;
  tools: string[];
}

// files and tools arrive as ready-made source literals; ext is raw and is quoted where it is used.
type Template = (files: string, ext: string, tools: string) => string;

// Fails loudly at startup rather than sending requests with "undefined" as a token.
const ENV_HELPER = `function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(\`Set the \${name} environment variable\`);
  return value;
}`;

const github: Template = (files) => `import { readFile } from "node:fs/promises";
import { basename } from "node:path";

const files = ${files};

${ENV_HELPER}

const api = \`https://api.github.com/repos/\${env("GITHUB_OWNER")}/\${env("GITHUB_REPO")}/contents\`;
const headers = { Authorization: \`Bearer \${env("GITHUB_TOKEN")}\`, Accept: "application/vnd.github+json" };

for (const file of files) {
  const path = \`automations/\${basename(file)}\`;
  // Updating an existing file requires its current sha; a 404 means it is created instead.
  const current = await fetch(\`\${api}/\${path}\`, { headers });
  const sha = current.ok ? ((await current.json()) as { sha: string }).sha : undefined;
  const content = (await readFile(file)).toString("base64");
  const res = await fetch(\`\${api}/\${path}\`, {
    method: "PUT",
    headers,
    body: JSON.stringify({ message: \`Update \${path}\`, content, sha }),
  });
  if (!res.ok) throw new Error(\`GitHub \${res.status}: \${await res.text()}\`);
}
`;

const slack: Template = (files, ext) => `import { basename } from "node:path";

const files = ${files};

${ENV_HELPER}

const names = files.map((file) => basename(file)).join(", ");
const res = await fetch(env("SLACK_WEBHOOK_URL"), {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ text: ${JSON.stringify(`Updated ${ext} files: `)} + names }),
});
if (!res.ok) throw new Error(\`Slack \${res.status}: \${await res.text()}\`);
`;

const googleDrive: Template = (files) => `import { readFile } from "node:fs/promises";
import { basename } from "node:path";

const files = ${files};

${ENV_HELPER}

const token = env("GOOGLE_ACCESS_TOKEN");
const folderId = process.env.GOOGLE_DRIVE_FOLDER_ID;

for (const file of files) {
  const metadata = { name: basename(file), ...(folderId ? { parents: [folderId] } : {}) };
  const form = new FormData();
  form.append("metadata", new Blob([JSON.stringify(metadata)], { type: "application/json" }));
  form.append("file", new Blob([await readFile(file)]));
  const res = await fetch("https://www.googleapis.com/upload/drive/v3/files?uploadType=multipart", {
    method: "POST",
    headers: { Authorization: \`Bearer \${token}\` },
    body: form,
  });
  if (!res.ok) throw new Error(\`Google Drive \${res.status}: \${await res.text()}\`);
}
`;

const dropbox: Template = (files) => `import { readFile } from "node:fs/promises";
import { basename } from "node:path";

const files = ${files};

${ENV_HELPER}

// HTTP headers must be ASCII, so Dropbox expects other characters escaped in Dropbox-API-Arg.
const headerJson = (value: object) =>
  JSON.stringify(value).replace(/[\\u007f-\\uffff]/g, (c) => \`\\\\u\${c.charCodeAt(0).toString(16).padStart(4, "0")}\`);

for (const file of files) {
  const res = await fetch("https://content.dropboxapi.com/2/files/upload", {
    method: "POST",
    headers: {
      Authorization: \`Bearer \${env("DROPBOX_ACCESS_TOKEN")}\`,
      "Content-Type": "application/octet-stream",
      "Dropbox-API-Arg": headerJson({ path: \`/Floyo/\${basename(file)}\`, mode: "overwrite", mute: true }),
    },
    body: await readFile(file),
  });
  if (!res.ok) throw new Error(\`Dropbox \${res.status}: \${await res.text()}\`);
}
`;

const s3: Template = (files) => `import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";

const files = ${files};

${ENV_HELPER}

// Region and credentials come from the standard AWS_* variables (or an instance role).
const client = new S3Client({});
// A dated prefix keeps every run's copy instead of overwriting yesterday's.
const prefix = \`floyo/\${new Date().toISOString().slice(0, 10)}\`;

for (const file of files) {
  await client.send(
    new PutObjectCommand({ Bucket: env("S3_BUCKET"), Key: \`\${prefix}/\${basename(file)}\`, Body: await readFile(file) }),
  );
}
`;

const smtp: Template = (files, ext) => `import { basename } from "node:path";
import nodemailer from "nodemailer";

const files = ${files};

${ENV_HELPER}

const port = Number(process.env.SMTP_PORT ?? 587);
const transport = nodemailer.createTransport({
  host: env("SMTP_HOST"),
  port,
  secure: port === 465,
  auth: { user: env("SMTP_USER"), pass: env("SMTP_PASS") },
});

await transport.sendMail({
  from: env("SMTP_FROM"),
  to: env("REPORT_TO"),
  subject: ${JSON.stringify(`Your latest ${ext} files`)},
  text: "The files are attached.",
  attachments: files.map((path) => ({ filename: basename(path), path })),
});
`;

const http: Template = (files, ext, tools) => `import { stat } from "node:fs/promises";

const files = ${files};

${ENV_HELPER}

// Metadata only: the receiver fetches contents it needs, and the webhook payload stays small.
const payload = {
  event: "files.updated",
  extension: ${JSON.stringify(ext)},
  tools: ${tools},
  files: await Promise.all(files.map(async (path) => ({ path, size: (await stat(path)).size }))),
  sentAt: new Date().toISOString(),
};
const token = process.env.WEBHOOK_TOKEN;
const res = await fetch(env("WEBHOOK_URL"), {
  method: "POST",
  headers: { "Content-Type": "application/json", ...(token ? { Authorization: \`Bearer \${token}\` } : {}) },
  body: JSON.stringify(payload),
});
if (!res.ok) throw new Error(\`Webhook \${res.status}: \${await res.text()}\`);
`;

// JSON.stringify escapes quotes and backslashes; the ", " join only matches how a person would write the array.
const literal = (items: readonly string[]): string => `[${items.map((s) => JSON.stringify(s)).join(", ")}]`;

const TEMPLATES: Record<ConnectorKey, Template> = {
  github,
  slack,
  google_drive: googleDrive,
  dropbox,
  s3,
  smtp,
  http,
};

/** Sample code a user can adapt: TypeScript (Node 20+, global fetch) per connector. */
export function sampleCode(connector: ConnectorKey, input: TemplateInput): string {
  const paths = input.filePaths.filter((p) => p.length > 0);
  // A placeholder with the right extension still shows the user where their file goes.
  const files = paths.length > 0 ? paths : [`./path/to/file${input.extension}`];
  return TEMPLATES[connector](literal(files), input.extension, literal(input.tools));
}
