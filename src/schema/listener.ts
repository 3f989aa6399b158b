import type { Sql } from 'postgres';

export interface ListenerEvents {
  reloadSchema(): void;
  reloadConfig(): void;
  log?(message: string): void;
}

/**
 * LISTENs on the configured channel. Empty payload or 'reload schema' reloads the schema cache,
 * 'reload config' the in-database config; bursts are debounced. postgres.js re-establishes the
 * LISTEN after a lost connection, and every (re)connect triggers a reload, since notifications
 * sent while disconnected are lost.
 */
export class ReloadListener {
  private timers: { schema?: NodeJS.Timeout; config?: NodeJS.Timeout } = {};
  private unlisten: (() => Promise<void>) | null = null;
  private connects = 0;

  constructor(private readonly sql: Sql, private readonly channel: string, private readonly events: ListenerEvents, private readonly debounceMs = 50) {}

  async start(): Promise<void> {
    const sub = await this.sql.listen(
      this.channel,
      (payload) => this.onMessage(payload),
      () => {
        if (this.connects++ > 0) {
          this.events.log?.(`LISTEN ${this.channel} re-established; reloading schema cache`);
          this.schedule('schema');
        }
      },
    );
    this.unlisten = sub.unlisten;
  }

  private onMessage(payload: string): void {
    const p = payload.trim().toLowerCase();
    if (p === '' || p === 'reload schema') this.schedule('schema');
    else if (p === 'reload config') this.schedule('config');
  }

  private schedule(kind: 'schema' | 'config'): void {
    clearTimeout(this.timers[kind]);
    this.timers[kind] = setTimeout(() => {
      this.timers[kind] = undefined;
      if (kind === 'schema') this.events.reloadSchema();
      else this.events.reloadConfig();
    }, this.debounceMs);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timers.schema);
    clearTimeout(this.timers.config);
    await this.unlisten?.().catch(() => {});
  }
}
