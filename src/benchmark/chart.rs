//! A grouped bar chart as inline SVG, drawn on the server: one group of bars per section, one
//! bar per run, values from 0 to 1. No script and nothing loaded from elsewhere.

use std::fmt::Write;

/// Colours of the runs' bars, in order (they repeat past the sixth run).
const COLOURS: [&str; 6] = ["#0d6efd", "#fd7e14", "#198754", "#6f42c1", "#d63384", "#20c997"];

const LABEL_WIDTH: f64 = 260.0;
const BAR_WIDTH: f64 = 360.0;
const BAR_HEIGHT: f64 = 12.0;
const GROUP_GAP: f64 = 10.0;

use crate::answers::escape;

/// `rows`: (section, one value per run); `runs`: the runs' labels (the legend).
pub fn section_bars(title: &str, runs: &[String], rows: &[(String, Vec<Option<f64>>)]) -> String {
    let group = BAR_HEIGHT * runs.len().max(1) as f64 + GROUP_GAP;
    let legend = 18.0 * runs.len() as f64 + 10.0;
    let height = 30.0 + legend + group * rows.len() as f64 + 20.0;
    let width = LABEL_WIDTH + BAR_WIDTH + 60.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{}" class="section-chart" font-family="system-ui, sans-serif" font-size="11">"##,
        escape(title)
    );
    let _ = write!(svg, r#"<text x="0" y="16" font-size="13" font-weight="600">{}</text>"#, escape(title));
    for (i, run) in runs.iter().enumerate() {
        let y = 30.0 + 18.0 * i as f64;
        let _ = write!(
            svg,
            r##"<rect x="0" y="{y}" width="12" height="12" fill="{}"/><text x="18" y="{}">{}</text>"##,
            COLOURS[i % COLOURS.len()],
            y + 10.0,
            escape(run)
        );
    }
    let top = 30.0 + legend;
    for (r, (section, values)) in rows.iter().enumerate() {
        let y0 = top + group * r as f64;
        let label: String = section.chars().take(40).collect();
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LABEL_WIDTH - 8.0,
            y0 + BAR_HEIGHT * values.len() as f64 / 2.0 + 4.0,
            escape(&label)
        );
        for (i, value) in values.iter().enumerate() {
            let y = y0 + BAR_HEIGHT * i as f64;
            match value {
                Some(v) => {
                    let w = BAR_WIDTH * v.clamp(0.0, 1.0);
                    let _ = write!(
                        svg,
                        r##"<rect class="bar" x="{LABEL_WIDTH}" y="{y}" width="{w:.1}" height="{}" fill="{}"><title>{}: {:.2}</title></rect><text x="{:.1}" y="{}">{:.2}</text>"##,
                        BAR_HEIGHT - 2.0,
                        COLOURS[i % COLOURS.len()],
                        escape(runs.get(i).map_or("", String::as_str)),
                        v,
                        LABEL_WIDTH + w + 4.0,
                        y + BAR_HEIGHT - 3.0,
                        v
                    );
                }
                None => {
                    let _ = write!(
                        svg,
                        r##"<text x="{}" y="{}" fill="#6c757d">–</text>"##,
                        LABEL_WIDTH + 4.0,
                        y + BAR_HEIGHT - 3.0
                    );
                }
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bar_per_run_and_section_with_names_escaped() {
        let svg = section_bars(
            "Token F1",
            &["offline".into(), "gpt <4o>".into()],
            &[("1. Overview".into(), vec![Some(0.5), None]), ("2. Test".into(), vec![Some(1.0), Some(0.25)])],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches(r#"class="bar""#).count(), 3, "a missing value draws no bar");
        assert!(svg.contains("gpt &lt;4o&gt;") && !svg.contains("<4o>"));
        assert!(svg.contains(r#"width="360.0""#), "1.0 fills the width");
    }
}
