// Relay global ids: base64("Type:uuid"). Every row id is a UUID, so anything else is a
// malformed id (a client error), never a lookup that could reveal whether a row exists.
import { decodeGlobalID, encodeGlobalID } from "@pothos/plugin-relay";
import { ValidationError } from "../errors.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Decodes a global id; with `typename`, also checks it is an id of that type. */
export function decodeId(globalId: string, typename?: string): { typename: string; id: string } {
  let decoded: { typename: string; id: string };
  try {
    decoded = decodeGlobalID(globalId);
  } catch {
    throw new ValidationError(`"${globalId}" is not a valid id.`);
  }
  if (!UUID.test(decoded.id) || (typename && decoded.typename !== typename)) {
    throw new ValidationError(`"${globalId}" is not a valid ${typename ?? ""} id.`.replace("  ", " "));
  }
  return decoded;
}

export { encodeGlobalID as encodeId };

/** The row id of an optional id argument of a known type, or null when it was not given. */
export function optionalId(globalId: string | number | null | undefined, typename: string): string | null {
  return globalId == null || globalId === "" ? null : decodeId(String(globalId), typename).id;
}
