// Event ids made without Prisma (a batch's raw insert) must sort as Prisma's uuid(7) do: by
// time, and in the order they were made within one millisecond (pattern detection relies on it).
import { describe, expect, it } from "vitest";
import { uuid7 } from "../src/infra/uuid7.ts";

describe("uuid7", () => {
  it("makes version 7, RFC 9562 variant ids that sort in the order they were made, thousands per millisecond", () => {
    const ids = Array.from({ length: 20_000 }, () => uuid7());
    for (const id of ids.slice(0, 100))
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    const ms = Number.parseInt(ids[0]?.replaceAll("-", "").slice(0, 12) ?? "", 16);
    expect(Math.abs(ms - Date.now())).toBeLessThan(60_000);
  });
});
