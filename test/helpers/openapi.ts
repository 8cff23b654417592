/**
 * Checks real requests and answers against the OpenAPI document (the JSON, not the valibot schemas
 * it came from), with a JSON Schema 2020-12 validator: what a client generated from
 * /openapi.json would expect is what Postbox sends.
 *
 *   const checker = openApiChecker(doc);
 *   checker.response('GET', '/webhooks/0190…', 200, headers, body);   // [] or the problems
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { Application } from 'express';

// ajv-formats is CommonJS with a default export; under ESM interop it may arrive wrapped.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ??
  addFormatsModule) as unknown as (ajv: Ajv2020) => void;

type Json = Record<string, any>;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

export interface MatchedOperation {
  /** `METHOD /openapi/{path}` */
  key: string;
  path: string;
  method: string;
  op: Json;
  params: Record<string, string>;
}

/** JSON Pointer escaping of one token. */
const token = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

export function openApiChecker(doc: Json) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(doc, 'openapi.json');
  const compiled = new Map<string, ValidateFunction>();

  function validatorAt(pointer: string[]): ValidateFunction {
    const ref = `openapi.json#/${pointer.map(token).join('/')}`;
    let fn = compiled.get(ref);
    if (!fn) compiled.set(ref, (fn = ajv.compile({ $ref: ref })));
    return fn;
  }

  function problems(fn: ValidateFunction, value: unknown, what: string): string[] {
    if (fn(value)) return [];
    return (fn.errors ?? []).map((e) => `${what}${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
  }

  /** The operation a concrete request hits, with its path parameters. */
  function match(method: string, url: string): MatchedOperation | undefined {
    const pathname = new URL(url, 'http://x').pathname;
    for (const [path, item] of Object.entries<Json>(doc.paths)) {
      const names: string[] = [];
      const pattern = path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
        names.push(name);
        return '([^/]+)';
      });
      const m = new RegExp(`^${pattern}$`).exec(pathname);
      const op = item[method.toLowerCase()];
      if (m && op) {
        const params = Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)]));
        return { key: `${method.toUpperCase()} ${path}`, path, method: method.toLowerCase(), op, params };
      }
    }
    return undefined;
  }

  return {
    doc,
    match,

    /** A request as a client would send it: its operation exists, and params, query and body fit. */
    request(method: string, url: string, body: unknown): string[] {
      const m = match(method, url);
      if (!m) return [`${method} ${url}: no such operation in the document`];
      const out: string[] = [];
      const base = ['paths', m.path, m.method];
      const params: Json[] = m.op.parameters ?? [];
      const query = Object.fromEntries(new URL(url, 'http://x').searchParams);
      for (const name of Object.keys(query))
        if (!params.some((p) => p.in === 'query' && p.name === name))
          out.push(`${m.key}: query parameter ${name} is not documented`);
      params.forEach((p, i) => {
        const value = p.in === 'path' ? m.params[p.name] : p.in === 'query' ? query[p.name] : undefined;
        if (value === undefined) {
          if (p.required && p.in !== 'header') out.push(`${m.key}: ${p.in} parameter ${p.name} is required`);
          return;
        }
        out.push(...problems(validatorAt([...base, 'parameters', String(i), 'schema']), value, `${p.name}`));
      });
      const rb = m.op.requestBody;
      if (body === undefined) {
        if (rb?.required) out.push(`${m.key}: a body is required`);
      } else if (!rb) out.push(`${m.key}: takes no body`);
      else
        out.push(
          ...problems(
            validatorAt([...base, 'requestBody', 'content', 'application/json', 'schema']),
            body,
            'body',
          ),
        );
      return out;
    },

    /** An answer: its status is documented for the operation, headers it promises are there, the body fits. */
    response(method: string, url: string, status: number, headers: Headers, body: unknown): string[] {
      const m = match(method, url);
      if (!m) return [`${method} ${url}: no such operation in the document`];
      const r: Json | undefined = m.op.responses[String(status)];
      if (!r) return [`${m.key}: status ${status} is not documented (body ${JSON.stringify(body)})`];
      const out: string[] = [];
      for (const [name, h] of Object.entries<Json>(r.headers ?? {}))
        if (h.required && !headers.get(name)) out.push(`${m.key} ${status}: header ${name} is missing`);
      const [type] = Object.keys(r.content ?? {});
      if (!type) {
        if (body !== undefined && body !== '') out.push(`${m.key} ${status}: documented without a body`);
        return out;
      }
      const actualType = headers.get('content-type') ?? '';
      if (!actualType.startsWith(type))
        out.push(`${m.key} ${status}: content-type ${actualType}, not ${type}`);
      if (type === 'application/json')
        out.push(
          ...problems(
            validatorAt(['paths', m.path, m.method, 'responses', String(status), 'content', type, 'schema']),
            body,
            `${m.key} ${status} body`,
          ),
        );
      return out;
    },
  };
}

export type OpenApiChecker = ReturnType<typeof openApiChecker>;

/** Every `METHOD /path` Express serves as a route (static mounts such as /console are not routes). */
export function expressRoutes(app: Application): string[] {
  const out: string[] = [];
  const walk = (stack: any[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const method of Object.keys(layer.route.methods))
          if (method !== '_all') out.push(`${method.toUpperCase()} ${prefix}${layer.route.path}`);
      } else if (Array.isArray(layer.handle?.stack)) {
        walk(layer.handle.stack, prefix + (layer.slash ? '' : String(layer.rawPath ?? '')));
      }
    }
  };
  walk((app as any).router.stack, '');
  return out;
}

/** Every `METHOD /express/:path` the document lists. */
export function documentRoutes(doc: Json): string[] {
  const out: string[] = [];
  for (const [path, item] of Object.entries<Json>(doc.paths))
    for (const method of METHODS)
      if (item[method]) out.push(`${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ':$1')}`);
  return out;
}
