/**
 * GET /openapi.json (no key: the contract is public to whoever can reach the API) and /docs, a
 * static page that fetches it and renders it in the browser: no build step, no CDN.
 */
import express, { Router } from 'express';
import { join } from 'node:path';
import { openApiJson } from '../openapi/document.js';
import { CONSOLE_CSP, consolePublicDir } from './console-schemas.js';

// Beside the console's files (the container image already ships that folder as it is).
export const docsPublicDir = join(consolePublicDir, 'docs');

export function openApiRouter(): Router {
  const router = Router();

  router.get('/openapi.json', (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.type('application/json').send(openApiJson());
  });

  router.use(
    '/docs',
    (_req, res, next) => {
      // Same policy as the console: scripts only from our own files, so text from the document
      // (descriptions, examples) can never run even if the page's escaping failed.
      res.setHeader('Content-Security-Policy', CONSOLE_CSP);
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('Cache-Control', 'no-cache');
      next();
    },
    express.static(docsPublicDir, { index: 'index.html', redirect: true, dotfiles: 'ignore' }),
  );

  return router;
}
