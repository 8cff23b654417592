/**
 * Summarises V8 CPU profiles (node --cpu-prof) of Postbox by stage: for each stage, its self time
 * (samples whose innermost frame belongs to it) and total time (samples with one of its frames
 * anywhere on the stack), as a share of the busy time (idle left out). With --top N, also the N
 * functions with the most self time.
 *
 *   BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' npm run bench:ingest
 *   npm run build && node dist/bench/profile.js /tmp/prof/*.cpuprofile [--top 30] [--markdown]
 *       [--user-us 350]   also print each stage as µs of a unit of work, given its user CPU (from /proc)
 *
 * Samples are taken on a wall clock while JavaScript runs, so a system call (writev to a socket, a
 * write to stdout) also counts the time the process sat preempted in it: on a loaded machine those
 * frames read several times larger than the kernel CPU /proc reports. They are therefore left out of
 * the shares (listed separately as "system calls, wall"); the bench's kernel figure is the CPU they cost.
 *
 * The stages are matched on each frame's script and function name (the rules below, first match wins).
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Stage of a frame: first rule whose pattern is found in "url functionName". */
const STAGES: [string, RegExp][] = [
  ['(idle)', /^ \(idle\)$/],
  ['(garbage collector)', /^ \(garbage collector\)$/],
  ['(program)', /^ \(program\)$/],
  ['request log (ours)', /\/src\/api\/middleware\/request-log\.js/],
  ['delivery log (ours)', /\/src\/delivery\/executor\.js .*|\/src\/observability\/log-context\.js/],
  [
    'winston',
    /node_modules\/(winston|logform|triple-beam|winston-transport|@colors|safe-stable-stringify|fecha)\//,
  ],
  ['metrics', /node_modules\/prom-client\/|\/src\/observability\/|\/src\/runtime\/delivery-metrics\.js/],
  ['auth', /\/src\/api\/middleware\/auth\.js|\/src\/security\/api-keys\.js/],
  [
    'body parsing',
    /node_modules\/(body-parser|raw-body|iconv-lite|content-type|type-is|media-typer)\/|\/src\/api\/middleware\/body\.js/,
  ],
  ['valibot', /node_modules\/valibot\/|\/src\/api\/validate\.js|event-schemas\.js/],
  ['events route (ours)', /\/src\/api\/routes\/events\.js/],
  ['quota', /\/src\/quotas\//],
  ['group commit + ingest (ours)', /\/src\/ingest\//],
  ['queries (ours)', /\/src\/queries\//],
  ['claim (ours)', /\/src\/delivery\/claimer\.js/],
  ['recorder (ours)', /\/src\/delivery\/recorder\.js/],
  [
    'sender + signing (ours)',
    /\/src\/delivery\/(sender|signing)\.js|\/src\/security\/(secret-box|webhook-secrets)\.js/,
  ],
  ['SSRF agent', /\/src\/security\/ssrf|node_modules\/request-filtering-agent\//],
  ['other (ours)', /\/dist\/src\//],
  [
    'got',
    /node_modules\/(got|@sindresorhus|@szmarczak|cacheable-|http2-wrapper|decompress-response|lowercase-keys|p-cancelable|responselike|form-data-encoder|get-stream|mimic-response|normalize-url|keyv|quick-lru|defer-to-connect|resolve-alpn|byte-counter|chunk-data|is-stream|type-fest)/,
  ],
  ['pg', /node_modules\/(pg|pg-protocol|pg-pool|pg-types|postgres-|pgpass|pg-connection-string)\//],
  [
    'express',
    /node_modules\/(express|router|finalhandler|send|serve-static|on-finished|depd|parseurl|path-to-regexp|qs|proxy-addr|forwarded|accepts|negotiator|vary|etag|fresh|cookie|encodeurl|escape-html|statuses|http-errors|debug|ms|mime-types|mime-db|merge-descriptors|range-parser|utils-merge|content-disposition|setprototypeof|inherits|side-channel|call-bind|function-bind|es-|get-intrinsic|has-|hasown|gopd|object-inspect|math-intrinsics|dunder-proto|ipaddr\.js)\//,
  ],
  ['node: http', /node:_http|node:http/],
  [
    'node: net/stream',
    /node:net|node:internal\/stream|node:stream|node:internal\/streams|node:internal\/net/,
  ],
  ['node: crypto', /node:crypto|node:internal\/crypto/],
  ['node: other', /node:/],
  ['(native/builtins)', /^ /],
];

/** Native frames that are system calls: their samples include time spent preempted (see above). */
const SYSCALLS = new Set([
  'writev',
  'writeBuffer',
  'writeUtf8String',
  'writeLatin1String',
  'read',
  'fdatasync',
]);

function stageOf(frame: CallFrame): string {
  const key = `${frame.url} ${frame.functionName}`;
  for (const [stage, pattern] of STAGES) if (pattern.test(key)) return stage;
  return 'other';
}

interface Totals {
  selfUs: Map<string, number>;
  totalUs: Map<string, number>;
  fnSelfUs: Map<string, number>;
  busyUs: number;
  idleUs: number;
  syscallUs: number;
}

function add(map: Map<string, number>, key: string, us: number) {
  map.set(key, (map.get(key) ?? 0) + us);
}

function summarise(profiles: Profile[]): Totals {
  const t: Totals = {
    selfUs: new Map(),
    totalUs: new Map(),
    fnSelfUs: new Map(),
    busyUs: 0,
    idleUs: 0,
    syscallUs: 0,
  };
  for (const p of profiles) {
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    // Per node: its stage, and the set of stages on its stack (memoised: stacks share prefixes).
    const stacks = new Map<number, Set<string>>();
    const stackOf = (id: number): Set<string> => {
      let s = stacks.get(id);
      if (s) return s;
      const up = parent.get(id);
      s = new Set(up === undefined ? [] : stackOf(up));
      s.add(stageOf(byId.get(id)!.callFrame));
      stacks.set(id, s);
      return s;
    };
    p.samples.forEach((id, i) => {
      const us = p.timeDeltas[i] ?? 0;
      const frame = byId.get(id)!.callFrame;
      const stage = stageOf(frame);
      if (stage === '(idle)') {
        t.idleUs += us;
        return;
      }
      if (frame.url === '' && SYSCALLS.has(frame.functionName)) {
        t.syscallUs += us;
        return;
      }
      t.busyUs += us;
      add(t.selfUs, stage, us);
      add(
        t.fnSelfUs,
        `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/(node_modules|dist)\//, '')}:${frame.lineNumber + 1}`,
        us,
      );
      for (const s of stackOf(id)) add(t.totalUs, s, us);
    });
  }
  return t;
}

function main(): void {
  const args = process.argv.slice(2);
  const topAt = args.indexOf('--top');
  const top = topAt >= 0 ? Number(args[topAt + 1]) : 0;
  const markdown = args.includes('--markdown');
  const userAt = args.indexOf('--user-us');
  const userUs = userAt >= 0 ? Number(args[userAt + 1]) : 0;
  const files = args.filter(
    (a, i) => !a.startsWith('--') && (topAt < 0 || i !== topAt + 1) && (userAt < 0 || i !== userAt + 1),
  );
  const t = summarise(files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Profile));
  const pct = (us: number) => ((100 * us) / t.busyUs).toFixed(1);
  const rows = [...t.totalUs.keys()]
    .map((stage) => ({ stage, self: t.selfUs.get(stage) ?? 0, total: t.totalUs.get(stage) ?? 0 }))
    .sort((a, b) => b.total - a.total);
  const us = (x: number) => (userUs > 0 ? ((userUs * x) / t.busyUs).toFixed(0) : '');
  console.log(
    `busy ${(t.busyUs / 1e3).toFixed(0)} ms, idle ${(t.idleUs / 1e3).toFixed(0)} ms, ` +
      `system calls (wall, left out) ${(t.syscallUs / 1e3).toFixed(0)} ms, ${files.length} profile(s)`,
  );
  if (markdown) {
    console.log(`| stage | self % | total % |${userUs ? ' self µs | total µs |' : ''}`);
    console.log(`|---|---|---|${userUs ? '---|---|' : ''}`);
    for (const r of rows)
      console.log(
        `| ${r.stage} | ${pct(r.self)} | ${pct(r.total)} |${userUs ? ` ${us(r.self)} | ${us(r.total)} |` : ''}`,
      );
  } else {
    for (const r of rows)
      console.log(
        `${r.stage.padEnd(30)} self ${pct(r.self).padStart(5)} %   total ${pct(r.total).padStart(5)} %` +
          (userUs ? `   ${us(r.self).padStart(5)} / ${us(r.total).padStart(5)} µs` : ''),
      );
  }
  if (top > 0) {
    console.log('\ntop functions by self time:');
    for (const [fn, us] of [...t.fnSelfUs].sort((a, b) => b[1] - a[1]).slice(0, top))
      console.log(`${pct(us).padStart(5)} %  ${fn}`);
  }
}

main();
