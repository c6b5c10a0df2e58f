//! Vertical bar charts: the send spread per trial, and the latency histogram (stacked by
//! status).

use super::axis::{Scale, line, number, round};
use super::node::Node;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 190.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 26.0;
const BOTTOM: f64 = 40.0;

/// One bar: stacked segments (value, colour), a tooltip, a label under it (or none), and a
/// flag that draws it with a red cross above (a violated trial).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bar {
    pub(crate) segments: Vec<(f64, &'static str)>,
    pub(crate) tooltip: String,
    pub(crate) label: Option<String>,
    pub(crate) flagged: bool,
}

/// A bar chart (`<svg class={class}>`) with a value axis titled `y_title` and `x_title` under
/// the bars.
pub(crate) fn bar_chart(bars: &[Bar], class: &'static str, y_title: &str, x_title: &str) -> Node {
    let bottom = HEIGHT - BOTTOM;
    let max = bars
        .iter()
        .map(|b| b.segments.iter().map(|s| s.0).sum::<f64>())
        .fold(0.0, f64::max);
    let y = Scale::new(max, bottom, TOP);
    let slot = (WIDTH - LEFT - RIGHT) / bars.len().max(1) as f64;
    let drawn = bars
        .iter()
        .enumerate()
        .map(|(i, bar)| draw_bar(bar, LEFT + slot * i as f64, slot, &y, bottom));
    Node::new("svg")
        .attr("class", class)
        .attr("viewBox", format!("0 0 {WIDTH} {HEIGHT}"))
        .attr("width", WIDTH)
        .attr("height", HEIGHT)
        .attr("role", "img")
        .child(y_axis(&y, y_title))
        .children(drawn)
        .child(line(LEFT, bottom, WIDTH - RIGHT, bottom, "#999"))
        .child(
            Node::new("text")
                .attr("x", WIDTH - RIGHT)
                .attr("y", HEIGHT - 4.0)
                .attr("text-anchor", "end")
                .text(x_title),
        )
}

fn draw_bar(bar: &Bar, x: f64, slot: f64, y: &Scale, bottom: f64) -> Node {
    let width = round((slot * 0.8).max(0.5));
    let mut base = 0.0;
    let mut g = Node::new("g")
        .attr("class", "bar")
        .child(Node::new("title").text(&bar.tooltip));
    for &(value, colour) in &bar.segments {
        let (top, low) = (y.at(base + value), y.at(base));
        g = g.child(
            Node::new("rect")
                .attr("x", round(x))
                .attr("y", top)
                .attr("width", width)
                .attr("height", round(low - top))
                .attr("fill", colour),
        );
        base += value;
    }
    let centre = round(x + width / 2.0);
    if bar.flagged {
        g = g.child(
            Node::new("text")
                .attr("class", "flag")
                .attr("x", centre)
                .attr("y", round(y.at(base) - 3.0))
                .attr("text-anchor", "middle")
                .attr("fill", "#c62828")
                .text("✗"),
        );
    }
    if let Some(label) = &bar.label {
        g = g.child(
            Node::new("text")
                .attr("x", centre)
                .attr("y", bottom + 14.0)
                .attr("text-anchor", "middle")
                .text(label),
        );
    }
    g
}

/// Horizontal grid lines at the ticks of `y`, labelled, and the axis title.
fn y_axis(y: &Scale, title: &str) -> Node {
    let ticks = y.ticks().into_iter().map(|value| {
        let at = y.at(value);
        Node::new("g")
            .child(line(LEFT, at, WIDTH - RIGHT, at, "#eee"))
            .child(
                Node::new("text")
                    .attr("x", LEFT - 6.0)
                    .attr("y", round(at + 4.0))
                    .attr("text-anchor", "end")
                    .text(number(value)),
            )
    });
    Node::new("g").children(ticks).child(
        Node::new("text")
            .attr("x", 4.0)
            .attr("y", TOP - 12.0)
            .text(title),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_stack_and_flags_are_drawn() {
        let bars = [
            Bar {
                segments: vec![(2.0, "green"), (3.0, "red")],
                tooltip: "a & b".into(),
                label: Some("0".into()),
                flagged: true,
            },
            Bar {
                segments: vec![(5.0, "green")],
                tooltip: "c".into(),
                label: None,
                flagged: false,
            },
        ];
        let svg = bar_chart(&bars, "spread", "µs", "trial").to_string();
        assert_eq!(svg.matches("<g class=\"bar\"").count(), 2);
        assert_eq!(svg.matches("<rect").count(), 3);
        assert_eq!(svg.matches("class=\"flag\"").count(), 1);
        assert!(svg.contains("<title>a &amp; b</title>"));
        // Both bars reach the top tick (5): stacked 2 + 3 and a single 5.
        assert_eq!(svg.matches(&format!("y=\"{TOP}\"")).count(), 2);
    }
}
