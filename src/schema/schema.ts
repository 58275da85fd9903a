// Loads every domain's types into the builder, then builds the schema once per process.
import "../features/users/user.schema.ts";
import "../features/organizations/organization.schema.ts";
import { builder } from "./builder.ts";

export const schema = builder.toSchema();
