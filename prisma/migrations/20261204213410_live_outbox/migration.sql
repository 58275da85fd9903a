-- CreateTable
CREATE TABLE "live_outbox" (
    "id" BIGSERIAL NOT NULL,
    "feed" TEXT NOT NULL,
    "organization_id" UUID NOT NULL,
    "change_id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "data" JSONB,
    "deployment" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "live_outbox_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "live_outbox_deployment_id_idx" ON "live_outbox"("deployment", "id");

