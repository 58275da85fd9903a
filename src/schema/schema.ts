// Loads every domain's types into the builder, then builds the schema once per process.
import "../features/users/user.schema.ts";
import "../features/auth/auth.schema.ts";
import "../features/organizations/organization.schema.ts";
import "../features/api-keys/apiKey.schema.ts";
import "../features/audit/audit.schema.ts";
import "../features/events/event.schema.ts";
import "../features/events/insights.schema.ts";
import "../features/events/eventExport.schema.ts";
import "../features/events/retention.schema.ts";
import "../features/patterns/pattern.schema.ts";
import "../features/workflows/workflow.schema.ts";
import "../features/workflows/execution.schema.ts";
import "../features/workflows/schedule.schema.ts";
import "../features/suggestions/suggestion.schema.ts";
import "../features/uploads/upload.schema.ts";
import "../features/connectors/integration.schema.ts";
import "../features/live/live.schema.ts";
import { builder } from "./builder.ts";

export const schema = builder.toSchema();
