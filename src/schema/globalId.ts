// Relay global ids: base64("Type:uuid"). Every row id is a UUID, so anything else is a
// malformed id (a client error), never a lookup that could reveal whether a row exists.
import { decodeGlobalID, encodeGlobalID } from "@pothos/plugin-relay";
import { ValidationError } from "../errors.ts";
import { clip } from "./errors.ts";

const MAX_ID_LENGTH = 200;
const ID_SHOWN = 40;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Decodes a global id; with `typename`, also checks it is an id of that type. */
export function decodeId(globalId: string, typename?: string): { typename: string; id: string } {
  // A real id is about 60 characters: a longer one is not decoded (it could be megabytes), and
  // the message quotes only its start.
  const invalid = () =>
    new ValidationError(`"${clip(globalId, ID_SHOWN)}" is not a valid ${typename ? `${typename} ` : ""}id.`);
  if (globalId.length > MAX_ID_LENGTH) throw invalid();
  let decoded: { typename: string; id: string };
  try {
    decoded = decodeGlobalID(globalId);
  } catch {
    throw invalid();
  }
  if (!UUID.test(decoded.id) || (typename && decoded.typename !== typename)) throw invalid();
  return decoded;
}

export { encodeGlobalID as encodeId };

/** The row id of an optional id argument of a known type, or null when it was not given. */
export function optionalId(globalId: string | number | null | undefined, typename: string): string | null {
  return globalId == null || globalId === "" ? null : decodeId(String(globalId), typename).id;
}
