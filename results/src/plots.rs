//! SVG plots (plotters): latency, throughput and latency quantiles over
//! time with every fault window shaded and labelled, a leader timeline, and
//! the campaign's comparison of timeout settings per fault kind.

use std::path::Path;

use faultline_checker::history::{Op, OpKind, Outcome};
use faultline_checker::History;
use plotters::prelude::*;

use crate::analysis::{FaultWindow, RunResults};

type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

/// A quantile's name, colour and points.
type QuantileLine = (&'static str, RGBColor, Vec<(f64, f64)>);

const OK: RGBColor = RGBColor(46, 139, 87);
const FAIL: RGBColor = RGBColor(230, 145, 0);
const INFO: RGBColor = RGBColor(200, 30, 30);
const SHADE: RGBColor = RGBColor(120, 120, 200);
/// Most points drawn per outcome in the latency scatter.
const MAX_POINTS: usize = 20_000;

/// Colours for a series (settings in a campaign, nodes in a timeline):
/// sixteen that stay apart (a campaign like Figure 16 compares ten
/// settings; a palette that repeats after eight drew two of them alike).
/// A setting keeps its colour in every chart of a page: the colour goes
/// by its place among the campaign's settings.
pub const PALETTE: [RGBColor; 16] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 128),
    RGBColor(128, 0, 0),
    RGBColor(0, 100, 0),
    RGBColor(255, 215, 0),
    RGBColor(0, 0, 0),
    RGBColor(255, 105, 180),
];

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn outcome_color(o: Outcome) -> RGBColor {
    match o {
        Outcome::Ok => OK,
        Outcome::Fail => FAIL,
        Outcome::Info => INFO,
    }
}

/// The series legend, in the same place and style on every plot.
fn legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>) -> DrawResult<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: plotters::coord::CoordTranslate,
{
    legend_at(chart, SeriesLabelPosition::UpperRight)
}

/// The series legend in the usual style, at `position`.
fn legend_at<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Shade every fault window between `y0` and `y1` and label it.
fn shade<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, impl Ranged<ValueType = f64>>,
    >,
    windows: &[FaultWindow],
    y0: f64,
    y1: f64,
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    for w in windows {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(secs(w.start), y0), (secs(w.end), y1)],
            SHADE.mix(0.15).filled(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            w.name.clone(),
            (secs(w.start), y1),
            ("sans-serif", 11).into_font().color(&SHADE.mix(0.9)),
        )))?;
    }
    Ok(())
}

fn x_max(h: &History, end_s: f64) -> f64 {
    let last = h
        .ops
        .iter()
        .filter_map(|o| o.ret_time.or(Some(o.call_time)))
        .max()
        .unwrap_or(0);
    secs(last).max(end_s).max(0.001) * 1.02
}

fn latency_ms(o: &Op) -> Option<f64> {
    o.ret_time
        .map(|r| (r.saturating_sub(o.call_time) as f64 / 1e6).max(0.01))
}

/// Every operation's latency against its start, by outcome (colour) and type (shape).
pub fn latency(path: &Path, h: &History, windows: &[FaultWindow], end_s: f64) -> DrawResult<()> {
    let xmax = x_max(h, end_s);
    let ymax = h.ops.iter().filter_map(latency_ms).fold(1.0f64, f64::max) * 2.0;
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Latency of every operation (log scale)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..xmax, (0.01f64..ymax).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("time since start (s)")
        .y_desc("latency (ms)")
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    shade(&mut chart, windows, 0.01, ymax)?;
    for (outcome, label) in [
        (Outcome::Ok, "ok"),
        (Outcome::Fail, "fail"),
        (Outcome::Info, "info"),
    ] {
        let color = outcome_color(outcome);
        let all: Vec<(f64, f64, OpKind)> = h
            .ops
            .iter()
            .filter(|o| o.outcome == outcome)
            .filter_map(|o| latency_ms(o).map(|l| (secs(o.call_time), l, o.kind)))
            .collect();
        // A browser chokes on millions of points: draw at most MAX_POINTS
        // per outcome, every k-th one, and say so in the legend.
        let k = all.len().div_ceil(MAX_POINTS).max(1);
        let pts: Vec<(f64, f64, OpKind)> = all.iter().step_by(k).copied().collect();
        let label = if k > 1 {
            format!("{label} ({}, 1 in {k} drawn)", all.len())
        } else {
            format!("{label} ({})", all.len())
        };
        chart
            .draw_series(pts.iter().map(
                |&(x, y, k)| -> DynElement<'static, SVGBackend, (f64, f64)> {
                    match k {
                        OpKind::Read => Circle::new((x, y), 2, color.mix(0.6).filled()).into_dyn(),
                        OpKind::Write => {
                            TriangleMarker::new((x, y), 3, color.mix(0.6).filled()).into_dyn()
                        }
                        OpKind::Cas => Cross::new((x, y), 3, color.mix(0.7)).into_dyn(),
                        OpKind::Txn | OpKind::Acquire | OpKind::Release => {
                            Circle::new((x, y), 2, color.mix(0.6).filled()).into_dyn()
                        }
                    }
                },
            ))?
            .label(label)
            .legend(move |(x, y)| Circle::new((x + 5, y), 4, color.filled()));
    }
    legend(&mut chart)?;
    root.present()?;
    Ok(())
}

/// Completions per second by outcome.
pub fn throughput(path: &Path, h: &History, windows: &[FaultWindow], end_s: f64) -> DrawResult<()> {
    let xmax = x_max(h, end_s);
    let bucket = 0.5f64;
    let n = (xmax / bucket).ceil() as usize + 1;
    let mut series = [vec![0u64; n], vec![0u64; n], vec![0u64; n]];
    for o in &h.ops {
        if let Some(r) = o.ret_time {
            let b = ((secs(r) / bucket) as usize).min(n - 1);
            let i = match o.outcome {
                Outcome::Ok => 0,
                Outcome::Fail => 1,
                Outcome::Info => 2,
            };
            series[i][b] += 1;
        }
    }
    let ymax = series.iter().flatten().copied().max().unwrap_or(1) as f64 / bucket * 1.15 + 1.0;
    let root = SVGBackend::new(path, (1000, 320)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Throughput by outcome (completions per second, 0.5 s buckets)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)?;
    chart
        .configure_mesh()
        .x_desc("time since start (s)")
        .y_desc("ops/s")
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    shade(&mut chart, windows, 0.0, ymax)?;
    for (i, (label, color)) in [("ok", OK), ("fail", FAIL), ("info", INFO)]
        .into_iter()
        .enumerate()
    {
        chart
            .draw_series(LineSeries::new(
                series[i]
                    .iter()
                    .enumerate()
                    .map(|(b, c)| (b as f64 * bucket, *c as f64 / bucket)),
                color.stroke_width(2),
            ))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 15, y)], color.stroke_width(2))
            });
    }
    legend(&mut chart)?;
    root.present()?;
    Ok(())
}

/// p50, p95, p99 and max latency of ok operations per 1 s bucket.
pub fn quantiles(path: &Path, h: &History, windows: &[FaultWindow], end_s: f64) -> DrawResult<()> {
    let xmax = x_max(h, end_s);
    let n = xmax.ceil() as usize + 1;
    let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); n];
    for o in h.ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        if let (Some(r), Some(l)) = (o.ret_time, latency_ms(o)) {
            buckets[(secs(r) as usize).min(n - 1)].push(l);
        }
    }
    let q = |v: &mut Vec<f64>, p: f64| -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[((v.len() - 1) as f64 * p).round() as usize])
    };
    let mut lines: Vec<QuantileLine> = vec![
        ("p50", PALETTE[0], vec![]),
        ("p95", PALETTE[1], vec![]),
        ("p99", PALETTE[3], vec![]),
        ("max", PALETTE[7], vec![]),
    ];
    for (i, b) in buckets.iter_mut().enumerate() {
        for (name, _, pts) in lines.iter_mut() {
            let p = match *name {
                "p50" => 0.5,
                "p95" => 0.95,
                "p99" => 0.99,
                _ => 1.0,
            };
            if let Some(v) = q(b, p) {
                pts.push((i as f64 + 0.5, v));
            }
        }
    }
    let ymax = lines
        .iter()
        .flat_map(|l| l.2.iter().map(|p| p.1))
        .fold(1.0f64, f64::max)
        * 2.0;
    let root = SVGBackend::new(path, (1000, 320)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Latency quantiles of ok operations per second (log scale)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..xmax, (0.01f64..ymax).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("time since start (s)")
        .y_desc("latency (ms)")
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    shade(&mut chart, windows, 0.01, ymax)?;
    for (name, color, pts) in lines {
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 15, y)], color.stroke_width(2))
            });
    }
    legend(&mut chart)?;
    root.present()?;
    Ok(())
}

/// One lane per node: when it said it led, and in which term.
pub fn leaders(
    path: &Path,
    r: &RunResults,
    nodes: &[String],
    windows: &[FaultWindow],
    xmax: f64,
) -> DrawResult<()> {
    let root =
        SVGBackend::new(path, (1000, 80 + 40 * nodes.len().max(1) as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let lanes = nodes.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Leader timeline (who said it led, with its term; elections where bars change)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..xmax.max(0.001), 0f64..lanes)?;
    let names = nodes.to_vec();
    chart
        .configure_mesh()
        .x_desc("time since start (s)")
        .y_labels(nodes.len().max(1) * 2 + 1)
        .y_label_formatter(&|y: &f64| {
            let i = (*y - 0.5).round();
            if (*y - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    shade(&mut chart, windows, 0.0, lanes)?;
    for s in &r.elections.spans {
        let Some(lane) = nodes.iter().position(|n| *n == s.node) else {
            continue;
        };
        let color = PALETTE[(s.term as usize) % PALETTE.len()];
        let y = lane as f64;
        let end = if s.end_s > s.start_s {
            s.end_s
        } else {
            s.start_s + 0.1
        };
        chart.draw_series(std::iter::once(Rectangle::new(
            [(s.start_s, y + 0.2), (end, y + 0.8)],
            color.mix(0.8).filled(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("t{}", s.term),
            (s.start_s, y + 0.5),
            ("sans-serif", 11).into_font(),
        )))?;
    }
    root.present()?;
    Ok(())
}

/// Grouped boxes: for each fault kind (x), one box per setting — the
/// interquartile range, a line at the median, and a whisker for the 95 %
/// interval of the median — so the spread shows, not a bar of a mean. A
/// `percent` figure's axis runs from 0 to 100.
pub fn grouped_boxes(
    path: &Path,
    title: &str,
    faults: &[String],
    settings: &[String],
    cells: &[Vec<Option<crate::stats::Summary>>],
    percent: bool,
) -> DrawResult<()> {
    // A share ends at 100 %; other figures leave room above the highest
    // box for the legend.
    let ymax = if percent {
        100.0
    } else {
        cells
            .iter()
            .flatten()
            .flatten()
            .map(|s| s.q3.max(s.ci_high))
            .fold(0.0f64, f64::max)
            * 1.35
            + 1e-9
    };
    let root = SVGBackend::new(path, (1000, 380)).into_drawing_area();
    root.fill(&WHITE)?;
    let groups = faults.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..groups, 0f64..ymax.max(1e-6))?;
    let fnames = faults.to_vec();
    chart
        .configure_mesh()
        .x_labels(faults.len() * 2 + 1)
        .x_label_formatter(&|x: &f64| {
            let i = (*x - 0.5).round();
            if (*x - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
                fnames.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let k = settings.len().max(1) as f64;
    let width = 0.8 / k;
    for (si, setting) in settings.iter().enumerate() {
        let color = PALETTE[si % PALETTE.len()];
        let mut boxes = Vec::new();
        let mut lines = Vec::new();
        for (fi, _) in faults.iter().enumerate() {
            let Some(Some(s)) = cells.get(si).and_then(|row| row.get(fi)) else {
                continue;
            };
            let x0 = fi as f64 + 0.1 + si as f64 * width;
            let x1 = x0 + width * 0.9;
            let xm = x0 + width * 0.45;
            boxes.push(Rectangle::new(
                [(x0, s.q1), (x1, s.q3.max(s.q1 + ymax * 0.004))],
                color.mix(0.6).filled(),
            ));
            lines.push(PathElement::new(
                vec![(x0, s.median), (x1, s.median)],
                BLACK.stroke_width(2),
            ));
            lines.push(PathElement::new(
                vec![(xm, s.ci_low), (xm, s.ci_high)],
                BLACK.stroke_width(1),
            ));
        }
        chart
            .draw_series(boxes)?
            .label(setting.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        chart.draw_series(lines)?;
    }
    if percent {
        // The boxes of a share sit near the top: the legend goes below.
        legend_at(&mut chart, SeriesLabelPosition::LowerRight)?;
    } else {
        legend(&mut chart)?;
    }
    root.present()?;
    Ok(())
}

/// The Raft paper's Figure 16: for each setting (name, sorted election
/// times, trials), the share of its trials (y, %) in which a new leader was
/// elected within a time (x, ms, log scale); trials with no new leader keep
/// the curve below 100 %.
/// Each series: its setting's name, its samples, its trials, and its
/// setting's place among the campaign's settings (its colour).
pub fn election_cdf(path: &Path, series: &[(String, Vec<f64>, usize, usize)]) -> DrawResult<()> {
    use plotters::coord::combinators::IntoLogRange;
    let xmax = series
        .iter()
        .flat_map(|(_, v, _, _)| v.iter().copied())
        .fold(10.0f64, f64::max)
        * 1.5;
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Time without a leader after the leader crashed (cumulative % of trials)",
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((1f64..xmax).log_scale(), 0f64..100f64)?;
    chart
        .configure_mesh()
        .x_desc("ms (log scale)")
        .y_desc("% of trials")
        .draw()?;
    for (name, v, trials, place) in series {
        if v.is_empty() {
            continue;
        }
        let color = PALETTE[place % PALETTE.len()];
        let n = (*trials).max(v.len()) as f64;
        // A step per trial.
        let mut pts = vec![(v[0].max(1.0), 0.0)];
        for (k, x) in v.iter().enumerate() {
            pts.push((x.max(1.0), k as f64 / n * 100.0));
            pts.push((x.max(1.0), (k as f64 + 1.0) / n * 100.0));
        }
        pts.push((xmax, v.len() as f64 / n * 100.0));
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
            });
    }
    legend(&mut chart)?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod palette_tests {
    use super::PALETTE;

    #[test]
    fn ten_settings_get_ten_distinct_colours() {
        // Figure 16 compares ten election-timeout ranges.
        for (i, a) in PALETTE.iter().enumerate() {
            for (j, b) in PALETTE.iter().enumerate().skip(i + 1) {
                assert_ne!(a, b, "colours {i} and {j} repeat");
            }
        }
        assert!(PALETTE.len() >= 10);
    }
}
