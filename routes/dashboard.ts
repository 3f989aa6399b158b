/**
 * The web dashboard: static files of dashboard/ (plain ES modules and CSS, no build step) at
 * /dashboard/. Files are read once at registration; only files found there are served, so a
 * request path never reaches the file system. The page calls the /models API with the bearer
 * token the user signs in with; this plugin serves no data.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

const DIR = fileURLToPath(new URL('../dashboard/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

// scripts, styles and fetches only from this origin; nothing may frame the page
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface StaticFile {
  type: string;
  body: Buffer;
}

/** The files of dashboard/; none when the directory is absent (an image built without it): the API still starts. */
function loadFiles(): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  if (!existsSync(DIR)) return files;
  for (const entry of readdirSync(DIR, { withFileTypes: true })) {
    const type = TYPES[extname(entry.name)];
    if (entry.isFile() && type) files.set(entry.name, { type, body: readFileSync(join(DIR, entry.name)) });
  }
  return files;
}

export default async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  const files = loadFiles();
  const send = (reply: FastifyReply, file: StaticFile) =>
    reply
      .type(file.type)
      .header('Cache-Control', 'no-cache')
      .header('X-Content-Type-Options', 'nosniff')
      .header('Referrer-Policy', 'no-referrer')
      .header('Content-Security-Policy', CSP)
      .send(file.body);
  const notFound = (reply: FastifyReply, path: string) =>
    reply.code(404).type('application/json; charset=utf-8').send({ code: 'PGRST125', details: `GET ${path} is not a dashboard file`, hint: 'Open /dashboard/', message: 'Invalid path specified in request URL' });

  app.get('/dashboard', async (request, reply) => {
    // the page's relative URLs (app.js, style.css) need the trailing slash
    const [path, query] = (request.raw.url ?? '/dashboard').split('?');
    if (!path.endsWith('/')) return reply.redirect(`${path.slice(path.lastIndexOf('/') + 1)}/${query !== undefined ? `?${query}` : ''}`, 302);
    const index = files.get('index.html');
    return index ? send(reply, index) : notFound(reply, path);
  });
  app.get('/dashboard/:file', async (request, reply) => {
    const name = (request.params as { file: string }).file;
    const file = files.get(name);
    return file ? send(reply, file) : notFound(reply, `/dashboard/${name}`);
  });
}
