// UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then a 12-bit counter that orders ids made
// in the same millisecond, then random bits. What Prisma's @default(uuid(7)) makes, for rows
// inserted without the client: ids still sort in the order they were made.
import { randomBytes } from "node:crypto";

let lastMs = 0;
let counter = 0;
// Random bytes drawn 4 KiB at a time: one call per id was a few percent of ingestion's CPU.
const POOL = 4096;
let pool = randomBytes(POOL);
let offset = 0;
function random(n: number): Buffer {
  if (offset + n > POOL) {
    pool = randomBytes(POOL);
    offset = 0;
  }
  offset += n;
  return pool.subarray(offset - n, offset);
}

export function uuid7(): string {
  let ms = Date.now();
  if (ms <= lastMs) {
    // Same millisecond (or a clock step back): count on; past 12 bits, borrow the next one.
    ms = lastMs;
    counter++;
    if (counter > 0xfff) {
      ms++;
      counter = 0;
    }
  } else counter = random(2).readUInt16BE() & 0x7ff;
  lastMs = ms;
  const b = Buffer.from(random(16));
  b.writeUIntBE(ms, 0, 6);
  b[6] = 0x70 | (counter >> 8);
  b[7] = counter & 0xff;
  b[8] = 0x80 | ((b[8] as number) & 0x3f);
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
