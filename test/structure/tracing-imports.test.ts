/**
 * Tracing costs nothing when it is off: no module of src/ loads the OpenTelemetry SDK or an exporter
 * up front. Only @opentelemetry/api (the no-op tracer) and the semantic conventions (constants) are
 * imported statically; the SDK, resources and exporters only by the dynamic import() in
 * src/observability/tracing.ts, which runs when an OTLP endpoint is configured. Type-only imports
 * are erased and allowed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import ts from 'typescript';

const STATIC_OK = new Set(['@opentelemetry/api', '@opentelemetry/semantic-conventions']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'public' ? [] : sourceFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** Module specifiers of `file`: static (value) imports and dynamic import() calls. */
function imports(file: string): { static: string[]; dynamic: string[] } {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found = { static: [] as string[], dynamic: [] as string[] };
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      const typeOnly = ts.isImportDeclaration(node) ? node.importClause?.isTypeOnly : node.isTypeOnly;
      if (!typeOnly) found.static.push(node.moduleSpecifier.text);
    }
    if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    )
      found.dynamic.push(node.arguments[0].text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('OpenTelemetry imports', () => {
  const files = sourceFiles(join(process.cwd(), 'src'));
  const all = files.map((file) => ({ file, ...imports(file) }));

  it('load only the API and the semantic conventions statically', () => {
    const offending = all.flatMap(({ file, static: s }) =>
      s.filter((m) => m.startsWith('@opentelemetry/') && !STATIC_OK.has(m)).map((m) => `${file}: ${m}`),
    );
    expect(offending).toEqual([]);
  });

  it('load the SDK and the exporters in tracing.ts alone, on demand', () => {
    const dynamic = all.flatMap(({ file, dynamic: d }) =>
      d
        .filter((m) => m.startsWith('@opentelemetry/'))
        .map((m) => `${file.replace(process.cwd() + '/', '')}: ${m}`),
    );
    expect(dynamic.sort()).toEqual([
      'src/observability/tracing.ts: @opentelemetry/exporter-trace-otlp-http',
      'src/observability/tracing.ts: @opentelemetry/exporter-trace-otlp-proto',
      'src/observability/tracing.ts: @opentelemetry/resources',
      'src/observability/tracing.ts: @opentelemetry/sdk-trace-base',
    ]);
  });
});
