//! CSV files that people open in spreadsheets: RFC 4180 written by the `csv` crate
//! (quoted only where a cell holds a comma, a quote or a line break), and every text
//! cell kept from being run as a formula. A cell starting with `=` is a formula in
//! Excel, LibreOffice and Google Sheets, so a label typed by one user could run in
//! the spreadsheet of another ("CSV injection").

use std::borrow::Cow;

/// First characters that make a spreadsheet read a cell as a formula (tab and
/// carriage return because some spreadsheets strip them before looking).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `text` as a spreadsheet must show it and never run it: a leading `=`, `+`, `-`,
/// `@`, tab or carriage return gets a `'` in front, as OWASP advises; any other text
/// is returned as it is.
pub fn formula_safe(text: &str) -> Cow<'_, str> {
    if text.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// How the lines of a file end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnd {
    /// `\r\n`, as RFC 4180 writes it.
    CrLf,
    /// `\n`, as the CTDC files are published.
    Lf,
}

/// One cell of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell<'a> {
    /// Text, which may have come from a user: written [`formula_safe`].
    Text(&'a str),
    /// A figure the code formatted (a count, a rate, a year, a flag): written as it
    /// is, so that a spreadsheet still reads `-0.5` as a number.
    Figure(&'a str),
}

impl Cell<'_> {
    /// The cell as it goes into the file, before quoting.
    fn written(&self) -> Cow<'_, str> {
        match *self {
            Cell::Text(text) => formula_safe(text),
            Cell::Figure(figure) => Cow::Borrowed(figure),
        }
    }
}

/// A CSV file of `COLUMNS` columns written in memory: a header row, then rows.
/// Every row has the header's width by its type.
#[derive(Debug)]
pub struct CsvFile<const COLUMNS: usize> {
    writer: csv::Writer<Vec<u8>>,
}

impl<const COLUMNS: usize> CsvFile<COLUMNS> {
    /// A file that starts with the `header` row (text cells).
    pub fn new(header: [&str; COLUMNS], line_end: LineEnd) -> Self {
        let mut file = Self {
            writer: writer(line_end),
        };
        file.row(header.map(Cell::Text));
        file
    }

    /// Appends one row.
    pub fn row(&mut self, cells: [Cell<'_>; COLUMNS]) {
        let written = cells.each_ref().map(Cell::written);
        self.writer
            .write_record(written.iter().map(|cell| cell.as_bytes()))
            .expect(IN_MEMORY);
    }

    /// The whole file.
    pub fn finish(self) -> String {
        into_text(self.writer)
    }
}

/// One row as the file writes it, without its line end (e.g. a key that stands for
/// the row).
pub fn line<const COLUMNS: usize>(cells: [Cell<'_>; COLUMNS]) -> String {
    let mut file = CsvFile::<COLUMNS> {
        writer: writer(LineEnd::Lf),
    };
    file.row(cells);
    let mut line = file.finish();
    line.pop();
    line
}

/// One text cell as a row writes it: [`formula_safe`], and quoted when it holds a
/// comma, a quote or a line break.
pub fn text_cell(text: &str) -> String {
    // A row of one empty cell is written `""`, lest it read as a blank line; among
    // other cells an empty one is written as nothing.
    if text.is_empty() {
        return String::new();
    }
    line([Cell::Text(text)])
}

/// Why writing CSV here cannot fail: the writer's sink is a `Vec`, whose writes never
/// fail, and every row has one width (checked by the types), so the writer's only
/// other error cannot happen either.
const IN_MEMORY: &str = "a CSV file in memory of rows of one width cannot fail to write";

fn writer(line_end: LineEnd) -> csv::Writer<Vec<u8>> {
    let terminator = match line_end {
        LineEnd::CrLf => csv::Terminator::CRLF,
        LineEnd::Lf => csv::Terminator::Any(b'\n'),
    };
    csv::WriterBuilder::new()
        .terminator(terminator)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new())
}

fn into_text(writer: csv::Writer<Vec<u8>>) -> String {
    let bytes = writer.into_inner().expect(IN_MEMORY);
    // Every byte came from a `&str` or is an ASCII quote, comma or line end: the
    // conversion never replaces anything.
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_a_spreadsheet_would_run_is_shown_instead() {
        for formula in ["=SUM(A1)", "+1", "-1", "@cmd", "\tx", "\rx"] {
            assert_eq!(formula_safe(formula), format!("'{formula}"));
        }
        for plain in ["Gəncə", "hotline", "1-2", "", " =x"] {
            assert_eq!(formula_safe(plain), plain);
        }
    }

    #[test]
    fn cells_are_quoted_only_when_needed_and_quotes_doubled() {
        assert_eq!(text_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(text_cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(text_cell("-1,2"), "\"'-1,2\"");
        assert_eq!(text_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(text_cell("Gəncə"), "Gəncə");
        assert_eq!(text_cell(""), "");
    }

    #[test]
    fn a_file_has_its_header_then_its_rows_with_the_line_end_asked_for() {
        let mut file = CsvFile::new(["name", "value"], LineEnd::CrLf);
        file.row([Cell::Text("=cmd|' /C calc'!A0"), Cell::Figure("-0.5")]);
        file.row([Cell::Text("a, b"), Cell::Figure("")]);
        assert_eq!(
            file.finish(),
            "name,value\r\n'=cmd|' /C calc'!A0,-0.5\r\n\"a, b\",\r\n"
        );
        let mut file = CsvFile::new(["year", "gender"], LineEnd::Lf);
        file.row([Cell::Figure("2026"), Cell::Text("")]);
        assert_eq!(file.finish(), "year,gender\n2026,\n");
    }

    #[test]
    fn a_line_is_a_row_without_its_line_end() {
        assert_eq!(
            line([Cell::Figure("2026"), Cell::Text("Female"), Cell::Text("")]),
            "2026,Female,"
        );
        assert_eq!(line([Cell::Text("@x"), Cell::Text("\"")]), "'@x,\"\"\"\"");
    }
}
