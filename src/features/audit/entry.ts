// An audit entry as stored: who asked, from where, and a redacted, bounded copy of what was
// asked. Apart from the plugin so that resolvers writing their own entry (audit.ts) do not
// import the schema they are part of.
import type { Context } from "../../context.ts";
import type { AuditOutcome, Prisma } from "../../generated/prisma/client.ts";
import { isSecretName } from "../../secretNames.ts";
import { storable } from "../../text.ts";

// An entry is a record of what was asked, not a copy of it: past these, values become a
// marker. The depth also keeps well below the ~120 levels past which the database refuses a
// JSON value; input is refused deeper than MAX_INPUT_DEPTH (at most 64) before it gets here.
const MAX_DEPTH = 80;
const MAX_VALUES = 10_000;
export const TRUNCATED = "[truncated]";

/** Sets a key as JSON.parse would: "__proto__" is a key like any other. */
function put(target: object, key: string | number, value: unknown) {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * A storable copy: every value under a secret-looking key replaced, text jsonb refuses made
 * storable, nesting and size capped. Iterative: no input can overflow the stack here, which
 * would lose the entry of a mutation that already ran.
 */
export function redact(value: unknown): unknown {
  const root = {} as { value?: unknown };
  const work: { from: unknown; into: object; key: string | number; depth: number }[] = [
    { from: value, into: root, key: "value", depth: 0 },
  ];
  let budget = MAX_VALUES - 1;
  // Children are taken from the budget when their container is copied, so the work stays bounded.
  const reserve = (wanted: number) => {
    const granted = Math.max(0, Math.min(wanted, budget));
    budget -= granted;
    return granted;
  };
  for (let job = work.pop(); job; job = work.pop()) {
    const { from, into, key, depth } = job;
    // jsonb refuses U+0000 and lone surrogates: a refused input holding them must still be logged.
    if (typeof from === "string") put(into, key, storable(from));
    else if (from instanceof Date) put(into, key, from.toISOString());
    else if (from === null || typeof from !== "object") put(into, key, from);
    else if (depth >= MAX_DEPTH) put(into, key, TRUNCATED);
    else if (Array.isArray(from)) {
      const kept = reserve(from.length);
      // Filled in below; a marker after what was kept.
      const copy: unknown[] = new Array(kept);
      if (kept < from.length) copy.push(TRUNCATED);
      put(into, key, copy);
      for (let i = kept - 1; i >= 0; i--) work.push({ from: from[i], into: copy, key: i, depth: depth + 1 });
    } else {
      const entries = Object.entries(from);
      const kept = reserve(entries.length);
      const copy = {};
      put(into, key, copy);
      const children: typeof work = [];
      for (const [k, v] of entries.slice(0, kept)) {
        const name = storable(k);
        // Set now (redacted, or a placeholder filled below) so the copy keeps the input's key order.
        const secret = isSecretName(k);
        put(copy, name, secret ? "[redacted]" : null);
        if (!secret) children.push({ from: v, into: copy, key: name, depth: depth + 1 });
      }
      // How many keys were left out, under a key no input has.
      if (kept < entries.length) put(copy, TRUNCATED, entries.length - kept);
      for (let i = children.length - 1; i >= 0; i--) work.push(children[i] as (typeof work)[number]);
    }
  }
  return root.value;
}

/** One entry as stored: the caller's identity and request, the details redacted. */
export function entryRow(
  ctx: Pick<Context, "principal" | "ip" | "userAgent" | "requestId">,
  entry: {
    action: string;
    outcome: AuditOutcome;
    organizationId: string | null;
    resourceType: string | null;
    resourceId: string | null;
    actorUserId?: string;
    details: Record<string, unknown>;
  },
): Prisma.AuditLogCreateManyInput {
  const principal = ctx.principal;
  return {
    organizationId: entry.organizationId,
    actorUserId: entry.actorUserId ?? (principal?.kind === "user" ? principal.userId : null),
    actorApiKeyId: principal?.kind === "apiKey" ? principal.apiKeyId : null,
    action: entry.action,
    outcome: entry.outcome,
    resourceType: entry.resourceType,
    resourceId: entry.resourceId,
    details: redact(entry.details) as Prisma.InputJsonValue,
    ip: ctx.ip,
    userAgent: ctx.userAgent,
    requestId: ctx.requestId,
  };
}
