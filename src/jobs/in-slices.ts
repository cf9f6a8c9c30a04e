/**
 * Runs `each` over `items`, `size` of them an event-loop turn and the rest on the next turns
 * (setImmediate), so work over a whole fleet never holds the loop long enough to delay messages
 * (#21: a health sweep over 100,000 devices held it 330–510 ms). The first slice runs within the
 * call, inside the caller's error boundary; a later one that throws is reported to `fault`, and the
 * rest of that pass is dropped (the next pass covers it). `done` runs once the pass ends, either way.
 */
export function inSlices<T>(items: Iterator<T>, size: number, each: (item: T) => void, fault: (error: unknown) => void, done?: () => void): void {
  for (let n = 0; n < size; n++) {
    const next = items.next();
    if (next.done === true) return done?.();
    each(next.value);
  }
  setImmediate(() => {
    try {
      inSlices(items, size, each, fault, done);
    } catch (error) {
      fault(error);
      done?.();
    }
  });
}

/**
 * A periodic look at every item of a collection that may be large (every session, every kept
 * channel), done `size` items an event-loop turn by `inSlices`. A pass asked for while one is still
 * going starts when that one ends (once, however often it was asked for): what changed before the
 * ask (a revoked key) is seen by every item, and passes never overlap. The collection's own
 * iterator is used across turns, so items removed meanwhile are skipped (Map and Set iterators are
 * live) and items added meanwhile may or may not be seen by this pass.
 */
export class SlicedPass<T> {
  private running = false;
  private again = false;
  private readonly finished = (): void => {
    this.running = false;
    if (!this.again) return;
    this.again = false;
    try {
      this.run();
    } catch (error) {
      this.fault(error);
    }
  };

  constructor(
    private readonly items: () => Iterable<T>,
    private readonly size: number,
    private readonly each: (item: T) => void,
    private readonly fault: (error: unknown) => void,
  ) {}

  /** True while a pass has slices left to run. */
  get inProgress(): boolean {
    return this.running;
  }

  run(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      inSlices(this.items()[Symbol.iterator](), this.size, this.each, this.fault, this.finished);
    } catch (error) {
      this.running = false;
      throw error;
    }
  }
}
