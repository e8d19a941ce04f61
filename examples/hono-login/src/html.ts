/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** A tagged template whose interpolations are escaped unless they are `raw(...)` fragments. */
export interface Raw {
  readonly __html: string;
}
export const raw = (html: string): Raw => ({ __html: html });

export function html(strings: TemplateStringsArray, ...values: unknown[]): Raw {
  let out = strings[0]!;
  values.forEach((v, i) => {
    const part = Array.isArray(v) ? v : [v];
    for (const p of part) {
      if (p === undefined || p === null || p === false) continue;
      out += typeof p === "object" && "__html" in (p as object) ? (p as Raw).__html : escapeHtml(p);
    }
    out += strings[i + 1]!;
  });
  return raw(out);
}

export function page(title: string, body: Raw): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
  table { border-collapse: collapse; width: 100%; } td, th { border-bottom: 1px solid #ddd; padding: .4rem; text-align: left; }
  .flash { background: #eef6ee; padding: .5rem 1rem; } .error { background: #fbeaea; }
  form.inline { display: inline; } code { background: #f4f4f4; padding: 0 .2rem; }
</style>
</head>
<body>
<h1>${title}</h1>
${body}
</body>
</html>
`.__html;
}
