// Authorization inside an organization: the role permission matrix and the checks services
// call. A caller without a membership gets NOT_FOUND, never FORBIDDEN: existence is not leaked.
import type { Context } from "../../context.ts";
import { ForbiddenError, NotFoundError, UnauthenticatedError } from "../../errors.ts";
import type { OrgRole } from "../../generated/prisma/client.ts";
import type { UserPrincipal } from "./principal.ts";

export type Permission =
  | "read"
  | "create"
  | "update"
  | "delete"
  | "execute"
  | "members:manage"
  | "apiKeys:manage"
  | "integrations:manage"
  | "audit:read"
  | "organization:update"
  | "organization:delete"
  | "owners:manage";

const MEMBER: Permission[] = ["read", "create", "update", "execute"];
const ADMIN: Permission[] = [
  ...MEMBER,
  "delete",
  "members:manage",
  "apiKeys:manage",
  "integrations:manage",
  "audit:read",
  "organization:update",
];

/** viewer reads only; member may not delete; admin manages members and keys; owner everything. */
export const PERMISSIONS: Record<OrgRole, ReadonlySet<Permission>> = {
  VIEWER: new Set(["read"]),
  MEMBER: new Set(MEMBER),
  ADMIN: new Set(ADMIN),
  OWNER: new Set([...ADMIN, "organization:delete", "owners:manage"]),
};

export const ROLE_RANK: Record<OrgRole, number> = { VIEWER: 0, MEMBER: 1, ADMIN: 2, OWNER: 3 };

export function requireUser(ctx: Pick<Context, "principal">): UserPrincipal {
  if (ctx.principal?.kind === "user") return ctx.principal;
  if (ctx.principal) throw new ForbiddenError("This needs a signed-in user; API keys cannot do it.");
  throw new UnauthenticatedError();
}

/** The caller's role in an organization, or null. Memoized for the request. */
export function roleIn(ctx: Context, organizationId: string): Promise<OrgRole | null> {
  const principal = ctx.principal;
  if (!principal) return Promise.resolve(null);
  if (principal.kind === "apiKey") {
    return Promise.resolve(principal.organizationId === organizationId ? principal.role : null);
  }
  const key = `role:${organizationId}`;
  let role = ctx.memo.get(key) as Promise<OrgRole | null> | undefined;
  if (!role) {
    role = memberRole(ctx.prisma, organizationId, principal.userId);
    ctx.memo.set(key, role);
  }
  return role;
}

/** A user's role in an organization as it is now (not memoized: for what outlives a request). */
export async function memberRole(prisma: Context["prisma"], organizationId: string, userId: string) {
  const membership = await prisma.organizationMember.findUnique({
    where: { organizationId_userId: { organizationId, userId } },
    select: { role: true },
  });
  return membership?.role ?? null;
}

/** Throws NOT_FOUND without a membership and FORBIDDEN without the permission; returns the role. */
export async function authorize(
  ctx: Context,
  organizationId: string,
  permission: Permission,
  resource = "Organization",
) {
  const role = await roleIn(ctx, organizationId);
  if (!role) throw new NotFoundError(resource);
  if (!PERMISSIONS[role].has(permission)) {
    throw new ForbiddenError(`Your role (${role.toLowerCase()}) does not allow this (${permission}).`);
  }
  return role;
}

/**
 * The organization a request acts in: the API key's own; else the X-Organization-Id header,
 * when the user belongs to it; else the user's personal organization.
 */
export async function activeOrganizationId(ctx: Context): Promise<string> {
  const principal = ctx.principal;
  if (!principal) throw new UnauthenticatedError();
  if (principal.kind === "apiKey") return principal.organizationId;
  if (ctx.requestedOrganizationId) {
    if (!(await roleIn(ctx, ctx.requestedOrganizationId))) throw new NotFoundError("Organization");
    return ctx.requestedOrganizationId;
  }
  const personal = await ctx.prisma.organization.findUnique({
    where: { personalForUserId: principal.userId },
    select: { id: true },
  });
  if (!personal) throw new NotFoundError("Organization");
  return personal.id;
}
