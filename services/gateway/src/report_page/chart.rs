//! The bars of the indicators page's charts, drawn by plotters on its SVG backend.
//! Plotters draws shapes only: the page writes every text of a chart itself (labels
//! and figures, escaped by maud) at the rows laid out here, so no font is needed.
//!
//! A chart is [`WIDTH`] wide: the cells' labels on the left, then one horizontal bar
//! per cell scaled to the largest published count, then room for its figure.

use plotters::backend::SVGBackend;
use plotters::chart::ChartBuilder;
use plotters::coord::Shift;
use plotters::drawing::{DrawingArea, DrawingAreaErrorKind, IntoDrawingArea as _};
use plotters::element::Rectangle;
use plotters::style::{Color as _, RGBColor};

/// Width of a chart, in pixels.
pub(super) const WIDTH: u32 = 640;
/// Where the bars start; the cells' labels are left of it.
pub(super) const LABELS_WIDTH: u32 = 220;
/// Room right of the longest bar for its figure.
const FIGURES_WIDTH: u32 = 80;
/// Height of one cell's row.
const ROW_HEIGHT: u32 = 22;
/// Space above and below a bar within its row.
const BAR_INSET: u32 = 2;
/// Space above the first row and below the last.
const PADDING: u32 = 2;
/// From the top of a row to the baseline of its 12-pixel text.
const BASELINE: u32 = 17;
/// Space between the end of a bar and its figure.
const FIGURE_GAP: u32 = 6;
/// The bars' colour.
const BAR_COLOUR: RGBColor = RGBColor(0x3b, 0x6e, 0xa5);

/// Height of a chart of `rows` rows (an empty table keeps one, empty).
pub(super) fn height(rows: usize) -> u32 {
    row_top(rows.max(1)).saturating_add(PADDING)
}

/// The baseline of the texts of row `index`.
pub(super) fn baseline(index: usize) -> u32 {
    row_top(index).saturating_add(BASELINE)
}

/// The top of row `index` (or the bottom of the rows above it), in pixels.
fn row_top(index: usize) -> u32 {
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    PADDING.saturating_add(ROW_HEIGHT.saturating_mul(index))
}

/// Where the figure of a row without a bar starts.
pub(super) const FIGURE_WITHOUT_BAR: u32 = LABELS_WIDTH + FIGURE_GAP;

/// The bars of one chart.
#[derive(Debug)]
pub(super) struct Bars {
    /// An SVG document of the chart's size holding only the bars (rectangles with
    /// computed coordinates: no text from the data is in it).
    pub(super) svg: String,
    /// For each row, where the figure starts: right of its bar.
    pub(super) figure_x: Vec<u32>,
}

/// The bars of `values`, one row each in order; a value that is not published
/// (`None`) or 0 draws no bar.
pub(super) fn bars(values: &[Option<u64>]) -> Result<Bars, DrawingAreaErrorKind<std::io::Error>> {
    let mut svg = String::new();
    let figure_x = {
        let root =
            SVGBackend::with_string(&mut svg, (WIDTH, height(values.len()))).into_drawing_area();
        let figure_x = draw(&root, values)?;
        root.present()?;
        figure_x
    };
    Ok(Bars { svg, figure_x })
}

/// Draws the bars of `values` on `root`; returns where each row's figure starts.
fn draw(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    values: &[Option<u64>],
) -> Result<Vec<u32>, DrawingAreaErrorKind<std::io::Error>> {
    let largest = values.iter().flatten().copied().max().unwrap_or(0).max(1);
    let rows = f64::from(row_count(values.len()));
    let (_labels, bar_area) = root.split_horizontally(LABELS_WIDTH);
    // The plotting area is one pixel taller than the rows, as plotters maps a range
    // onto both its first and its last pixel: then every row is exactly ROW_HEIGHT.
    let mut chart = ChartBuilder::on(&bar_area)
        .margin_top(PADDING)
        .margin_bottom(PADDING - 1)
        .margin_right(FIGURES_WIDTH)
        .build_cartesian_2d(0.0..largest as f64, 0.0..rows)?;
    // Rows go down from the top, where the y axis ends.
    let row_start = |index: usize| rows - index as f64;
    chart.draw_series(values.iter().enumerate().filter_map(|(index, value)| {
        let value = (*value).filter(|value| *value > 0)?;
        let top = row_start(index);
        let mut bar = Rectangle::new([(0.0, top), (value as f64, top - 1.0)], BAR_COLOUR.filled());
        bar.set_margin(BAR_INSET, BAR_INSET, 0, 0);
        Some(bar)
    }))?;
    let figure_x = values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let end = value.unwrap_or(0) as f64;
            let (x, _) = chart.backend_coord(&(end, row_start(index)));
            u32::try_from(x).unwrap_or(LABELS_WIDTH) + FIGURE_GAP
        })
        .collect();
    Ok(figure_x)
}

/// Rows a chart of `cells` cells has: at least one.
fn row_count(cells: usize) -> u32 {
    u32::try_from(cells.max(1)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `(x, y, width, height)` of every bar in `svg`.
    fn rectangles(svg: &str) -> Vec<[u32; 4]> {
        svg.lines()
            .filter(|line| line.starts_with("<rect "))
            .map(|line| {
                ["x", "y", "width", "height"].map(|name| {
                    let start = line.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
                    let end = start + line[start..].find('"').unwrap();
                    line[start..end].parse().unwrap()
                })
            })
            .collect()
    }

    #[test]
    fn bars_are_scaled_to_the_largest_count_and_sit_on_their_rows() {
        let drawn = bars(&[Some(24), None, Some(0), Some(12)]).unwrap();
        assert!(drawn.svg.starts_with("<svg width=\"640\" height=\"92\""));
        let rectangles = rectangles(&drawn.svg);
        // No bar for a suppressed count nor for a zero.
        assert_eq!(rectangles.len(), 2, "{}", drawn.svg);
        for ([x, y, width, bar_height], row) in rectangles.into_iter().zip([0_usize, 3]) {
            // Where the page writes the row's texts: plotters' bars line up with them.
            assert_eq!(x, LABELS_WIDTH);
            assert_eq!(y, 2 + 22 * row as u32 + BAR_INSET, "row {row}");
            assert_eq!(y, row_top(row) + BAR_INSET, "row {row}");
            assert_eq!(bar_height, ROW_HEIGHT - 2 * BAR_INSET);
            assert!(
                (y..y + bar_height).contains(&(baseline(row) - 4)),
                "row {row}"
            );
            let longest = WIDTH - LABELS_WIDTH - FIGURES_WIDTH - 1;
            let expected = if row == 0 { longest } else { longest / 2 };
            assert!(width.abs_diff(expected) <= 1, "row {row}: {width}");
        }
        assert_eq!(drawn.figure_x.len(), 4);
        assert_eq!(drawn.figure_x[1], FIGURE_WITHOUT_BAR);
        assert_eq!(drawn.figure_x[2], FIGURE_WITHOUT_BAR);
        assert!(drawn.figure_x[0] > drawn.figure_x[3] && drawn.figure_x[3] > FIGURE_WITHOUT_BAR);
        for fetch in ["href", "src=", "url(", "<text"] {
            assert!(!drawn.svg.contains(fetch), "{fetch}");
        }
    }

    #[test]
    fn a_table_without_published_counts_draws_no_bar() {
        let withheld = bars(&[None, None]).unwrap();
        assert!(rectangles(&withheld.svg).is_empty(), "{}", withheld.svg);
        assert_eq!(withheld.figure_x, [FIGURE_WITHOUT_BAR, FIGURE_WITHOUT_BAR]);
        assert!(bars(&[]).unwrap().figure_x.is_empty());
        assert_eq!(height(0), height(1));
    }
}
