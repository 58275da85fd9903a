import { builder } from "../../schema/builder.ts";
import { decodeId } from "../../schema/globalId.ts";
import { containsText } from "../../validation.ts";
import { noteAudit } from "../audit/audit.ts";
import { OrganizationRef, orgPermission, visibleOrganizations } from "../organizations/organization.schema.ts";
import { UserRef } from "../users/user.schema.ts";
import {
  createWorkflow,
  type Difference,
  deleteWorkflow,
  diffVersions,
  rollbackWorkflow,
  updateWorkflow,
} from "./workflow.service.ts";

const WorkflowStatusRef = builder.enumType("WorkflowStatus", {
  values: {
    DRAFT: { description: "Runs only when started by hand." },
    ACTIVE: { description: "Its schedules run; every step has its integration." },
    ARCHIVED: { description: "Kept for its history; nothing runs." },
  } as const,
});

export const WorkflowVersionRef = builder.prismaObject("WorkflowVersion", {
  select: { id: true },
  authScopes: { authenticated: true },
  description: "An immutable snapshot: every change to a workflow makes one.",
  fields: (t) => ({
    number: t.exposeInt("number"),
    name: t.exposeString("name"),
    description: t.exposeString("description", { nullable: true }),
    definition: t.expose("definition", { type: "JSONObject" }),
    changeSummary: t.exposeString("changeSummary", { nullable: true }),
    restoredFrom: t.exposeInt("restoredFrom", { nullable: true, description: "Set when this version is a rollback." }),
    author: t.relation("author", { type: UserRef, nullable: true }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
  }),
});

const ChangeKindRef = builder.enumType("VersionChange", { values: ["ADDED", "REMOVED", "CHANGED"] as const });
const DifferenceRef = builder.objectRef<Difference>("VersionDifference").implement({
  fields: (t) => ({
    path: t.exposeString("path", { description: 'e.g. "name", "definition.steps[notify].text".' }),
    change: t.field({ type: ChangeKindRef, resolve: (d) => d.change }),
    before: t.field({ type: "JSON", nullable: true, resolve: (d) => d.before }),
    after: t.field({ type: "JSON", nullable: true, resolve: (d) => d.after }),
  }),
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
    versions: t.relatedConnection("versions", {
      cursor: "id",
      description: "Newest first.",
      query: { orderBy: { number: "desc" } },
    }),
    version: t.prismaField({
      type: WorkflowVersionRef,
      nullable: true,
      args: { number: t.arg.int({ required: true }) },
      select: { id: true },
      resolve: (query, workflow, { number }, ctx) =>
        ctx.prisma.workflowVersion.findUnique({
          ...query,
          where: { workflowId_number: { workflowId: workflow.id, number } },
        }),
    }),
    compare: t.field({
      type: [DifferenceRef],
      description: "What changed from version `from` to version `to`.",
      args: { from: t.arg.int({ required: true }), to: t.arg.int({ required: true }) },
      resolve: async (workflow, { from, to }, ctx) => {
        const rows = await ctx.prisma.workflowVersion.findMany({
          where: { workflowId: workflow.id, number: { in: [from, to] } },
        });
        const a = rows.find((r) => r.number === from);
        const b = rows.find((r) => r.number === to);
        return a && b ? diffVersions(a, b) : [];
      },
    }),
    createdBy: t.relation("createdBy", { type: UserRef, nullable: true }),
    organization: t.relation("organization"),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
  }),
});

const WorkflowFilter = builder.inputType("WorkflowFilter", {
  fields: (t) => ({
    statuses: t.field({ type: [WorkflowStatusRef], required: false }),
    search: t.string({ required: false, description: "In the name (any case)." }),
  }),
});

builder.prismaObjectField(OrganizationRef, "workflows", (t) =>
  t.relatedConnection("workflows", {
    type: WorkflowRef,
    cursor: "id",
    description: "Most recently changed first.",
    authScopes: orgPermission("read"),
    totalCount: true,
    args: { filter: t.arg({ type: WorkflowFilter, required: false }) },
    query: ({ filter }) => ({
      where: {
        status: filter?.statuses ? { in: filter.statuses } : undefined,
        name: filter?.search ? containsText(filter.search, "filter.search") : undefined,
      },
      orderBy: [{ updatedAt: "desc" as const }, { id: "desc" as const }],
    }),
  }),
);

const CreateInput = builder.inputType("WorkflowCreateInput", {
  fields: (t) => ({
    organizationId: t.id({ required: true }),
    name: t.string({ required: true }),
    description: t.string({ required: false }),
    definition: t.field({ type: "JSONObject", required: true }),
    status: t.field({ type: WorkflowStatusRef, required: false }),
  }),
});
const UpdateInput = builder.inputType("WorkflowUpdateInput", {
  fields: (t) => ({
    id: t.id({ required: true }),
    name: t.string({ required: false }),
    description: t.string({ required: false }),
    definition: t.field({ type: "JSONObject", required: false }),
    status: t.field({ type: WorkflowStatusRef, required: false }),
    changeSummary: t.string({ required: false }),
  }),
});

const workflowId = (id: string | number) => decodeId(String(id), "Workflow").id;

builder.mutationFields((t) => ({
  workflowCreate: t.prismaField({
    type: WorkflowRef,
    authScopes: { authenticated: true },
    description: "Creates a workflow and its version 1.",
    args: { input: t.arg({ type: CreateInput, required: true }) },
    resolve: async (query, _root, { input: { organizationId, ...input } }, ctx, info) => {
      const orgId = decodeId(String(organizationId), "Organization").id;
      const row = await createWorkflow({ ctx, organizationId: orgId, input });
      noteAudit(ctx, info, { organizationId: orgId, resourceType: "Workflow", resourceId: row.id });
      return ctx.prisma.workflow.findUniqueOrThrow({ ...query, where: { id: row.id } });
    },
  }),
  workflowUpdate: t.prismaField({
    type: WorkflowRef,
    authScopes: { authenticated: true },
    description: "Changes a workflow; the change becomes a new version.",
    args: { input: t.arg({ type: UpdateInput, required: true }) },
    resolve: async (query, _root, { input: { id, ...input } }, ctx, info) => {
      const row = await updateWorkflow({ ctx, id: workflowId(id), input });
      noteAudit(ctx, info, { organizationId: row.organizationId, resourceType: "Workflow", resourceId: row.id });
      return ctx.prisma.workflow.findUniqueOrThrow({ ...query, where: { id: row.id } });
    },
  }),
  workflowArchive: t.prismaField({
    type: WorkflowRef,
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (query, _root, { id }, ctx) => {
      const row = await updateWorkflow({
        ctx,
        id: workflowId(id),
        input: { status: "ARCHIVED", changeSummary: "Archived" },
      });
      return ctx.prisma.workflow.findUniqueOrThrow({ ...query, where: { id: row.id } });
    },
  }),
  workflowRollback: t.prismaField({
    type: WorkflowRef,
    authScopes: { authenticated: true },
    description: "Restores version `version`, recorded as a new version.",
    args: { id: t.arg.id({ required: true }), version: t.arg.int({ required: true }) },
    resolve: async (query, _root, { id, version }, ctx) => {
      const row = await rollbackWorkflow({ ctx, id: workflowId(id), version });
      return ctx.prisma.workflow.findUniqueOrThrow({ ...query, where: { id: row.id } });
    },
  }),
  workflowDelete: t.id({
    authScopes: { authenticated: true },
    description: "Deletes a workflow with its versions and history (owners and admins).",
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx, info) => {
      const row = await deleteWorkflow({ ctx, id: workflowId(id) });
      noteAudit(ctx, info, { organizationId: row.organizationId, resourceType: "Workflow", resourceId: row.id });
      return id;
    },
  }),
}));
