// Which names say "this holds a credential": one definition for what a run stores (the
// connector scrubber) and what the audit trail records, so neither redacts less than the other.

/**
 * Header and field names that hold a credential, as a regex source to embed in the scrubber's
 * text patterns ("Authorization: Bearer x", `"x-api-key":"k"`, rawHeaders lists).
 */
export const CREDENTIAL_NAME =
  "(?:x-)?(?:proxy-)?(?:authorization|api[-_]?key|auth[-_]?token|access[-_]?token|refresh[-_]?token|id[-_]?token|session[-_]?token|security[-_]?token|private[-_]?token|cookie|set-cookie|x-amz-security-token|password|passwd|secret|client[-_]?secret|secret[-_]?access[-_]?key|webhook[-_]?url)";

/**
 * A key whose value is a credential: one of those names exactly, or a name containing
 * pass/secret/token/apiKey/authorization, or "key" alone (an integration's "secrets" hold
 * credentials whatever each is called).
 */
export const SECRET_NAME = new RegExp(
  `^${CREDENTIAL_NAME}$|pass(?:word)?|secret|token|^key$|api[-_]?key|authorization`,
  "i",
);

export const isSecretName = (name: string) => SECRET_NAME.test(name);
