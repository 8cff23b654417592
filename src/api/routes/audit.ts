import { Router, type RequestHandler } from 'express';
import type { ApiContext } from '../context.js';

export function auditRouter(_ctx: ApiContext, _guard: RequestHandler[]): Router {
  const router = Router();
  return router;
}
