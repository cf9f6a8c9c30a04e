CREATE TABLE "dead_letters" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"table_name" text NOT NULL,
	"device_id" text,
	"payload" text NOT NULL,
	"sqlstate" text,
	"error" text NOT NULL,
	"failed_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "dead_letters_failed_at" ON "dead_letters" USING btree ("failed_at");--> statement-breakpoint
CREATE INDEX "dead_letters_table_failed_at" ON "dead_letters" USING btree ("table_name","failed_at");