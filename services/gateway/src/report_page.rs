//! The indicators as a page to read, print or send to a donor (`GET
//! /v1/reports/indicators?format=html`): the scope, a bar chart per table with its
//! figures, then the measures. The page is written by maud, which escapes every text
//! from the data (labels, names, the scope, the title), and is self-contained: the
//! charts are inline SVG drawn on the server ([`chart`]), and nothing is fetched from
//! elsewhere.

mod chart;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::dto::report::{IndicatorMeasure, IndicatorTable, Indicators};

/// The heading when the caller gives none.
const DEFAULT_TITLE: &str = "Indicators";
/// Colour of the figures that are not published.
const WITHHELD_COLOUR: &str = "#777";

impl Indicators {
    /// A readable page headed `title` (default "Indicators"): each table as a
    /// horizontal bar chart (inline SVG) with its figures, then the measures.
    /// Suppressed figures show as `<threshold` and draw no bar.
    pub(crate) fn to_html(&self, title: Option<&str>) -> String {
        page(self, title.unwrap_or(DEFAULT_TITLE)).into_string()
    }
}

/// The whole page; parts of the scope left out read as not filtering.
fn page(indicators: &Indicators, title: &str) -> Markup {
    let small = format!("<{}", indicators.threshold);
    let scope = &indicators.scope;
    let part = |value: &Option<String>, otherwise: &'static str| {
        value.as_deref().unwrap_or(otherwise).to_owned()
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
            }
            body style="font-family: sans-serif; max-width: 60em; margin: 2em auto; color: #222" {
                h1 { (title) }
                p {
                    "From " (part(&scope.from, "the start")) " to " (part(&scope.to, "today"))
                    "; organisation " (part(&scope.organization_id, "all"))
                    "; region " (part(&scope.region, "all")) "."
                }
                p {
                    "Counts from 1 to " (indicators.threshold.saturating_sub(1))
                    " are suppressed (shown as " (small) "), and so is a second count wherever \
                     a total would reveal one. Figures resting on fewer people are withheld."
                }
                @for table in &indicators.tables {
                    (table_chart(table, &small))
                }
                h2 { "Measures" }
                (measures(&indicators.measures, &small))
            }
        }
    }
}

/// A table's heading, its chart and its total.
fn table_chart(table: &IndicatorTable, small: &str) -> Markup {
    let values: Vec<Option<u64>> = table.cells.iter().map(|cell| cell.value).collect();
    let bars = chart::bars(&values).unwrap_or_else(|error| {
        // Writing into a string does not fail; if plotters ever does, the figures
        // are still all on the page, only the bars are missing.
        tracing::error!(table = %table.name, %error, "could not draw the bars of a chart");
        chart::Bars {
            svg: String::new(),
            figure_x: vec![chart::FIGURE_WITHOUT_BAR; values.len()],
        }
    });
    let total = table
        .total
        .map_or_else(|| small.to_owned(), |total| total.to_string());
    html! {
        h2 { (table.name.replace('_', " ")) }
        svg role="img" aria-label=(table.name) width=(chart::WIDTH)
            height=(chart::height(table.cells.len())) xmlns="http://www.w3.org/2000/svg"
            style="font-size: 12px" {
            // Shapes only, with computed coordinates: nothing from the data.
            (PreEscaped(&bars.svg))
            @for (index, cell) in table.cells.iter().enumerate() {
                @let baseline = chart::baseline(index);
                text x="0" y=(baseline) { (cell.labels.join(" / ")) }
                @match cell.value {
                    Some(value) => {
                        @let x = bars.figure_x.get(index).copied()
                            .unwrap_or(chart::FIGURE_WITHOUT_BAR);
                        text x=(x) y=(baseline) { (value) }
                    }
                    None => {
                        text x=(chart::FIGURE_WITHOUT_BAR) y=(baseline) fill=(WITHHELD_COLOUR) {
                            (small)
                        }
                    }
                }
            }
        }
        p { "Total: " (total) }
    }
}

/// The measures as a table: a withheld figure has no value and its base shows as
/// `small`.
fn measures(measures: &[IndicatorMeasure], small: &str) -> Markup {
    html! {
        table style="border-collapse: collapse" {
            tr {
                th style="text-align: left" { "measure" }
                th { "value" }
                th { "unit" }
                th { "based on" }
            }
            @for measure in measures {
                tr {
                    td { (measure.name.replace('_', " ")) }
                    td style="text-align: right; padding: 0 1em" {
                        @match measure.value {
                            Some(value) => (value),
                            None => "withheld",
                        }
                    }
                    td { (measure.unit.as_deref().unwrap_or("")) }
                    td style="text-align: right" {
                        @match measure.base {
                            Some(base) => (base),
                            None => (small),
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::dto::report::tests::indicators;

    #[test]
    fn the_html_page_draws_published_counts_escapes_labels_and_fetches_nothing() {
        let mut data = indicators();
        data.tables[0].cells[0].labels[0] = "<script>alert(1)</script>".to_owned();
        let html = data.to_html(Some("Project <Safe Return> 2025–2026"));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(
            html.contains("<h1>Project &lt;Safe Return&gt; 2025–2026</h1>"),
            "the title heads the page, escaped"
        );
        assert!(html.contains("<svg"), "a chart per table");
        assert!(!html.contains("<script>"), "labels are escaped");
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains(">24</text>"), "the published count is drawn");
        assert!(
            html.contains("&lt;11"),
            "suppressed figures show as below the threshold"
        );
        assert!(
            html.contains("withheld"),
            "a suppressed measure has no value"
        );
        for fetch in ["src=", "href=", "@import", "url("] {
            assert!(
                !html.contains(fetch),
                "nothing is fetched from elsewhere: {fetch}"
            );
        }
    }

    #[test]
    fn a_hostile_organisation_region_or_name_is_shown_never_run() {
        let hostile = "<script>alert(1)</script>";
        let mut data = indicators();
        data.scope.organization_id = Some(hostile.to_owned());
        data.scope.region = Some(format!("Ganja\"><img src=x onerror=alert(2)>{hostile}"));
        data.tables[0].name = format!("\"onload=\"alert(3)\" {hostile}");
        data.measures[0].unit = Some(hostile.to_owned());
        let html = data.to_html(None);
        assert!(html.contains("<h1>Indicators</h1>"), "{html}");
        assert!(
            html.contains(
                "; organisation &lt;script&gt;alert(1)&lt;/script&gt;; region \
                 Ganja&quot;&gt;&lt;img src=x onerror=alert(2)&gt;&lt;script&gt;alert(1)&lt;/script&gt;."
            ),
            "{html}"
        );
        // In an attribute too: the table's name labels its chart.
        assert!(
            html.contains(
                "aria-label=\"&quot;onload=&quot;alert(3)&quot; &lt;script&gt;alert(1)&lt;/script&gt;\""
            ),
            "{html}"
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("\"onload"), "{html}");
        // One element of each kind the page writes, and no other.
        assert_eq!(html.matches("<h1>").count(), 1);
        assert_eq!(html.matches("<svg role=\"img\"").count(), 1);
    }

    #[test]
    fn every_cell_has_its_label_and_figure_and_the_total_follows_its_chart() {
        let html = indicators().to_html(None);
        let chart_start = html.find("<h2>screenings by source</h2><svg").unwrap();
        let chart_end = chart_start + html[chart_start..].find("</svg><p>").unwrap();
        let chart = &html[chart_start..chart_end];
        for label in [
            "hotline / female",
            "police, border / =male",
            "ngo_outreach / male",
            "labour_inspection / female",
        ] {
            assert!(
                chart.contains(&format!(">{label}</text>")),
                "{label}: {chart}"
            );
        }
        assert_eq!(
            chart.matches(">0</text>").count(),
            1,
            "a real zero is drawn"
        );
        assert_eq!(chart.matches(">&lt;11</text>").count(), 2, "{chart}");
        assert_eq!(
            chart.matches("<rect ").count(),
            1,
            "one published count above 0"
        );
        assert!(html[chart_end..].starts_with("</svg><p>Total: &lt;11</p>"));
        assert!(html.contains(
            "<td>median days to identification</td>\
             <td style=\"text-align: right; padding: 0 1em\">12.5</td><td>days</td>\
             <td style=\"text-align: right\">31</td>"
        ));
        assert!(html.ends_with("</table></body></html>"));
    }
}
