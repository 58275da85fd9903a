// Two tenants with data, made through the API as clients make them: the victim, whose ids the
// corpus throws at the server as the attacker, and the attacker, whose own rows make search
// results checkable (a literal "%" in a name must match that name, not every row).

import { createOrg } from "../helpers/api.ts";
import { gql, gqlUpload } from "../helpers/client.ts";
import { recordBatch, scenario, suggestionsGenerate } from "../helpers/events.ts";
import { createUser, type TestUser, uniqueEmail } from "../helpers/factories.ts";

export interface Party {
  user: TestUser;
  /** A team organization of theirs (personal ones refuse invites). */
  orgId: string;
  apiKey: string;
  /** Global ids of their rows, by what they are. */
  ids: Record<string, string>;
}

export interface World {
  /** http://host:port */
  base: string;
  /** base + /graphql */
  url: string;
  attacker: Party;
  victim: Party;
}

/** Names with the characters LIKE, regexes and SQL treat specially: each must match only itself. */
export const SPECIAL_NAMES = ["100% done", "a_b report", "back\\slash", "quote ' OR 1=1 --", "dot.star .*", "plain"];

async function must<T>(p: Promise<{ data?: T | null; errors?: unknown }>): Promise<T> {
  const r = await p;
  if (!r.data || r.errors) throw new Error(`setup failed: ${JSON.stringify(r.errors)}`);
  return r.data;
}

async function party(url: string, label: string, workflowNames: string[]): Promise<Party> {
  const user = await createUser(url, uniqueEmail(label));
  const org = await createOrg(url, user.token, `${label} corp`);
  const { token } = user;
  const key = await must<{ apiKeyCreate: { secret: string; apiKey: { id: string } } }>(
    gql(url, "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret apiKey { id } } }", {
      token,
      variables: { input: { organizationId: org.id, name: `${label} agent`, role: "MEMBER" } },
    }),
  );
  const invite = await must<{ organizationInvite: { id: string } }>(
    gql(url, "mutation($input: OrganizationInviteInput!) { organizationInvite(input: $input) { id } }", {
      token,
      variables: { input: { organizationId: org.id, email: uniqueEmail(`${label}-invitee`), role: "MEMBER" } },
    }),
  );
  const events = scenario(label).map((e, i) => ({ ...e, filePath: i === 3 ? "/w/100%_\\'.docx" : e.filePath }));
  await recordBatch(url, user, events, org.id);
  const suggestions = await suggestionsGenerate(url, user, org.id);
  const workflows: string[] = [];
  for (const name of workflowNames) {
    const created = await must<{ workflowCreate: { id: string } }>(
      gql(url, "mutation($input: WorkflowCreateInput!) { workflowCreate(input: $input) { id } }", {
        token,
        variables: {
          input: { organizationId: org.id, name, definition: { steps: [{ id: "w", type: "delay", ms: 1 }] } },
        },
      }),
    );
    workflows.push(created.workflowCreate.id);
  }
  const workflow = workflows[0] as string;
  const run = await must<{ workflowRun: { id: string } }>(
    gql(url, "mutation($id: ID!) { workflowRun(id: $id) { id } }", { token, variables: { id: workflow } }),
  );
  const schedule = await must<{ scheduleCreate: { id: string } }>(
    gql(url, "mutation($input: ScheduleCreateInput!) { scheduleCreate(input: $input) { id } }", {
      token,
      variables: { input: { workflowId: workflow, intervalSeconds: 3600, isPaused: true } },
    }),
  );
  const integration = await must<{ integrationCreate: { id: string } }>(
    gql(url, "mutation($input: IntegrationCreateInput!) { integrationCreate(input: $input) { id } }", {
      token,
      variables: {
        input: {
          organizationId: org.id,
          connector: "slack",
          name: `${label} slack`,
          config: {},
          secrets: { webhookUrl: "http://127.0.0.1:9/hook" },
        },
      },
    }),
  );
  const upload = await gqlUpload<{ fileUpload: { id: string } }>(
    url,
    "mutation($input: FileUploadInput!) { fileUpload(input: $input) { id } }",
    { input: { file: null, organizationId: org.id } },
    { path: "input.file", name: "notes.txt", content: `${label} notes` },
    { token },
  );
  if (!upload.data) throw new Error(`upload failed: ${JSON.stringify(upload.errors)}`);
  const read = await must<{
    viewer: { sessions: { id: string }[]; memberships: { id: string; organization: { id: string } }[] };
    node: {
      events: { edges: { node: { id: string } }[] };
      patterns: { edges: { node: { id: string } }[] };
      temporalPatterns: { edges: { node: { id: string } }[] };
    };
  }>(
    gql(
      url,
      `query($org: ID!) {
        viewer { sessions { id } memberships { id organization { id } } }
        node(id: $org) { ... on Organization {
          events(first: 1) { edges { node { id } } }
          patterns(first: 1) { edges { node { id } } }
          temporalPatterns(first: 1) { edges { node { id } } }
        } }
      }`,
      { token, variables: { org: org.id } },
    ),
  );
  const first = (edges: { node: { id: string } }[], what: string) => {
    const id = edges[0]?.node.id;
    if (!id) throw new Error(`setup made no ${what}`);
    return id;
  };
  const membership = read.viewer.memberships.find((m) => m.organization.id === org.id)?.id;
  const suggestion = suggestions[0]?.id;
  if (!membership || !suggestion || !read.viewer.sessions[0])
    throw new Error("setup made no membership, suggestion or session");
  return {
    user,
    orgId: org.id,
    apiKey: key.apiKeyCreate.secret,
    ids: {
      Organization: org.id,
      PersonalOrganization: user.org.id,
      User: user.user.id,
      Membership: membership,
      ApiKey: key.apiKeyCreate.apiKey.id,
      Invite: invite.organizationInvite.id,
      Workflow: workflow,
      Execution: run.workflowRun.id,
      Schedule: schedule.scheduleCreate.id,
      Integration: integration.integrationCreate.id,
      Upload: upload.data.fileUpload.id,
      Suggestion: suggestion,
      Event: first(read.node.events.edges, "event"),
      Pattern: first(read.node.patterns.edges, "pattern"),
      TemporalPattern: first(read.node.temporalPatterns.edges, "temporal pattern"),
      Session: read.viewer.sessions[0].id,
    },
  };
}

export async function makeWorld(base: string): Promise<World> {
  const url = `${base}/graphql`;
  const victim = await party(url, "victim", ["Victim payroll"]);
  const attacker = await party(url, "attacker", SPECIAL_NAMES);
  return { base, url, attacker, victim };
}
