/**
 * The README's `curl` examples as requests: a small shell-word reader for exactly the forms the
 * README uses (-XMETHOD, -H, -d, quotes, backslash continuations, `$PB`, comments).
 */
export interface CurlRequest {
  /** The command as written (for failure messages). */
  source: string;
  method: string;
  /** Path and query, placeholders such as <webhook_id> left in. */
  url: string;
  headers: Record<string, string>;
  /** The shell variable holding the Authorization header (`ADMIN`, `TENANT`), if any. */
  key?: string;
  body?: string;
}

/** Shell words of one command line; quotes group, `#` outside quotes starts a comment. */
function words(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | null = null;
  let any = false;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = null;
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      any = true;
    } else if (ch === '#' && !any && cur === '') break;
    else if (/\s/.test(ch)) {
      if (any || cur) out.push(cur);
      cur = '';
      any = false;
    } else {
      cur += ch;
      any = true;
    }
  }
  if (any || cur) out.push(cur);
  return out;
}

/** Splits a shell block into commands: newlines end a command unless escaped or inside quotes. */
function commands(block: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | null = null;
  for (let i = 0; i < block.length; i++) {
    const ch = block[i]!;
    if (!quote && ch === '\\' && block[i + 1] === '\n') {
      i++;
      cur += ' ';
      continue;
    }
    if (quote) {
      if (ch === quote) quote = null;
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === '#' && /(^|\s)$/.test(cur)) {
      // a comment: skip to the end of the line
      while (i + 1 < block.length && block[i + 1] !== '\n') i++;
      continue;
    } else if (ch === '\n') {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
      continue;
    }
    cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** Every `curl` command in the README's sh blocks that targets `$PB`. */
export function readmeCurls(readme: string): CurlRequest[] {
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const out: CurlRequest[] = [];
  for (const source of blocks.flatMap(commands)) {
    const w = words(source);
    if (w[0] !== 'curl') continue;
    const req: CurlRequest = { source, method: 'GET', url: '', headers: {} };
    for (let i = 1; i < w.length; i++) {
      const a = w[i]!;
      if (a.startsWith('-X')) req.method = a.length > 2 ? a.slice(2) : w[++i]!;
      else if (a === '-H') {
        const h = w[++i]!;
        if (h.startsWith('$')) {
          req.key = h.slice(1);
          continue;
        }
        const colon = h.indexOf(':');
        req.headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
      } else if (a === '-d') req.body = w[++i]!;
      else if (a.startsWith('$PB')) req.url = a.slice(3);
      else if (a !== '-s') throw new Error(`README curl: unknown option ${a} in: ${source}`);
    }
    if (req.body !== undefined && req.method === 'GET') req.method = 'POST';
    if (req.url) out.push(req);
  }
  return out;
}
