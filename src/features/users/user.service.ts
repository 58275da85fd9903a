// A user's own account: profile, settings, and deleting it all.

import { z } from "zod";
import type { Context } from "../../context.ts";
import { ConflictError, ValidationError } from "../../errors.ts";
import { uniqueViolation } from "../../infra/dbErrors.ts";
import { parseInput } from "../../validation.ts";
import { requireUser } from "../auth/access.ts";
import { revokeAllSessionsOf, username } from "../auth/auth.service.ts";
import { verifyPassword } from "../auth/password.ts";
import { apiKeyCacheKey } from "../auth/principal.ts";
import { noticeMembership } from "../organizations/organization.service.ts";

const profileInput = z.object({
  fullName: z.string().trim().min(1).max(200).nullable().optional(),
  username: username.nullable().optional(),
});

export async function updateProfile({ ctx, input }: { ctx: Context; input: unknown }) {
  const viewer = requireUser(ctx);
  const data = parseInput(profileInput, input);
  try {
    return await ctx.prisma.user.update({ where: { id: viewer.userId }, data });
  } catch (err) {
    if (uniqueViolation(err)) throw new ConflictError("USERNAME_TAKEN", "That username is taken.");
    throw err;
  }
}

const path = z.string().trim().min(1).max(1024);
export const configInput = z.object({
  monitoredDirectories: z.array(path).max(100).optional(),
  excludePatterns: z.array(z.string().trim().min(1).max(256)).max(200).optional(),
  trackingEnabled: z.boolean().optional(),
  maxEvents: z.number().int().min(100).max(1_000_000).optional(),
  retentionDays: z.number().int().min(1).max(3650).optional(),
  suggestionsEnabled: z.boolean().optional(),
  maxSuggestions: z.number().int().min(0).max(50).optional(),
  useRealFilePaths: z.boolean().optional(),
  anonymize: z.boolean().optional(),
});

/** The user's settings; a row with the reference defaults is made on first use. */
export function getConfig(ctx: Context, userId: string) {
  return ctx.prisma.userConfig.upsert({ where: { userId }, create: { userId }, update: {} });
}

export async function updateConfig({ ctx, input }: { ctx: Context; input: unknown }) {
  const viewer = requireUser(ctx);
  const data = parseInput(configInput, input);
  return ctx.prisma.userConfig.upsert({
    where: { userId: viewer.userId },
    create: { userId: viewer.userId, ...data },
    update: data,
  });
}

/**
 * Deletes the account: organizations the user alone belongs to go entirely (their data with
 * them); personal analytics go; memberships elsewhere end; sessions and the keys they made are
 * revoked; the user row stays, anonymized, so audit entries keep an actor.
 */
export async function deleteAccount({ ctx, input }: { ctx: Context; input: { password: string } }) {
  const viewer = requireUser(ctx);
  const user = await ctx.prisma.user.findUniqueOrThrow({
    where: { id: viewer.userId },
    select: { passwordHash: true },
  });
  if (!(await verifyPassword(input.password, user.passwordHash))) {
    throw new ValidationError(
      "The password is wrong.",
      [{ path: "password", message: "is wrong" }],
      "INVALID_CREDENTIALS",
    );
  }
  const keys = await ctx.prisma.apiKey.findMany({
    where: { createdById: viewer.userId, revokedAt: null },
    select: { keyHash: true },
  });
  const { aloneIn } = await ctx.outbox.transaction(async (tx, notify) => {
    // Lock the user's organizations: a co-owner leaving, or someone joining, cannot slip in
    // between the checks below and the deletions that rely on them.
    await tx.$executeRaw`SELECT 1 FROM organizations WHERE id IN (SELECT organization_id FROM organization_members WHERE user_id = ${viewer.userId}::uuid) FOR UPDATE`;
    const memberships = await tx.organizationMember.findMany({
      where: { userId: viewer.userId },
      select: {
        id: true,
        userId: true,
        organizationId: true,
        role: true,
        organization: { select: { name: true, members: { select: { userId: true, role: true } } } },
      },
    });
    const soleOwnerOfShared = memberships.filter(
      (m) =>
        m.role === "OWNER" &&
        m.organization.members.length > 1 &&
        !m.organization.members.some((o) => o.userId !== viewer.userId && o.role === "OWNER"),
    );
    if (soleOwnerOfShared.length) {
      throw new ConflictError(
        "LAST_OWNER",
        `Make someone else owner of ${soleOwnerOfShared.map((m) => m.organization.name).join(", ")} before deleting your account.`,
      );
    }
    const aloneIn = memberships.filter((m) => m.organization.members.length === 1).map((m) => m.organizationId);
    await tx.organization.deleteMany({ where: { id: { in: aloneIn } } });
    await tx.organizationMember.deleteMany({ where: { userId: viewer.userId } });
    await tx.apiKey.updateMany({
      where: { createdById: viewer.userId, revokedAt: null },
      data: { revokedAt: new Date() },
    });
    await tx.pattern.deleteMany({ where: { userId: viewer.userId } });
    await tx.temporalPattern.deleteMany({ where: { userId: viewer.userId } });
    await tx.fileRelationship.deleteMany({ where: { userId: viewer.userId } });
    await tx.suggestion.deleteMany({ where: { userId: viewer.userId } });
    await tx.userConfig.deleteMany({ where: { userId: viewer.userId } });
    await tx.userToken.deleteMany({ where: { userId: viewer.userId } });
    await tx.organizationInvite.deleteMany({ where: { email: viewer.email, acceptedAt: null } });
    // Invitations they sent lapse; where they signed in from is personal data too.
    await tx.organizationInvite.updateMany({
      where: { invitedById: viewer.userId, acceptedAt: null, revokedAt: null },
      data: { revokedAt: new Date() },
    });
    await tx.loginAttempt.deleteMany({ where: { OR: [{ userId: viewer.userId }, { email: viewer.email }] } });
    await tx.userSession.updateMany({
      where: { userId: viewer.userId },
      data: { ip: null, userAgent: null, device: null },
    });
    await tx.user.update({
      where: { id: viewer.userId },
      data: {
        email: `deleted-${viewer.userId}@deleted.invalid`,
        username: null,
        fullName: null,
        passwordHash: "!deleted",
        isActive: false,
        deletedAt: new Date(),
      },
    });
    for (const membership of memberships.filter((m) => !aloneIn.includes(m.organizationId)))
      noticeMembership(notify, membership, "DELETED");
    return { aloneIn };
  });
  await revokeAllSessionsOf(ctx, viewer.userId, "account deleted");
  for (const key of keys) ctx.principals.revoked(apiKeyCacheKey(key.keyHash));
  return { deletedOrganizations: aloneIn.length };
}
