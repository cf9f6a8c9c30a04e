/**
 * Whether a presence store may judge expiries yet. At start the hub gives `after`: the broker's
 * backlog for this session is read (docs/presence.md), so nothing is judged on silence that is only
 * the hub's own absence. Until it settles `open` is false; then `judge` runs once (the first sweep).
 */
export class JudgeGate {
  open = true;

  wait(after: Promise<unknown> | undefined, judge: () => void): void {
    if (after === undefined) return;
    this.open = false;
    const opened = () => {
      this.open = true;
      judge();
    };
    after.then(opened, opened);
  }
}
