// Accounts made the way a client makes them: through the API.
import { randomUUID } from "node:crypto";
import { gql } from "./client.ts";

export const PASSWORD = "correct horse battery staple";

export function uniqueEmail(label = "user") {
  return `${label}-${randomUUID().slice(0, 8)}@example.test`;
}

export interface TestUser {
  user: { id: string; email: string };
  org: { id: string; slug: string };
  token: string;
  refreshToken: string;
  email: string;
}

const REGISTER = `mutation Register($input: AuthRegisterInput!) {
  authRegister(input: $input) {
    accessToken refreshToken
    user { id email memberships { organization { id slug } } }
  }
}`;

/** Registers a user (with their personal organization) and returns their tokens. */
export async function createUser(graphqlUrl: string, email = uniqueEmail()): Promise<TestUser> {
  const response = await gql<{
    authRegister: {
      accessToken: string;
      refreshToken: string;
      user: { id: string; email: string; memberships: { organization: { id: string; slug: string } }[] };
    };
  }>(graphqlUrl, REGISTER, { variables: { input: { email, password: PASSWORD, fullName: "Test User" } } });
  const payload = response.data?.authRegister;
  if (!payload) throw new Error(`registration failed: ${JSON.stringify(response.errors)}`);
  const org = payload.user.memberships[0]?.organization;
  if (!org) throw new Error("no personal organization");
  return { user: payload.user, org, token: payload.accessToken, refreshToken: payload.refreshToken, email };
}
