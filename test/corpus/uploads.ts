// Multipart uploads (the GraphQL multipart request spec): malformed parts, maps that walk
// through __proto__, files over UPLOAD_MAX_BYTES, bodies without a length, foreign organizations.
import { type Case, chunked, type HttpRequest, multipart, op } from "./case.ts";

const MB = 1024 * 1024;

export const multipartUploads: Case[] = [
  {
    name: "operations that are not JSON",
    request: () => multipart("{nope"),
    expect: { status: 400, code: "BAD_REQUEST" },
  },
  {
    name: "operations missing",
    request: () => ({
      as: "attacker",
      body: (() => {
        const f = new FormData();
        f.set("map", "{}");
        return f;
      })(),
      headers: { "graphql-preflight": "1" },
    }),
    expect: { status: 400, code: "BAD_REQUEST" },
  },
  {
    name: "map that is not JSON",
    request: () => multipart(op("{ __typename }"), (f) => f.set("map", "[oops")),
    expect: { status: 400, code: "BAD_REQUEST" },
  },
  {
    name: "map pointing at a variable that does not exist",
    request: (w) => upload(w.attacker.orgId, (f) => f.set("map", JSON.stringify({ 0: ["variables.nope.deeper"] }))),
    expect: { status: [200, 400] },
  },
  {
    name: "map pointing through __proto__",
    request: (w) =>
      upload(w.attacker.orgId, (f) => f.set("map", JSON.stringify({ 0: ["variables.__proto__.polluted"] }))),
    expect: { status: [200, 400], check: notPolluted },
  },
  {
    name: "map pointing through constructor.prototype",
    request: (w) =>
      upload(w.attacker.orgId, (f) =>
        f.set("map", JSON.stringify({ 0: ["variables.constructor.prototype.polluted"] })),
      ),
    expect: { status: [200, 400], check: notPolluted },
  },
  {
    name: "map keyed __proto__",
    request: (w) => upload(w.attacker.orgId, (f) => f.set("map", '{"__proto__":["variables.input.file"]}')),
    expect: { status: [200, 400], check: notPolluted },
  },
  {
    name: "map naming a file part that is not sent",
    request: (w) =>
      upload(w.attacker.orgId, (f) => {
        f.set("map", JSON.stringify({ 9: ["variables.input.file"] }));
        f.delete("0");
      }),
    expect: { status: [200, 400] },
  },
  {
    name: "two files where one is allowed",
    request: (w) =>
      upload(w.attacker.orgId, (f) => {
        f.set("map", JSON.stringify({ 0: ["variables.input.file"], 1: ["variables.input.other"] }));
        f.set("1", new Blob(["b"]), "b.txt");
      }),
    expect: { status: [400, 413] },
  },
  {
    name: "11 fields where 10 are allowed",
    request: (w) =>
      upload(w.attacker.orgId, (f) => {
        for (let i = 0; i < 9; i++) f.set(`x${i}`, "y");
      }),
    expect: { status: [400, 413] },
  },
  {
    name: "a file over UPLOAD_MAX_BYTES",
    request: (w) => upload(w.attacker.orgId, (f) => f.set("0", new Blob([new Uint8Array(UPLOAD_MAX + 1)]), "big.txt")),
    expect: { status: 413, code: "PAYLOAD_TOO_LARGE" },
  },
  {
    name: "an operations field over MAX_BODY_BYTES",
    request: () => multipart(JSON.stringify(op(`{ __typename } #${"x".repeat(MB + 10)}`))),
    expect: { status: 413, code: "PAYLOAD_TOO_LARGE" },
  },
  {
    name: "a chunked multipart body (no length)",
    request: () => ({
      as: "attacker",
      body: chunked(5 * MB),
      headers: { "content-type": "multipart/form-data; boundary=x", "graphql-preflight": "1" },
    }),
    expect: { status: 411, code: "LENGTH_REQUIRED" },
  },
  {
    name: "multipart without a boundary",
    request: () => ({
      as: "attacker",
      body: "--x\r\n\r\n",
      headers: { "content-type": "multipart/form-data", "graphql-preflight": "1" },
    }),
    expect: { status: 400 },
  },
  {
    name: "a multipart body of garbage",
    request: () => ({
      as: "attacker",
      body: "garbage ".repeat(1000),
      headers: { "content-type": "multipart/form-data; boundary=zzz", "graphql-preflight": "1" },
    }),
    expect: { status: 400 },
  },
  {
    name: "a multipart body cut off mid-part",
    request: () => ({
      as: "attacker",
      body: '--zzz\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{"query":"{ __typ',
      headers: { "content-type": "multipart/form-data; boundary=zzz", "graphql-preflight": "1" },
    }),
    expect: { status: 400 },
  },
  {
    name: "an upload into the victim's organization",
    request: (w) => upload(w.victim.orgId),
    expect: { code: "NOT_FOUND" },
  },
  {
    name: "an import into the victim's organization",
    request: (w) =>
      upload(w.victim.orgId, (f) =>
        f.set(
          "operations",
          JSON.stringify(
            op("mutation($input: EventImportInput!) { eventImport(input: $input) { duplicates } }", {
              input: { file: null, organizationId: w.victim.orgId },
            }),
          ),
        ),
      ),
    expect: { code: "NOT_FOUND" },
  },
  {
    name: "a file given where a string is expected",
    request: (w) =>
      upload(w.attacker.orgId, (f) => {
        f.set("operations", JSON.stringify(op("query($id: ID!) { node(id: $id) { id } }", { id: null })));
        f.set("map", JSON.stringify({ 0: ["variables.id"] }));
      }),
    expect: { code: "BAD_USER_INPUT" },
  },
  {
    name: "an upload with an API key that does not exist",
    request: (w) => ({
      ...upload(w.attacker.orgId),
      as: "anonymous",
      headers: { "graphql-preflight": "1", "x-api-key": "fly_live_000000000000000000000000" },
    }),
    expect: { status: 401 },
  },
  {
    name: "a file named with a path and a NUL, into the victim's organization",
    request: (w) => upload(w.victim.orgId, (f) => f.set("0", new Blob(["x"]), "../../etc/passwd\u0000.txt")),
    expect: { code: "NOT_FOUND" },
  },
];

/** The maximum file size the corpus server is started with. */
export const UPLOAD_MAX = 64 * 1024;

function upload(orgId: string, change: (form: FormData) => void = () => undefined): HttpRequest {
  const f = new FormData();
  f.set(
    "operations",
    JSON.stringify(
      op("mutation($input: FileUploadInput!) { fileUpload(input: $input) { id } }", {
        input: { file: null, organizationId: orgId },
      }),
    ),
  );
  f.set("map", JSON.stringify({ 0: ["variables.input.file"] }));
  f.set("0", new Blob(["hello"]), "a.txt");
  change(f);
  return { as: "attacker", body: f, headers: { "graphql-preflight": "1" } };
}

function notPolluted() {
  const probe = {} as Record<string, unknown>;
  if ("polluted" in probe || "file" in probe) throw new Error("Object.prototype was polluted");
}
