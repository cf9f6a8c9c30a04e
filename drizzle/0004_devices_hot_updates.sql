-- Status changes and last-seen refreshes rewrite device rows: with no index on a column they change
-- and room on each page, PostgreSQL updates them in place (HOT) without writing index entries (#21).
DROP INDEX IF EXISTS "devices_status_idx";--> statement-breakpoint
ALTER TABLE "devices" SET (fillfactor = 70);
