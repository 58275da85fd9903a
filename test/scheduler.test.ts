// Schedules and the scheduler: validated cron/interval with time zones; each occurrence runs
// exactly once; one leader among instances, a successor within the lease's TTL when it
// dies; a write with a stale fencing token is refused.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { fence, SCHEDULER_LOCK, StaleLeaderError } from "../src/features/workflows/schedule.service.ts";
import { activeWorkflow, errorCode, fieldErrorPaths } from "./helpers/api.ts";
import { gql } from "./helpers/client.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { isolatedServices } from "./helpers/isolated.ts";
import { leaders, schedulerHealth } from "./helpers/leaders.ts";
import { type ServerProcess, spawnServer } from "./helpers/process.ts";
import { services, startServer, type TestServer } from "./helpers/server.ts";
import { until } from "./helpers/wait.ts";

async function schedule(url: string, user: TestUser, input: Record<string, unknown>) {
  return gql<{ scheduleCreate: { id: string; nextRuns: string[]; nextRunAt: string } }>(
    url,
    "mutation($input: ScheduleCreateInput!) { scheduleCreate(input: $input) { id nextRunAt nextRuns(count: 3) isPaused } }",
    { token: user.token, variables: { input } },
  );
}

async function occurrencesOf(url: string, user: TestUser, workflowId: string) {
  const r = await gql<{
    node: { executions: { totalCount: number; edges: { node: { scheduledFor: string; status: string } }[] } };
  }>(
    url,
    "query($id: ID!) { node(id: $id) { ... on Workflow { executions(first: 100) { totalCount edges { node { scheduledFor status } } } } } }",
    { token: user.token, variables: { id: workflowId } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.node.executions.edges.map((e) => e.node).reverse();
}

/** Consecutive occurrences, each once: one second apart, no repeats, no gaps. */
function expectEachSecondOnce(times: string[]) {
  const ms = times.map((t) => Date.parse(t));
  expect(new Set(ms).size).toBe(ms.length);
  for (let i = 1; i < ms.length; i++) expect((ms[i] as number) - (ms[i - 1] as number)).toBe(1000);
}

describe("schedules", () => {
  let server: TestServer;
  let isolated: Awaited<ReturnType<typeof isolatedServices>>;
  beforeAll(async () => {
    // Its own database and Redis prefix: no other suite's server competes for leadership.
    isolated = await isolatedServices("schedules");
    server = await startServer({ ...isolated.env, EXECUTION_POLL_MS: "100" });
  });
  afterAll(async () => {
    await server.stop();
    await isolated.cleanup();
  });

  it("validates timing, shows next runs in the time zone, and pauses", async () => {
    const user = await createUser(server.graphqlUrl);
    const workflowId = await activeWorkflow(server.graphqlUrl, user);
    const bad: [Record<string, unknown>, string][] = [
      [{ cron: "61 * * * *" }, "input.cron"],
      [{ cron: "* * *" }, "input.cron"],
      [{ cron: "* * * * *", intervalSeconds: 60 }, "input.cron"],
      [{}, "input.cron"],
      [{ cron: "* * * * *", timezone: "Mars/Olympus" }, "input.timezone"],
      [{ intervalSeconds: 0 }, "intervalSeconds"],
    ];
    for (const [input, path] of bad) {
      const r = await schedule(server.graphqlUrl, user, { workflowId, ...input });
      expect(errorCode(r), JSON.stringify(input)).toBe("BAD_USER_INPUT");
      expect(fieldErrorPaths(r)[0]).toBe(path);
    }
    const ok = await schedule(server.graphqlUrl, user, { workflowId, cron: "0 9 * * 1-5", timezone: "Europe/Paris" });
    expect(ok.errors).toBeUndefined();
    const paris = new Intl.DateTimeFormat("en-GB", {
      timeZone: "Europe/Paris",
      weekday: "short",
      hour: "2-digit",
      minute: "2-digit",
    });
    for (const run of ok.data?.scheduleCreate.nextRuns ?? [])
      expect(paris.format(new Date(run))).toMatch(/^(Mon|Tue|Wed|Thu|Fri) 09:00$/);
    expect(ok.data?.scheduleCreate.nextRuns).toHaveLength(3);
    const paused = await gql<{ scheduleUpdate: { isPaused: boolean; nextRuns: string[] } }>(
      server.graphqlUrl,
      "mutation($input: ScheduleUpdateInput!) { scheduleUpdate(input: $input) { isPaused nextRuns } }",
      { token: user.token, variables: { input: { id: ok.data?.scheduleCreate.id, isPaused: true } } },
    );
    expect(paused.data?.scheduleUpdate).toEqual({ isPaused: true, nextRuns: [] });
    const mallory = await createUser(server.graphqlUrl);
    const theirs = await schedule(server.graphqlUrl, mallory, { workflowId, intervalSeconds: 60 });
    expect(errorCode(theirs)).toBe("NOT_FOUND");
  });

  it("runs each occurrence of an interval once, and leads alone in one process", async () => {
    expect(await schedulerHealth(server.url)).toMatchObject({ isLeader: true });
    const user = await createUser(server.graphqlUrl);
    const workflowId = await activeWorkflow(server.graphqlUrl, user);
    await schedule(server.graphqlUrl, user, { workflowId, intervalSeconds: 1, catchUp: "ALL" });
    const runs = await until(
      () => occurrencesOf(server.graphqlUrl, user, workflowId),
      (r) => r.filter((e) => e.status === "SUCCEEDED").length >= 3,
    );
    expectEachSecondOnce(runs.map((r) => r.scheduledFor));
  });

  it("refuses a write with a stale fencing token", async () => {
    const prisma = server.app.runtime.db.prisma;
    // A lock name of its own: the real scheduler's fence is left alone.
    const name = `fence-test-${Date.now()}`;
    await fence(prisma, { name, token: "a", fencingToken: 7n }, "a");
    await fence(prisma, { name, token: "b", fencingToken: 8n }, "b");
    await expect(fence(prisma, { name, token: "a", fencingToken: 7n }, "a")).rejects.toBeInstanceOf(StaleLeaderError);
    const row = await prisma.leaderFence.findUnique({ where: { name } });
    expect(row).toMatchObject({ fencingToken: 8n, holderId: "b" });
    expect(SCHEDULER_LOCK).toBe("scheduler");
  });
});

describe.runIf(services)("three instances", () => {
  it("elects one leader, replaces it within the TTL when killed, and runs each occurrence once", async () => {
    const TTL = 1_000;
    const own = await isolatedServices("instances");
    onTestFinished(() => own.cleanup());
    const env = { ...own.env, SCHEDULER_LOCK_TTL_MS: String(TTL), EXECUTION_POLL_MS: "100", LOG_LEVEL: "info" };
    const instances: ServerProcess[] = await Promise.all([spawnServer(env), spawnServer(env), spawnServer(env)]);
    for (const p of instances) onTestFinished(() => p.kill("SIGKILL").then(() => undefined));
    const [leader] = await until(
      () => leaders(instances),
      (l) => l.length === 1,
    );
    if (!leader) throw new Error("no leader");

    const url = instances[0]?.graphqlUrl as string;
    const user = await createUser(url);
    const workflowId = await activeWorkflow(url, user);
    const created = await schedule(url, user, { workflowId, intervalSeconds: 1, catchUp: "ALL" });
    await until(
      () => occurrencesOf(url, user, workflowId),
      (r) => r.length >= 3,
    );

    const killedAt = Date.now();
    await leader.kill("SIGKILL");
    const survivors = instances.filter((p) => p !== leader);
    const [successor] = await until(
      () => leaders(survivors),
      (l) => l.length === 1,
    );
    const state = await schedulerHealth(successor?.url as string);
    // The lease lapses at most TTL after the last renewal, and survivors try every TTL/10 (the bound keeps TTL/3 of slack).
    // (Plus a second of slack for timers running late on a loaded machine.)
    expect(Date.parse(state.leaderSince ?? "") - killedAt).toBeLessThanOrEqual(TTL + TTL / 3 + 1000);

    const survivorUrl = survivors[0]?.graphqlUrl as string;
    const atKill = (await occurrencesOf(survivorUrl, user, workflowId)).length;
    await until(
      () => occurrencesOf(survivorUrl, user, workflowId),
      (r) => r.length >= atKill + 3,
    );
    await gql(survivorUrl, "mutation($input: ScheduleUpdateInput!) { scheduleUpdate(input: $input) { id } }", {
      token: user.token,
      variables: { input: { id: created.data?.scheduleCreate.id, isPaused: true } },
    });
    const runs = await occurrencesOf(survivorUrl, user, workflowId);
    // Missed while no one led: caught up (ALL), each once, none twice.
    expectEachSecondOnce(runs.map((r) => r.scheduledFor));
    for (const p of survivors) expect(await p.kill("SIGTERM")).toBe(0);
  });
});
