//! Lines to text: the values of neighbouring settings aligned, and the comments after code
//! aligned in a column per paragraph.

use super::layout::Line;

/// Code past this width does not push its paragraph's comments further right.
const COMMENT_COLUMN_MAX: usize = 80;

pub fn render(mut lines: Vec<Line>) -> String {
    align_keys(&mut lines);
    let columns = comment_columns(&lines);
    let mut out = String::new();
    for (line, column) in lines.iter().zip(columns) {
        if line.blank_before {
            out.push('\n');
        }
        out.extend(std::iter::repeat_n(' ', line.indent));
        out.push_str(&line.code);
        if let Some(comment) = &line.comment {
            let gap = column.saturating_sub(width(line)).max(2);
            out.extend(std::iter::repeat_n(' ', gap));
            out.push_str(comment);
        }
        out.push('\n');
    }
    out
}

/// The width of a line's last row of text.
fn width(line: &Line) -> usize {
    match line.code.rfind('\n') {
        Some(newline) => line.code[newline + 1..].chars().count(),
        None => line.indent + line.code.chars().count(),
    }
}

/// Pads the keys of settings on consecutive lines of one block to one width. A blank line,
/// or a line of anything else but a comment, ends the run.
fn align_keys(lines: &mut [Line]) {
    let mut run: Vec<usize> = Vec::new();
    let mut block = None;
    for index in 0..lines.len() {
        let line = &lines[index];
        if line.blank_before {
            pad(lines, &mut run);
            block = None;
        }
        let line = &lines[index];
        if line.comment_only {
            continue;
        }
        match line.key.filter(|key| key.at < line.code.len()) {
            Some(key) => {
                if block != Some(key.block) {
                    pad(lines, &mut run);
                    block = Some(key.block);
                }
                run.push(index);
            }
            None => {
                pad(lines, &mut run);
                block = None;
            }
        }
    }
    pad(lines, &mut run);
}

fn pad(lines: &mut [Line], run: &mut Vec<usize>) {
    let key_width = |line: &Line| line.key.map_or(0, |k| line.code[..k.at].chars().count());
    let widest = run.iter().map(|&i| key_width(&lines[i])).max().unwrap_or(0);
    for &index in run.iter() {
        let line = &mut lines[index];
        if let Some(key) = line.key {
            let padding = " ".repeat(widest - key_width(line));
            line.code.insert_str(key.at, &padding);
        }
    }
    run.clear();
}

/// For each line, the column its trailing comment starts at: two spaces past the longest
/// code with a comment in its paragraph (lines between blank lines).
fn comment_columns(lines: &[Line]) -> Vec<usize> {
    let mut columns = vec![0; lines.len()];
    let mut start = 0;
    for end in 1..=lines.len() {
        if end < lines.len() && !lines[end].blank_before {
            continue;
        }
        let column = lines[start..end]
            .iter()
            .filter(|line| line.comment.is_some())
            .map(width)
            .filter(|&w| w <= COMMENT_COLUMN_MAX)
            .max()
            .map_or(0, |w| w + 2);
        columns[start..end].fill(column);
        start = end;
    }
    columns
}
