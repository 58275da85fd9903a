// Accounts and sessions: register, sign in, rotate refresh tokens, sign out, mailed tokens
// (email verification, password reset) and password changes. GraphQL-free.
import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { Context } from "../../context.ts";
import { ConflictError, NotFoundError, UnauthenticatedError, ValidationError } from "../../errors.ts";
import type { Prisma, UserTokenKind } from "../../generated/prisma/client.ts";
import { uniqueViolation } from "../../infra/dbErrors.ts";
import { parseInput } from "../../validation.ts";
import { requireUser } from "./access.ts";
import { assertStrongPassword, decoyHash, hashPassword, MAX_PASSWORD_LENGTH, verifyPassword } from "./password.ts";
import { digest, newSecret } from "./secrets.ts";
import { signAccessToken } from "./tokens.ts";

type Ctx = Pick<
  Context,
  "prisma" | "config" | "mailer" | "logger" | "principals" | "principal" | "ip" | "userAgent" | "budgets"
>;

const VERIFICATION_TTL_MS = 24 * 3600_000;
const RESET_TTL_MS = 3600_000;

export const email = z
  .string()
  .trim()
  .toLowerCase()
  .max(254)
  .pipe(z.email({ message: "must be an email address" }));
const password = z.string().min(1).max(MAX_PASSWORD_LENGTH);
export const username = z
  .string()
  .trim()
  .regex(/^[a-zA-Z0-9_.-]{3,32}$/, "3 to 32 letters, digits, '_', '.' or '-'");

const registerInput = z.object({
  email,
  password,
  fullName: z.string().trim().min(1).max(200).optional().nullable(),
  username: username.optional().nullable(),
  device: z.string().max(200).optional().nullable(),
});

export interface IssuedTokens {
  userId: string;
  sessionId: string;
  accessToken: string;
  accessTokenExpiresAt: Date;
  refreshToken: string;
  refreshTokenExpiresAt: Date;
}

async function openSession(
  ctx: Ctx,
  db: Prisma.TransactionClient,
  userId: string,
  device?: string | null,
): Promise<IssuedTokens> {
  const refreshToken = newSecret();
  const expiresAt = new Date(Date.now() + ctx.config.refreshTokenTtlDays * 86_400_000);
  const session = await db.userSession.create({
    data: {
      userId,
      device: device ?? null,
      ip: ctx.ip,
      userAgent: ctx.userAgent,
      expiresAt,
      refreshTokens: { create: { tokenHash: digest(refreshToken) } },
    },
  });
  const access = signAccessToken({ sub: userId, sid: session.id }, ctx.config.jwt);
  return {
    userId,
    sessionId: session.id,
    accessToken: access.token,
    accessTokenExpiresAt: access.expiresAt,
    refreshToken,
    refreshTokenExpiresAt: expiresAt,
  };
}

async function issueMailToken(db: Prisma.TransactionClient, userId: string, kind: UserTokenKind, ttlMs: number) {
  const token = newSecret();
  await db.userToken.create({
    data: { userId, kind, tokenHash: digest(token), expiresAt: new Date(Date.now() + ttlMs) },
  });
  return token;
}

async function mail(ctx: Ctx, to: string, subject: string, text: string) {
  // A mail outage must not undo the account change; the user can ask again (resend, forgot).
  try {
    await ctx.mailer.send({ to, subject, text });
  } catch (err) {
    ctx.logger.error({ err: (err as Error).message, subject }, "mail not sent");
  }
}

function verificationMail(ctx: Ctx, to: string, token: string) {
  return mail(
    ctx,
    to,
    "Verify your email for Floyo",
    `Confirm your address:\n\n${ctx.config.appUrl}/verify-email?token=${token}\n\nThe link works for 24 hours.`,
  );
}

export async function register({ ctx, input }: { ctx: Ctx; input: unknown }) {
  const data = parseInput(registerInput, input);
  await ctx.budgets.attempt("register", { account: data.email, ip: ctx.ip });
  assertStrongPassword(data.password, "password", data.email);
  const passwordHash = await hashPassword(data.password, ctx.config.passwordHashLogN);
  for (let attempt = 0; ; attempt++) {
    try {
      const { tokens, verification } = await ctx.prisma.$transaction(async (tx) => {
        const user = await tx.user.create({
          data: { email: data.email, passwordHash, fullName: data.fullName ?? null, username: data.username ?? null },
        });
        // Every user gets a personal organization, which owns what they do on their own.
        const org = await tx.organization.create({
          data: {
            name: data.fullName ? `${data.fullName}'s space` : "Personal",
            // Random: nothing of the email in it, and no race between people with the same name.
            slug: `personal-${randomBytes(6).toString("hex")}`,
            personalForUserId: user.id,
          },
        });
        await tx.organizationMember.create({ data: { organizationId: org.id, userId: user.id, role: "OWNER" } });
        await tx.userConfig.create({ data: { userId: user.id } });
        const verification = await issueMailToken(tx, user.id, "EMAIL_VERIFICATION", VERIFICATION_TTL_MS);
        return { tokens: await openSession(ctx, tx, user.id, data.device), verification };
      });
      await verificationMail(ctx, data.email, verification);
      return tokens;
    } catch (err) {
      const violated = uniqueViolation(err);
      if (violated?.includes("username")) throw new ConflictError("USERNAME_TAKEN", "That username is taken.");
      if (violated?.includes("email"))
        throw new ConflictError("EMAIL_TAKEN", "An account with that email already exists.");
      // The personal organization's random slug collided: draw again.
      if (violated?.includes("slug") && attempt < 3) continue;
      throw err;
    }
  }
}

const loginInput = z.object({ email, password, device: z.string().max(200).optional().nullable() });

export async function login({ ctx, input }: { ctx: Ctx; input: unknown }) {
  const data = parseInput(loginInput, input);
  // Counted before the password is checked: past the limit even the right one is refused.
  await ctx.budgets.attempt("login", { account: data.email, ip: ctx.ip });
  const user = await ctx.prisma.user.findUnique({
    where: { email: data.email },
    select: { id: true, passwordHash: true, isActive: true, deletedAt: true },
  });
  const ok = await verifyPassword(data.password, user?.passwordHash ?? (await decoyHash(ctx.config.passwordHashLogN)));
  const usable = user && ok && user.isActive && !user.deletedAt;
  await ctx.prisma.loginAttempt.create({
    data: {
      email: data.email,
      userId: user?.id ?? null,
      success: Boolean(usable),
      reason: usable ? null : !user ? "unknown email" : !ok ? "wrong password" : "account disabled",
      ip: ctx.ip,
      userAgent: ctx.userAgent,
    },
  });
  if (!usable) throw new UnauthenticatedError("INVALID_CREDENTIALS", "The email or password is wrong.");
  await ctx.budgets.succeeded("login", data.email);
  return ctx.prisma.$transaction((tx) => openSession(ctx, tx, user.id, data.device));
}

/** Rotates a refresh token. Presenting one that was already rotated revokes its whole session. */
export async function refresh({ ctx, input }: { ctx: Ctx; input: { refreshToken: string } }) {
  const row = await ctx.prisma.refreshToken.findUnique({
    where: { tokenHash: digest(input.refreshToken) },
    select: {
      id: true,
      rotatedAt: true,
      session: { select: { id: true, userId: true, revokedAt: true, expiresAt: true } },
    },
  });
  if (!row) throw new UnauthenticatedError("REFRESH_TOKEN_INVALID", "The refresh token is not valid.");
  const { session } = row;
  if (session.revokedAt || session.expiresAt <= new Date()) {
    throw new UnauthenticatedError("SESSION_REVOKED", "This session has ended; sign in again.");
  }
  const next = newSecret();
  const rotated = await ctx.prisma.$transaction(async (tx) => {
    // Only one presenter of a token can rotate it; the loser is a replay.
    const { count } = await tx.refreshToken.updateMany({
      where: { id: row.id, rotatedAt: null },
      data: { rotatedAt: new Date() },
    });
    if (count === 0) return false;
    await tx.refreshToken.create({ data: { sessionId: session.id, tokenHash: digest(next) } });
    await tx.userSession.update({
      where: { id: session.id },
      data: { lastUsedAt: new Date(), ip: ctx.ip, userAgent: ctx.userAgent },
    });
    return true;
  });
  if (!rotated) {
    await revokeSessions(ctx, { id: session.id }, "refresh token reuse");
    throw new UnauthenticatedError(
      "REFRESH_TOKEN_REUSED",
      "This refresh token was already used; the session has been revoked.",
    );
  }
  const access = signAccessToken({ sub: session.userId, sid: session.id }, ctx.config.jwt);
  return {
    userId: session.userId,
    sessionId: session.id,
    accessToken: access.token,
    accessTokenExpiresAt: access.expiresAt,
    refreshToken: next,
    refreshTokenExpiresAt: session.expiresAt,
  } satisfies IssuedTokens;
}

/** Revokes matching live sessions and ends their cached access on every instance. */
async function revokeSessions(ctx: Ctx, where: Prisma.UserSessionWhereInput, reason: string) {
  const sessions = await ctx.prisma.userSession.findMany({
    where: { ...where, revokedAt: null },
    select: { id: true },
  });
  if (!sessions.length) return 0;
  await ctx.prisma.userSession.updateMany({
    where: { id: { in: sessions.map((s) => s.id) }, revokedAt: null },
    data: { revokedAt: new Date(), revokeReason: reason },
  });
  for (const s of sessions) ctx.principals.revoked(s.id);
  return sessions.length;
}

export function revokeAllSessionsOf(ctx: Ctx, userId: string, reason: string) {
  return revokeSessions(ctx, { userId }, reason);
}

export async function logout({ ctx }: { ctx: Ctx }) {
  const viewer = requireUser(ctx);
  await revokeSessions(ctx, { id: viewer.sessionId }, "signed out");
  return viewer.sessionId;
}

export async function revokeSession({ ctx, sessionId }: { ctx: Ctx; sessionId: string }) {
  const viewer = requireUser(ctx);
  const count = await revokeSessions(ctx, { id: sessionId, userId: viewer.userId }, "revoked by user");
  if (!count) throw new NotFoundError("Session");
  return sessionId;
}

export async function revokeOtherSessions({ ctx }: { ctx: Ctx }) {
  const viewer = requireUser(ctx);
  return revokeSessions(ctx, { userId: viewer.userId, id: { not: viewer.sessionId } }, "revoked by user");
}

export async function changePassword({
  ctx,
  input,
}: {
  ctx: Ctx;
  input: { currentPassword: string; newPassword: string };
}) {
  const viewer = requireUser(ctx);
  const user = await ctx.prisma.user.findUniqueOrThrow({
    where: { id: viewer.userId },
    select: { passwordHash: true, email: true },
  });
  if (!(await verifyPassword(input.currentPassword, user.passwordHash))) {
    throw new ValidationError(
      "The current password is wrong.",
      [{ path: "currentPassword", message: "is wrong" }],
      "INVALID_CREDENTIALS",
    );
  }
  assertStrongPassword(input.newPassword, "newPassword", user.email);
  const passwordHash = await hashPassword(input.newPassword, ctx.config.passwordHashLogN);
  await ctx.prisma.user.update({ where: { id: viewer.userId }, data: { passwordHash } });
  await retireResetLinks(ctx, viewer.userId);
  // Whoever else holds a session signed in with the old password loses it.
  return revokeSessions(ctx, { userId: viewer.userId, id: { not: viewer.sessionId } }, "password changed");
}

/** Marks a mailed token used, once. Unknown, used and expired tokens are one error. */
async function consumeMailToken(ctx: Ctx, token: string, kind: UserTokenKind) {
  const row = await ctx.prisma.userToken.findUnique({ where: { tokenHash: digest(token) } });
  const invalid = new ConflictError("TOKEN_INVALID", "This link is invalid, used or expired; ask for a new one.");
  if (!row || row.kind !== kind || row.usedAt || row.expiresAt <= new Date()) throw invalid;
  const { count } = await ctx.prisma.userToken.updateMany({
    where: { id: row.id, usedAt: null },
    data: { usedAt: new Date() },
  });
  if (count === 0) throw invalid;
  return row.userId;
}

export async function verifyEmail({ ctx, token }: { ctx: Ctx; token: string }) {
  const userId = await consumeMailToken(ctx, token, "EMAIL_VERIFICATION");
  await ctx.prisma.user.update({ where: { id: userId }, data: { emailVerifiedAt: new Date() } });
  return userId;
}

export async function resendVerification({ ctx }: { ctx: Ctx }) {
  const viewer = requireUser(ctx);
  await ctx.budgets.attempt("emailVerificationResend", { account: viewer.userId, ip: ctx.ip });
  const user = await ctx.prisma.user.findUniqueOrThrow({
    where: { id: viewer.userId },
    select: { email: true, emailVerifiedAt: true },
  });
  if (user.emailVerifiedAt)
    throw new ConflictError("EMAIL_ALREADY_VERIFIED", "This email address is already verified.");
  const token = await ctx.prisma.$transaction(async (tx) => {
    // Earlier links stop working: only the newest one is valid.
    await tx.userToken.updateMany({
      where: { userId: viewer.userId, kind: "EMAIL_VERIFICATION", usedAt: null },
      data: { usedAt: new Date() },
    });
    return issueMailToken(tx, viewer.userId, "EMAIL_VERIFICATION", VERIFICATION_TTL_MS);
  });
  await verificationMail(ctx, user.email, token);
}

/** Answers the same whether or not the address has an account. */
export async function forgotPassword({ ctx, input }: { ctx: Ctx; input: { email: string } }) {
  const address = parseInput(z.object({ email }), input).email;
  await ctx.budgets.attempt("passwordForgot", { account: address, ip: ctx.ip });
  const user = await ctx.prisma.user.findUnique({ where: { email: address }, select: { id: true, deletedAt: true } });
  if (!user || user.deletedAt) return;
  const token = await ctx.prisma.$transaction((tx) => issueMailToken(tx, user.id, "PASSWORD_RESET", RESET_TTL_MS));
  // Not awaited: the answer must not take longer for an address that has an account.
  void mail(
    ctx,
    address,
    "Reset your Floyo password",
    `Choose a new password:\n\n${ctx.config.appUrl}/reset-password?token=${token}\n\nThe link works for one hour, once. If you did not ask for it, ignore this message.`,
  );
}

export async function resetPassword({ ctx, input }: { ctx: Ctx; input: { token: string; newPassword: string } }) {
  const row = await ctx.prisma.userToken.findUnique({
    where: { tokenHash: digest(input.token) },
    select: { user: { select: { id: true, email: true } } },
  });
  // The account is the token's, when it names one; guesses count against the address.
  await ctx.budgets.attempt("passwordReset", { account: row?.user.id, ip: ctx.ip });
  // Check the password before spending the token, so a weak choice can be corrected.
  assertStrongPassword(input.newPassword, "newPassword", row?.user.email);
  const userId = await consumeMailToken(ctx, input.token, "PASSWORD_RESET");
  const passwordHash = await hashPassword(input.newPassword, ctx.config.passwordHashLogN);
  await ctx.prisma.user.update({ where: { id: userId }, data: { passwordHash } });
  await retireResetLinks(ctx, userId);
  await revokeSessions(ctx, { userId }, "password reset");
  return userId;
}

/** Once the password has changed, no earlier reset link may change it again. */
function retireResetLinks(ctx: Ctx, userId: string) {
  return ctx.prisma.userToken.updateMany({
    where: { userId, kind: "PASSWORD_RESET", usedAt: null },
    data: { usedAt: new Date() },
  });
}
