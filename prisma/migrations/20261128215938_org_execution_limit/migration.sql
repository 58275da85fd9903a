-- AlterTable
ALTER TABLE "organizations" ADD COLUMN     "max_concurrent_executions" INTEGER;

