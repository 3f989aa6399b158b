/** Password authentication: md5 and SCRAM-SHA-256[-PLUS] (RFC 5802/7677; tls-server-end-point binding, RFC 5929). */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

export function md5Password(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password + user).digest('hex');
  return 'md5' + createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex');
}

const hmac = (key: Buffer, data: string) => createHmac('sha256', key).update(data).digest();
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest();

/** RFC 4013 SASLprep's mapping steps, as PostgreSQL applies them to the stored verifier. */
function saslprep(password: string): string {
  return password.replace(/[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g, ' ').replace(/[\u00AD\u034F\u1806\u180B-\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/g, '').normalize('NFKC');
}

/** none: no TLS; could: TLS, but the server offers no binding; bind: SCRAM-SHA-256-PLUS */
export type Binding = { kind: 'none' } | { kind: 'could' } | { kind: 'bind'; data: Buffer };

export class ScramSession {
  readonly mechanism: string;
  private readonly clientNonce = randomBytes(18).toString('base64');
  private readonly gs2Header: string;
  private clientFirstBare = '';
  private expectedServerSignature: Buffer | null = null;

  constructor(private readonly password: string, private readonly binding: Binding = { kind: 'none' }) {
    this.mechanism = binding.kind === 'bind' ? 'SCRAM-SHA-256-PLUS' : 'SCRAM-SHA-256';
    this.gs2Header = binding.kind === 'bind' ? 'p=tls-server-end-point,,' : binding.kind === 'could' ? 'y,,' : 'n,,';
  }

  /** the exchange used channel binding */
  get bound(): boolean {
    return this.binding.kind === 'bind';
  }

  static supported(mechanisms: string[]): boolean {
    return mechanisms.includes('SCRAM-SHA-256');
  }

  initialResponse(): string {
    this.clientFirstBare = `n=*,r=${this.clientNonce}`;
    return `${this.gs2Header}${this.clientFirstBare}`;
  }

  async finalResponse(serverFirst: string): Promise<string> {
    const attrs = parseAttributes(serverFirst);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (!nonce || !nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) throw new Error('SCRAM: bad server nonce');
    if (!salt || !Number.isInteger(iterations) || iterations < 1 || iterations > 1_000_000) throw new Error('SCRAM: bad server-first-message');
    const salted = await pbkdf2Async(saslprep(this.password), Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
    const clientKey = hmac(salted, 'Client Key');
    const cbind = this.binding.kind === 'bind' ? Buffer.concat([Buffer.from(this.gs2Header), this.binding.data]) : Buffer.from(this.gs2Header);
    const withoutProof = `c=${cbind.toString('base64')},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = hmac(sha256(clientKey), authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i] ^ signature[i];
    this.expectedServerSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  verifyFinal(serverFinal: string): void {
    const v = parseAttributes(serverFinal).get('v');
    const got = v ? Buffer.from(v, 'base64') : Buffer.alloc(0);
    if (!this.expectedServerSignature || got.length !== this.expectedServerSignature.length || !timingSafeEqual(got, this.expectedServerSignature)) {
      throw new Error('SCRAM: the server signature does not match');
    }
  }
}

function parseAttributes(s: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) m.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return m;
}
