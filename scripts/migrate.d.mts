import type { SpawnSyncReturns, StdioOptions } from "node:child_process";

export function writeMigrateSchema(dir: string): string;
export function migrateCli(
  args: string[],
  options?: { env?: NodeJS.ProcessEnv; stdio?: StdioOptions },
): SpawnSyncReturns<string>;
