-- DropIndex
DROP INDEX "events_organization_id_client_event_id_key";

-- CreateIndex
CREATE UNIQUE INDEX "events_organization_id_user_id_client_event_id_key" ON "events"("organization_id", "user_id", "client_event_id");

