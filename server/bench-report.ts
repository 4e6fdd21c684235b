// `serve bench --html FILE`: one self-contained page (no network needed to open it) with req/s
// by worker count and the latency percentiles as inline SVG charts, the table, and the settings.
// A small inline script marks the page once the browser has laid the charts out, so a headless
// browser can tell that they really render (test/bench-command.test.ts).
import type { BenchRun } from './bench.js';

const escape = (text: string): string => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

interface Bar {
  readonly label: string;
  readonly value: number;
}

/** A bar chart as inline SVG; bars carry class "bar" so the page can count what rendered. */
function barChart(title: string, unit: string, bars: readonly Bar[]): string {
  const width = 560;
  const height = 240;
  const top = 46;
  const bottom = 40;
  const max = Math.max(1, ...bars.map((bar) => bar.value));
  const slot = (width - 40) / Math.max(1, bars.length);
  const body = bars
    .map((bar, i) => {
      const h = ((height - top - bottom) * bar.value) / max;
      const x = 40 + i * slot + slot * 0.15;
      const y = height - bottom - h;
      return (
        `<rect class="bar" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(slot * 0.7).toFixed(1)}" height="${Math.max(1, h).toFixed(1)}" fill="#2f6fb0"><title>${escape(`${bar.label}: ${bar.value} ${unit}`)}</title></rect>` +
        `<text x="${(x + slot * 0.35).toFixed(1)}" y="${height - bottom + 16}" text-anchor="middle" font-size="${bars.length > 4 ? 10 : 12}">${escape(bar.label)}</text>` +
        `<text x="${(x + slot * 0.35).toFixed(1)}" y="${(y - 4).toFixed(1)}" text-anchor="middle" font-size="11">${escape(bar.value.toLocaleString('en'))}</text>`
      );
    })
    .join('');
  return `<figure><svg class="chart" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escape(title)}">
<text x="10" y="18" font-size="14" font-weight="bold">${escape(title)}</text>
<line x1="40" y1="${height - bottom}" x2="${width}" y2="${height - bottom}" stroke="#999"/>${body}</svg></figure>`;
}

export function htmlReport(runs: readonly BenchRun[], settings: Record<string, unknown>, tableMarkdown: string): string {
  const label = (run: BenchRun): string => (run.workers === null ? 'server' : `${run.workers} worker${run.workers > 1 ? 's' : ''}`);
  const throughput = barChart('Requests per second', 'req/s', runs.map((run) => ({ label: label(run), value: Math.round(run.requestsPerSec) })));
  const latency = barChart(
    'Latency percentiles (ms)',
    'ms',
    runs.flatMap((run) => (['p50', 'p90', 'p99'] as const).map((p) => ({ label: `${label(run)} ${p}`, value: run.latency[p] }))),
  );
  const rows = tableMarkdown
    .split('\n')
    .filter((line, i) => i !== 1)
    .map((line, i) => {
      const cells = line.split('|').slice(1, -1).map((cell) => escape(cell.trim()));
      const tag = i === 0 ? 'th' : 'td';
      return `<tr>${cells.map((cell) => `<${tag}>${cell}</${tag}>`).join('')}</tr>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>serve bench</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}figure{margin:1em 0}pre{background:#f4f4f4;padding:1em}</style>
</head><body>
<h1>serve bench</h1>
${throughput}
${latency}
<table>
${rows}
</table>
<h2>Settings</h2>
<pre>${escape(JSON.stringify(settings, null, 2))}</pre>
<script>
// Counts the bars the browser actually laid out (non-zero size) and says so on the body.
addEventListener('load', () => {
  const drawn = [...document.querySelectorAll('svg.chart')].map((svg) => [...svg.querySelectorAll('rect.bar')].filter((bar) => bar.getBoundingClientRect().height > 0).length);
  document.body.dataset.rendered = drawn.join(',');
});
</script>
</body></html>
`;
}
