import type { Logger } from '../logger.js';

/** A started part of the hub and how to stop it (the composition root stops parts in reverse order). */
export interface Started<T> {
  readonly part: T;
  stop(): Promise<void> | void;
}

/**
 * The stops of every part started so far, run in reverse order of starting: clients go before the
 * broker and the writer, so data still arriving is flushed. A failing stop is logged and the rest
 * still run.
 */
export class Lifecycle {
  private readonly stops: (() => Promise<void> | void)[] = [];
  private stopped: Promise<void> | null = null;

  constructor(private readonly log: Logger) {}

  /** Records `started`'s stop and hands back its part. */
  add<T>(started: Started<T>): T {
    this.stops.push(() => started.stop());
    return started.part;
  }

  onStop(stop: () => Promise<void> | void): void {
    this.stops.push(stop);
  }

  /** Runs every stop once, newest first; later calls get the same promise. */
  stop(): Promise<void> {
    return (this.stopped ??= this.runStops());
  }

  private async runStops(): Promise<void> {
    for (const step of this.stops.reverse()) {
      try {
        await step();
      } catch (error) {
        this.log.error({ err: (error as Error).message }, 'error during shutdown');
      }
    }
  }
}
