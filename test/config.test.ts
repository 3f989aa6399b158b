import { describe, expect, it } from 'vitest';
import { applyDbSettings, ConfigError, helpText, loadConfig, OPTIONS } from '../src/config.ts';

describe('configuration', () => {
  it('has PostgREST defaults', () => {
    const c = loadConfig({});
    expect(c.dbSchemas).toEqual(['public']);
    expect(c.serverPort).toBe(3000);
    expect(c.dbPool).toBe(10);
    expect(c.dbChannel).toBe('pgrst');
    expect(c.jwtRoleClaimKey).toBe('.role');
    expect(c.dbUri).toBeUndefined();
  });

  it("accepts PostgREST's variable names and their aliases", () => {
    const c = loadConfig({
      PGRST_DB_URI: 'postgres://a@h/db', PGRST_DB_SCHEMAS: 'api, public', PGRST_DB_ANON_ROLE: 'web_anon', PGRST_JWT_SECRET: 'x'.repeat(32),
      PGRST_JWT_AUD: 'aud', PGRST_JWT_ROLE_CLAIM_KEY: '."https://x.io/claims".role', PGRST_SERVER_HOST: '127.0.0.1', PORT: '8080',
      PGRST_DB_POOL: '20', PGRST_DB_POOL_ACQUISITION_TIMEOUT: '3', PGRST_DB_MAX_ROWS: '500', PGRST_DB_PRE_REQUEST: 'auth.check', PGRST_DB_CHANNEL: 'ch',
    });
    expect(c).toMatchObject({ dbUri: 'postgres://a@h/db', dbSchemas: ['api', 'public'], dbAnonRole: 'web_anon', jwtAud: 'aud', serverHost: '127.0.0.1', serverPort: 8080, dbPool: 20, dbPoolAcquisitionTimeout: 3, dbMaxRows: 500, dbPreRequest: 'auth.check', dbChannel: 'ch' });
    expect(loadConfig({ DATABASE_URL: 'postgresql://x/y' }).dbUri).toBe('postgresql://x/y');
    expect(loadConfig({ PGRST_SERVER_PORT: '1', PORT: '2' }).serverPort).toBe(1);
  });

  it('flags override the environment', () => {
    expect(loadConfig({ PGRST_SERVER_PORT: '1' }, ['--server-port', '4000']).serverPort).toBe(4000);
    expect(loadConfig({}, ['--db-schemas=api']).dbSchemas).toEqual(['api']);
    expect(() => loadConfig({}, ['--nope=1'])).toThrow(/--nope/);
  });

  it.each([
    ['PGRST_SERVER_PORT', 'abc'], ['PGRST_SERVER_PORT', '70000'], ['PGRST_DB_POOL', '0'], ['PGRST_DB_URI', 'mysql://x'],
    ['PGRST_JWT_SECRET', 'short'], ['PGRST_JWT_SECRET', '{"not":"a jwk"}'], ['PGRST_JWT_ROLE_CLAIM_KEY', 'role'],
    ['PGRST_DB_CHANNEL_ENABLED', 'maybe'], ['PGRST_LOG_LEVEL', 'loud'], ['PGRST_DB_MAX_ROWS', '-1'],
  ])('invalid %s=%s names the variable', (name, value) => {
    let err: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variable).toBe(name);
    expect((err as Error).message).toContain(name);
  });

  it('--help lists every variable', () => {
    const text = helpText();
    for (const o of OPTIONS) expect(text).toContain(o.env[0]);
  });

  it('in-database pgrst.* settings override reloadable options', () => {
    const base = loadConfig({ PGRST_DB_ANON_ROLE: 'anon' });
    const next = applyDbSettings(base, { 'pgrst.db_anon_role': 'web_anon', 'pgrst.db_max_rows': '7', 'pgrst.server_port': '1' });
    expect(next.dbAnonRole).toBe('web_anon');
    expect(next.dbMaxRows).toBe(7);
    expect(next.serverPort).toBe(base.serverPort);
  });
});
