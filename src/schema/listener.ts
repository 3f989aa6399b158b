import type { Sql } from 'postgres';

const PING_PREFIX = 'pgml-gateway:ping:';

export interface ListenerEvents {
  reloadSchema(): void;
  reloadConfig(): void;
  /** a reload was asked for and will follow after the debounce */
  announced?(kind: 'schema' | 'config'): void;
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
  private watchdog: NodeJS.Timeout | null = null;
  private pendingPing: string | null = null;
  private stopped = false;

  constructor(
    private readonly sql: Sql,
    private readonly channel: string,
    private readonly events: ListenerEvents,
    private readonly debounceMs = 50,
    private readonly pingMs = 5000,
  ) {}

  async start(): Promise<void> {
    await this.subscribe();
    this.watchdog = setInterval(() => void this.ping(), this.pingMs);
    this.watchdog.unref();
  }

  /**
   * End-to-end check that notifications still arrive: postgres.js re-issues LISTEN only once
   * after its connection drops and drops a failed attempt silently, so a database that is still
   * down at that moment leaves the channel unsubscribed. A ping that does not come back before
   * the next one re-subscribes (and reloads, as after any reconnect).
   */
  private async ping(): Promise<void> {
    if (this.stopped) return;
    if (this.pendingPing !== null) {
      this.events.log?.(`LISTEN ${this.channel} did not deliver a ping; subscribing again`);
      this.pendingPing = null;
      await this.unlisten?.().catch(() => {});
      this.connects = 1;
      await this.subscribe().then(() => this.schedule('schema'), () => {});
      return;
    }
    const token = `${PING_PREFIX}${Math.random().toString(36).slice(2)}`;
    this.pendingPing = token;
    await this.sql`select pg_notify(${this.channel}, ${token})`.catch(() => {
      // the database is unreachable: nothing to conclude about the subscription yet
      if (this.pendingPing === token) this.pendingPing = null;
    });
  }

  private async subscribe(): Promise<void> {
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
    if (payload.startsWith(PING_PREFIX)) {
      if (payload === this.pendingPing) this.pendingPing = null;
      return;
    }
    const p = payload.trim().toLowerCase();
    if (p === '' || p === 'reload schema') this.schedule('schema');
    else if (p === 'reload config') this.schedule('config');
  }

  private schedule(kind: 'schema' | 'config'): void {
    this.events.announced?.(kind);
    clearTimeout(this.timers[kind]);
    this.timers[kind] = setTimeout(() => {
      this.timers[kind] = undefined;
      if (kind === 'schema') this.events.reloadSchema();
      else this.events.reloadConfig();
    }, this.debounceMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.watchdog) clearInterval(this.watchdog);
    clearTimeout(this.timers.schema);
    clearTimeout(this.timers.config);
    await this.unlisten?.().catch(() => {});
  }
}
