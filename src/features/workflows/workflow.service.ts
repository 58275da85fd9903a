// Workflows and their versions: every change is a new, immutable version (number, author,
// summary); a rollback restores version n as a new version; two versions can be compared.
import { z } from "zod";
import type { Context } from "../../context.ts";
import { AppError, NotFoundError, ValidationError } from "../../errors.ts";
import type { Prisma, WorkflowStatus } from "../../generated/prisma/client.ts";
import { decodeId } from "../../schema/globalId.ts";
import { parseInput } from "../../validation.ts";
import { authorize } from "../auth/access.ts";
import { actionNames, actionOf, connectorByKey } from "../connectors/registry.ts";
import { actingUserId } from "../events/visibility.ts";
import { type Definition, definitionSchema, STEP_CONNECTOR } from "./definition.ts";

type Tx = Prisma.TransactionClient;

/** The definition checked: its shape, then that every integration it names exists here and fits its step. */
export async function checkDefinition(
  prisma: Tx | Context["prisma"],
  organizationId: string,
  raw: unknown,
  options: { runnable: boolean },
): Promise<Definition> {
  const parsed = definitionSchema.safeParse(raw);
  if (!parsed.success) {
    const fieldErrors = parsed.error.issues.map((i) => ({
      path: ["definition", ...i.path.map(String)].join("."),
      message: i.message,
    }));
    throw new ValidationError(
      `Invalid definition: ${fieldErrors.map((e) => `${e.path}: ${e.message}`).join("; ")}`,
      fieldErrors,
    );
  }
  const definition = parsed.data;
  const errors: { path: string; message: string }[] = [];
  for (const [i, step] of definition.steps.entries()) {
    if (step.type === "connector") {
      // Only the connector's own actions: "constructor" or "toString" would reach Object's.
      const connector = connectorByKey.get(step.connector);
      if (!connector || !actionOf(connector, step.action)) {
        errors.push({
          path: `definition.steps.${i}.action`,
          message: `must be one of ${connector ? actionNames(connector).join(", ") : "the connector's actions"}`,
        });
      }
    }
    if (!("integrationId" in step)) continue;
    const path = `definition.steps.${i}.integrationId`;
    if (step.integrationId === null) {
      if (options.runnable) errors.push({ path, message: "connect an integration before the workflow can run" });
      continue;
    }
    let id: string;
    try {
      id = decodeId(step.integrationId, "Integration").id;
    } catch {
      errors.push({ path, message: "is not an Integration id" });
      continue;
    }
    const integration = await prisma.integration.findFirst({
      where: { id, organizationId },
      select: { connector: { select: { key: true } } },
    });
    const wanted = step.type === "connector" ? step.connector : STEP_CONNECTOR[step.type];
    if (!integration) errors.push({ path, message: "no such integration in this organization" });
    else if (wanted && integration.connector.key !== wanted) {
      errors.push({ path, message: `must be a ${wanted} integration, not ${integration.connector.key}` });
    }
  }
  if (errors.length) {
    throw new ValidationError(`Invalid definition: ${errors.map((e) => `${e.path}: ${e.message}`).join("; ")}`, errors);
  }
  return definition;
}

const name = z.string().trim().min(1).max(200);
const description = z.string().trim().max(5000).nullish();
const summary = z.string().trim().max(500).nullish();

export async function createWorkflow({
  ctx,
  organizationId,
  input,
}: {
  ctx: Context;
  organizationId: string;
  input: unknown;
}) {
  await authorize(ctx, organizationId, "create");
  const data = parseInput(
    z.object({ name, description, definition: z.unknown(), status: z.enum(["DRAFT", "ACTIVE"]).default("DRAFT") }),
    input,
  );
  const definition = await checkDefinition(ctx.prisma, organizationId, data.definition, {
    runnable: data.status === "ACTIVE",
  });
  const authorId = actingUserId(ctx);
  return ctx.prisma.$transaction(async (tx) => {
    const workflow = await tx.workflow.create({
      data: {
        organizationId,
        createdById: authorId,
        name: data.name,
        description: data.description ?? null,
        definition: definition as Prisma.InputJsonObject,
        status: data.status,
      },
    });
    await tx.workflowVersion.create({
      data: {
        organizationId,
        workflowId: workflow.id,
        number: 1,
        name: workflow.name,
        description: workflow.description,
        definition: definition as Prisma.InputJsonObject,
        changeSummary: "Created",
        authorId,
      },
    });
    return workflow;
  });
}

async function visible(ctx: Context, id: string) {
  const workflow = await ctx.prisma.workflow.findUnique({ where: { id } });
  if (!workflow) throw new NotFoundError("Workflow");
  return workflow;
}

/**
 * Applies a change as a new version, with the workflow row locked: two concurrent edits get
 * consecutive numbers, never the same one.
 */
async function newVersion(
  ctx: Context,
  id: string,
  // Runs inside the transaction: it must read through `tx` (PGlite has one connection).
  change: (
    current: {
      organizationId: string;
      name: string;
      description: string | null;
      definition: unknown;
      status: WorkflowStatus;
    },
    tx: Tx,
  ) => Promise<{
    name: string;
    description: string | null;
    definition: Definition;
    status: WorkflowStatus;
    changeSummary: string;
    restoredFrom?: number;
  }>,
) {
  const workflow = await visible(ctx, id);
  await authorize(ctx, workflow.organizationId, "update", "Workflow");
  const authorId = actingUserId(ctx);
  return ctx.prisma.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT 1 FROM workflows WHERE id = ${id}::uuid FOR UPDATE`;
    const current = await tx.workflow.findUniqueOrThrow({ where: { id } });
    const next = await change(current, tx);
    const number = current.currentVersion + 1;
    await tx.workflowVersion.create({
      data: {
        organizationId: current.organizationId,
        workflowId: id,
        number,
        name: next.name,
        description: next.description,
        definition: next.definition as Prisma.InputJsonObject,
        changeSummary: next.changeSummary,
        restoredFrom: next.restoredFrom,
        authorId,
      },
    });
    return tx.workflow.update({
      where: { id },
      data: {
        name: next.name,
        description: next.description,
        definition: next.definition as Prisma.InputJsonObject,
        status: next.status,
        currentVersion: number,
      },
    });
  });
}

export async function updateWorkflow({ ctx, id, input }: { ctx: Context; id: string; input: unknown }) {
  const data = parseInput(
    z.object({
      name: name.optional(),
      description,
      definition: z.unknown().optional(),
      status: z.enum(["DRAFT", "ACTIVE", "ARCHIVED"]).optional(),
      changeSummary: summary,
    }),
    input,
  );
  return newVersion(ctx, id, async (current, tx) => {
    const status = data.status ?? current.status;
    const definition = await checkDefinition(tx, current.organizationId, data.definition ?? current.definition, {
      runnable: status === "ACTIVE",
    });
    return {
      name: data.name ?? current.name,
      description: data.description === undefined ? current.description : data.description,
      definition,
      status,
      changeSummary: data.changeSummary ?? describeChange(data),
    };
  });
}

function describeChange(data: Record<string, unknown>) {
  const parts = Object.keys(data).filter((k) => data[k] !== undefined && k !== "changeSummary");
  return parts.length ? `Changed ${parts.join(", ")}` : "Saved";
}

export async function rollbackWorkflow({ ctx, id, version }: { ctx: Context; id: string; version: number }) {
  return newVersion(ctx, id, async (current, tx) => {
    const target = await tx.workflowVersion.findUnique({
      where: { workflowId_number: { workflowId: id, number: version } },
    });
    if (!target) throw new NotFoundError("Workflow version");
    const status = current.status;
    const definition = await checkDefinition(tx, target.organizationId, target.definition, {
      runnable: status === "ACTIVE",
    });
    return {
      name: target.name,
      description: target.description,
      definition,
      status,
      changeSummary: `Rolled back to version ${version}`,
      restoredFrom: version,
    };
  });
}

export async function deleteWorkflow({ ctx, id }: { ctx: Context; id: string }) {
  const workflow = await visible(ctx, id);
  await authorize(ctx, workflow.organizationId, "delete", "Workflow");
  const running = await ctx.prisma.workflowExecution.count({
    where: { workflowId: id, status: { in: ["QUEUED", "RUNNING"] } },
  });
  if (running) throw new AppError("WORKFLOW_RUNNING", "Cancel its running executions first, or archive it.");
  await ctx.prisma.workflow.delete({ where: { id } });
  return workflow;
}

export interface Difference {
  path: string;
  change: "ADDED" | "REMOVED" | "CHANGED";
  before: unknown;
  after: unknown;
}

/** What changed from one version to another: fields by path, steps matched by their id. */
export function diffVersions(
  a: { name: string; description: string | null; definition: unknown },
  b: { name: string; description: string | null; definition: unknown },
): Difference[] {
  const out: Difference[] = [];
  const walk = (path: string, x: unknown, y: unknown) => {
    if (JSON.stringify(x) === JSON.stringify(y)) return;
    if (x === undefined) return out.push({ path, change: "ADDED", before: null, after: y });
    if (y === undefined) return out.push({ path, change: "REMOVED", before: x, after: null });
    const byId = (v: unknown) =>
      Array.isArray(v) && v.every((s) => s && typeof s === "object" && "id" in s)
        ? new Map(v.map((s) => [String((s as { id: unknown }).id), s]))
        : null;
    const [mx, my] = [byId(x), byId(y)];
    if (mx && my) {
      for (const key of new Set([...mx.keys(), ...my.keys()])) walk(`${path}[${key}]`, mx.get(key), my.get(key));
      return;
    }
    if (x && y && typeof x === "object" && typeof y === "object" && !Array.isArray(x) && !Array.isArray(y)) {
      const ox = x as Record<string, unknown>;
      const oy = y as Record<string, unknown>;
      for (const key of new Set([...Object.keys(ox), ...Object.keys(oy)]))
        walk(path ? `${path}.${key}` : key, ox[key], oy[key]);
      return;
    }
    out.push({ path, change: "CHANGED", before: x, after: y });
  };
  walk(
    "",
    { name: a.name, description: a.description, definition: a.definition },
    { name: b.name, description: b.description, definition: b.definition },
  );
  return out;
}
