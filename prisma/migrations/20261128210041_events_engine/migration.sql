-- AlterTable
ALTER TABLE "events" ADD COLUMN     "input_paths" TEXT[] DEFAULT ARRAY[]::TEXT[],
ADD COLUMN     "interpreter" TEXT,
ADD COLUMN     "output_paths" TEXT[] DEFAULT ARRAY[]::TEXT[],
ADD COLUMN     "previous_path" TEXT;

-- AlterTable
ALTER TABLE "patterns" ADD COLUMN     "recent_paths" TEXT[] DEFAULT ARRAY[]::TEXT[];

