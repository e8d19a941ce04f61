// A dependency-free SVG bar chart of the HTTP benchmark (req/s per row, grouped by framework and route).
import type { Row } from "./report.js";

const COLORS: Record<Row["role"], string> = {
  bare: "#9aa0a6",
  peer: "#e8710a",
  ours: "#1a73e8",
  limit: "#188038",
};

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function renderChart(rows: Row[]): string {
  const groups: Array<{ title: string; rows: Row[] }> = [];
  for (const f of ["express", "fastify"] as const)
    for (const route of ["a", "b"] as const) {
      const rs = rows.filter((r) => r.framework === f && r.route === route && Number.isFinite(r.rps));
      if (rs.length)
        groups.push({
          title: `${f === "express" ? "Express" : "Fastify"} — route ${route.toUpperCase()} (${route === "a" ? "read + increment a session counter" : "no session use"})`,
          rows: rs,
        });
    }
  const max = Math.max(1, ...rows.filter((r) => Number.isFinite(r.rps)).map((r) => r.rps));
  const labelW = 330;
  const barW = 420;
  const bar = 18;
  const gap = 6;
  let y = 40;
  const parts: string[] = [];
  for (const g of groups) {
    parts.push(`<text x="10" y="${y}" font-weight="bold">${esc(g.title)}</text>`);
    y += 10;
    for (const r of g.rows) {
      const w = Math.max(1, (r.rps / max) * barW);
      parts.push(
        `<text x="${labelW - 8}" y="${y + bar - 5}" text-anchor="end">${esc(r.name)}</text>`,
        `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${bar}" fill="${COLORS[r.role]}"/>`,
        `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + bar - 5}">${Math.round(r.rps).toLocaleString("en-US")} req/s · p99 ${r.p99} ms</text>`,
      );
      y += bar + gap;
    }
    y += 18;
  }
  const legend = (Object.keys(COLORS) as Row["role"][])
    .map(
      (k, i) =>
        `<rect x="${10 + i * 110}" y="${y}" width="12" height="12" fill="${COLORS[k]}"/><text x="${26 + i * 110}" y="${y + 11}">${k}</text>`,
    )
    .join("");
  y += 30;
  const width = labelW + barW + 200;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="system-ui, sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="20" font-size="15" font-weight="bold">kvsession HTTP benchmark: requests per second (median), higher is better</text>
${parts.join("\n")}
${legend}
</svg>
`;
}
