import { type Context, viewerIdOrNobody } from "../../context.ts";
import type { Prisma } from "../../generated/prisma/client.ts";
import { builder } from "../../schema/builder.ts";
import { decodeId, encodeId } from "../../schema/globalId.ts";
import { noteAudit } from "../audit/audit.ts";
import { activeOrganizationId, PERMISSIONS, type Permission, roleIn } from "../auth/access.ts";
import { liveEventType, liveRow, liveSubscription, subjectId } from "../live/live.schema.ts";
import {
  acceptInvite,
  changeMemberRole,
  createOrganization,
  deleteOrganization,
  inviteMember,
  leaveOrganization,
  removeMember,
  revokeInvite,
  updateOrganization,
} from "./organization.service.ts";

export const OrgRoleRef = builder.enumType("OrgRole", {
  values: {
    OWNER: { description: "Everything, including deleting the organization and managing owners." },
    ADMIN: { description: "Manages members, API keys and all domain data; reads the audit log." },
    MEMBER: { description: "Creates, reads and updates; may run workflows; may not delete." },
    VIEWER: { description: "Reads only." },
  } as const,
});

export const OrganizationTierRef = builder.enumType("OrganizationTier", {
  values: ["FREE", "PRO", "ENTERPRISE"] as const,
});

/** The organizations the caller may see: an API key its own; a user those they belong to. */
export function visibleOrganizations(ctx: Context): Prisma.OrganizationWhereInput {
  return ctx.principal?.kind === "apiKey"
    ? { id: ctx.principal.organizationId }
    : { members: { some: { userId: viewerIdOrNobody(ctx) } } };
}

/** Field-level check for an organization's own fields: the caller's role grants `permission`. */
export function orgPermission(permission: Permission) {
  return async (org: { id: string }, _args: unknown, ctx: Context) => {
    const role = await roleIn(ctx, org.id);
    return role !== null && PERMISSIONS[role].has(permission);
  };
}

// Visible to its members (and its own API keys) only; for anyone else it does not exist.
// Every way in filters by membership (node lookups here, lists by the viewer), so the type
// itself is public: a fresh registration's payload reaches it before any credentials exist.
export const OrganizationRef = builder.prismaNode("Organization", {
  id: { field: "id" },
  select: { id: true },
  nullable: true,
  authScopes: { public: true },
  findUnique: (id, ctx) => ({ id, AND: [visibleOrganizations(ctx)] }),
  fields: (t) => ({
    name: t.exposeString("name"),
    slug: t.exposeString("slug"),
    description: t.exposeString("description", { nullable: true }),
    tier: t.expose("tier", { type: OrganizationTierRef }),
    maxConcurrentExecutions: t.exposeInt("maxConcurrentExecutions", {
      nullable: true,
      description: "How many workflow runs may run at once; null: the server's default (EXECUTION_ORG_LIMIT).",
    }),
    eventRetentionDays: t.exposeInt("eventRetentionDays", {
      description: "Events older than this many days are deleted, with patterns last seen before then.",
    }),
    personal: t.boolean({
      description: "The organization created for a user at registration.",
      select: { personalForUserId: true },
      resolve: (org) => org.personalForUserId !== null,
    }),
    viewerRole: t.field({
      type: OrgRoleRef,
      nullable: true,
      description: "The caller's role here.",
      resolve: (org, _args, ctx) => roleIn(ctx, org.id),
    }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    members: t.relatedConnection("members", {
      cursor: "id",
      query: { orderBy: { id: "asc" } },
      totalCount: true,
    }),
    invites: t.relatedConnection("invites", {
      cursor: "id",
      description: "Open invitations (owners and admins).",
      authScopes: orgPermission("members:manage"),
      query: () => ({
        where: { acceptedAt: null, revokedAt: null, expiresAt: { gt: new Date() } },
        orderBy: { id: "desc" },
      }),
    }),
  }),
});

export const MembershipRef = builder.prismaNode("OrganizationMember", {
  name: "Membership",
  id: { field: "id" },
  select: { id: true },
  nullable: true,
  authScopes: { public: true },
  findUnique: (id, ctx) => ({ id, organization: visibleOrganizations(ctx) }),
  fields: (t) => ({
    role: t.expose("role", { type: OrgRoleRef }),
    organization: t.relation("organization"),
    user: t.relation("user"),
    joinedAt: t.expose("createdAt", { type: "DateTime" }),
  }),
});

export const InviteRef = builder.prismaNode("OrganizationInvite", {
  name: "Invite",
  id: { field: "id" },
  select: { id: true },
  nullable: true,
  authScopes: { authenticated: true },
  // Invitations are visible to those who may manage members: checked on the organization's field,
  // and here only within the caller's organizations.
  findUnique: (id, ctx) => ({
    id,
    organization: { members: { some: { userId: viewerIdOrNobody(ctx), role: { in: ["OWNER", "ADMIN"] } } } },
  }),
  fields: (t) => ({
    email: t.exposeString("email"),
    role: t.expose("role", { type: OrgRoleRef }),
    organization: t.relation("organization"),
    expiresAt: t.expose("expiresAt", { type: "DateTime" }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
  }),
});

builder.queryField("organizations", (t) =>
  t.prismaConnection({
    type: OrganizationRef,
    cursor: "id",
    authScopes: { authenticated: true },
    description: "The organizations the caller belongs to (for an API key, its own).",
    resolve: (query, _root, _args, ctx) =>
      ctx.prisma.organization.findMany({
        ...query,
        where: visibleOrganizations(ctx),
        orderBy: { id: "asc" },
      }),
  }),
);

builder.queryField("activeOrganization", (t) =>
  t.prismaField({
    type: OrganizationRef,
    authScopes: { authenticated: true },
    description:
      "The organization this request acts in: the API key's own; else the one named by the X-Organization-Id header; else the caller's personal one.",
    resolve: async (query, _root, _args, ctx) =>
      ctx.prisma.organization.findUniqueOrThrow({ ...query, where: { id: await activeOrganizationId(ctx) } }),
  }),
);

const OrganizationCreateInput = builder.inputType("OrganizationCreateInput", {
  fields: (t) => ({ name: t.string({ required: true }), description: t.string({ required: false }) }),
});
const OrganizationUpdateInput = builder.inputType("OrganizationUpdateInput", {
  fields: (t) => ({
    id: t.id({ required: true }),
    name: t.string({ required: false }),
    description: t.string({ required: false }),
    eventRetentionDays: t.int({ required: false, description: "1 to 3650: events older than this are deleted." }),
    maxConcurrentExecutions: t.int({
      required: false,
      description: "1 to 100 workflow runs at once, across all instances; null: the server's default.",
    }),
  }),
});
const InviteInput = builder.inputType("OrganizationInviteInput", {
  fields: (t) => ({
    organizationId: t.id({ required: true }),
    email: t.string({ required: true }),
    role: t.field({ type: OrgRoleRef, required: true }),
  }),
});

const orgId = (id: string | number) => decodeId(String(id), "Organization").id;

builder.mutationFields((t) => ({
  organizationCreate: t.prismaField({
    type: OrganizationRef,
    authScopes: { user: true },
    description: "Create an organization; you become its owner. The slug comes from the name, made unique.",
    args: { input: t.arg({ type: OrganizationCreateInput, required: true }) },
    resolve: async (query, _root, { input }, ctx, info) => {
      const org = await createOrganization({ ctx, input });
      noteAudit(ctx, info, { organizationId: org.id, resourceType: "Organization", resourceId: org.id });
      return ctx.prisma.organization.findUniqueOrThrow({ ...query, where: { id: org.id } });
    },
  }),
  organizationUpdate: t.prismaField({
    type: OrganizationRef,
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: OrganizationUpdateInput, required: true }) },
    resolve: async (query, _root, { input: { id, ...changes } }, ctx, info) => {
      const org = await updateOrganization({ ctx, id: orgId(id), input: changes });
      noteAudit(ctx, info, { organizationId: org.id, resourceType: "Organization", resourceId: org.id });
      return ctx.prisma.organization.findUniqueOrThrow({ ...query, where: { id: org.id } });
    },
  }),
  organizationDelete: t.id({
    authScopes: { user: true },
    description: "Delete an organization and everything it owns (owners only). Returns its id.",
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx, info) => {
      await deleteOrganization({ ctx, id: orgId(id) });
      // Its log is gone with it; the entry stays, detached, in the actor's own trail.
      noteAudit(ctx, info, { organizationId: null, resourceType: "Organization", resourceId: orgId(id) });
      return id;
    },
  }),
  organizationInvite: t.prismaField({
    type: InviteRef,
    authScopes: { user: true },
    description: "Invite someone by email (owners and admins); they get a link valid for 7 days.",
    args: { input: t.arg({ type: InviteInput, required: true }) },
    resolve: async (query, _root, { input: { organizationId, ...rest } }, ctx, info) => {
      const invite = await inviteMember({ ctx, organizationId: orgId(organizationId), input: rest });
      noteAudit(ctx, info, { organizationId: invite.organizationId, resourceType: "Invite", resourceId: invite.id });
      return ctx.prisma.organizationInvite.findUniqueOrThrow({ ...query, where: { id: invite.id } });
    },
  }),
  organizationInviteAccept: t.prismaField({
    type: MembershipRef,
    authScopes: { user: true },
    description: "Accept an invitation sent to your email address.",
    args: { token: t.arg.string({ required: true }) },
    resolve: async (query, _root, { token }, ctx, info) => {
      const membership = await acceptInvite({ ctx, token });
      noteAudit(ctx, info, {
        organizationId: membership.organizationId,
        resourceType: "Membership",
        resourceId: membership.id,
      });
      return ctx.prisma.organizationMember.findUniqueOrThrow({ ...query, where: { id: membership.id } });
    },
  }),
  organizationInviteRevoke: t.prismaField({
    type: InviteRef,
    authScopes: { user: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (query, _root, { id }, ctx, info) => {
      const invite = await revokeInvite({ ctx, id: decodeId(String(id), "Invite").id });
      noteAudit(ctx, info, { organizationId: invite.organizationId, resourceType: "Invite", resourceId: invite.id });
      return ctx.prisma.organizationInvite.findUniqueOrThrow({ ...query, where: { id: invite.id } });
    },
  }),
  membershipUpdateRole: t.prismaField({
    type: MembershipRef,
    authScopes: { user: true },
    description: "Change a member's role. Admins manage roles below owner; only owners manage owners.",
    args: { id: t.arg.id({ required: true }), role: t.arg({ type: OrgRoleRef, required: true }) },
    resolve: async (query, _root, { id, role }, ctx, info) => {
      const membership = await changeMemberRole({ ctx, id: decodeId(String(id), "Membership").id, input: { role } });
      noteAudit(ctx, info, {
        organizationId: membership.organizationId,
        resourceType: "Membership",
        resourceId: membership.id,
        details: { role },
      });
      return ctx.prisma.organizationMember.findUniqueOrThrow({ ...query, where: { id: membership.id } });
    },
  }),
  membershipRemove: t.id({
    authScopes: { user: true },
    description: "Remove a member from an organization. Returns the membership's id.",
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx, info) => {
      const membership = await removeMember({ ctx, id: decodeId(String(id), "Membership").id });
      noteAudit(ctx, info, {
        organizationId: membership.organizationId,
        resourceType: "Membership",
        resourceId: membership.id,
      });
      return id;
    },
  }),
  organizationLeave: t.id({
    authScopes: { user: true },
    description: "Leave an organization. Returns its id.",
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx, info) => {
      const membership = await leaveOrganization({ ctx, organizationId: orgId(id) });
      noteAudit(ctx, info, {
        organizationId: membership.organizationId,
        resourceType: "Membership",
        resourceId: membership.id,
      });
      return id;
    },
  }),
}));

const MembershipChangedRef = liveEventType(
  "OrganizationMembershipChanged",
  "Someone joined the organization (CREATED), changed role (UPDATED) or left it (DELETED).",
);
builder.objectFields(MembershipChangedRef, (t) => ({
  membershipId: t.id({ nullable: true, resolve: subjectId("Membership") }),
  userId: t.id({
    nullable: true,
    resolve: (item) => (item.data?.userId ? encodeId("User", String(item.data.userId)) : null),
  }),
  membership: t.prismaField({
    type: MembershipRef,
    nullable: true,
    description: "The membership as it is now; null once deleted.",
    resolve: (query, item, _a, ctx) =>
      liveRow(ctx, item, "OrganizationMember", query, (where) =>
        ctx.prisma.organizationMember.findFirst({ ...query, where }),
      ),
  }),
}));

liveSubscription("organizationMembershipChanged", {
  type: MembershipChangedRef,
  description: "Members joining, changing role and leaving an organization you belong to.",
  feed: "MEMBERSHIPS",
  permission: "read",
});
