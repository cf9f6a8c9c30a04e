CREATE TABLE "notification_outbox" (
	"seq" bigserial PRIMARY KEY NOT NULL,
	"id" text NOT NULL,
	"sink" text NOT NULL,
	"subject" text NOT NULL,
	"type" text NOT NULL,
	"event" jsonb NOT NULL,
	"state" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"lease_until" timestamp with time zone,
	"claimed_by" text,
	"last_error" text
);
--> statement-breakpoint
CREATE UNIQUE INDEX "notification_outbox_sink_id" ON "notification_outbox" USING btree ("sink","id");--> statement-breakpoint
CREATE INDEX "notification_outbox_due" ON "notification_outbox" USING btree ("state","next_attempt_at");--> statement-breakpoint
CREATE INDEX "notification_outbox_subject" ON "notification_outbox" USING btree ("sink","subject","seq");