/**
 * Runs `each` over `items`, `size` of them an event-loop turn and the rest on the next turns
 * (setImmediate), so work over a whole fleet never holds the loop long enough to delay messages
 * (#21: a health sweep over 100,000 devices held it 330–510 ms). The first slice runs within the
 * call, inside the caller's error boundary; a later one that throws is reported to `fault`, and the
 * rest of that pass is dropped (the next pass covers it).
 */
export function inSlices<T>(items: Iterator<T>, size: number, each: (item: T) => void, fault: (error: unknown) => void): void {
  for (let n = 0; n < size; n++) {
    const next = items.next();
    if (next.done === true) return;
    each(next.value);
  }
  setImmediate(() => {
    try {
      inSlices(items, size, each, fault);
    } catch (error) {
      fault(error);
    }
  });
}
