// A workflow's definition: typed steps, validated with field-level errors before any write.
// Strings may use {{steps.<id>.output.<path>}} to take a previous step's output.
import { z } from "zod";
import { unstorableJson } from "../../text.ts";
import { CONNECTOR_KEYS } from "../suggestions/rules.ts";

const stepId = z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, "must be 1-32 lowercase letters, digits, - or _");
const integrationId = z.string().min(1, "must name an integration");

const common = {
  id: stepId,
  name: z.string().max(100).optional(),
  retry: z
    .object({
      maxAttempts: z.number().int().min(1).max(10).default(1),
      backoffMs: z.number().int().min(0).max(600_000).default(1_000),
    })
    .optional(),
  timeoutMs: z.number().int().min(100).max(600_000).optional(),
};

export const stepSchema = z.discriminatedUnion("type", [
  z.object({
    ...common,
    type: z.literal("http_request"),
    method: z.enum(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    url: z.url({ protocol: /^https?$/ }),
    headers: z.record(z.string(), z.string()).optional(),
    body: z.unknown().optional(),
  }),
  z.object({
    ...common,
    type: z.literal("webhook"),
    integrationId,
    path: z.string().startsWith("/").max(1000).default("/"),
    body: z.unknown().optional(),
  }),
  z.object({ ...common, type: z.literal("slack_message"), integrationId, text: z.string().min(1).max(4000) }),
  z.object({
    ...common,
    type: z.literal("email"),
    integrationId,
    to: z.array(z.email()).min(1).max(50),
    subject: z.string().min(1).max(200),
    text: z.string().max(100_000),
  }),
  z.object({
    ...common,
    type: z.literal("s3_put"),
    integrationId,
    key: z.string().min(1).max(1024),
    body: z.string().max(1_000_000),
    contentType: z.string().max(200).optional(),
  }),
  z.object({
    ...common,
    type: z.literal("connector"),
    // Null in a draft made from a suggestion: connect an integration before it can run.
    integrationId: integrationId.nullable(),
    connector: z.enum(CONNECTOR_KEYS as [string, ...string[]]),
    action: z.string().min(1).max(50),
    input: z.record(z.string(), z.unknown()).default({}),
  }),
  z.object({ ...common, type: z.literal("delay"), ms: z.number().int().min(0).max(3_600_000) }),
  z.object({
    ...common,
    type: z.literal("condition"),
    path: z.string().min(1).max(200),
    operator: z.enum(["eq", "neq", "gt", "gte", "lt", "lte", "exists", "contains"]),
    value: z.unknown().optional(),
  }),
  z.object({ ...common, type: z.literal("transform"), template: z.unknown() }),
  z.object({
    ...common,
    type: z.literal("emit_event"),
    event: z.object({
      kind: z.enum(["TOOL_USED", "CUSTOM", "FILE_CREATED", "FILE_MODIFIED"]),
      customType: z.string().optional(),
      filePath: z.string().optional(),
      tool: z.string().optional(),
      operation: z.string().optional(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  }),
]);

export type Step = z.infer<typeof stepSchema>;

export const definitionSchema = z
  .object({
    steps: z.array(stepSchema).min(1, "a workflow needs a step").max(50),
    timeoutMs: z.number().int().min(1_000).max(86_400_000).default(900_000),
    trigger: z.object({ type: z.literal("manual") }).optional(),
  })
  .strict()
  .superRefine((d, ctx) => {
    const problem = unstorableJson(d);
    if (problem) ctx.addIssue({ code: "custom", path: problem.path, message: problem.message });
    const seen = new Set<string>();
    d.steps.forEach((s, i) => {
      if (seen.has(s.id))
        ctx.addIssue({ code: "custom", path: ["steps", i, "id"], message: `repeats the id "${s.id}"` });
      seen.add(s.id);
    });
  });

export type Definition = z.infer<typeof definitionSchema>;

/** The integration each step needs, by its connector: a step and its integration must agree. */
export const STEP_CONNECTOR: Partial<Record<Step["type"], string>> = {
  webhook: "http",
  slack_message: "slack",
  email: "smtp",
  s3_put: "s3",
};
