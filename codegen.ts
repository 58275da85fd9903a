// Typed documents from schema.graphql (client preset): one set for the tests, one for the
// SDK that the web app and partners start from. Both outputs are generated, not committed.
import type { CodegenConfig } from "@graphql-codegen/cli";

const shared = {
  preset: "client" as const,
  config: {
    useTypeImports: true,
    enumsAsTypes: true,
    scalars: {
      DateTime: "string",
      JSONObject: "Record<string, unknown>",
      JSON: "unknown",
      SafeInt: "number",
      File: "File",
    },
    strictScalars: true,
  },
  presetConfig: { fragmentMasking: false },
};

const config: CodegenConfig = {
  schema: "schema.graphql",
  // Only graphql(`…`) documents: the tests' own `gql(url, …)` helper takes plain strings.
  pluckConfig: { globalGqlIdentifierName: "graphql", modules: [] },
  ignoreNoDocuments: true,
  importExtension: ".ts",
  generates: {
    "test/gql/": { ...shared, documents: ["test/**/*.ts", "!test/gql/**"] },
    // persisted-documents.json: the SDK's operations by sha256, the server's trusted documents.
    "sdk/generated/": {
      ...shared,
      presetConfig: { ...shared.presetConfig, persistedDocuments: { hashAlgorithm: "sha256" } },
      documents: ["sdk/operations/**/*.graphql"],
    },
  },
};

export default config;
