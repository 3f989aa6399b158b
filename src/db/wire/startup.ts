/** The startup exchange: StartupMessage, authentication, then ParameterStatus/BackendKeyData until ReadyForQuery. */
import type { Socket } from 'node:net';
import { serialize } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { md5Password, ScramSession, type Binding } from './auth.ts';
import type { WireConfig } from './config.ts';
import { PostgresError } from './errors.ts';

export class Startup {
  private scram: ScramSession | null = null;

  /** endPoint: the server certificate's tls-server-end-point hash on a TLS connection, else null */
  constructor(private readonly cfg: WireConfig, private readonly socket: Socket, private readonly fail: (e: unknown) => void, private readonly endPoint: Buffer | null = null) {}

  begin(): void {
    this.socket.write(serialize.startup({ user: this.cfg.user, database: this.cfg.database, ...this.cfg.startup }));
  }

  private password(): string {
    if (this.cfg.password === null) throw new Error(`the server asks for a password for user "${this.cfg.user}" and the URI has none`);
    return this.cfg.password;
  }

  /** Handles an authentication message; false when msg is not one. */
  handle(msg: BackendMessage): boolean {
    const m = msg as BackendMessage & { salt?: Buffer; mechanisms?: string[]; data?: string };
    switch (msg.name) {
      case 'authenticationOk':
        if (this.cfg.tls.channelBinding === 'require' && !this.scram?.bound) {
          throw new Error('channel_binding=require, but the server authenticated without SCRAM channel binding');
        }
        return true;
      case 'authenticationCleartextPassword':
        if (this.cfg.tls.channelBinding === 'require') throw new Error('channel_binding=require, but the server asks for a cleartext password');
        this.socket.write(serialize.password(this.password()));
        return true;
      case 'authenticationMD5Password':
        if (this.cfg.tls.channelBinding === 'require') throw new Error('channel_binding=require, but the server asks for an MD5 password');
        this.socket.write(serialize.password(md5Password(this.cfg.user, this.password(), m.salt!)));
        return true;
      case 'authenticationSASL':
        if (!ScramSession.supported(m.mechanisms ?? [])) throw new Error(`unsupported SASL mechanisms ${JSON.stringify(m.mechanisms)}`);
        this.scram = new ScramSession(this.password(), channelBinding(this.cfg, this.endPoint, m.mechanisms ?? []));
        this.socket.write(serialize.sendSASLInitialResponseMessage(this.scram.mechanism, this.scram.initialResponse()));
        return true;
      case 'authenticationSASLContinue':
        if (!this.scram) throw new Error('SASLContinue without a SASL session');
        this.scram.finalResponse(m.data ?? '').then((r) => this.socket.write(serialize.sendSCRAMClientFinalMessage(r)), this.fail);
        return true;
      case 'authenticationSASLFinal':
        if (!this.scram) throw new Error('SASLFinal without a SASL session');
        this.scram.verifyFinal(m.data ?? '');
        return true;
      case 'error':
        throw new PostgresError(msg as never);
    }
    return false;
  }
}

/** What SCRAM does about channel binding: bind when the server offers it on TLS, unless disabled. */
function channelBinding(cfg: WireConfig, endPoint: Buffer | null, mechanisms: string[]): Binding {
  if (cfg.tls.channelBinding === 'disable') return { kind: 'none' };
  if (endPoint && mechanisms.includes('SCRAM-SHA-256-PLUS')) return { kind: 'bind', data: endPoint };
  if (cfg.tls.channelBinding === 'require') throw new Error('channel_binding=require, but the server does not offer SCRAM-SHA-256-PLUS over this connection');
  // on TLS without PLUS offered, 'y' tells the server we could have bound (downgrade detection)
  return { kind: endPoint ? 'could' : 'none' };
}
