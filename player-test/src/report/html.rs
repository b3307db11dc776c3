//! The HTML report: one self-contained file, charts as inline SVG drawn by `plotters` (no
//! scripts, no network fonts), because people would rather look than read.

use plotters::prelude::*;

use super::Report;

/// Width and height of each chart in pixels.
const W: u32 = 720;
const H: u32 = 360;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The CDF of first-frame times over sessions that reached a first frame.
pub fn first_frame_cdf_svg(report: &Report) -> Result<String, String> {
    let mut v: Vec<f64> = report
        .sessions
        .iter()
        .filter_map(|s| s.first_frame_ms)
        .collect();
    v.sort_by(f64::total_cmp);
    let n = report.sessions.len().max(1) as f64;
    let xmax = v.last().copied().unwrap_or(1000.0).max(1000.0) * 1.05;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "First-frame time CDF (share of all sessions)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..xmax, 0f64..1f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("first frame (ms)")
            .y_desc("sessions")
            .draw()
            .map_err(|e| e.to_string())?;
        let mut pts = vec![(0.0, 0.0)];
        for (i, x) in v.iter().enumerate() {
            pts.push((*x, i as f64 / n));
            pts.push((*x, (i + 1) as f64 / n));
        }
        if let Some(&(_, y)) = pts.last() {
            pts.push((xmax, y));
        }
        chart
            .draw_series(LineSeries::new(pts, BLUE.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        // The 1 s line that 秒开率 is measured against.
        chart
            .draw_series(LineSeries::new(
                vec![(1000.0, 0.0), (1000.0, 1.0)],
                RED.mix(0.6),
            ))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Per-stage breakdown: the median time spent in each stage (from the previous reached
/// stage's median), as horizontal bars laid end to end.
pub fn stage_breakdown_svg(report: &Report) -> Result<String, String> {
    let stages = &report.aggregate.stages;
    let total = stages.last().map_or(1.0, |s| s.p50_ms).max(1.0) * 1.6;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let rows = stages.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Start-up stages (median ms since start)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(8)
            .build_cartesian_2d(0f64..total, 0f64..rows as f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc("ms")
            .draw()
            .map_err(|e| e.to_string())?;
        let mut prev = 0.0f64;
        for (i, s) in stages.iter().enumerate() {
            let y = (rows - 1 - i) as f64;
            let start = prev.min(s.p50_ms);
            let color = Palette99::pick(i).mix(0.8);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [
                        (start, y + 0.15),
                        (s.p50_ms.max(start + total * 0.002), y + 0.85),
                    ],
                    color.filled(),
                )))
                .map_err(|e| e.to_string())?;
            let label = format!(
                "{} {:.0} ms (+{:.0})",
                s.stage.name(),
                s.p50_ms,
                s.p50_ms - start
            );
            chart
                .draw_series(std::iter::once(Text::new(
                    label,
                    (s.p50_ms.max(start) + total * 0.01, y + 0.35),
                    ("sans-serif", 12),
                )))
                .map_err(|e| e.to_string())?;
            prev = s.p50_ms;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// The complete HTML document.
pub fn render(report: &Report) -> Result<String, String> {
    let cdf = first_frame_cdf_svg(report)?;
    let stages = stage_breakdown_svg(report)?;
    let a = &report.aggregate;
    let ff = a.first_frame_ms;
    let cell = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.1}"));
    let mut rows = String::new();
    for s in report.sessions.iter().take(500) {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            s.index,
            esc(&s.protocol),
            cell(s.first_frame_ms),
            s.stalls,
            format_args!("{:.4}", s.stall_ratio),
            s.frames_released,
            s.frames_dropped,
            s.nacks_sent,
            esc(s.error.as_deref().unwrap_or(""))
        ));
    }
    Ok(format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>player-test report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}</style>
</head><body>
<h1>player-test report</h1>
<p>{url} · {n} sessions, {ok} ok, {failed} failed</p>
<table>
<tr><th>first frame p50</th><th>p90</th><th>p99</th><th>秒开率 (&lt; 1 s)</th><th>stall ratio</th><th>frames dropped</th><th>re-pulls</th><th>client CPU / session</th></tr>
<tr><td>{p50}</td><td>{p90}</td><td>{p99}</td><td>{open:.1}%</td><td>{stall:.4}</td><td>{dropped}</td><td>{repulls}</td><td>{cpu:.3} ms</td></tr>
</table>
<h2>First frame</h2>
{cdf}
<h2>Stages</h2>
{stages}
<h2>Sessions</h2>
<table><tr><th>#</th><th>protocol</th><th>first frame ms</th><th>stalls</th><th>stall ratio</th><th>frames</th><th>dropped</th><th>NACKs</th><th>error</th></tr>
{rows}</table>
<p>Schema {schema}; the JSON report (<code>--json</code>) carries every number.</p>
</body></html>
"#,
        url = esc(&report.url),
        n = a.sessions,
        ok = a.ok,
        failed = a.failed,
        p50 = cell(ff.map(|p| p.p50)),
        p90 = cell(ff.map(|p| p.p90)),
        p99 = cell(ff.map(|p| p.p99)),
        open = a.open_within_1s * 100.0,
        stall = a.stall_ratio,
        dropped = a.frames_dropped,
        repulls = a.repulls,
        cpu = report.client.cpu_ms_per_session,
        schema = esc(&report.schema),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ClientCost, tests::sample};

    #[test]
    fn html_is_self_contained_with_two_charts() {
        let sessions = (0..20)
            .map(|i| sample(i, Some(100.0 + 60.0 * i as f64)))
            .collect();
        let r = Report::new(
            "rtm://x/<y>",
            serde_json::Value::Null,
            sessions,
            ClientCost::default(),
        );
        let html = render(&r).unwrap();
        assert_eq!(html.matches("<svg").count(), 2);
        assert!(html.contains("rtm://x/&lt;y&gt;"));
        assert!(
            !html.contains("<script") && !html.contains("<link"),
            "no scripts or links"
        );
        assert!(
            !html.contains("url(") && !html.contains("@import"),
            "no fetched fonts"
        );
        assert!(html.contains("first_keyframe"), "stage labels drawn");
    }
}
