/** A session that is behind, or whose channel's first frames are on their way: it takes each frame itself. */
export interface LagFollower {
  conflate(channel: string, key: string, frame: string): void;
}

/**
 * Sessions that are behind, by the channel they follow. Empty nearly always, so the cost on the
 * hot path is one Map lookup per frame.
 */
export class LagRouter {
  private readonly byChannel = new Map<string, Set<LagFollower>>();

  follow(channel: string, session: LagFollower): void {
    let sessions = this.byChannel.get(channel);
    if (sessions === undefined) this.byChannel.set(channel, (sessions = new Set()));
    sessions.add(session);
  }

  unfollow(channel: string, session: LagFollower): void {
    const sessions = this.byChannel.get(channel);
    if (sessions === undefined) return;
    sessions.delete(session);
    if (sessions.size === 0) this.byChannel.delete(channel);
  }

  /** Hands a frame to the lagging followers of a channel, to be conflated. */
  deliver(channel: string, key: string, frame: string): void {
    if (this.byChannel.size === 0) return;
    const sessions = this.byChannel.get(channel);
    if (sessions === undefined) return;
    for (const session of sessions) session.conflate(channel, key, frame);
  }
}
