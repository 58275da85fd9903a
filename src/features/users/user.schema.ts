import { isSelf, viewerIdOrNobody } from "../../context.ts";
import { builder } from "../../schema/builder.ts";
import { EXPORT_PATH } from "../../server/downloads.ts";
import { noteAudit } from "../audit/audit.ts";
import { requireUser } from "../auth/access.ts";
import { signDownloadToken } from "../auth/tokens.ts";
import { deleteAccount, getConfig, updateConfig, updateProfile } from "./user.service.ts";

// A user is visible to themself and to members of an organization they belong to; to anyone
// else it does not exist. Every user belongs to their personal organization, so this one
// condition covers the viewer too.
export const UserRef = builder.prismaNode("User", {
  id: { field: "id" },
  // Select mode: only the columns a query asks for are read (never password_hash).
  select: { id: true },
  nullable: true,
  authScopes: { public: true },
  findUnique: (id, ctx) => ({
    id,
    deletedAt: null,
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
      description:
        "The organizations this user belongs to, with their role in each. Only for the user themself: others see members through Organization.members, never the rest of someone's organizations.",
      authScopes: isSelf,
      query: { orderBy: { createdAt: "asc" } },
    }),
  }),
});

export const UserConfigRef = builder.prismaObject("UserConfig", {
  name: "UserConfig",
  select: { id: true },
  authScopes: { user: true },
  description: "What the local agent watches and how suggestions are made.",
  fields: (t) => ({
    monitoredDirectories: t.exposeStringList("monitoredDirectories"),
    excludePatterns: t.exposeStringList("excludePatterns"),
    trackingEnabled: t.exposeBoolean("trackingEnabled"),
    maxEvents: t.exposeInt("maxEvents"),
    retentionDays: t.exposeInt("retentionDays"),
    suggestionsEnabled: t.exposeBoolean("suggestionsEnabled"),
    maxSuggestions: t.exposeInt("maxSuggestions"),
    useRealFilePaths: t.exposeBoolean("useRealFilePaths"),
    anonymize: t.exposeBoolean("anonymize"),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
  }),
});

builder.prismaObjectField("User", "config", (t) =>
  t.prismaField({
    type: UserConfigRef,
    authScopes: isSelf,
    resolve: async (query, user, _args, ctx) => {
      await getConfig(ctx, user.id);
      return ctx.prisma.userConfig.findUniqueOrThrow({ ...query, where: { userId: user.id } });
    },
  }),
);

builder.queryField("viewer", (t) =>
  t.prismaField({
    type: UserRef,
    nullable: true,
    authScopes: { public: true },
    description: "The signed-in user, or null without credentials (and for API keys, which act for an organization).",
    resolve: (query, _root, _args, ctx) =>
      ctx.principal?.kind === "user"
        ? ctx.prisma.user.findUnique({ ...query, where: { id: ctx.principal.userId, deletedAt: null } })
        : null,
  }),
);

const ViewerUpdateInput = builder.inputType("ViewerUpdateInput", {
  fields: (t) => ({
    fullName: t.string({ required: false }),
    username: t.string({ required: false }),
  }),
});

builder.mutationField("viewerUpdate", (t) =>
  t.prismaField({
    type: UserRef,
    authScopes: { user: true },
    description: "Update the signed-in user's profile.",
    args: { input: t.arg({ type: ViewerUpdateInput, required: true }) },
    resolve: async (query, _root, { input }, ctx, info) => {
      const user = await updateProfile({ ctx, input });
      noteAudit(ctx, info, { resourceType: "User", resourceId: user.id });
      return ctx.prisma.user.findUniqueOrThrow({ ...query, where: { id: user.id } });
    },
  }),
);

const ViewerConfigUpdateInput = builder.inputType("ViewerConfigUpdateInput", {
  fields: (t) => ({
    monitoredDirectories: t.stringList({ required: false }),
    excludePatterns: t.stringList({ required: false }),
    trackingEnabled: t.boolean({ required: false }),
    maxEvents: t.int({ required: false }),
    retentionDays: t.int({ required: false }),
    suggestionsEnabled: t.boolean({ required: false }),
    maxSuggestions: t.int({ required: false }),
    useRealFilePaths: t.boolean({ required: false }),
    anonymize: t.boolean({ required: false }),
  }),
});

builder.mutationField("viewerConfigUpdate", (t) =>
  t.prismaField({
    type: UserConfigRef,
    authScopes: { user: true },
    description: "Update the signed-in user's settings; fields left out keep their value.",
    args: { input: t.arg({ type: ViewerConfigUpdateInput, required: true }) },
    resolve: async (query, _root, { input }, ctx, info) => {
      // GraphQL null means "leave as is" here: every setting has a value.
      const given = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== null && v !== undefined));
      const config = await updateConfig({ ctx, input: given });
      noteAudit(ctx, info, { resourceType: "UserConfig", resourceId: config.id });
      return ctx.prisma.userConfig.findUniqueOrThrow({ ...query, where: { id: config.id } });
    },
  }),
);

const DataExport = builder.objectRef<{ url: string; expiresAt: Date }>("DataExport").implement({
  authScopes: { user: true },
  description: "A link to a ZIP of everything the signed-in user owns, one JSON file per kind.",
  fields: (t) => ({
    url: t.exposeString("url", { description: "Path on this API; GET it within five minutes." }),
    expiresAt: t.expose("expiresAt", { type: "DateTime" }),
  }),
});

builder.mutationField("viewerDataExport", (t) =>
  t.field({
    type: DataExport,
    authScopes: { user: true },
    resolve: (_root, _args, ctx) => {
      const viewer = requireUser(ctx);
      const { token, expiresAt } = signDownloadToken(
        { sub: viewer.userId, sid: viewer.sessionId, purpose: "export" },
        ctx.config.jwt,
      );
      return { url: `${EXPORT_PATH}?token=${encodeURIComponent(token)}`, expiresAt };
    },
  }),
);

const ViewerDeleteInput = builder.inputType("ViewerDeleteInput", {
  fields: (t) => ({ password: t.string({ required: true, description: "The current password, to confirm." }) }),
});

const ViewerDeletePayload = builder.objectRef<{ deletedOrganizations: number }>("ViewerDeletePayload").implement({
  authScopes: { public: true },
  fields: (t) => ({
    deletedOrganizations: t.exposeInt("deletedOrganizations", {
      description: "Organizations deleted because the user was their only member.",
    }),
  }),
});

builder.mutationField("viewerDelete", (t) =>
  t.field({
    type: ViewerDeletePayload,
    authScopes: { user: true },
    description:
      "Delete the account: organizations you alone belong to and your personal data are deleted, sessions and the API keys you made are revoked, and the user is anonymized.",
    args: { input: t.arg({ type: ViewerDeleteInput, required: true }) },
    resolve: async (_root, { input }, ctx, info) => {
      const viewer = requireUser(ctx);
      noteAudit(ctx, info, { resourceType: "User", resourceId: viewer.userId });
      return deleteAccount({ ctx, input });
    },
  }),
);
