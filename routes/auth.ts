/**
 * Authentication for the API routes: the caller is identified in `onRequest`, before the body is
 * read, parsed or validated, so a request with a bad token or an invalid role claim costs nothing
 * and gets the same 401 on every route.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Identity } from '../src/auth/jwt.ts';
import { identify } from '../src/rest/execute.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** the verified caller; set by the auth hook on every API route */
    identity?: Identity;
  }
}

/** Adds the hook to `api` (an encapsulated context holding the API routes). */
export function authenticateRoutes(api: FastifyInstance): void {
  api.decorateRequest('identity', undefined);
  api.addHook('onRequest', async (request: FastifyRequest) => {
    const identity = await identify(api.gateway, request.headers);
    request.identity = identity;
    request.authenticated = identity.authenticated;
  });
}

/** The caller of a request that passed the auth hook. */
export function callerOf(request: FastifyRequest): Identity {
  if (!request.identity) throw new Error('route registered outside the authenticated API context');
  return request.identity;
}
