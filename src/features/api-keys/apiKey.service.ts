// Partner credentials: created by owners and admins, shown once, stored as a digest with a
// visible prefix, limited to a role no higher than the creator's, optionally expiring.
import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { Context } from "../../context.ts";
import { ForbiddenError, NotFoundError } from "../../errors.ts";
import { parseInput } from "../../validation.ts";
import { authorize, ROLE_RANK, requireUser } from "../auth/access.ts";
import { apiKeyCacheKey } from "../auth/principal.ts";
import { digest, newSecret } from "../auth/secrets.ts";

const createInput = z.object({
  name: z.string().trim().min(1).max(100),
  role: z.enum(["ADMIN", "MEMBER", "VIEWER"]),
  expiresAt: z
    .date()
    .refine((d) => d > new Date(), "must be in the future")
    .nullable()
    .optional(),
});

export async function createApiKey({
  ctx,
  organizationId,
  input,
}: {
  ctx: Context;
  organizationId: string;
  input: unknown;
}) {
  const viewer = requireUser(ctx);
  const data = parseInput(createInput, input);
  await ctx.budgets.attempt("apiKeyCreate", { account: viewer.userId, ip: ctx.ip });
  const myRole = await authorize(ctx, organizationId, "apiKeys:manage");
  if (ROLE_RANK[data.role] > ROLE_RANK[myRole]) throw new ForbiddenError("A key cannot have a higher role than yours.");
  const prefix = randomBytes(6).toString("hex");
  const secret = `flo_${prefix}_${newSecret(32)}`;
  const apiKey = await ctx.prisma.apiKey.create({
    data: {
      organizationId,
      createdById: viewer.userId,
      name: data.name,
      prefix,
      keyHash: digest(secret),
      role: data.role,
      expiresAt: data.expiresAt ?? null,
    },
  });
  return { apiKey, secret };
}

export async function revokeApiKey({ ctx, id }: { ctx: Context; id: string }) {
  const key = await ctx.prisma.apiKey.findUnique({ where: { id } });
  if (!key) throw new NotFoundError("API key");
  await authorize(ctx, key.organizationId, "apiKeys:manage", "API key");
  const revoked = await ctx.prisma.apiKey.update({ where: { id }, data: { revokedAt: key.revokedAt ?? new Date() } });
  ctx.principals.revoked(apiKeyCacheKey(key.keyHash));
  return revoked;
}
