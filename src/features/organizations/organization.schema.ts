import { viewerIdOrNobody } from "../../context.ts";
import { builder } from "../../schema/builder.ts";

export const OrgRoleRef = builder.enumType("OrgRole", {
  values: {
    OWNER: { description: "Everything, including deleting the organization." },
    ADMIN: { description: "Manages members, API keys and all domain data." },
    MEMBER: { description: "Creates, reads and updates; may run workflows; may not delete." },
    VIEWER: { description: "Reads only." },
  } as const,
});

export const OrganizationTierRef = builder.enumType("OrganizationTier", {
  values: ["FREE", "PRO", "ENTERPRISE"] as const,
});

// Visible to its members only; for anyone else it does not exist.
export const OrganizationRef = builder.prismaNode("Organization", {
  id: { field: "id" },
  nullable: true,
  findUnique: (id, ctx) => ({ id, members: { some: { userId: viewerIdOrNobody(ctx) } } }),
  fields: (t) => ({
    name: t.exposeString("name"),
    slug: t.exposeString("slug"),
    description: t.exposeString("description", { nullable: true }),
    tier: t.expose("tier", { type: OrganizationTierRef }),
    personal: t.boolean({
      description: "The organization created for a user at registration.",
      select: { personalForUserId: true },
      resolve: (org) => org.personalForUserId !== null,
    }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
  }),
});

export const MembershipRef = builder.prismaObject("OrganizationMember", {
  name: "Membership",
  fields: (t) => ({
    role: t.expose("role", { type: OrgRoleRef }),
    organization: t.relation("organization"),
    joinedAt: t.expose("createdAt", { type: "DateTime" }),
  }),
});
