/**
 * Per-device numbers without a per-device object: fixed-width rows of one typed array kind, kept in
 * chunks of 1,024 rows, each device holding only its row number. At fleet scale this is what keeps a
 * device's rolling metrics and health within a few hundred bytes of heap (docs/performance.md, heap
 * per device): a typed array per device costs ~370 B of heap for its two objects before any data,
 * and every double in an object field is a separate heap number.
 */
const CHUNK_SHIFT = 10;
const CHUNK_ROWS = 1 << CHUNK_SHIFT;
const ROW_MASK = CHUNK_ROWS - 1;

/** Row numbers handed out and given back; a given-back row is handed out again first. */
export class RowNumbers {
  private next = 0;
  private readonly free: number[] = [];

  take(): number {
    return this.free.pop() ?? this.next++;
  }

  give(row: number): void {
    this.free.push(row);
  }
}

type Floats = Float64Array | Float32Array;

/** Rows of `width` numbers; the chunk holding a row is allocated when the row is first reached. */
export class DenseRows<A extends Floats> {
  private readonly chunks: A[] = [];

  constructor(
    readonly width: number,
    private readonly allocate: (length: number) => A,
  ) {}

  /** The array holding `row`; its numbers start at `offset(row)`. */
  chunk(row: number): A {
    return this.chunks[row >>> CHUNK_SHIFT] ?? this.grow(row >>> CHUNK_SHIFT);
  }

  offset(row: number): number {
    return (row & ROW_MASK) * this.width;
  }

  /** Sets every number of a row to `value`. */
  fill(row: number, value: number): void {
    const at = this.offset(row);
    this.chunk(row).fill(value, at, at + this.width);
  }

  private grow(index: number): A {
    while (this.chunks.length <= index) this.chunks.push(this.allocate(CHUNK_ROWS * this.width));
    return this.chunks[index]!;
  }
}
