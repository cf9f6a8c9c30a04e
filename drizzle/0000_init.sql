CREATE TABLE "alerts" (
	"id" text PRIMARY KEY NOT NULL,
	"device_id" text NOT NULL,
	"type" text NOT NULL,
	"severity" text NOT NULL,
	"state" text NOT NULL,
	"data" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"raised_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"cleared_at" timestamp with time zone,
	"acknowledged_at" timestamp with time zone,
	"acknowledged_by" text
);
--> statement-breakpoint
CREATE TABLE "api_keys" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"key_hash" text NOT NULL,
	"scopes" jsonb NOT NULL,
	"device_ids" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone,
	"last_used_at" timestamp with time zone,
	CONSTRAINT "api_keys_key_hash_unique" UNIQUE("key_hash")
);
--> statement-breakpoint
CREATE TABLE "commands" (
	"id" text PRIMARY KEY NOT NULL,
	"device_id" text NOT NULL,
	"command" text NOT NULL,
	"params" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"state" text NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer NOT NULL,
	"timeout_s" integer NOT NULL,
	"idempotency_key" text,
	"result" jsonb,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "devices" (
	"id" text PRIMARY KEY NOT NULL,
	"type" text,
	"name" text,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"first_seen" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen" timestamp with time zone,
	"status" text DEFAULT 'unknown' NOT NULL,
	"offline_timeout_s" integer,
	"last_telemetry" jsonb,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "health_scores" (
	"device_id" text NOT NULL,
	"ts" timestamp with time zone NOT NULL,
	"score" real NOT NULL,
	"components" jsonb NOT NULL,
	CONSTRAINT "health_scores_device_id_ts_pk" PRIMARY KEY("device_id","ts")
);
--> statement-breakpoint
CREATE TABLE "status_changes" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"device_id" text NOT NULL,
	"status" text NOT NULL,
	"previous" text,
	"reason" text NOT NULL,
	"last_seen" timestamp with time zone,
	"at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "telemetry" (
	"device_id" text NOT NULL,
	"ts" timestamp with time zone NOT NULL,
	"received_at" timestamp with time zone NOT NULL,
	"battery_level" double precision,
	"rssi" double precision,
	"response_time_ms" double precision,
	"error_rate" double precision,
	"metrics" jsonb,
	CONSTRAINT "telemetry_device_id_ts_pk" PRIMARY KEY("device_id","ts")
);
--> statement-breakpoint
CREATE UNIQUE INDEX "alerts_one_active_per_type" ON "alerts" USING btree ("device_id","type") WHERE "alerts"."state" in ('raised', 'acknowledged');--> statement-breakpoint
CREATE INDEX "alerts_device_raised" ON "alerts" USING btree ("device_id","raised_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "alerts_state" ON "alerts" USING btree ("state");--> statement-breakpoint
CREATE UNIQUE INDEX "commands_idempotency" ON "commands" USING btree ("device_id","idempotency_key");--> statement-breakpoint
CREATE INDEX "commands_device_created" ON "commands" USING btree ("device_id","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "devices_status_idx" ON "devices" USING btree ("status");--> statement-breakpoint
CREATE INDEX "devices_type_idx" ON "devices" USING btree ("type");--> statement-breakpoint
CREATE UNIQUE INDEX "status_changes_device_at_status" ON "status_changes" USING btree ("device_id","at","status");--> statement-breakpoint
CREATE INDEX "status_changes_device_at" ON "status_changes" USING btree ("device_id","at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "telemetry_ts_brin" ON "telemetry" USING brin ("ts");