CREATE TABLE "rule_sets" (
	"version" integer PRIMARY KEY NOT NULL,
	"document" jsonb NOT NULL,
	"source" text NOT NULL,
	"created_by" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
