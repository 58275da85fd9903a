import { builder } from "../../schema/builder.ts";
import { decodeId } from "../../schema/globalId.ts";
import { noteAudit } from "../audit/audit.ts";
import { OrganizationRef, orgPermission, visibleOrganizations } from "../organizations/organization.schema.ts";
import {
  createIntegration,
  deleteIntegration,
  resealSecrets,
  testIntegration,
  updateIntegration,
} from "./integration.service.ts";

export const ConnectorRef = builder.prismaObject("IntegrationConnector", {
  name: "Connector",
  select: { id: true },
  authScopes: { authenticated: true },
  description: "A kind of service an integration connects to.",
  fields: (t) => ({
    key: t.exposeString("key", { description: "github, slack, google_drive, dropbox, s3, smtp or http." }),
    name: t.exposeString("name"),
    description: t.exposeString("description", { nullable: true }),
    configSchema: t.expose("configSchema", {
      type: "JSONObject",
      description: "JSON Schemas: `config` (stored as given) and `secrets` (sealed, never shown again).",
    }),
    secretFields: t.exposeStringList("secretFields"),
  }),
});

builder.queryField("connectors", (t) =>
  t.prismaField({
    type: [ConnectorRef],
    authScopes: { authenticated: true },
    resolve: (query, _root, _args, ctx) =>
      ctx.prisma.integrationConnector.findMany({ ...query, where: { isActive: true }, orderBy: { key: "asc" } }),
  }),
);

const SecretState = builder.objectRef<{ name: string; isSet: boolean }>("IntegrationSecret").implement({
  description: "Whether a secret is set. Its value is never returned.",
  fields: (t) => ({ name: t.exposeString("name"), isSet: t.exposeBoolean("isSet") }),
});

export const IntegrationRef = builder.prismaNode("Integration", {
  id: { field: "id" },
  select: { id: true },
  nullable: true,
  authScopes: { authenticated: true },
  findUnique: (id, ctx) => ({ id, organization: visibleOrganizations(ctx) }),
  fields: (t) => ({
    name: t.exposeString("name"),
    connector: t.relation("connector", { type: ConnectorRef }),
    config: t.expose("config", { type: "JSONObject" }),
    secrets: t.field({
      type: [SecretState],
      select: { secretsCiphertext: true, organizationId: true, connector: { select: { secretFields: true } } },
      resolve: (row, _args, ctx) => {
        let set: string[] = [];
        try {
          set = row.secretsCiphertext ? Object.keys(ctx.secrets.open(row.secretsCiphertext, row.organizationId)) : [];
        } catch {
          // Sealed with a key no longer configured: shown as not set, and a test says why.
        }
        return row.connector.secretFields.map((name) => ({ name, isSet: set.includes(name) }));
      },
    }),
    secretsKeyId: t.exposeString("secretsKeyId", {
      nullable: true,
      description: "Which SECRETS_KEYS key sealed the secrets (for key rotation).",
    }),
    isActive: t.exposeBoolean("isActive"),
    lastSyncAt: t.expose("lastSyncAt", { type: "DateTime", nullable: true }),
    lastError: t.exposeString("lastError", { nullable: true }),
    organization: t.relation("organization", { type: OrganizationRef }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
  }),
});

builder.prismaObjectField(OrganizationRef, "integrations", (t) =>
  t.relatedConnection("integrations", {
    type: IntegrationRef,
    cursor: "id",
    authScopes: orgPermission("read"),
    query: { orderBy: { id: "asc" } },
  }),
);

const CreateInput = builder.inputType("IntegrationCreateInput", {
  fields: (t) => ({
    organizationId: t.id({ required: true }),
    connector: t.string({ required: true, description: "A Connector key." }),
    name: t.string({ required: true }),
    config: t.field({ type: "JSONObject", required: true }),
    secrets: t.field({ type: "JSONObject", required: false }),
  }),
});
const UpdateInput = builder.inputType("IntegrationUpdateInput", {
  fields: (t) => ({
    id: t.id({ required: true }),
    name: t.string({ required: false }),
    config: t.field({ type: "JSONObject", required: false, description: "Replaces the configuration." }),
    secrets: t.field({
      type: "JSONObject",
      required: false,
      description: "Merged into the secrets: a key set to null is removed, others are kept.",
    }),
    isActive: t.boolean({ required: false }),
  }),
});

const TestResult = builder
  .objectRef<{ ok: boolean; code: string | null; message: string; integrationId: string }>("IntegrationTestResult")
  .implement({
    fields: (t) => ({
      ok: t.exposeBoolean("ok"),
      code: t.exposeString("code", { nullable: true }),
      message: t.exposeString("message"),
      integration: t.prismaField({
        type: IntegrationRef,
        resolve: (query, r, _a, ctx) =>
          ctx.prisma.integration.findUniqueOrThrow({ ...query, where: { id: r.integrationId } }),
      }),
    }),
  });

const integrationId = (id: string | number) => decodeId(String(id), "Integration").id;

builder.mutationFields((t) => ({
  integrationCreate: t.prismaField({
    type: IntegrationRef,
    authScopes: { authenticated: true },
    description: "Connects a service (owners and admins). The configuration is checked against the connector's schema.",
    args: { input: t.arg({ type: CreateInput, required: true }) },
    resolve: async (query, _root, { input: { organizationId, ...input } }, ctx, info) => {
      const orgId = decodeId(String(organizationId), "Organization").id;
      const row = await createIntegration({ ctx, organizationId: orgId, input });
      noteAudit(ctx, info, { organizationId: orgId, resourceType: "Integration", resourceId: row.id });
      return ctx.prisma.integration.findUniqueOrThrow({ ...query, where: { id: row.id } });
    },
  }),
  integrationUpdate: t.prismaField({
    type: IntegrationRef,
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: UpdateInput, required: true }) },
    resolve: async (query, _root, { input: { id, ...input } }, ctx, info) => {
      const row = await updateIntegration({ ctx, id: integrationId(id), input });
      noteAudit(ctx, info, { organizationId: row.organizationId, resourceType: "Integration", resourceId: row.id });
      return ctx.prisma.integration.findUniqueOrThrow({ ...query, where: { id: row.id } });
    },
  }),
  integrationDelete: t.id({
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx, info) => {
      const row = await deleteIntegration({ ctx, id: integrationId(id) });
      noteAudit(ctx, info, { organizationId: row.organizationId, resourceType: "Integration", resourceId: row.id });
      return id;
    },
  }),
  integrationTest: t.field({
    type: TestResult,
    authScopes: { authenticated: true },
    description: "Makes a real, harmless call to the service; records the last sync or the last error.",
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx) => ({
      ...(await testIntegration({ ctx, id: integrationId(id) })),
      integrationId: integrationId(id),
    }),
  }),
  integrationSecretsReseal: t.int({
    authScopes: { authenticated: true },
    description: "Seals every integration's secrets with the first SECRETS_KEYS key; returns how many changed.",
    args: { organizationId: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) =>
      resealSecrets({ ctx, organizationId: decodeId(String(args.organizationId), "Organization").id }),
  }),
}));
