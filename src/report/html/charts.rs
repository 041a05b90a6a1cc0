//! The charts of `report.html`, drawn by plotters into SVG strings. Text is
//! left to the browser (plotters' SVG backend writes `<text>` elements with
//! a generic font family), so nothing here reads a font file.
//!
//! Every chart keeps its legend in a panel to the right of the plot, so a
//! legend never covers data.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;

/// Why a chart could not be drawn (plotters' error, boxed).
pub(super) type ChartError = Box<dyn std::error::Error + Send + Sync>;

/// Width of every chart, in SVG pixels.
const WIDTH: u32 = 960;
/// Width of the legend panel on the right.
const LEGEND_WIDTH: u32 = 190;
/// Width of the label area left of a plot with named rows.
const ROW_LABEL_WIDTH: u32 = 170;
/// Font family: the browser's sans-serif, never a file.
const FONT: &str = "sans-serif";
/// plotters divides font sizes by 1.24 in SVG: 15 is a 12px text.
const TEXT: f64 = 15.0;
/// Longest row label shown in full.
const MAX_LABEL_CHARS: usize = 24;

/// Colours: the teacher in near-black, students in the Okabe-Ito palette
/// (distinguishable with the common colour-vision deficiencies).
pub(super) fn model_color(index: usize) -> RGBColor {
    const STUDENTS: [RGBColor; 7] = [
        RGBColor(0, 114, 178),
        RGBColor(230, 159, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(213, 94, 0),
        RGBColor(86, 180, 233),
        RGBColor(150, 130, 20),
    ];
    match index {
        0 => RGBColor(40, 40, 40),
        i => STUDENTS[(i - 1) % STUDENTS.len()],
    }
}

/// The same colour as CSS `rgb(r, g, b)`, for the HTML around the charts.
pub(super) fn css_color(c: RGBColor) -> String {
    format!("rgb({}, {}, {})", c.0, c.1, c.2)
}

/// A row label cut to [`MAX_LABEL_CHARS`] characters.
fn short(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        label.to_string()
    } else {
        let cut: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
        format!("{cut}…")
    }
}

/// A linear axis with the ticks given: plotters' own f64 axis picks its
/// ticks itself, and its key-point wrapper cannot be formatted.
#[derive(Clone)]
struct TickedAxis {
    start: f64,
    end: f64,
    ticks: Vec<f64>,
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.end - self.start;
        let fraction = if span > 0.0 {
            (value - self.start) / span
        } else {
            0.0
        };
        limit.0 + (fraction * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // Bold grid lines and labels at the ticks; no light lines.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.start..self.end
    }
}

/// Rows `0..n` on an axis from `-0.5` to `n - 0.5`, one tick per row.
fn row_axis(n: usize) -> TickedAxis {
    TickedAxis {
        start: -0.5,
        end: n as f64 - 0.5,
        ticks: (0..n).map(|i| i as f64).collect(),
    }
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
pub(super) enum Mark {
    /// A filled dot with a horizontal error bar.
    Dot(RGBColor),
    /// A solid line.
    Line(RGBColor),
    /// A dashed line.
    Dashed(RGBColor),
    /// A triangle.
    Triangle(RGBColor),
    /// A filled box.
    Box(RGBColor),
}

/// Draws an SVG of `size` with `draw` on the plot part, and the legend
/// entries in the panel on the right.
fn svg(
    size: (u32, u32),
    legend: &[(String, Mark)],
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), ChartError>,
) -> Result<String, ChartError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot, side) = root.split_horizontally(size.0 - LEGEND_WIDTH);
        draw(&plot)?;
        draw_legend(&side, legend)?;
        root.present()?;
    }
    Ok(out)
}

fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    entries: &[(String, Mark)],
) -> Result<(), ChartError> {
    let font = (FONT, TEXT).into_font();
    for (i, (label, mark)) in entries.iter().enumerate() {
        let y = 30 + 22 * i as i32;
        let (x0, x1) = (8, 30);
        match *mark {
            Mark::Dot(c) => {
                area.draw(&PathElement::new(vec![(x0, y), (x1, y)], c.stroke_width(2)))?;
                area.draw(&Circle::new(((x0 + x1) / 2, y), 4, c.filled()))?;
            }
            Mark::Line(c) => {
                area.draw(&PathElement::new(vec![(x0, y), (x1, y)], c.stroke_width(2)))?;
            }
            Mark::Dashed(c) => {
                for x in (x0..x1).step_by(8) {
                    area.draw(&PathElement::new(
                        vec![(x, y), (x + 4, y)],
                        c.stroke_width(2),
                    ))?;
                }
            }
            Mark::Triangle(c) => {
                area.draw(&TriangleMarker::new(((x0 + x1) / 2, y), 6, c.filled()))?;
            }
            Mark::Box(c) => {
                area.draw(&Rectangle::new(
                    [(x0, y - 6), (x1, y + 6)],
                    c.mix(0.35).filled(),
                ))?;
                area.draw(&Rectangle::new(
                    [(x0, y - 6), (x1, y + 6)],
                    c.stroke_width(1),
                ))?;
            }
        }
        area.draw(&Text::new(short(label), (x1 + 8, y - 7), font.clone()))?;
    }
    Ok(())
}

/// The smallest of a few round axis ends at or above `x` (at most `cap`).
fn round_up(x: f64, cap: f64) -> f64 {
    [
        0.05, 0.1, 0.2, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0,
    ]
    .into_iter()
    .find(|&end| end >= x)
    .unwrap_or(x)
    .min(cap.max(x))
}

/// One model's accuracy on one row: mean score and interval.
#[derive(Clone, Copy)]
pub(super) struct AccuracyPoint {
    /// Mean score.
    pub accuracy: f64,
    /// Interval lower end.
    pub lower: f64,
    /// Interval upper end.
    pub upper: f64,
}

/// One model across the rows of an accuracy chart.
pub(super) struct AccuracySeries<'a> {
    /// Model name.
    pub name: &'a str,
    /// Colour.
    pub color: RGBColor,
    /// One entry per row (`None` where the model has no statistics).
    pub points: Vec<Option<AccuracyPoint>>,
}

/// A dot plot: one row per category (first row at the top), one dot with
/// its interval per model, models stacked within the row.
pub(super) fn accuracy_chart(
    rows: &[String],
    series: &[AccuracySeries<'_>],
    x_desc: &str,
) -> Result<String, ChartError> {
    let n = rows.len().max(1);
    let m = series.len().max(1);
    let band = 14 * m as u32 + 18;
    let height = (n as u32 * band + 90).max(22 * series.len() as u32 + 60);
    let top = series
        .iter()
        .flat_map(|s| s.points.iter().flatten())
        .map(|p| p.upper)
        .filter(|x| x.is_finite())
        .fold(0.0, f64::max);
    let x_end = round_up(top * 1.05, 1.0);
    let row_y = |row: usize| (n - 1 - row.min(n - 1)) as f64;
    let offset = |j: usize| {
        if m == 1 {
            0.0
        } else {
            0.3 - 0.6 * j as f64 / (m - 1) as f64
        }
    };
    let legend: Vec<(String, Mark)> = series
        .iter()
        .map(|s| (s.name.to_string(), Mark::Dot(s.color)))
        .collect();
    svg((WIDTH, height), &legend, |plot| {
        let mut chart = ChartBuilder::on(plot)
            .margin(14)
            .x_label_area_size(46)
            .y_label_area_size(ROW_LABEL_WIDTH)
            .build_cartesian_2d(0.0..x_end, row_axis(n))?;
        let label = |y: &f64| {
            let k = y.round();
            if k < 0.0 || k >= n as f64 {
                return String::new();
            }
            rows.get(n - 1 - k as usize)
                .map(|s| short(s))
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .y_label_formatter(&label)
            .x_label_formatter(&|x| format!("{:.0}%", x * 100.0))
            .x_desc(x_desc)
            .label_style((FONT, TEXT))
            .axis_desc_style((FONT, TEXT))
            .bold_line_style(RGBColor(225, 225, 225))
            .max_light_lines(0)
            .draw()?;
        for (j, s) in series.iter().enumerate() {
            chart.draw_series(s.points.iter().enumerate().filter_map(|(row, p)| {
                let p = (*p)?;
                let y = row_y(row) + offset(j);
                Some(ErrorBar::new_horizontal(
                    y,
                    p.lower,
                    p.accuracy,
                    p.upper,
                    s.color.filled().stroke_width(2),
                    8,
                ))
            }))?;
        }
        Ok(())
    })
}

/// One student on the retention-versus-cost chart.
pub(super) struct RetentionPoint<'a> {
    /// Student name.
    pub name: &'a str,
    /// Colour.
    pub color: RGBColor,
    /// Dollars per 1,000 tasks.
    pub cost_per_1k: f64,
    /// Retention point estimate.
    pub retention: f64,
    /// Two-sided interval, when known.
    pub interval: Option<(f64, f64)>,
}

/// Everything the retention-versus-cost chart shows for one suite.
pub(super) struct RetentionChart<'a> {
    /// Students with a measurable retention.
    pub points: Vec<RetentionPoint<'a>>,
    /// Indices into `points` on the Pareto front, by cost.
    pub front: Vec<usize>,
    /// The teacher's name and cost per 1,000 tasks (retention 1 by definition).
    pub teacher: Option<(&'a str, f64)>,
    /// Distinct retention thresholds of the suite's gates.
    pub thresholds: Vec<f64>,
}

/// Where costs go on the x axis: log10 of dollars when every cost is above
/// zero and they span more than a factor of 20, else dollars.
struct CostAxis {
    log: bool,
    start: f64,
    end: f64,
}

impl CostAxis {
    fn new(costs: &[f64]) -> Self {
        let finite: Vec<f64> = costs.iter().copied().filter(|c| c.is_finite()).collect();
        let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let max = finite.iter().copied().fold(0.0, f64::max);
        if min > 0.0 && max / min > 20.0 {
            Self {
                log: true,
                start: min.log10().floor(),
                end: max.log10().ceil(),
            }
        } else {
            let end = if max > 0.0 { max * 1.15 } else { 1.0 };
            Self {
                log: false,
                start: 0.0,
                end,
            }
        }
    }

    fn x(&self, cost: f64) -> f64 {
        if self.log {
            cost.max(10f64.powf(self.start)).log10()
        } else {
            cost
        }
    }

    fn keys(&self) -> Vec<f64> {
        if !self.log {
            let step = nice_step((self.end - self.start) / 6.0);
            return (0..=12)
                .map(|i| self.start + step * i as f64)
                .filter(|&x| x <= self.end)
                .collect();
        }
        let mut keys = Vec::new();
        let decades = (self.end - self.start).round() as i32;
        for d in 0..decades.max(0) {
            for m in [1.0f64, 2.0, 5.0] {
                if decades <= 3 || m == 1.0 {
                    keys.push(self.start + d as f64 + m.log10());
                }
            }
        }
        keys.push(self.end);
        keys
    }

    fn label(&self, x: f64) -> String {
        let dollars = if self.log { 10f64.powf(x) } else { x };
        let text = super::dollars(dollars);
        // Ticks are round numbers: "$0.00100" reads better as "$0.001".
        if text.contains('.') && !text.contains('e') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        }
    }
}

/// A 1, 2 or 5 times a power of ten at or above `x`.
fn nice_step(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    let base = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * base)
        .find(|&s| s >= x)
        .unwrap_or(10.0 * base)
}

/// Retention (y) against cost per 1,000 tasks (x): each student with its
/// interval, the Pareto front, the teacher at retention 1, and the gates'
/// threshold lines.
pub(super) fn retention_chart(c: &RetentionChart<'_>) -> Result<String, ChartError> {
    let mut costs: Vec<f64> = c.points.iter().map(|p| p.cost_per_1k).collect();
    costs.extend(c.teacher.map(|t| t.1));
    let axis = CostAxis::new(&costs);
    let y_end = retention_axis_end(c);
    let threshold_color = RGBColor(200, 30, 30);
    let legend = retention_legend(c, threshold_color);
    let height = 440.max(22 * legend.len() as u32 + 60);
    // Points at the ends of the cost range stay off the axis lines.
    let pad = 0.04 * (axis.end - axis.start);
    svg((WIDTH, height), &legend, |plot| {
        let mut chart = ChartBuilder::on(plot)
            .margin(14)
            .x_label_area_size(46)
            .y_label_area_size(64)
            .build_cartesian_2d(
                TickedAxis {
                    start: axis.start - pad,
                    end: axis.end + pad,
                    ticks: axis.keys(),
                },
                0.0..y_end,
            )?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| axis.label(*x))
            .y_label_formatter(&|y| format!("{y:.2}"))
            .x_desc(if axis.log {
                "cost per 1,000 tasks (log scale)"
            } else {
                "cost per 1,000 tasks"
            })
            .y_desc("retention (student / teacher accuracy)")
            .label_style((FONT, TEXT))
            .axis_desc_style((FONT, TEXT))
            .bold_line_style(RGBColor(225, 225, 225))
            .max_light_lines(0)
            .draw()?;
        for t in &c.thresholds {
            chart.draw_series(DashedLineSeries::new(
                [(axis.start - pad, *t), (axis.end + pad, *t)],
                8,
                5,
                threshold_color.stroke_width(2),
            ))?;
        }
        let front: Vec<(f64, f64)> = c
            .front
            .iter()
            .filter_map(|&i| c.points.get(i))
            .map(|p| (axis.x(p.cost_per_1k), p.retention))
            .collect();
        // The front's line, as small boxes along it, for the labels to avoid.
        let mut marks: Vec<Rect> = Vec::new();
        let pixels: Vec<(i32, i32)> = front.iter().map(|p| chart.backend_coord(p)).collect();
        for w in pixels.windows(2) {
            marks.extend(along(w[0], w[1]));
        }
        if front.len() > 1 {
            chart.draw_series(LineSeries::new(front, RGBColor(90, 90, 90).stroke_width(2)))?;
        }
        // Every mark a label must keep clear of, in pixels: the error bars
        // (with their caps and dots), the teacher's triangle and the
        // threshold lines; then the labels, each placed beside its mark.
        let mut labels: Vec<(String, (i32, i32))> = Vec::new();
        for p in &c.points {
            let x = axis.x(p.cost_per_1k);
            let (lower, upper) = p.interval.unwrap_or((p.retention, p.retention));
            let (lower, upper) = (lower.clamp(0.0, y_end), upper.clamp(0.0, y_end));
            chart.draw_series(std::iter::once(ErrorBar::new_vertical(
                x,
                lower,
                p.retention,
                upper,
                p.color.filled().stroke_width(2),
                10,
            )))?;
            let (top, bottom) = (
                chart.backend_coord(&(x, upper)),
                chart.backend_coord(&(x, lower)),
            );
            marks.push(Rect::around(top.0, top.1, bottom.1, 7));
            labels.push((short(p.name), chart.backend_coord(&(x, p.retention))));
        }
        if let Some((name, cost)) = c.teacher {
            let at = (axis.x(cost), 1.0);
            chart.draw_series(std::iter::once(
                EmptyElement::at(at) + TriangleMarker::new((0, 0), 7, model_color(0).filled()),
            ))?;
            let (x, y) = chart.backend_coord(&at);
            marks.push(Rect::around(x, y - 8, y + 8, 9));
            labels.push((short(name), (x, y)));
        }
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        for t in &c.thresholds {
            let y = chart.backend_coord(&(axis.start, *t)).1;
            marks.push(Rect {
                x0: xs.start,
                y0: y - 1,
                x1: xs.end,
                y1: y + 1,
            });
        }
        let area = Rect {
            x0: xs.start,
            y0: ys.start,
            x1: xs.end,
            y1: ys.end,
        };
        let font = (FONT, TEXT).into_font();
        for (text, at) in place_labels(&labels, &marks, &area) {
            plot.draw(&Text::new(text, at, font.clone()))?;
        }
        Ok(())
    })
}

/// The top of the retention chart's axis: above every point, threshold and
/// the teacher's 1.0, and above interval ends up to twice that.
fn retention_axis_end(c: &RetentionChart<'_>) -> f64 {
    let points_top = c
        .points
        .iter()
        .map(|p| p.retention)
        .chain(c.thresholds.iter().copied())
        .chain(std::iter::once(1.0))
        .filter(|y| y.is_finite())
        .fold(0.0, f64::max);
    // Interval ends count up to twice that: an unbounded interval (its
    // upper end reported as `f64::MAX`) or a very wide one runs off the
    // top of the chart instead of squashing it (or, unbounded, making the
    // axis infinite).
    let y_top = c
        .points
        .iter()
        .filter_map(|p| p.interval.map(|i| i.1))
        .filter(|y| y.is_finite())
        .map(|y| y.min(2.0 * points_top))
        .fold(points_top, f64::max);
    round_up(y_top * 1.06, 5.0)
}

/// The retention chart's legend: each student, the teacher, the Pareto
/// front (when it is a line) and each threshold.
fn retention_legend(c: &RetentionChart<'_>, threshold_color: RGBColor) -> Vec<(String, Mark)> {
    let mut legend: Vec<(String, Mark)> = c
        .points
        .iter()
        .map(|p| (p.name.to_string(), Mark::Dot(p.color)))
        .collect();
    if let Some((name, _)) = c.teacher {
        legend.push((format!("{name} (teacher)"), Mark::Triangle(model_color(0))));
    }
    if c.front.len() > 1 {
        legend.push(("Pareto front".into(), Mark::Line(RGBColor(90, 90, 90))));
    }
    for t in &c.thresholds {
        legend.push((
            format!("threshold {}", super::ratio(*t)),
            Mark::Dashed(threshold_color),
        ));
    }
    legend
}

/// A rectangle in pixels (`x0 <= x1`, `y0 <= y1`, y downwards).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    x0: i32,
    y0: i32,
    x1: i32,
    y1: i32,
}

impl Rect {
    /// The box of a vertical mark at `x` from `top` to `bottom`, `half`
    /// pixels to each side.
    fn around(x: i32, top: i32, bottom: i32, half: i32) -> Self {
        Self {
            x0: x - half,
            y0: top.min(bottom) - half,
            x1: x + half,
            y1: top.max(bottom) + half,
        }
    }

    fn overlaps(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }

    fn inside(&self, o: &Rect) -> bool {
        self.x0 >= o.x0 && self.x1 <= o.x1 && self.y0 >= o.y0 && self.y1 <= o.y1
    }
}

/// Small boxes every few pixels along the segment from `a` to `b`.
fn along(a: (i32, i32), b: (i32, i32)) -> Vec<Rect> {
    let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()) / 3).max(1);
    (0..=steps)
        .map(|k| {
            let x = a.0 + (b.0 - a.0) * k / steps;
            let y = a.1 + (b.1 - a.1) * k / steps;
            Rect {
                x0: x - 2,
                y0: y - 2,
                x1: x + 2,
                y1: y + 2,
            }
        })
        .collect()
}

/// Pixels a label character takes at most: [`TEXT`] is a 12px sans-serif
/// font, whose widest common glyphs are about 0.65 em.
const CHAR_WIDTH: i32 = 8;
/// Pixels of a label's line.
const LINE_HEIGHT: i32 = 14;

/// The box of `text` drawn with its top-left corner at `at`.
fn text_box(text: &str, at: (i32, i32)) -> Rect {
    let width = CHAR_WIDTH * text.chars().count() as i32;
    Rect {
        x0: at.0,
        y0: at.1,
        x1: at.0 + width,
        y1: at.1 + LINE_HEIGHT,
    }
}

/// Where each label goes (its text's top-left corner): beside its point
/// (`(text, point)` in pixels), at the first of a few positions (right,
/// left, above and below on either side) that stays inside `area` and
/// clear of every mark and of the labels placed before it; when none is
/// clear, the position with the fewest collisions.
fn place_labels(
    labels: &[(String, (i32, i32))],
    marks: &[Rect],
    area: &Rect,
) -> Vec<(String, (i32, i32))> {
    let mut placed: Vec<Rect> = Vec::new();
    let mut out = Vec::with_capacity(labels.len());
    for (text, (x, y)) in labels {
        let width = CHAR_WIDTH * text.chars().count() as i32;
        let half = LINE_HEIGHT / 2;
        let candidates = [
            (x + 11, y - half),
            (x - 11 - width, y - half),
            (x + 6, y - LINE_HEIGHT - 10),
            (x - 6 - width, y - LINE_HEIGHT - 10),
            (x + 6, y + 10),
            (x - 6 - width, y + 10),
            (x - width / 2, y - LINE_HEIGHT - 24),
            (x - width / 2, y + 24),
        ];
        // Leaving the plot is worst, then covering another label (text on
        // text cannot be read), then covering a mark.
        let collisions = |at: (i32, i32)| {
            let b = text_box(text, at);
            let outside = usize::from(!b.inside(area)) * 1000;
            outside
                + marks.iter().filter(|m| m.overlaps(&b)).count()
                + 10 * placed.iter().filter(|p| p.overlaps(&b)).count()
        };
        let best = candidates
            .iter()
            .copied()
            .min_by_key(|&at| collisions(at))
            .unwrap_or((x + 11, y - half));
        placed.push(text_box(text, best));
        out.push((text.clone(), best));
    }
    out
}

/// Most dots the latency chart draws for one model. Beyond this the strip
/// is solid anyway, and a dot per item made `report.html` grow by about
/// 100 bytes an item (tens of MB for a 100,000-item run).
pub(super) const MAX_STRIP_POINTS: usize = 2_000;

/// The latencies drawn as dots: all of them up to [`MAX_STRIP_POINTS`],
/// else that many order statistics evenly spaced in rank (the minimum and
/// the maximum always among them), so the strip keeps the distribution's
/// shape.
fn strip_points(sorted_ms: &[f64]) -> impl Iterator<Item = f64> + '_ {
    let n = sorted_ms.len();
    let shown = n.min(MAX_STRIP_POINTS);
    (0..shown).map(move |k| {
        let rank = if shown < n {
            // Nearest rank to k/(shown-1) of the way from first to last.
            (k * (n - 1) + (shown - 1) / 2) / (shown - 1)
        } else {
            k
        };
        sorted_ms[rank]
    })
}

/// One model's latencies for the distribution chart.
pub(super) struct LatencyRow<'a> {
    /// Model name.
    pub name: &'a str,
    /// Colour.
    pub color: RGBColor,
    /// Every item's latency in milliseconds, sorted ascending.
    pub sorted_ms: Vec<f64>,
    /// First and third quartiles (the box).
    pub quartiles: (f64, f64),
    /// p50, p95 and p99 as the summary states them.
    pub p50_p95_p99: (f64, f64, f64),
}

/// Latency per model on a log axis: every item as a dot (spread vertically
/// so they do not hide each other), the interquartile box, and ticks at
/// p50, p95 and p99.
pub(super) fn latency_chart(rows: &[LatencyRow<'_>]) -> Result<String, ChartError> {
    let n = rows.len().max(1);
    let all = rows.iter().flat_map(|r| r.sorted_ms.iter().copied());
    let (min, max) = all
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let (start, end) = if min.is_finite() && max > 0.0 {
        (
            min.log10().floor(),
            max.log10().ceil().max(min.log10().floor() + 1.0),
        )
    } else {
        (0.0, 1.0)
    };
    let x = |ms: f64| ms.max(10f64.powf(start)).log10();
    let decades = (end - start).round().max(1.0) as i32;
    let keys: Vec<f64> = (0..=decades)
        .flat_map(|d| {
            [1.0f64, 2.0, 5.0]
                .into_iter()
                .filter(move |&m| m == 1.0 || decades <= 3)
                .map(move |m| start + d as f64 + m.log10())
        })
        .filter(|&k| k <= end + 1e-9)
        .collect();
    let marks = [
        ("p50", RGBColor(20, 20, 20)),
        ("p95", RGBColor(230, 120, 0)),
        ("p99", RGBColor(200, 30, 30)),
    ];
    let mut legend: Vec<(String, Mark)> = rows
        .iter()
        .map(|r| (r.name.to_string(), Mark::Box(r.color)))
        .collect();
    legend.extend(
        marks
            .iter()
            .map(|(name, c)| (name.to_string(), Mark::Line(*c))),
    );
    let height = (n as u32 * 64 + 90).max(22 * legend.len() as u32 + 60);
    svg((WIDTH, height), &legend, |plot| {
        let mut chart = ChartBuilder::on(plot)
            .margin(14)
            .x_label_area_size(46)
            .y_label_area_size(ROW_LABEL_WIDTH)
            .build_cartesian_2d(
                TickedAxis {
                    start,
                    end,
                    ticks: keys,
                },
                row_axis(n),
            )?;
        let label = |y: &f64| {
            let k = y.round();
            if k < 0.0 || k >= n as f64 {
                return String::new();
            }
            rows.get(n - 1 - k as usize)
                .map(|r| short(r.name))
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .y_label_formatter(&label)
            .x_label_formatter(&|v| super::millis_short(10f64.powf(*v)))
            .x_desc("latency per item (log scale)")
            .label_style((FONT, TEXT))
            .axis_desc_style((FONT, TEXT))
            .bold_line_style(RGBColor(225, 225, 225))
            .max_light_lines(0)
            .draw()?;
        for (i, r) in rows.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let (q1, q3) = r.quartiles;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x(q1), y - 0.22), (x(q3), y + 0.22)],
                r.color.mix(0.18).filled(),
            )))?;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x(q1), y - 0.22), (x(q3), y + 0.22)],
                r.color.stroke_width(1),
            )))?;
            // Spread by the golden ratio: deterministic, evenly filled.
            chart.draw_series(strip_points(&r.sorted_ms).enumerate().map(|(k, ms)| {
                let jitter = ((k as f64 * 0.618_033_988_75).fract() - 0.5) * 0.5;
                Circle::new((x(ms), y + jitter), 2, r.color.mix(0.55).filled())
            }))?;
            let (p50, p95, p99) = r.p50_p95_p99;
            for ((_, color), value) in marks.iter().zip([p50, p95, p99]) {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(x(value), y - 0.36), (x(value), y + 0.36)],
                    color.stroke_width(3),
                )))?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latency_strip_draws_at_most_max_points_spanning_the_distribution() {
        let few: Vec<f64> = (0..10).map(f64::from).collect();
        assert_eq!(strip_points(&few).collect::<Vec<_>>(), few);
        let many: Vec<f64> = (0..100_000).map(f64::from).collect();
        let shown: Vec<f64> = strip_points(&many).collect();
        assert_eq!(shown.len(), MAX_STRIP_POINTS);
        assert_eq!((shown[0], shown[shown.len() - 1]), (0.0, 99_999.0));
        assert!(
            shown.windows(2).all(|w| w[0] < w[1]),
            "distinct ranks, in order"
        );
        // Evenly spaced: the median dot is the median item, within one step.
        let step = 99_999.0 / (MAX_STRIP_POINTS - 1) as f64;
        assert!((shown[MAX_STRIP_POINTS / 2] - 50_000.0).abs() <= step);
    }

    /// An unbounded interval (the score or Fieller interval reports its
    /// upper end as `f64::MAX`) keeps the axis finite: the chart renders,
    /// its axis up to twice the largest point rounded up (2 * 1.06 to 3.0;
    /// it hung in plotters' tick computation on an infinite axis).
    #[test]
    fn an_unbounded_interval_keeps_the_axis_finite() {
        let chart = RetentionChart {
            points: vec![RetentionPoint {
                name: "copycat",
                color: model_color(1),
                cost_per_1k: 0.0,
                retention: 1.0,
                interval: Some((0.0, f64::MAX)),
            }],
            front: vec![0],
            teacher: Some(("teacher", 0.0)),
            thresholds: vec![0.95],
        };
        let svg = retention_chart(&chart).unwrap();
        assert!(
            svg.contains("\n3.00\n") && !svg.contains("\n3.50\n"),
            "{svg}"
        );
    }

    /// A student at the teacher's own point (same cost, retention 1): the
    /// second label may cover the first one's bar, not its text (the two
    /// names were drawn on top of each other).
    #[test]
    fn labels_of_coinciding_points_do_not_cover_each_other() {
        let area = Rect {
            x0: 0,
            y0: 0,
            x1: 400,
            y1: 300,
        };
        let (x, y) = (5, 150);
        let marks = [
            Rect::around(x, 60, 240, 7),
            Rect::around(x, y - 8, y + 8, 9),
        ];
        let labels = [
            ("copycat".to_string(), (x, y)),
            ("teacher".to_string(), (x, y)),
        ];
        let placed = place_labels(&labels, &marks, &area);
        let (a, b) = (
            text_box(&placed[0].0, placed[0].1),
            text_box(&placed[1].0, placed[1].1),
        );
        assert!(!a.overlaps(&b), "{a:?} {b:?}");
        assert!(a.inside(&area) && b.inside(&area), "{a:?} {b:?}");
    }

    #[test]
    fn labels_keep_clear_of_bars_other_labels_and_the_edge() {
        let area = Rect {
            x0: 0,
            y0: 0,
            x1: 400,
            y1: 300,
        };
        // A bar at x = 390: the label cannot go right (it would leave the
        // plot for the legend), so it goes left, clear of the bar.
        let bar = Rect::around(390, 100, 200, 7);
        let placed = place_labels(&[("teacher".into(), (390, 150))], &[bar], &area);
        let b = text_box(&placed[0].0, placed[0].1);
        assert!(b.inside(&area) && !b.overlaps(&bar), "{b:?}");
        assert!(b.x1 <= 390, "{b:?}");
        // Two points side by side: the second label avoids the first one
        // and both bars.
        let bars = [Rect::around(100, 50, 250, 7), Rect::around(150, 50, 250, 7)];
        let placed = place_labels(
            &[("s05m".into(), (100, 150)), ("s2m".into(), (150, 150))],
            &bars,
            &area,
        );
        let boxes: Vec<Rect> = placed.iter().map(|(t, at)| text_box(t, *at)).collect();
        assert!(!boxes[0].overlaps(&boxes[1]), "{boxes:?}");
        for b in &boxes {
            assert!(
                b.inside(&area) && bars.iter().all(|m| !m.overlaps(b)),
                "{b:?}"
            );
        }
    }

    #[test]
    fn axis_ends_are_round() {
        assert_eq!(round_up(0.18, 1.0), 0.2);
        assert_eq!(round_up(0.9, 1.0), 1.0);
        assert_eq!(round_up(1.1, 1.0), 1.1, "never cuts data off");
        assert!((nice_step(0.013) - 0.02).abs() < 1e-12);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(0.0), 1.0);
    }

    #[test]
    fn costs_spanning_decades_go_on_a_log_axis() {
        let axis = CostAxis::new(&[0.001, 0.0625]);
        assert!(axis.log);
        assert_eq!((axis.start, axis.end), (-3.0, -1.0));
        assert!((axis.x(0.01) + 2.0).abs() < 1e-12);
        assert_eq!(axis.label(-3.0), "$0.001");
        assert_eq!(axis.label(0.5f64.log10() - 1.0), "$0.05");
        let linear = CostAxis::new(&[0.0, 0.05]);
        assert!(!linear.log);
        assert_eq!(linear.x(0.02), 0.02);
    }
}
