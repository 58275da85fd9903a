import { type Context, isSelf, viewerIdOrNobody } from "../../context.ts";
import { builder } from "../../schema/builder.ts";
import { decodeId } from "../../schema/globalId.ts";
import { noteAudit } from "../audit/audit.ts";
import { UserRef } from "../users/user.schema.ts";
import { requireUser } from "./access.ts";
import {
  changePassword,
  forgotPassword,
  type IssuedTokens,
  login,
  logout,
  refresh,
  register,
  resendVerification,
  resetPassword,
  revokeOtherSessions,
  revokeSession,
  verifyEmail,
} from "./auth.service.ts";

/** The rest of the operation (the payload's user, later fields) runs as the user just signed in. */
async function actAs(ctx: Context, tokens: IssuedTokens) {
  ctx.principal = await ctx.principals.forClaims({ sub: tokens.userId, sid: tokens.sessionId });
  ctx.memo.clear();
}

const AuthPayload = builder.objectRef<IssuedTokens>("AuthPayload").implement({
  authScopes: { public: true },
  description: "Credentials for a new or refreshed session. Keep the refresh token secret; it is shown once.",
  fields: (t) => ({
    accessToken: t.exposeString("accessToken", { description: "Send as `Authorization: Bearer <token>`." }),
    accessTokenExpiresAt: t.expose("accessTokenExpiresAt", { type: "DateTime" }),
    refreshToken: t.exposeString("refreshToken", { description: "Single use: authRefresh returns the next one." }),
    refreshTokenExpiresAt: t.expose("refreshTokenExpiresAt", { type: "DateTime" }),
    user: t.prismaField({
      type: UserRef,
      resolve: (query, tokens, _args, ctx) =>
        ctx.prisma.user.findUniqueOrThrow({ ...query, where: { id: tokens.userId } }),
    }),
  }),
});

export const SessionRef = builder.prismaNode("UserSession", {
  name: "Session",
  id: { field: "id" },
  select: { id: true },
  nullable: true,
  authScopes: { user: true },
  // Sessions are visible to their own user only.
  findUnique: (id, ctx) => ({
    id,
    userId: viewerIdOrNobody(ctx),
  }),
  fields: (t) => ({
    device: t.exposeString("device", { nullable: true }),
    ip: t.exposeString("ip", { nullable: true }),
    userAgent: t.exposeString("userAgent", { nullable: true }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    lastUsedAt: t.expose("lastUsedAt", { type: "DateTime" }),
    expiresAt: t.expose("expiresAt", { type: "DateTime" }),
    current: t.boolean({
      description: "The session this request is made with.",
      resolve: (session, _args, ctx) => ctx.principal?.kind === "user" && ctx.principal.sessionId === session.id,
    }),
  }),
});

builder.prismaObjectField("User", "sessions", (t) =>
  t.relation("sessions", {
    description: "Live sessions (signed-in devices); visible to the user only.",
    authScopes: isSelf,
    query: () => ({ where: { revokedAt: null, expiresAt: { gt: new Date() } }, orderBy: { lastUsedAt: "desc" } }),
  }),
);

const RegisterInput = builder.inputType("AuthRegisterInput", {
  fields: (t) => ({
    email: t.string({ required: true }),
    password: t.string({ required: true, description: "10 to 128 characters, not common, not containing the email." }),
    fullName: t.string({ required: false }),
    username: t.string({ required: false }),
    device: t.string({ required: false, description: "A name for this session, e.g. 'Work laptop'." }),
  }),
});

const LoginInput = builder.inputType("AuthLoginInput", {
  fields: (t) => ({
    email: t.string({ required: true }),
    password: t.string({ required: true }),
    device: t.string({ required: false }),
  }),
});

builder.mutationFields((t) => ({
  authRegister: t.field({
    type: AuthPayload,
    authScopes: { public: true },
    description: "Create an account with its personal organization, sign in, and mail a verification link.",
    args: { input: t.arg({ type: RegisterInput, required: true }) },
    resolve: async (_root, { input }, ctx, info) => {
      const tokens = await register({ ctx, input });
      await actAs(ctx, tokens);
      noteAudit(ctx, info, { actorUserId: tokens.userId, resourceType: "User", resourceId: tokens.userId });
      return tokens;
    },
  }),
  authLogin: t.field({
    type: AuthPayload,
    authScopes: { public: true },
    args: { input: t.arg({ type: LoginInput, required: true }) },
    resolve: async (_root, { input }, ctx, info) => {
      const tokens = await login({ ctx, input });
      await actAs(ctx, tokens);
      noteAudit(ctx, info, { actorUserId: tokens.userId, resourceType: "Session", resourceId: tokens.sessionId });
      return tokens;
    },
  }),
  authRefresh: t.field({
    type: AuthPayload,
    authScopes: { public: true },
    description:
      "Trade a refresh token for new credentials. Each refresh token works once; a reused one revokes its session.",
    args: { refreshToken: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx, info) => {
      const tokens = await refresh({ ctx, input: args });
      await actAs(ctx, tokens);
      noteAudit(ctx, info, { actorUserId: tokens.userId, resourceType: "Session", resourceId: tokens.sessionId });
      return tokens;
    },
  }),
  authLogout: t.boolean({
    authScopes: { user: true },
    description: "End the current session: its access and refresh tokens stop working.",
    resolve: async (_root, _args, ctx, info) => {
      const sessionId = await logout({ ctx });
      noteAudit(ctx, info, { resourceType: "Session", resourceId: sessionId });
      return true;
    },
  }),
  sessionRevoke: t.boolean({
    authScopes: { user: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx, info) => {
      const sessionId = decodeId(String(id), "Session").id;
      noteAudit(ctx, info, { resourceType: "Session", resourceId: sessionId });
      await revokeSession({ ctx, sessionId });
      return true;
    },
  }),
  sessionRevokeOthers: t.int({
    authScopes: { user: true },
    description: "End every session but this one; returns how many ended.",
    resolve: (_root, _args, ctx) => revokeOtherSessions({ ctx }),
  }),
  passwordChange: t.int({
    authScopes: { user: true },
    description: "Change the password; every other session ends. Returns how many ended.",
    args: { currentPassword: t.arg.string({ required: true }), newPassword: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx, info) => {
      noteAudit(ctx, info, { resourceType: "User", resourceId: requireUser(ctx).userId });
      return changePassword({ ctx, input: args });
    },
  }),
  emailVerify: t.boolean({
    authScopes: { public: true },
    args: { token: t.arg.string({ required: true }) },
    resolve: async (_root, { token }, ctx, info) => {
      const userId = await verifyEmail({ ctx, token });
      noteAudit(ctx, info, { actorUserId: userId, resourceType: "User", resourceId: userId });
      return true;
    },
  }),
  emailVerificationResend: t.boolean({
    authScopes: { user: true },
    resolve: async (_root, _args, ctx) => {
      await resendVerification({ ctx });
      return true;
    },
  }),
  passwordForgot: t.boolean({
    authScopes: { public: true },
    description: "Mail a reset link if the address has an account. Always true: whether it has one is not revealed.",
    args: { email: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => {
      await forgotPassword({ ctx, input: args });
      return true;
    },
  }),
  passwordReset: t.boolean({
    authScopes: { public: true },
    description: "Set a new password with a mailed reset token (single use, one hour); every session ends.",
    args: { token: t.arg.string({ required: true }), newPassword: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx, info) => {
      const userId = await resetPassword({ ctx, input: args });
      noteAudit(ctx, info, { actorUserId: userId, resourceType: "User", resourceId: userId });
      return true;
    },
  }),
}));
