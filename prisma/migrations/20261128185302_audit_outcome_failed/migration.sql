-- AlterEnum
ALTER TYPE "audit_outcome" ADD VALUE 'FAILED';

