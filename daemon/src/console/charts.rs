//! Charts for the bureau pages, drawn on the server as SVG by `plotters` (no script runs in the
//! browser). Labels are cleaned of markup characters before they reach the SVG.

use plotters::prelude::*;

/// Text safe inside SVG markup (region names come from the registry).
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '<' | '>' | '&' | '"' | '\'') && !c.is_control())
        .take(24)
        .collect()
}

const FONT: &str = "Noto Sans CJK SC, PingFang SC, Microsoft YaHei, sans-serif";

/// Lines of rates (0–100 %) over months: one series per (name, values), the target dashed.
pub fn trend(
    months: &[String],
    series: &[(String, Vec<Option<f64>>)],
    target: Option<f64>,
) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 280)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let n = months.len().max(1);
        let chart = ChartBuilder::on(&root)
            .margin(10)
            .margin_right(28)
            .x_label_area_size(28)
            .y_label_area_size(44)
            .build_cartesian_2d(0f64..(n as f64 - 1.0).max(1.0), 0f64..100f64);
        let Ok(mut chart) = chart else {
            return String::new();
        };
        let labels: Vec<String> = months.iter().map(|m| clean(m)).collect();
        let _ = chart
            .configure_mesh()
            .x_labels(n.min(12))
            .x_label_formatter(&|x| {
                let i = x.round();
                if i < 0.0 {
                    return String::new();
                }
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                labels.get(i as usize).cloned().unwrap_or_default()
            })
            .y_label_formatter(&|y| format!("{y:.0}%"))
            .label_style((FONT, 12))
            .light_line_style(RGBColor(235, 235, 235))
            .draw();
        let colours = [
            RGBColor(192, 57, 43),
            RGBColor(41, 128, 185),
            RGBColor(39, 174, 96),
            RGBColor(142, 68, 173),
        ];
        for (i, (name, values)) in series.iter().enumerate() {
            let colour = colours[i % colours.len()];
            let points: Vec<(f64, f64)> = values
                .iter()
                .enumerate()
                .filter_map(|(x, v)| v.map(|v| (x as f64, (v * 100.0).clamp(0.0, 100.0))))
                .collect();
            if let Ok(s) =
                chart.draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            {
                let label = clean(name);
                s.label(label).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                });
            }
            let _ = chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, colour.filled())));
        }
        if let Some(t) = target {
            let t = (t * 100.0).clamp(0.0, 100.0);
            let _ = chart.draw_series(DashedLineSeries::new(
                vec![(0.0, t), ((n as f64 - 1.0).max(1.0), t)],
                6,
                4,
                RGBColor(120, 120, 120).stroke_width(1),
            ));
        }
        let _ = chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(RGBColor(200, 200, 200))
            .label_font((FONT, 12))
            .position(SeriesLabelPosition::LowerRight)
            .draw();
        let _ = root.present();
    }
    svg
}

/// Horizontal bars of rates (0–100 %), one per (label, value), with the target as a line.
pub fn bars(rows: &[(String, Option<f64>)], target: f64) -> String {
    let mut svg = String::new();
    {
        let height = (rows.len() as u32 * 26 + 50).clamp(120, 1400);
        let root = SVGBackend::with_string(&mut svg, (640, height)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let n = rows.len().max(1);
        let chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(26)
            .y_label_area_size(150)
            .build_cartesian_2d(0f64..100f64, (0..n).into_segmented());
        let Ok(mut chart) = chart else {
            return String::new();
        };
        let labels: Vec<String> = rows.iter().map(|(l, _)| clean(l)).collect();
        let _ = chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_label_formatter(&|x| format!("{x:.0}%"))
            .label_style((FONT, 12))
            .light_line_style(RGBColor(235, 235, 235))
            .draw();
        let t = (target * 100.0).clamp(0.0, 100.0);
        let _ = chart.draw_series(rows.iter().enumerate().map(|(i, (_, v))| {
            let value = v.map_or(0.0, |v| (v * 100.0).clamp(0.0, 100.0));
            let colour = if value + 1e-9 >= t {
                RGBColor(39, 174, 96)
            } else {
                RGBColor(192, 57, 43)
            };
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(i)),
                    (value, SegmentValue::Exact(i + 1)),
                ],
                colour.filled(),
            );
            bar.set_margin(4, 4, 0, 0);
            bar
        }));
        let _ = chart.draw_series(std::iter::once(PathElement::new(
            vec![(t, SegmentValue::Exact(0)), (t, SegmentValue::Exact(n))],
            RGBColor(90, 90, 90).stroke_width(1),
        )));
        let _ = root.present();
    }
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_escaped_labels() {
        let svg = bars(
            &[
                ("<script>东关</script>".into(), Some(0.5)),
                ("西郊".into(), None),
            ],
            1.0,
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("东关"));
        let svg = trend(
            &["2026-10".into(), "2026-11".into()],
            &[("特困老人".into(), vec![Some(0.8), Some(0.9)])],
            Some(1.0),
        );
        assert!(svg.contains("<polyline") || svg.contains("<path"), "{svg}");
        assert!(svg.contains("2026-11"));
    }
}
