// Workflows as far as suggestions need them: an applied suggestion becomes a draft workflow.
import { builder } from "../../schema/builder.ts";
import { visibleOrganizations } from "../organizations/organization.schema.ts";

const WorkflowStatusRef = builder.enumType("WorkflowStatus", {
  values: {
    DRAFT: { description: "Not run by schedules yet." },
    ACTIVE: {},
    ARCHIVED: {},
  } as const,
});

export const WorkflowRef = builder.prismaNode("Workflow", {
  id: { field: "id" },
  select: { id: true },
  nullable: true,
  authScopes: { authenticated: true },
  findUnique: (id, ctx) => ({ id, organization: visibleOrganizations(ctx) }),
  fields: (t) => ({
    name: t.exposeString("name"),
    description: t.exposeString("description", { nullable: true }),
    status: t.expose("status", { type: WorkflowStatusRef }),
    definition: t.expose("definition", { type: "JSONObject", description: "The steps." }),
    currentVersion: t.exposeInt("currentVersion"),
    organization: t.relation("organization"),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
  }),
});
