// A server in a process of its own, as deployed: for signals (SIGTERM, SIGKILL) and restarts.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { once } from "node:events";
import { testEnv } from "./server.ts";

export interface ServerProcess {
  url: string;
  graphqlUrl: string;
  child: ChildProcessWithoutNullStreams;
  output(): string;
  /** Resolves once the process has written `text` (to stdout or stderr). */
  printed(text: string): Promise<void>;
  /** Sends the signal and resolves with the exit code (null when killed by the signal). */
  kill(signal: NodeJS.Signals): Promise<number | null>;
}

/** Starts `node --import tsx src/main.ts` (one process, so SIGKILL reaches the server itself). */
export async function spawnServer(
  overrides: Record<string, string | undefined>,
  options: { worker?: boolean; preload?: string } = {},
): Promise<ServerProcess> {
  const preload = options.preload ? ["--import", options.preload] : [];
  const args = ["--import", "tsx", ...preload, "src/main.ts", ...(options.worker ? ["--worker"] : [])];
  const child = spawn(process.execPath, args, {
    env: { ...testEnv({ LOG_LEVEL: "info", ...overrides }), PATH: process.env.PATH },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let output = "";
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk;
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk;
      const match = /"url":"(http:[^"]+)\/graphql"/.exec(output);
      if (match?.[1]) resolve(match[1]);
      else if (options.worker && output.includes("Floyo worker running")) resolve("");
    });
    child.once("exit", (code) => reject(new Error(`exited ${code} before listening: ${output}`)));
  });
  return {
    url,
    graphqlUrl: `${url}/graphql`,
    child,
    output: () => output,
    printed: (text) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!output.includes(text)) return;
          child.stdout.off("data", check);
          child.stderr.off("data", check);
          child.off("exit", exited);
          resolve();
        };
        const exited = () => reject(new Error(`exited before printing ${text}: ${output}`));
        child.stdout.on("data", check);
        child.stderr.on("data", check);
        child.once("exit", exited);
        check();
      }),
    async kill(signal) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, "exit") as Promise<[number | null]>;
      child.kill(signal);
      return (await exited)[0];
    },
  };
}
