// A process that tries to take a directory lock when told to (a line on stdin), says whether it
// won ("won" or "refused <reason>") and holds what it won until its stdin closes.
import { createInterface } from "node:readline";
import { acquireLock } from "../../src/infra/dirLock.ts";

const file = process.argv[2] as string;
const lines = createInterface({ input: process.stdin });
console.log("ready");
lines.once("line", () => {
  try {
    const release = acquireLock(file);
    console.log("won");
    lines.once("close", () => {
      release();
      process.exit(0);
    });
  } catch (err) {
    console.log(`refused ${(err as Error).message}`);
    process.exit(0);
  }
});
