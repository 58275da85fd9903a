-- AlterTable
ALTER TABLE "uploads" ADD COLUMN     "heartbeat_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;

-- CreateIndex
CREATE INDEX "events_upload_id_idx" ON "events"("upload_id");

-- CreateIndex
CREATE INDEX "uploads_status_heartbeat_at_idx" ON "uploads"("status", "heartbeat_at");

