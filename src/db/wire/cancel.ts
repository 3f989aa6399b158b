import { connect, type Socket } from 'node:net';
import { serialize } from 'pg-protocol';
import type { WireConfig } from './config.ts';

export function openSocket(cfg: WireConfig): Socket {
  return cfg.socketDir ? connect(`${cfg.socketDir}/.s.PGSQL.${cfg.port}`) : connect(cfg.port, cfg.host);
}

/**
 * CancelRequest on a short separate connection. The server answers nothing and closes it; the
 * cancelled statement then fails with 57014 on the original connection.
 */
export function sendCancel(cfg: WireConfig, pid: number, secret: number, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = openSocket(cfg);
    const timer = setTimeout(() => socket.destroy(new Error('cancel request timed out')), timeoutMs);
    socket.once('connect', () => socket.end(serialize.cancel(pid, secret)));
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.resume();
  });
}
