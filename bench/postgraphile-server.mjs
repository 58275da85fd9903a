// PostGraphile 5 (amber preset, no simplify-inflection) on node:http through grafserv: the
// peer the API is measured against. Reads DATABASE_URL, PORT (0 = any free port) and
// PG_POOL_SIZE (default 10, the API's DATABASE_POOL_SIZE default). Prints one line
// "listening <url>" when ready. Run with NODE_ENV=production, as the benchmark does.
//
//   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/floyo_bench PORT=5678 NODE_ENV=production \
//     node postgraphile-server.mjs [--print-schema]
import { createServer } from "node:http";

// PostGraphile 5 declares node >= 22, and the only newer API it calls is
// Promise.withResolvers (Node 22). Without it on Node 20 every query that reaches PostgreSQL
// fails ("Cannot read properties of undefined (reading 'items')") while `{ __typename }`
// still works. This is the specified behaviour, defined before PostGraphile is loaded (hence
// the dynamic imports below), so both servers run on the same Node.
if (typeof Promise.withResolvers !== "function") {
  Object.defineProperty(Promise, "withResolvers", {
    configurable: true,
    writable: true,
    value: function withResolvers() {
      let resolve;
      let reject;
      const promise = new this((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

const { printSchema } = await import("graphql");
const { postgraphile } = await import("postgraphile");
const { makePgService } = await import("postgraphile/adaptors/pg");
const { grafserv } = await import("postgraphile/grafserv/node");
const { PostGraphileAmberPreset } = await import("postgraphile/presets/amber");

const connectionString = process.env.DATABASE_URL;
if (!connectionString) {
  console.error("DATABASE_URL is not set");
  process.exit(1);
}
const port = Number(process.env.PORT ?? 0);
const poolSize = Number(process.env.PG_POOL_SIZE ?? 10);

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [makePgService({ connectionString, schemas: ["public"], poolConfig: { max: poolSize } })],
  grafserv: { port, graphqlPath: "/graphql", graphiql: false, watch: false },
  grafast: { explain: false },
};

const pgl = postgraphile(preset);

if (process.argv.includes("--print-schema")) {
  const { schema } = await pgl.getSchemaResult();
  process.stdout.write(`${printSchema(schema)}\n`);
  await pgl.release();
  process.exit(0);
}

const serv = pgl.createServ(grafserv);
const server = createServer();
server.keepAliveTimeout = 65_000;
server.once("error", (err) => {
  console.error(err);
  process.exit(1);
});
serv.addTo(server).catch((err) => {
  console.error(err);
  process.exit(1);
});
// Build the schema before listening, so "listening" means ready to answer.
await pgl.getSchemaResult();
server.listen(port, "127.0.0.1", () => {
  const address = server.address();
  console.log(`listening http://127.0.0.1:${address.port}/graphql`);
});

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    server.closeAllConnections?.();
    server.close();
    Promise.resolve(pgl.release()).finally(() => process.exit(0));
  });
}
