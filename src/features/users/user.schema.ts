import { viewerIdOrNobody } from "../../context.ts";
import { builder } from "../../schema/builder.ts";

// A user is visible to themself and to members of an organization they belong to; to anyone
// else it does not exist. Every user belongs to their personal organization, so this one
// condition covers the viewer too.
export const UserRef = builder.prismaNode("User", {
  id: { field: "id" },
  nullable: true,
  findUnique: (id, ctx) => ({
    id,
    memberships: {
      some: { organization: { members: { some: { userId: viewerIdOrNobody(ctx) } } } },
    },
  }),
  fields: (t) => ({
    email: t.exposeString("email"),
    username: t.exposeString("username", { nullable: true }),
    fullName: t.exposeString("fullName", { nullable: true }),
    emailVerified: t.boolean({
      select: { emailVerifiedAt: true },
      resolve: (user) => user.emailVerifiedAt !== null,
    }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    memberships: t.relation("memberships", {
      description: "The organizations this user belongs to, with their role in each.",
      query: { orderBy: { createdAt: "asc" } },
    }),
  }),
});

builder.queryField("viewer", (t) =>
  t.prismaField({
    type: UserRef,
    nullable: true,
    description: "The signed-in user, or null without credentials.",
    resolve: (query, _root, _args, ctx) =>
      ctx.viewer ? ctx.prisma.user.findUnique({ ...query, where: { id: ctx.viewer.userId, deletedAt: null } }) : null,
  }),
);
