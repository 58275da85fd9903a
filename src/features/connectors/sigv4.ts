// AWS Signature Version 4 for S3-compatible stores (AWS, MinIO, R2…): enough to PUT an
// object and HEAD a bucket, without the AWS SDK.
import { createHash, createHmac } from "node:crypto";
import { ConnectorError } from "./connectorHttp.ts";

const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();

/**
 * RFC 3986 encoding, as SigV4 wants it; "/" kept in object keys. "." and ".." segments are
 * refused: URL parsing would resolve them and reach outside the bucket or repository.
 */
export function encodeKey(key: string) {
  const parts = key.split("/");
  if (parts.some((p) => p === "." || p === "..")) {
    throw new ConnectorError("CONNECTOR_INPUT_INVALID", `"${key}" may not contain "." or ".." segments.`);
  }
  return parts
    .map((part) =>
      encodeURIComponent(part).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
    )
    .join("/");
}

export function signS3(input: {
  method: string;
  url: URL;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  body: string | Uint8Array;
  headers?: Record<string, string>;
  now?: Date;
}): Record<string, string> {
  const amzDate = (input.now ?? new Date())
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
  const day = amzDate.slice(0, 8);
  const payloadHash = sha256(input.body);
  const headers: Record<string, string> = {
    ...input.headers,
    host: input.url.host,
    "x-amz-date": amzDate,
    "x-amz-content-sha256": payloadHash,
  };
  const names = Object.keys(headers)
    .map((h) => h.toLowerCase())
    .sort();
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v.trim()]));
  const canonical = [
    input.method,
    input.url.pathname,
    [...input.url.searchParams]
      .sort()
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .join("&"),
    names.map((h) => `${h}:${lower[h]}\n`).join(""),
    names.join(";"),
    payloadHash,
  ].join("\n");
  const scope = `${day}/${input.region}/s3/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${input.secretAccessKey}`, day), input.region), "s3"), "aws4_request");
  const signature = createHmac("sha256", key).update(toSign).digest("hex");
  return {
    ...headers,
    authorization: `AWS4-HMAC-SHA256 Credential=${input.accessKeyId}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}`,
  };
}
