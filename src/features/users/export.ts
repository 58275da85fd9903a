// "Export all my data": a ZIP with one JSON file per kind, streamed page by page so that a
// large event history never sits in memory whole.
import type { Writable } from "node:stream";
import { Zip, ZipDeflate } from "fflate";
import type { OrgRole } from "../../generated/prisma/client.ts";
import type { PrismaClient } from "../../infra/db.ts";
import { PERMISSIONS } from "../auth/access.ts";

const PAGE = 1000;

type Page = (cursor: string | undefined) => Promise<{ id: string }[]>;

/** The roles whose holders may read an organization's rows (their own among them). */
const READERS = (Object.keys(PERMISSIONS) as OrgRole[]).filter((role) => PERMISSIONS[role].has("read"));

/**
 * What belongs to the user, kind by kind; secrets (hashes) are never part of it. A row of an
 * organization is theirs to take only while they belong to it in a role that may read it:
 * the condition is part of every page's query, so a membership that ended (removed, left,
 * organization deleted), even after the link was issued or halfway through the download,
 * ends that organization's rows in it, as it ends every other way in.
 */
function kinds(prisma: PrismaClient, userId: string): Record<string, Page> {
  const memberNow = { organization: { members: { some: { userId, role: { in: READERS } } } } };
  const paged = { take: PAGE, orderBy: { id: "asc" as const } };
  const after = (cursor: string | undefined): { cursor?: { id: string }; skip?: number } =>
    cursor ? { cursor: { id: cursor }, skip: 1 } : {};
  const mine =
    <W>(where: W) =>
    (c: string | undefined) => ({ where, ...paged, ...after(c) });
  return {
    profile: (c) =>
      prisma.user.findMany({
        ...mine({ id: userId })(c),
        select: { id: true, email: true, username: true, fullName: true, emailVerifiedAt: true, createdAt: true },
      }),
    config: (c) => prisma.userConfig.findMany(mine({ userId })(c)),
    memberships: (c) =>
      prisma.organizationMember.findMany({
        ...mine({ userId })(c),
        select: {
          id: true,
          role: true,
          createdAt: true,
          organization: { select: { id: true, name: true, slug: true } },
        },
      }),
    sessions: (c) =>
      prisma.userSession.findMany({
        ...mine({ userId })(c),
        select: {
          id: true,
          device: true,
          ip: true,
          userAgent: true,
          createdAt: true,
          lastUsedAt: true,
          revokedAt: true,
        },
      }),
    loginAttempts: (c) => prisma.loginAttempt.findMany(mine({ userId })(c)),
    events: (c) => prisma.event.findMany(mine({ userId, ...memberNow })(c)),
    patterns: (c) => prisma.pattern.findMany(mine({ userId, ...memberNow })(c)),
    temporalPatterns: (c) => prisma.temporalPattern.findMany(mine({ userId, ...memberNow })(c)),
    fileRelationships: (c) => prisma.fileRelationship.findMany(mine({ userId, ...memberNow })(c)),
    suggestions: (c) => prisma.suggestion.findMany(mine({ userId, ...memberNow })(c)),
    // The workflows they made, of organizations they still belong to: a workflow is the
    // organization's (others edit it), so one they can no longer open is not theirs to take.
    workflows: (c) => prisma.workflow.findMany(mine({ createdById: userId, ...memberNow })(c)),
    uploads: (c) => prisma.upload.findMany(mine({ userId, ...memberNow })(c)),
    // Their own actions: account-wide ones, and those in organizations they still belong to.
    auditLog: (c) =>
      prisma.auditLog.findMany(mine({ actorUserId: userId, OR: [{ organizationId: null }, memberNow] })(c)),
  };
}

const json = (value: unknown) => JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v));

export async function writeUserExport(prisma: PrismaClient, userId: string, out: Writable) {
  const done = new Promise<void>((resolve, reject) => {
    out.on("error", reject);
    out.on("finish", resolve);
  });
  const zip = new Zip((err, chunk, final) => {
    if (err) out.destroy(err);
    else {
      out.write(chunk);
      if (final) out.end();
    }
  });
  for (const [kind, page] of Object.entries(kinds(prisma, userId))) {
    const file = new ZipDeflate(`${kind}.json`, { level: 6 });
    zip.add(file);
    const encoder = new TextEncoder();
    file.push(encoder.encode("["));
    let cursor: string | undefined;
    let first = true;
    for (;;) {
      const rows = await page(cursor);
      for (const row of rows) {
        file.push(encoder.encode(`${first ? "" : ","}\n${json(row)}`));
        first = false;
      }
      if (rows.length < PAGE) break;
      cursor = rows.at(-1)?.id;
    }
    file.push(encoder.encode("\n]\n"), true);
  }
  zip.end();
  await done;
}
