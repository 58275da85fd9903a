// "Export all my data": a ZIP with one JSON file per kind, streamed page by page so that a
// large event history never sits in memory whole.
import type { Writable } from "node:stream";
import { Zip, ZipDeflate } from "fflate";
import type { PrismaClient } from "../../infra/db.ts";

const PAGE = 1000;

type Page = (cursor: string | undefined) => Promise<{ id: string }[]>;

/** What belongs to the user, kind by kind; secrets (hashes) are never part of it. */
function kinds(prisma: PrismaClient, userId: string): Record<string, Page> {
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
    events: (c) => prisma.event.findMany(mine({ userId })(c)),
    patterns: (c) => prisma.pattern.findMany(mine({ userId })(c)),
    temporalPatterns: (c) => prisma.temporalPattern.findMany(mine({ userId })(c)),
    fileRelationships: (c) => prisma.fileRelationship.findMany(mine({ userId })(c)),
    suggestions: (c) => prisma.suggestion.findMany(mine({ userId })(c)),
    workflows: (c) => prisma.workflow.findMany(mine({ createdById: userId })(c)),
    uploads: (c) => prisma.upload.findMany(mine({ userId })(c)),
    auditLog: (c) => prisma.auditLog.findMany(mine({ actorUserId: userId })(c)),
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
