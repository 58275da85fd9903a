// An organization's integrations: a connector, its configuration (validated against the
// connector's schema) and its secrets (sealed with AES-256-GCM; never returned or logged).
import { z } from "zod";
import type { Context } from "../../context.ts";
import { AppError, ConflictError, NotFoundError, ValidationError } from "../../errors.ts";
import type { Prisma, PrismaClient } from "../../generated/prisma/client.ts";
import { uniqueViolation } from "../../infra/dbErrors.ts";
import { parseInput } from "../../validation.ts";
import { authorize } from "../auth/access.ts";
import { CONNECTORS, type ConnectorCall, type ConnectorDefinition, connectorByKey } from "./registry.ts";
import { type Scrubber, scrubberFor } from "./scrub.ts";

/** The system connectors as rows: made or refreshed at start, so integrations can reference them. */
export async function syncConnectors(prisma: PrismaClient) {
  for (const c of CONNECTORS) {
    const data = {
      name: c.name,
      serviceType: c.key,
      description: c.description,
      configSchema: connectorSchemas(c) as Prisma.InputJsonObject,
      secretFields: Object.keys(c.secrets.shape),
      isSystem: true,
    };
    await prisma.integrationConnector
      .upsert({ where: { key: c.key }, create: { key: c.key, ...data }, update: data })
      .catch((err: unknown) => {
        // Another instance made the row at the same moment.
        if (!uniqueViolation(err)) throw err;
      });
  }
}

export function connectorSchemas(c: ConnectorDefinition) {
  return { config: z.toJSONSchema(c.config, { io: "input" }), secrets: z.toJSONSchema(c.secrets, { io: "input" }) };
}

/** Checks each part against its schema, and reports the problems of all of them at once. */
function parseParts(parts: [schema: z.ZodObject, value: unknown, prefix: string][]) {
  const fieldErrors: { path: string; message: string }[] = [];
  const parsed = parts.map(([schema, value, prefix]) => {
    const result = schema.strict().safeParse(value ?? {});
    if (result.success) return result.data as Record<string, unknown>;
    for (const i of result.error.issues)
      fieldErrors.push({ path: [prefix, ...i.path.map(String)].join("."), message: i.message });
    return {};
  });
  if (fieldErrors.length) {
    throw new ValidationError(
      `Invalid integration: ${fieldErrors.map((f) => `${f.path}: ${f.message}`).join("; ")}`,
      fieldErrors,
    );
  }
  return parsed;
}

const name = z.string().trim().min(1).max(100);

export async function createIntegration({
  ctx,
  organizationId,
  input,
}: {
  ctx: Context;
  organizationId: string;
  input: unknown;
}) {
  await authorize(ctx, organizationId, "integrations:manage");
  const data = parseInput(
    z.object({ connector: z.string(), name, config: z.unknown().optional(), secrets: z.unknown().optional() }),
    input,
  );
  const connector = connectorByKey.get(data.connector);
  if (!connector) {
    throw new ValidationError(`No connector "${data.connector}".`, [
      { path: "input.connector", message: `must be one of ${CONNECTORS.map((c) => c.key).join(", ")}` },
    ]);
  }
  const [config, secrets] = parseParts([
    [connector.config, data.config, "config"],
    [connector.secrets, data.secrets, "secrets"],
  ]);
  const sealed = ctx.secrets.seal(secrets as Record<string, string>, organizationId);
  let row = await ctx.prisma.integrationConnector.findUnique({ where: { key: connector.key } });
  if (!row) {
    await syncConnectors(ctx.prisma);
    row = await ctx.prisma.integrationConnector.findUniqueOrThrow({ where: { key: connector.key } });
  }
  try {
    return await ctx.prisma.integration.create({
      data: {
        organizationId,
        connectorId: row.id,
        createdById: ctx.principal?.kind === "user" ? ctx.principal.userId : null,
        name: data.name,
        config: config as Prisma.InputJsonObject,
        secretsCiphertext: sealed.ciphertext,
        secretsKeyId: sealed.keyId,
      },
    });
  } catch (err) {
    if (uniqueViolation(err)) throw new ConflictError("INTEGRATION_NAME_TAKEN", "An integration of that name exists.");
    throw err;
  }
}

async function load(ctx: Context, id: string) {
  const integration = await ctx.prisma.integration.findUnique({ where: { id }, include: { connector: true } });
  if (!integration) throw new NotFoundError("Integration");
  const connector = connectorByKey.get(integration.connector.key);
  if (!connector) throw new NotFoundError("Integration");
  return { integration, connector };
}

/** Config replaces; secrets merge (a key set to null is removed), so one credential can change alone. */
export async function updateIntegration({ ctx, id, input }: { ctx: Context; id: string; input: unknown }) {
  const { integration, connector } = await load(ctx, id);
  await authorize(ctx, integration.organizationId, "integrations:manage", "Integration");
  const data = parseInput(
    z.object({
      name: name.optional(),
      config: z.unknown().optional(),
      secrets: z.record(z.string(), z.string().nullable()).optional(),
      isActive: z.boolean().optional(),
    }),
    input,
  );
  const update: Prisma.IntegrationUpdateInput = { name: data.name, isActive: data.isActive };
  if (data.config !== undefined) {
    update.config = parseParts([[connector.config, data.config, "config"]])[0] as Prisma.InputJsonObject;
  }
  if (data.secrets) {
    // Secrets sealed under a key no longer configured start from nothing: they can be set again.
    // A Map: a key named "__proto__" is a key like any other (and then refused as unknown).
    const merged = new Map<string, unknown>(
      Object.entries(openSecrets(ctx, integration.secretsCiphertext, integration.organizationId, { lenient: true })),
    );
    for (const [k, v] of Object.entries(data.secrets)) {
      if (v === null) merged.delete(k);
      else merged.set(k, v);
    }
    const sealed = ctx.secrets.seal(
      parseParts([[connector.secrets, Object.fromEntries(merged), "secrets"]])[0] as Record<string, string>,
      integration.organizationId,
    );
    update.secretsCiphertext = sealed.ciphertext;
    update.secretsKeyId = sealed.keyId;
  }
  try {
    return await ctx.prisma.integration.update({ where: { id }, data: update });
  } catch (err) {
    if (uniqueViolation(err)) throw new ConflictError("INTEGRATION_NAME_TAKEN", "An integration of that name exists.");
    throw err;
  }
}

export async function deleteIntegration({ ctx, id }: { ctx: Context; id: string }) {
  const { integration } = await load(ctx, id);
  await authorize(ctx, integration.organizationId, "integrations:manage", "Integration");
  await ctx.prisma.integration.delete({ where: { id } });
  return integration;
}

export function openSecrets(
  ctx: Pick<Context, "secrets">,
  ciphertext: string | null,
  organizationId: string,
  options: { lenient?: boolean } = {},
): Record<string, string> {
  if (!ciphertext) return {};
  try {
    return ctx.secrets.open(ciphertext, organizationId);
  } catch {
    if (options.lenient) return {};
    throw new AppError(
      "SECRETS_UNREADABLE",
      "This integration's secrets were sealed with a key no longer configured; set them again.",
    );
  }
}

/**
 * A scrubber for every secret of every integration of the organization (turned off ones and
 * all): a step's output may echo any of them, not only the one its integration holds. Plus
 * `used`: the secrets the calls sent, read at their start (since rotated or deleted, maybe).
 */
export async function organizationScrubber(
  deps: Pick<Context, "prisma" | "secrets">,
  organizationId: string,
  used: Iterable<string> = [],
): Promise<Scrubber> {
  const rows = await deps.prisma.integration.findMany({
    where: { organizationId, secretsCiphertext: { not: null } },
    select: { secretsCiphertext: true },
  });
  const values = rows.flatMap((r) =>
    Object.values(openSecrets(deps, r.secretsCiphertext, organizationId, { lenient: true })),
  );
  return scrubberFor([...values.filter((v): v is string => typeof v === "string"), ...used]);
}

/** Everything a step or a test needs to call the integration's service. */
export async function callFor(
  ctx: Pick<Context, "prisma" | "secrets" | "config">,
  integrationId: string,
  organizationId: string,
  signal?: AbortSignal,
): Promise<{ connector: ConnectorDefinition; call: ConnectorCall }> {
  const integration = await ctx.prisma.integration.findFirst({
    where: { id: integrationId, organizationId },
    include: { connector: true },
  });
  const connector = integration && connectorByKey.get(integration.connector.key);
  if (!integration || !connector) throw new NotFoundError("Integration");
  if (!integration.isActive)
    throw new ConflictError("INTEGRATION_INACTIVE", `Integration "${integration.name}" is turned off.`);
  return {
    connector,
    call: {
      config: connector.config.parse(integration.config) as Record<string, unknown>,
      secrets: openSecrets(ctx, integration.secretsCiphertext, organizationId),
      network: ctx.config.connectors,
      signal,
    },
  };
}

/** A real call to the service; the outcome is recorded (last sync, last error) and returned. */
export async function testIntegration({ ctx, id }: { ctx: Context; id: string }) {
  const { integration } = await load(ctx, id);
  await authorize(ctx, integration.organizationId, "execute", "Integration");
  // The secrets the call sent: the integration may be updated or deleted before it fails.
  let sent: string[] = [];
  try {
    const { connector, call } = await callFor(ctx, id, integration.organizationId);
    sent = Object.values(call.secrets);
    const message = await connector.test(call);
    await ctx.prisma.integration.update({ where: { id }, data: { lastSyncAt: new Date(), lastError: null } });
    return { ok: true, code: null, message };
  } catch (err) {
    const code = err instanceof AppError ? err.code : "CONNECTOR_FAILED";
    const scrubber = await organizationScrubber(ctx, integration.organizationId, sent);
    const message = scrubber.clip(err instanceof Error ? err.message : String(err), 500);
    await ctx.prisma.integration.update({ where: { id }, data: { lastError: `${code}: ${message}` } });
    return { ok: false, code, message };
  }
}

/** Seals every integration of the organization under the current key: the last step of a key rotation. */
export async function resealSecrets({ ctx, organizationId }: { ctx: Context; organizationId: string }) {
  await authorize(ctx, organizationId, "integrations:manage");
  const stale = await ctx.prisma.integration.findMany({
    where: { organizationId, secretsCiphertext: { not: null }, secretsKeyId: { not: ctx.secrets.currentKeyId } },
    select: { id: true, secretsCiphertext: true },
  });
  for (const row of stale) {
    const sealed = ctx.secrets.seal(openSecrets(ctx, row.secretsCiphertext, organizationId), organizationId);
    await ctx.prisma.integration.update({
      where: { id: row.id },
      data: { secretsCiphertext: sealed.ciphertext, secretsKeyId: sealed.keyId },
    });
  }
  return stale.length;
}
