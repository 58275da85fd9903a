# syntax=docker/dockerfile:1
# Stages: build (compiles dist/), migrate (one-shot `prisma migrate deploy`), runtime (default).

FROM node:22-bookworm-slim AS build
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false
# postinstall runs `prisma generate`, which needs the schema and the Prisma config at install time.
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
COPY scripts/prismaCliAdapter.ts scripts/migrate.mjs scripts/build.mjs ./scripts/
# ...and graphql-codegen, the typed SDK and its manifest of operations by sha256, which the
# server loads as its trusted documents (TRUSTED_DOCUMENTS).
COPY codegen.ts schema.graphql ./
COPY sdk/operations ./sdk/operations
RUN --mount=type=cache,target=/root/.npm npm ci
COPY tsconfig.json ./
COPY src ./src
# Also makes the embedded database's template (an initdb'd, migrated PGlite directory) under
# node_modules/.cache. The mkdir keeps the runtime stage's COPY valid if it could not be made:
# the server then runs initdb on its first start instead.
RUN npm run build && mkdir -p node_modules/.cache/floyo-pglite-template

# Needs the migration CLI (a devDependency), so it reuses the build stage rather than the runtime one.
FROM build AS migrate
CMD ["node", "scripts/migrate.mjs", "migrate", "deploy"]

FROM node:22-bookworm-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    PORT=4000 \
    DATA_DIR=/data \
    UPLOAD_DIR=/data/uploads \
    NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false
COPY package.json package-lock.json ./
# --ignore-scripts: postinstall would run `prisma generate`, but prisma is a devDependency;
# the generated client is already compiled into dist/generated.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts
# A first start on an empty /data copies this template instead of running initdb (seconds).
# Root-owned and world-readable: the app copies it, never writes it.
COPY --from=build /app/node_modules/.cache/floyo-pglite-template ./node_modules/.cache/floyo-pglite-template
# The server checks for pending migrations at start, reading prisma/migrations relative to dist/.
COPY --from=build /app/prisma ./prisma
COPY --from=build /app/dist ./dist
COPY --from=build /app/sdk/generated/persisted-documents.json ./sdk/generated/
# App files stay root-owned (read-only to the app); only the data dir is writable. A named
# volume mounted on /data/uploads inherits this ownership when first created.
RUN mkdir -p /data/uploads && chown -R node:node /data
USER node
EXPOSE 4000
# slim images have no curl; Node's fetch does the probe.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/health/liveness').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "--enable-source-maps", "dist/main.js"]
