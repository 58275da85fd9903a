import { viewerIdOrNobody } from "../../context.ts";
import { builder } from "../../schema/builder.ts";
import { decodeId } from "../../schema/globalId.ts";
import { noteAudit } from "../audit/audit.ts";
import { OrganizationRef, OrgRoleRef, orgPermission } from "../organizations/organization.schema.ts";
import { createApiKey, revokeApiKey } from "./apiKey.service.ts";

export const ApiKeyRef = builder.prismaNode("ApiKey", {
  id: { field: "id" },
  select: { id: true },
  nullable: true,
  authScopes: { user: true },
  // Visible to owners and admins of its organization.
  findUnique: (id, ctx) => ({
    id,
    organization: { members: { some: { userId: viewerIdOrNobody(ctx), role: { in: ["OWNER", "ADMIN"] } } } },
  }),
  fields: (t) => ({
    name: t.exposeString("name"),
    prefix: t.exposeString("prefix", { description: "The visible part of the key, to tell keys apart." }),
    role: t.expose("role", { type: OrgRoleRef }),
    organization: t.relation("organization"),
    createdBy: t.relation("createdBy", { nullable: true }),
    expiresAt: t.expose("expiresAt", { type: "DateTime", nullable: true }),
    lastUsedAt: t.expose("lastUsedAt", { type: "DateTime", nullable: true }),
    revokedAt: t.expose("revokedAt", { type: "DateTime", nullable: true }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
  }),
});

builder.prismaObjectField(OrganizationRef, "apiKeys", (t) =>
  t.relatedConnection("apiKeys", {
    type: ApiKeyRef,
    cursor: "id",
    description: "API keys, revoked ones included (owners and admins).",
    authScopes: orgPermission("apiKeys:manage"),
    query: { orderBy: { id: "desc" } },
  }),
);

const ApiKeyCreateInput = builder.inputType("ApiKeyCreateInput", {
  fields: (t) => ({
    organizationId: t.id({ required: true }),
    name: t.string({ required: true }),
    role: t.field({ type: OrgRoleRef, required: true, description: "ADMIN, MEMBER or VIEWER; not above your own." }),
    expiresAt: t.field({ type: "DateTime", required: false }),
  }),
});

const ApiKeyCreatePayload = builder.objectRef<{ apiKeyId: string; secret: string }>("ApiKeyCreatePayload").implement({
  authScopes: { user: true },
  fields: (t) => ({
    secret: t.exposeString("secret", {
      description: "The key itself, shown this once. Send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
    }),
    apiKey: t.prismaField({
      type: ApiKeyRef,
      resolve: (query, parent, _args, ctx) =>
        ctx.prisma.apiKey.findUniqueOrThrow({ ...query, where: { id: parent.apiKeyId } }),
    }),
  }),
});

builder.mutationFields((t) => ({
  apiKeyCreate: t.field({
    type: ApiKeyCreatePayload,
    authScopes: { user: true },
    args: { input: t.arg({ type: ApiKeyCreateInput, required: true }) },
    resolve: async (_root, { input: { organizationId, ...rest } }, ctx, info) => {
      const { apiKey, secret } = await createApiKey({
        ctx,
        organizationId: decodeId(String(organizationId), "Organization").id,
        input: rest,
      });
      noteAudit(ctx, info, { organizationId: apiKey.organizationId, resourceType: "ApiKey", resourceId: apiKey.id });
      return { apiKeyId: apiKey.id, secret };
    },
  }),
  apiKeyRevoke: t.prismaField({
    type: ApiKeyRef,
    authScopes: { user: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (query, _root, { id }, ctx, info) => {
      const key = await revokeApiKey({ ctx, id: decodeId(String(id), "ApiKey").id });
      noteAudit(ctx, info, { organizationId: key.organizationId, resourceType: "ApiKey", resourceId: key.id });
      return ctx.prisma.apiKey.findUniqueOrThrow({ ...query, where: { id: key.id } });
    },
  }),
}));
