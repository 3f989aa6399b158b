/** Named prepared statements of one connection, least recently used first out. */

export interface Prepared {
  /** '' = the unnamed statement (prepare: false) */
  name: string;
  text: string;
  /** result column names, known once the Describe answered (null before) */
  names: string[] | null;
  /** ParseComplete arrived: the statement exists on the server */
  confirmed: boolean;
  /** Bind+Execute of a parameterless statement, serialized once */
  bindExecute?: Buffer;
}

export class StatementCache {
  private readonly map = new Map<string, Prepared>();
  private seq = 0;
  /** confirmed-or-in-flight statements evicted from the map: Close them before the next pipeline */
  readonly evicted: string[] = [];

  constructor(readonly limit: number) {
    if (!(limit >= 1)) throw new Error('statement cache limit must be at least 1');
  }

  get size(): number {
    return this.map.size;
  }

  get(text: string): Prepared | undefined {
    const p = this.map.get(text);
    if (p) {
      this.map.delete(text);
      this.map.set(text, p);
    }
    return p;
  }

  add(text: string): Prepared {
    const p: Prepared = { name: `pgml_w${++this.seq}`, text, names: null, confirmed: false };
    this.map.set(text, p);
    while (this.map.size > this.limit) {
      const [oldest, victim] = this.map.entries().next().value as [string, Prepared];
      this.map.delete(oldest);
      this.evicted.push(victim.name);
    }
    return p;
  }

  /** The Parse did not happen (error earlier in the pipeline) or failed: forget it. */
  forget(p: Prepared): void {
    if (this.map.get(p.text) === p) this.map.delete(p.text);
  }

  /** Drop a statement that exists on the server (e.g. its result type changed): Close it next time. */
  drop(p: Prepared): void {
    if (this.map.get(p.text) !== p) return;
    this.map.delete(p.text);
    this.evicted.push(p.name);
  }
}
