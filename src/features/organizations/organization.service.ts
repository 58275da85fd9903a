// Organizations and their members: create, update, delete, invitations, roles, leaving.
// The last owner can neither leave, be removed, nor be demoted.

import { z } from "zod";
import type { Context } from "../../context.ts";
import { ConflictError, ForbiddenError, NotFoundError } from "../../errors.ts";
import type { OrgRole, Prisma } from "../../generated/prisma/client.ts";
import { uniqueViolation } from "../../infra/dbErrors.ts";
import type { Notify } from "../../infra/outbox.ts";
import { parseInput } from "../../validation.ts";
import { authorize, PERMISSIONS, requireUser } from "../auth/access.ts";
import { email } from "../auth/auth.service.ts";
import { digest, newSecret } from "../auth/secrets.ts";
import { forgetRetention } from "../events/event.service.ts";
import { uniqueSlug } from "./slug.ts";

const INVITE_TTL_MS = 7 * 86_400_000;
const name = z.string().trim().min(1).max(100);
const description = z.string().trim().max(2000).nullable().optional();
const role = z.enum(["OWNER", "ADMIN", "MEMBER", "VIEWER"]);

export async function createOrganization({ ctx, input }: { ctx: Context; input: unknown }) {
  const viewer = requireUser(ctx);
  const data = parseInput(z.object({ name, description }), input);
  for (let attempt = 0; ; attempt++) {
    try {
      return await ctx.prisma.$transaction(async (tx) => {
        const org = await tx.organization.create({
          data: { name: data.name, description: data.description ?? null, slug: await uniqueSlug(tx, data.name) },
        });
        await tx.organizationMember.create({ data: { organizationId: org.id, userId: viewer.userId, role: "OWNER" } });
        return org;
      });
    } catch (err) {
      // Two creations raced for one slug: pick again.
      if (attempt < 3 && uniqueViolation(err)?.includes("slug")) continue;
      throw err;
    }
  }
}

export async function updateOrganization({ ctx, id, input }: { ctx: Context; id: string; input: unknown }) {
  await authorize(ctx, id, "organization:update");
  const data = parseInput(
    z.object({
      name: name.optional(),
      description,
      eventRetentionDays: z.number().int().min(1).max(3650).nullish(),
      maxConcurrentExecutions: z.number().int().min(1).max(100).nullish(),
    }),
    input,
  );
  const updated = await ctx.prisma.organization.update({
    where: { id },
    data: { ...data, eventRetentionDays: data.eventRetentionDays ?? undefined },
  });
  forgetRetention(id);
  return updated;
}

export async function deleteOrganization({ ctx, id }: { ctx: Context; id: string }) {
  await authorize(ctx, id, "organization:delete");
  const org = await ctx.prisma.organization.findUniqueOrThrow({ where: { id }, select: { personalForUserId: true } });
  if (org.personalForUserId) {
    throw new ConflictError("PERSONAL_ORGANIZATION", "A personal organization goes only with its account.");
  }
  const members = await ctx.prisma.organizationMember.findMany({
    where: { organizationId: id },
    select: { id: true, userId: true },
  });
  await ctx.outbox.transaction(async (tx, notify) => {
    await tx.organization.delete({ where: { id } });
    for (const m of members) noticeMembership(notify, { ...m, organizationId: id }, "DELETED");
  });
  // Its API keys went with it: cached ones must look again, on every instance.
  ctx.principals.revoked("*", id);
}

/**
 * Membership changes are a live feed, and what ends a removed member's subscriptions:
 * noticed in the transaction of the change.
 */
export function noticeMembership(
  notify: Notify,
  membership: { id: string; organizationId: string; userId: string },
  kind: "CREATED" | "UPDATED" | "DELETED",
) {
  notify("MEMBERSHIPS", membership.organizationId, {
    id: membership.id,
    kind,
    data: { userId: membership.userId },
  });
}

/**
 * Owner-count checks run with the organization row locked, so two owners leaving at once
 * cannot both pass the "someone else is still owner" test.
 */
async function assertOwnerRemains(tx: Prisma.TransactionClient, organizationId: string, message: string) {
  await tx.$executeRaw`SELECT 1 FROM organizations WHERE id = ${organizationId}::uuid FOR UPDATE`;
  if ((await tx.organizationMember.count({ where: { organizationId, role: "OWNER" } })) === 0) {
    throw new ConflictError("LAST_OWNER", message);
  }
}

/** Admins manage members below owner; only owners grant, change or take away ownership. */
async function assertCanManage(
  ctx: Context,
  organizationId: string,
  targetRoles: OrgRole[],
  resource = "Organization",
) {
  // Named after what the caller asked for: another tenant's membership looks like a missing one.
  const myRole = await authorize(ctx, organizationId, "members:manage", resource);
  if (targetRoles.includes("OWNER") && myRole !== "OWNER") {
    throw new ForbiddenError("Only an owner can grant, change or remove ownership.");
  }
  return myRole;
}

export async function inviteMember({
  ctx,
  organizationId,
  input,
}: {
  ctx: Context;
  organizationId: string;
  input: unknown;
}) {
  const viewer = requireUser(ctx);
  const data = parseInput(z.object({ email, role }), input);
  await ctx.budgets.attempt("invite", { account: viewer.userId, ip: ctx.ip });
  await assertCanManage(ctx, organizationId, [data.role]);
  const org = await ctx.prisma.organization.findUniqueOrThrow({
    where: { id: organizationId },
    select: { name: true, personalForUserId: true },
  });
  if (org.personalForUserId)
    throw new ConflictError("PERSONAL_ORGANIZATION", "A personal organization has one member.");
  const already = await ctx.prisma.organizationMember.findFirst({
    where: { organizationId, user: { email: data.email } },
  });
  if (already) throw new ConflictError("ALREADY_MEMBER", "That person is already a member.");
  const token = newSecret();
  const invite = await ctx.prisma.organizationInvite.create({
    data: {
      organizationId,
      email: data.email,
      role: data.role,
      tokenHash: digest(token),
      invitedById: viewer.userId,
      expiresAt: new Date(Date.now() + INVITE_TTL_MS),
    },
  });
  try {
    await ctx.mailer.send({
      to: data.email,
      subject: `You are invited to ${org.name} on Floyo`,
      text: `Join ${org.name} as ${data.role.toLowerCase()}:\n\n${ctx.config.appUrl}/invites/accept?token=${token}\n\nThe invitation is valid for 7 days.`,
    });
  } catch (err) {
    ctx.logger.error({ err: (err as Error).message }, "invitation mail not sent");
  }
  return invite;
}

/** Accepting needs the invited address: a forwarded link does not admit someone else. */
export async function acceptInvite({ ctx, token }: { ctx: Context; token: string }) {
  const viewer = requireUser(ctx);
  const invite = await ctx.prisma.organizationInvite.findUnique({ where: { tokenHash: digest(token) } });
  if (!invite || invite.acceptedAt || invite.revokedAt || invite.expiresAt <= new Date()) {
    throw new ConflictError("INVITE_INVALID", "This invitation is invalid, used, revoked or expired.");
  }
  const user = await ctx.prisma.user.findUniqueOrThrow({
    where: { id: viewer.userId },
    select: { email: true, emailVerifiedAt: true },
  });
  if (invite.email !== user.email) throw new ForbiddenError("This invitation was sent to another email address.");
  // Proof of the address, not just its claim: a forwarded link is no use to someone who
  // registered that address without being able to read its mail.
  if (!user.emailVerifiedAt) throw new ForbiddenError("Verify your email address first, then accept the invitation.");
  // The inviter must still be allowed to grant the role: a removed admin's invitations lapse.
  const inviter = invite.invitedById
    ? await ctx.prisma.organizationMember.findUnique({
        where: { organizationId_userId: { organizationId: invite.organizationId, userId: invite.invitedById } },
        select: { role: true },
      })
    : null;
  if (
    !inviter ||
    !PERMISSIONS[inviter.role].has("members:manage") ||
    (invite.role === "OWNER" && inviter.role !== "OWNER")
  ) {
    throw new ConflictError("INVITE_INVALID", "This invitation is no longer valid; ask for a new one.");
  }
  return ctx.outbox.transaction(async (tx, notify) => {
    const { count } = await tx.organizationInvite.updateMany({
      where: { id: invite.id, acceptedAt: null, revokedAt: null, expiresAt: { gt: new Date() } },
      data: { acceptedAt: new Date() },
    });
    if (count === 0) throw new ConflictError("INVITE_INVALID", "This invitation was already used.");
    const membership = await tx.organizationMember.upsert({
      where: { organizationId_userId: { organizationId: invite.organizationId, userId: viewer.userId } },
      create: { organizationId: invite.organizationId, userId: viewer.userId, role: invite.role },
      update: {},
    });
    noticeMembership(notify, membership, "CREATED");
    return membership;
  });
}

export async function revokeInvite({ ctx, id }: { ctx: Context; id: string }) {
  const invite = await ctx.prisma.organizationInvite.findUnique({ where: { id } });
  if (!invite) throw new NotFoundError("Invite");
  await assertCanManage(ctx, invite.organizationId, [invite.role], "Invite");
  if (invite.acceptedAt) throw new ConflictError("INVITE_ACCEPTED", "This invitation was already accepted.");
  return ctx.prisma.organizationInvite.update({ where: { id }, data: { revokedAt: invite.revokedAt ?? new Date() } });
}

async function findMembership(ctx: Context, id: string) {
  const membership = await ctx.prisma.organizationMember.findUnique({ where: { id } });
  if (!membership) throw new NotFoundError("Membership");
  return membership;
}

export async function changeMemberRole({ ctx, id, input }: { ctx: Context; id: string; input: unknown }) {
  const { role: newRole } = parseInput(z.object({ role }), input);
  const membership = await findMembership(ctx, id);
  await assertCanManage(ctx, membership.organizationId, [membership.role, newRole], "Membership");
  if (membership.role === newRole) return membership;
  const updated = await ctx.outbox.transaction(async (tx, notify) => {
    const updated = await tx.organizationMember.update({ where: { id }, data: { role: newRole } });
    noticeMembership(notify, updated, "UPDATED");
    if (membership.role === "OWNER") {
      await assertOwnerRemains(
        tx,
        membership.organizationId,
        "The last owner cannot be demoted; make someone else owner first.",
      );
    }
    return updated;
  });
  // API keys act with at most their creator's current role: cached ones must look again.
  ctx.principals.revoked("*", membership.organizationId);
  return updated;
}

export async function removeMember({ ctx, id }: { ctx: Context; id: string }) {
  const membership = await findMembership(ctx, id);
  await assertCanManage(ctx, membership.organizationId, [membership.role], "Membership");
  await dropMembership(ctx, membership);
  return membership;
}

export async function leaveOrganization({ ctx, organizationId }: { ctx: Context; organizationId: string }) {
  const viewer = requireUser(ctx);
  const membership = await ctx.prisma.organizationMember.findUnique({
    where: { organizationId_userId: { organizationId, userId: viewer.userId } },
  });
  if (!membership) throw new NotFoundError("Organization");
  const org = await ctx.prisma.organization.findUniqueOrThrow({
    where: { id: organizationId },
    select: { personalForUserId: true },
  });
  if (org.personalForUserId)
    throw new ConflictError("PERSONAL_ORGANIZATION", "You cannot leave your personal organization.");
  await dropMembership(ctx, membership);
  return membership;
}

async function dropMembership(
  ctx: Context,
  membership: { id: string; organizationId: string; userId: string; role: OrgRole },
) {
  await ctx.outbox.transaction(async (tx, notify) => {
    await tx.organizationMember.delete({ where: { id: membership.id } });
    noticeMembership(notify, membership, "DELETED");
    if (membership.role === "OWNER") {
      await assertOwnerRemains(
        tx,
        membership.organizationId,
        "The last owner cannot leave or be removed; make someone else owner first.",
      );
    }
  });
  // The member's API keys stop with their membership: cached ones must look again.
  ctx.principals.revoked("*", membership.organizationId);
}
