// Who sees a user's analytics (events, patterns, suggestions) inside an organization: the
// user, and the organization's owners and admins. As a Prisma condition, so that lists,
// node lookups and nested reads all filter in SQL with one rule.
import { type Context, NOBODY, viewerIdOrNobody } from "../../context.ts";
import { visibleOrganizations } from "../organizations/organization.schema.ts";

export function visibleAnalytics(ctx: Context) {
  const p = ctx.principal;
  if (p?.kind === "apiKey") {
    const admin = p.role === "OWNER" || p.role === "ADMIN";
    return admin
      ? { organizationId: p.organizationId }
      : { organizationId: p.organizationId, userId: p.createdById ?? NOBODY };
  }
  const userId = viewerIdOrNobody(ctx);
  return {
    organization: visibleOrganizations(ctx),
    OR: [
      { userId },
      { organization: { members: { some: { userId, role: { in: ["OWNER" as const, "ADMIN" as const] } } } } },
    ],
  };
}

/** The user whose analytics a request acts on: the signed-in user, or an API key's creator. */
export function actingUserId(ctx: Pick<Context, "principal">): string | null {
  const p = ctx.principal;
  return p?.kind === "user" ? p.userId : (p?.createdById ?? null);
}
