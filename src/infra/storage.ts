// Uploaded files on disk: under DATA_DIR/uploads in the embedded mode, UPLOAD_DIR (a shared
// volume) in the services mode. Written to a temporary name and renamed, so a reader never
// sees half a file, and a crash leaves only a temporary file behind.
import { createHash, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";

export class FileTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`The file is over ${maxBytes} bytes.`);
  }
}

export interface StoredFile {
  sizeBytes: number;
  sha256: string;
}

export interface Storage {
  /** Streams `body` to `key`; refuses (and keeps nothing) past maxBytes. */
  put(key: string, body: AsyncIterable<Uint8Array>, maxBytes: number): Promise<StoredFile>;
  read(key: string): Readable;
  remove(key: string): Promise<void>;
}

const KEY = /^[\w-]+(\/[\w.-]+)*$/;

export function createFileStorage(root: string): Storage {
  const full = (key: string) => {
    // Keys are made of ids; anything else would be a path from outside.
    if (!KEY.test(key) || key.includes("..")) throw new Error(`invalid storage key: ${key}`);
    return path.join(root, key);
  };
  return {
    async put(key, body, maxBytes) {
      const target = full(key);
      await mkdir(path.dirname(target), { recursive: true });
      const temp = `${target}.${randomUUID()}.partial`;
      const hash = createHash("sha256");
      let size = 0;
      const meter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          size += chunk.length;
          if (size > maxBytes) return done(new FileTooLargeError(maxBytes));
          hash.update(chunk);
          done(null, chunk);
        },
      });
      try {
        await pipeline(Readable.from(body), meter, createWriteStream(temp));
        await rename(temp, target);
      } catch (err) {
        await rm(temp, { force: true });
        throw err;
      }
      return { sizeBytes: size, sha256: hash.digest("hex") };
    },
    read: (key) => createReadStream(full(key)),
    remove: (key) => rm(full(key), { force: true }),
  };
}
