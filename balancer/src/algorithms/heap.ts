/**
 * Heap is a binary min-heap over `before`, with an optional hook told of every move, so that an
 * owner can find an item again (least-connections) or simply read the top (weighted round robin).
 */
export class Heap<T> {
  private items: T[] = [];

  constructor(
    private readonly before: (a: T, b: T) => boolean,
    private readonly moved: (item: T, at: number) => void = () => {},
  ) {}

  get top(): T | undefined {
    return this.items[0];
  }

  reset(items: T[]): void {
    this.items = items;
    items.forEach((item, at) => this.moved(item, at));
    for (let i = (items.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  /** update puts the item at `at` back in order after its key changed. */
  update(at: number): void {
    this.down(this.up(at));
  }

  private up(from: number): number {
    let i = from;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(this.items[i]!, this.items[parent]!)) break;
      this.swap(i, parent);
      i = parent;
    }
    return i;
  }

  private down(from: number): void {
    const items = this.items;
    let i = from;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let first = i;
      if (left < items.length && this.before(items[left]!, items[first]!)) first = left;
      if (right < items.length && this.before(items[right]!, items[first]!)) first = right;
      if (first === i) return;
      this.swap(i, first);
      i = first;
    }
  }

  private swap(a: number, b: number): void {
    const items = this.items;
    [items[a], items[b]] = [items[b]!, items[a]!];
    this.moved(items[a]!, a);
    this.moved(items[b]!, b);
  }
}
