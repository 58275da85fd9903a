// Named prepared statements for @prisma/adapter-pg: PostgreSQL parses and plans a statement
// once per connection, then only binds and executes it. The name is a digest of the SQL
// text, so one text always has one name on every connection (pg refuses a name reused for
// another text). Prisma's SQL varies with list lengths (IN lists, createMany rows), so the
// number of names is bounded: past `max` distinct texts, statements go unnamed (parsed per
// call, as before), which also bounds what each connection and its server process keep.
import { createHash } from "node:crypto";

export function createStatementNamer(max: number): ((query: { sql: string }) => string) | undefined {
  if (max <= 0) return undefined;
  const names = new Map<string, string>();
  return ({ sql }) => {
    let name = names.get(sql);
    if (name !== undefined) return name;
    // "": pg sends it unnamed.
    if (names.size >= max) return "";
    name = `f_${createHash("sha256").update(sql).digest("base64url").slice(0, 32)}`;
    names.set(sql, name);
    return name;
  };
}
