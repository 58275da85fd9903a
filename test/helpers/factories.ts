// Rows a test needs before it can ask anything, written through the server's own Prisma client.
import { randomUUID } from "node:crypto";
import type { App } from "../../src/app.ts";
import type { Config } from "../../src/config.ts";
import { signAccessToken } from "../../src/features/auth/tokens.ts";

export function uniqueEmail(label = "user") {
  return `${label}-${randomUUID().slice(0, 8)}@example.test`;
}

/** A user with their personal organization (as registration makes them) and an access token. */
export async function createUser(app: App, config: Pick<Config, "jwt">, email = uniqueEmail()) {
  const prisma = app.runtime.db.prisma;
  const user = await prisma.user.create({
    data: {
      email,
      passwordHash: "not-a-real-hash",
      fullName: "Test User",
      personalOrganization: { create: { name: `${email}'s space`, slug: `personal-${randomUUID()}` } },
    },
    include: { personalOrganization: true },
  });
  const org = user.personalOrganization;
  if (!org) throw new Error("personal organization not created");
  await prisma.organizationMember.create({ data: { organizationId: org.id, userId: user.id, role: "OWNER" } });
  return { user, org, token: signAccessToken({ sub: user.id }, config.jwt) };
}
