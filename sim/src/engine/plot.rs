//! SVG plots of a report, with plotters: live and orphaned sessions over time, the
//! time-to-recover distribution, the server's load by primitive, and for comparisons the
//! variants side by side.
//!
//! Text is drawn as SVG `<text>` (no font files needed); the output is a pure function of the
//! report.

use super::sweep::Report;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

const COLORS: [RGBColor; 11] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 0),
];

fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

fn err<E: std::fmt::Display>(e: E) -> String {
    format!("drawing a plot: {e}")
}

/// Live sessions at the server, devices holding a usable session, and orphaned sessions over
/// simulated time, one line per variant; the grey line marks the start of the liveness phase.
pub fn sessions(r: &Report) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (900, 900)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let areas = root.split_evenly((3, 1));
        let x_max = r
            .series
            .iter()
            .flat_map(|s| s.last())
            .map(|p| p.t_ms as f64 / 60_000.0)
            .fold(1.0 / 60.0, f64::max);
        let faulty_end = r.runs.first().map_or(0.0, |v| v.sim_duration_s / 60.0);
        type Value = fn(&super::result::Sample) -> u64;
        let panels: [(&str, &str, Value); 3] = [
            ("Live sessions at the server", "sessions", |p| p.live),
            ("Devices holding a usable session", "devices", |p| p.holding),
            (
                "Orphaned sessions (active at the server, unusable by their device)",
                "sessions",
                |p| p.orphans,
            ),
        ];
        for (area, (title, unit, value)) in areas.iter().zip(panels) {
            let y_max = r
                .series
                .iter()
                .flat_map(|s| s.iter().map(value))
                .max()
                .unwrap_or(0)
                .max(1) as f64
                * 1.08;
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 17))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(80)
                .build_cartesian_2d(0f64..x_max, 0f64..y_max)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("simulated time (min)")
                .y_desc(unit)
                .y_label_formatter(&|y| format!("{}", *y as u64))
                .draw()
                .map_err(err)?;
            chart
                .draw_series(LineSeries::new(
                    vec![(faulty_end, 0.0), (faulty_end, y_max)],
                    RGBColor(160, 160, 160),
                ))
                .map_err(err)?;
            for (i, (s, v)) in r.series.iter().zip(&r.runs).enumerate() {
                let c = color(i);
                chart
                    .draw_series(LineSeries::new(
                        s.iter()
                            .map(|p| (p.t_ms as f64 / 60_000.0, value(p) as f64)),
                        c.stroke_width(2),
                    ))
                    .map_err(err)?
                    .label(v.variant.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// The distribution of the time to recover (from losing a session to holding one again) as
/// a cumulative distribution over a logarithmic time axis, one line per variant.
pub fn time_to_recover(r: &Report) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (900, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let x_max = r.ttr.iter().map(|h| h.max()).max().unwrap_or(0).max(10) as f64 * 1.2;
        let x_min = r
            .ttr
            .iter()
            .filter_map(|h| h.buckets().next().map(|(top, _)| top))
            .min()
            .unwrap_or(1)
            .max(1) as f64
            / 2.0;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Time to recover a session (cumulative share of recoveries)",
                ("sans-serif", 17),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d((x_min.max(0.5)..x_max).log_scale(), 0f64..1.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("time to recover (ms, log scale)")
            .y_desc("share")
            .x_label_formatter(&|x| {
                if *x >= 1000.0 {
                    format!("{}s", (*x / 1000.0).round())
                } else {
                    format!("{}ms", x.round())
                }
            })
            .draw()
            .map_err(err)?;
        for (i, (h, v)) in r.ttr.iter().zip(&r.runs).enumerate() {
            if h.count() == 0 {
                continue;
            }
            let c = color(i);
            let total = h.count() as f64;
            let mut seen = 0u64;
            let points: Vec<(f64, f64)> = h
                .buckets()
                .map(|(top, n)| {
                    seen += n;
                    ((top.max(1)) as f64, seen as f64 / total)
                })
                .collect();
            chart
                .draw_series(LineSeries::new(points, c.stroke_width(2)))
                .map_err(err)?
                .label(format!("{} ({} recoveries)", v.variant, h.count()))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// The variants side by side: trapped devices (none drawn for a stopped run), peak orphaned sessions, 99th percentile time to
/// recover, and session availability.
pub fn comparison(r: &Report) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (1000, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let names: Vec<String> = r.runs.iter().map(|v| v.variant.clone()).collect();
        type Metric = fn(&super::sweep::VariantReport) -> f64;
        let metrics: [(&str, Metric); 4] = [
            ("trapped devices", |v| v.trapped_devices.unwrap_or(0) as f64),
            ("orphaned sessions (peak)", |v| {
                v.orphan_sessions_peak as f64
            }),
            ("time to recover p99 (s)", |v| {
                v.time_to_recover_ms.p99 as f64 / 1000.0
            }),
            ("availability (%)", |v| v.availability_ppm as f64 / 10_000.0),
        ];
        let areas = root.split_evenly((1, metrics.len()));
        let n = names.len() as i32;
        for (area, (title, f)) in areas.iter().zip(metrics) {
            let values: Vec<f64> = r.runs.iter().map(f).collect();
            let top = values.iter().copied().fold(0.0, f64::max);
            let y_max = top.max(1e-9) * 1.15;
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 15))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(55)
                .build_cartesian_2d((0..n).into_segmented(), 0f64..y_max)
                .map_err(err)?;
            let labels = names.clone();
            chart
                .configure_mesh()
                .disable_x_mesh()
                .y_label_formatter(&move |y| {
                    if top >= 10.0 {
                        format!("{y:.0}")
                    } else {
                        format!("{y:.1}")
                    }
                })
                .x_labels(names.len())
                .x_label_formatter(&move |x| match x {
                    SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                        labels.get(*i as usize).cloned().unwrap_or_default()
                    }
                    SegmentValue::Last => String::new(),
                })
                .draw()
                .map_err(err)?;
            for (i, v) in values.iter().enumerate() {
                chart
                    .draw_series(
                        Histogram::vertical(&chart)
                            .margin(8)
                            .style(color(i).filled())
                            .data([(i as i32, *v)]),
                    )
                    .map_err(err)?;
            }
        }
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// The server's load: for each variant a panel with one line per primitive, the busiest
/// second (requests per second) of each interval between two points of the sessions series;
/// the grey line marks the outage when the scenario has one.
pub fn load(r: &Report) -> Result<String, String> {
    let mut buf = String::new();
    {
        let panels = r.runs.len().max(1);
        let height = 80 + 320 * panels as u32;
        let root = SVGBackend::with_string(&mut buf, (900, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let areas = root.split_evenly((panels, 1));
        let outage_min = r
            .runs
            .iter()
            .find_map(|v| v.storm.as_ref())
            .map(|s| s.at_ms as f64 / 60_000.0);
        for (i, area) in areas.iter().enumerate() {
            let (Some(v), Some(series), Some(load)) =
                (r.runs.get(i), r.series.get(i), r.load.get(i))
            else {
                continue;
            };
            let x_max = series
                .last()
                .map_or(1.0 / 60.0, |p| (p.t_ms as f64 / 60_000.0).max(1.0 / 60.0));
            let y_max = load
                .values()
                .flat_map(|v| v.iter().copied())
                .max()
                .unwrap_or(0)
                .max(1) as f64
                * 1.08;
            let mut chart = ChartBuilder::on(area)
                .caption(
                    format!(
                        "Requests per second at the server, by primitive: {}",
                        v.variant
                    ),
                    ("sans-serif", 17),
                )
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(80)
                .build_cartesian_2d(0f64..x_max, 0f64..y_max)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("simulated time (min)")
                .y_desc("requests/s (busiest second)")
                .y_label_formatter(&|y| format!("{}", *y as u64))
                .draw()
                .map_err(err)?;
            if let Some(x) = outage_min {
                chart
                    .draw_series(LineSeries::new(
                        vec![(x, 0.0), (x, y_max)],
                        RGBColor(160, 160, 160),
                    ))
                    .map_err(err)?;
            }
            for (k, (name, points)) in load.iter().enumerate() {
                let c = color(k);
                chart
                    .draw_series(LineSeries::new(
                        series
                            .iter()
                            .zip(points)
                            .map(|(s, p)| (s.t_ms as f64 / 60_000.0, *p as f64)),
                        c.stroke_width(2),
                    ))
                    .map_err(err)?
                    .label(name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(buf)
}
