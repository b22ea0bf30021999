// Charts for run reports: ECharts option objects rendered on the server to SVG strings (no browser, no canvas), and
// SVG → PNG through resvg. The same option objects would drive the app's interactive charts.
import { Resvg } from '@resvg/resvg-js';
import * as echarts from 'echarts';

export type Point = [number, number];

export interface Series {
  name: string;
  points: Point[];
}

export interface Interval {
  label: string;
  value: number;
  lo: number;
  hi: number;
}

const FONT = 'DejaVu Sans, Arial, sans-serif';
// One colour per bar of the widest chart (every model of the demo), so no two bars share one.
const COLORS = ['#5470c6', '#ee6666', '#91cc75', '#fac858', '#73c0de', '#9a60b4', '#3ba272', '#fc8452', '#ea7ccc'];

/** Renders an ECharts option to a standalone SVG string. */
export function renderSvg(option: echarts.EChartsOption, width = 640, height = 360): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  try {
    chart.setOption({ animation: false, color: COLORS, textStyle: { fontFamily: FONT }, ...option });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

/** A PNG of an SVG on a white background. */
export function svgToPng(svg: string): Buffer {
  return new Resvg(svg, { background: 'white', font: { defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
}

/** Bars with 95 % interval whiskers and a dashed reference line (e.g. 50 %: as good as the baseline). */
export function intervalBarChart(
  title: string,
  bars: Interval[],
  opts: { yName: string; reference?: number; percent?: boolean } = { yName: '' },
): string {
  const fmt = (v: number) => (opts.percent ? `${Math.round(v * 100)} %` : v.toFixed(3));
  const width = 640;
  const grid = { left: 60, right: 20, top: 60, bottom: 56 };
  return renderSvg(
    {
      title: { text: title, left: 'center', textStyle: { fontSize: 14 } },
      grid,
      // Every bar named (ECharts would drop labels that collide), long names wrapped within the bar's slot.
      xAxis: {
        type: 'category',
        data: bars.map((b) => b.label),
        axisLabel: { interval: 0, width: (width - grid.left - grid.right) / bars.length - 4, overflow: 'break' },
      },
      yAxis: {
        type: 'value',
        name: opts.yName,
        min: opts.percent ? 0 : undefined,
        max: opts.percent ? 1 : undefined,
        axisLabel: { formatter: (v: number) => fmt(v) },
      },
      series: [
        {
          type: 'bar',
          barWidth: '50%',
          data: bars.map((b, i) => ({ value: b.value, itemStyle: { color: COLORS[i % COLORS.length] } })),
          label: { show: true, position: 'insideBottom', formatter: (p: { value: unknown }) => fmt(Number(p.value)) },
          markLine:
            opts.reference === undefined
              ? undefined
              : {
                  silent: true,
                  symbol: 'none',
                  lineStyle: { type: 'dashed', color: '#555' },
                  // Inside the plot, in the axis' format: a label past the right end would be clipped.
                  label: { position: 'insideEndTop', formatter: () => fmt(opts.reference!) },
                  data: [{ yAxis: opts.reference }],
                },
        },
        {
          type: 'custom',
          data: bars.map((b, i) => [i, b.lo, b.hi]),
          z: 10,
          renderItem: (_params, api) => {
            const lo = api.coord([api.value(0), api.value(1)]);
            const hi = api.coord([api.value(0), api.value(2)]);
            const cap = 8;
            const line = (x1: number, y1: number, x2: number, y2: number) => ({
              type: 'line' as const,
              shape: { x1, y1, x2, y2 },
              style: { stroke: '#222', lineWidth: 1.5 },
            });
            return {
              type: 'group',
              children: [
                line(lo[0], lo[1], hi[0], hi[1]),
                line(lo[0] - cap, lo[1], lo[0] + cap, lo[1]),
                line(hi[0] - cap, hi[1], hi[0] + cap, hi[1]),
              ],
            };
          },
        },
      ],
    },
    width,
  );
}

/** Lines over a numeric x axis, one per series (empty series are left out). */
export function lineChart(
  title: string,
  series: Series[],
  opts: { xName: string; yName: string; scatter?: boolean } = { xName: 'step', yName: 'loss' },
): string {
  const shown = series.filter((s) => s.points.length > 0);
  return renderSvg(
    {
      title: { text: title, left: 'center', textStyle: { fontSize: 14 } },
      legend: { top: 30, data: shown.map((s) => s.name) },
      grid: { left: 60, right: 30, top: 75, bottom: 45 },
      xAxis: { type: 'value', name: opts.xName, nameLocation: 'middle', nameGap: 26, scale: true },
      yAxis: { type: 'value', name: opts.yName, scale: true },
      series: shown.map((s) => ({
        name: s.name,
        type: opts.scatter ? 'scatter' : 'line',
        data: s.points,
        showSymbol: opts.scatter || s.points.length < 30,
        symbolSize: 6,
      })),
    },
    480,
    300,
  );
}
