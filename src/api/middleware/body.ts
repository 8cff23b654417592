/**
 * What every authenticated route accepts before its own schema runs:
 *
 * - a body only as JSON (415 otherwise). Without this a text/plain body reached the handler as "no
 *   body", so a filter sent with the wrong Content-Type was silently dropped (POST /dlq/retry then
 *   requeued every tenant's DLQ);
 * - a JSON body only as an object (400 otherwise): valibot's object schemas take an array as `{}`;
 * - no NUL character in the query or path (400 naming the parameter): PostgreSQL's text cannot hold
 *   it, so a filter holding one would otherwise surface as a database error. Body fields are checked
 *   by their schemas (NoNul), so their errors come in field order with the rest.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { AppError } from '../../errors.js';

const JSON_TYPES = ['application/json', 'application/*+json'];

/** A body is present when it has bytes, or is chunked (its length is unknown until read). */
function hasBody(req: Request): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && length !== '0';
}

function requireJsonContentType(req: Request, _res: Response, next: NextFunction): void {
  if (hasBody(req) && !req.is(JSON_TYPES)) throw AppError.unsupportedMediaType();
  next();
}

/** The path of the first string (or key) holding NUL, walked without recursion (bodies may be deep). */
export function pathOfNul(value: unknown, root = ''): string | undefined {
  const stack: [unknown, string][] = [[value, root]];
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (typeof node === 'string') {
      if (node.includes('\u0000')) return path;
    } else if (node && typeof node === 'object') {
      for (const [key, child] of Object.entries(node)) {
        const childPath = path ? `${path}.${key}` : key;
        if (key.includes('\u0000')) return childPath;
        stack.push([child, childPath]);
      }
    }
  }
  return undefined;
}

function requireObjectWithoutNul(req: Request, _res: Response, next: NextFunction): void {
  const body: unknown = req.body;
  if (body !== undefined && (body === null || typeof body !== 'object' || Array.isArray(body)))
    throw AppError.notAnObject();
  for (const [what, value] of [
    ['query', req.query],
    ['path', req.params],
  ] as const) {
    const path = pathOfNul(value);
    if (path !== undefined)
      throw AppError.validation(`${what} is not valid`, [
        { path, message: 'must not contain NUL (\\u0000) characters' },
      ]);
  }
  next();
}

/** The body handling of every authenticated route: JSON only, an object; no NUL in query or path. */
export function jsonObjectBody(limitBytes: number): RequestHandler[] {
  return [
    requireJsonContentType,
    express.json({ limit: limitBytes, strict: false, type: JSON_TYPES }),
    requireObjectWithoutNul,
  ];
}
