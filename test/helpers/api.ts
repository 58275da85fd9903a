// Small wrappers for the operations many suites repeat.
import { gql } from "./client.ts";
import { createUser, type TestUser, uniqueEmail } from "./factories.ts";
import { type MailCatcher, tokenFrom } from "./mail.ts";

export type Role = "OWNER" | "ADMIN" | "MEMBER" | "VIEWER";

export function errorCode(r: { errors?: { extensions?: Record<string, unknown> }[] }) {
  return r.errors?.[0]?.extensions?.code;
}

/** An ACTIVE workflow in the user's own organization (one transform step unless `steps` says else); its id. */
export async function activeWorkflow(
  url: string,
  user: TestUser,
  options: { name?: string; steps?: unknown[] } = {},
): Promise<string> {
  const r = await gql<{ workflowCreate: { id: string } }>(
    url,
    "mutation($input: WorkflowCreateInput!) { workflowCreate(input: $input) { id } }",
    {
      token: user.token,
      variables: {
        input: {
          organizationId: user.org.id,
          name: options.name ?? "tick",
          status: "ACTIVE",
          definition: { steps: options.steps ?? [{ id: "t", type: "transform", template: { ok: true } }] },
        },
      },
    },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.workflowCreate.id;
}

export async function createOrg(url: string, token: string, name = "Acme Analytics") {
  const r = await gql<{ organizationCreate: { id: string; slug: string } }>(
    url,
    "mutation($input: OrganizationCreateInput!) { organizationCreate(input: $input) { id slug } }",
    { token, variables: { input: { name } } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.organizationCreate;
}

/** Invites a new user by email, has them accept through the mailed link, and returns them. */
export async function addMember(
  url: string,
  mail: MailCatcher,
  inviterToken: string,
  organizationId: string,
  role: Role,
): Promise<TestUser & { membershipId: string }> {
  const email = uniqueEmail(role.toLowerCase());
  const invite = await gql(
    url,
    "mutation($input: OrganizationInviteInput!) { organizationInvite(input: $input) { id } }",
    { token: inviterToken, variables: { input: { organizationId, email, role } } },
  );
  if (invite.errors) throw new Error(JSON.stringify(invite.errors));
  const message = await mail.next(email);
  const user = await createUser(url, email);
  await verifyEmail(url, mail, email);
  const accepted = await gql<{ organizationInviteAccept: { id: string } }>(
    url,
    "mutation($t: String!) { organizationInviteAccept(token: $t) { id } }",
    { token: user.token, variables: { t: tokenFrom(message) } },
  );
  if (!accepted.data) throw new Error(JSON.stringify(accepted.errors));
  return { ...user, membershipId: accepted.data.organizationInviteAccept.id };
}

/** Follows the verification link a new account was mailed. */
export async function verifyEmail(url: string, mail: MailCatcher, email: string) {
  const message = await mail.next(email, /verify/i);
  const verified = await gql(url, "mutation($t: String!) { emailVerify(token: $t) }", {
    variables: { t: tokenFrom(message) },
  });
  if (verified.errors) throw new Error(JSON.stringify(verified.errors));
}

/** The input paths a BAD_USER_INPUT-style error names, in order. */
export function fieldErrorPaths(r: { errors?: { extensions?: Record<string, unknown> }[] }) {
  return ((r.errors?.[0]?.extensions?.fieldErrors ?? []) as { path: string }[]).map((e) => e.path);
}
