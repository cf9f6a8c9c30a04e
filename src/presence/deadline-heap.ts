/**
 * A binary min-heap of (deadline, id) pairs. Entries are never removed from the middle: a caller
 * that moves a deadline pushes a new entry and skips the stale one when it surfaces (lazy
 * deletion), which keeps every touch O(log n) with no per-device timer.
 */
export class DeadlineHeap {
  private deadlines: number[] = [];
  private ids: string[] = [];

  get size(): number {
    return this.ids.length;
  }

  push(deadline: number, id: string): void {
    this.deadlines.push(deadline);
    this.ids.push(id);
    this.up(this.ids.length - 1);
  }

  /** Earliest deadline, or Infinity when empty. */
  peekDeadline(): number {
    return this.deadlines.length === 0 ? Infinity : this.deadlines[0]!;
  }

  peekId(): string | undefined {
    return this.ids[0];
  }

  pop(): void {
    const last = this.ids.length - 1;
    if (last < 0) return;
    this.swap(0, last);
    this.deadlines.pop();
    this.ids.pop();
    if (last > 0) this.down(0);
  }

  /** Replaces the contents (used to drop stale entries when they outnumber live ones). */
  rebuild(entries: Iterable<[string, number]>): void {
    this.deadlines = [];
    this.ids = [];
    for (const [id, deadline] of entries) {
      this.deadlines.push(deadline);
      this.ids.push(id);
    }
    for (let i = (this.ids.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.deadlines[parent]! <= this.deadlines[i]!) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const n = this.ids.length;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < n && this.deadlines[left]! < this.deadlines[smallest]!) smallest = left;
      if (right < n && this.deadlines[right]! < this.deadlines[smallest]!) smallest = right;
      if (smallest === i) return;
      this.swap(i, smallest);
      i = smallest;
    }
  }

  private swap(a: number, b: number): void {
    const d = this.deadlines[a]!;
    this.deadlines[a] = this.deadlines[b]!;
    this.deadlines[b] = d;
    const id = this.ids[a]!;
    this.ids[a] = this.ids[b]!;
    this.ids[b] = id;
  }
}
