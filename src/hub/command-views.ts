import type { CommandView } from '../cluster/owner-api/index.js';
import type { Hub } from './hub.js';
import type { Command } from '../domain/command.js';
import { commandData } from '../domain/representations.js';

export type { CommandView } from '../cluster/owner-api/index.js';

/**
 * A device's commands for the REST API: the stored rows, overlaid with the states the device's
 * owner holds now. A state is in the owner's memory before its `command_update` frame is pushed,
 * and in the database only a writer batch later, so a read made on seeing a frame shows that state
 * or a newer one (read-your-writes), on whichever instance it is made.
 */
export class CommandViews {
  constructor(private readonly hub: Hub) {
    hub.owner.serve({ heldCommands: (id) => hub.commands.held(id).map(commandData) });
  }

  /** The newest `limit` commands of a device; `stored` are its rows (newest `limit` by creation). */
  async list(deviceId: string, limit: number, stored: Promise<readonly Command[]>): Promise<CommandView[]> {
    const [rows, held] = await Promise.all([stored, this.hub.owner.heldCommands(deviceId)]);
    const byId = new Map(rows.map((row) => [row.id, commandData(row)]));
    // The owner's state is never older than its row; an owner that does not answer leaves the rows.
    if (held.ok) for (const command of held.value) byId.set(command.command_id, command);
    return [...byId.values()].sort((x, y) => (y.created_at ?? '').localeCompare(x.created_at ?? '')).slice(0, limit);
  }
}
