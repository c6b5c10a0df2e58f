//! The timeline of one trial: a row per request, from its release to its response.

use super::axis::{Scale, line, round, x_axis};
use super::node::Node;
use super::page::{ms, status_colour};
use crate::mark::RequestMark;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 22.0;
/// Room under the rows for the axis.
const BOTTOM: f64 = 36.0;

/// An SVG timeline of one trial's requests (class `timeline`, attribute `data-requests`):
/// one `<g class="req">` per request holding a bar from its release (a dark dot) to its end
/// (a dot in the colour of its status), and a shaded band over the send spread. The time
/// axis ends at the last request's end, or at `span_us` if that is later (to draw several
/// timelines to one scale).
pub fn timeline(marks: &[RequestMark], span_us: u64) -> Node {
    let rows = marks.len().max(1);
    let row = (360.0 / rows as f64).clamp(1.0, 9.0);
    let height = TOP + row * rows as f64 + BOTTOM;
    let end = marks.iter().map(|m| m.ended_us).fold(span_us, u64::max);
    let scale = Scale::new(end as f64 / 1000.0, LEFT, WIDTH - RIGHT);
    let x = |us: u64| scale.at(us as f64 / 1000.0);
    let bottom = TOP + row * rows as f64;
    let svg = Node::new("svg")
        .attr("class", "timeline")
        .attr("data-requests", marks.len())
        .attr("viewBox", format!("0 0 {WIDTH} {}", round(height)))
        .attr("width", WIDTH)
        .attr("height", round(height))
        .attr("role", "img");
    let svg = match spread_band(marks, &x, bottom) {
        Some(band) => svg.child(band),
        None => svg,
    };
    svg.child(row_labels(marks.len(), row))
        .children(
            marks
                .iter()
                .map(|m| request(m, &x, TOP + row * (m.index as f64 + 0.5), row)),
        )
        .child(x_axis(&scale, bottom + 2.0, "ms since the trial started"))
}

/// The band from the first to the last release, labelled with the send spread.
fn spread_band(marks: &[RequestMark], x: &impl Fn(u64) -> f64, bottom: f64) -> Option<Node> {
    let released = marks.iter().filter_map(|m| m.released_us);
    let first = released.clone().min()?;
    let last = released.max()?;
    let (x1, x2) = (x(first), x(last));
    let label = format!("released within {} µs", last - first);
    Some(
        Node::new("g")
            .attr("class", "spread")
            .child(
                Node::new("rect")
                    .attr("x", x1)
                    .attr("y", TOP)
                    .attr("width", round((x2 - x1).max(1.0)))
                    .attr("height", round(bottom - TOP))
                    .attr("fill", "#1565c0")
                    .attr("fill-opacity", 0.12),
            )
            .child(
                Node::new("text")
                    .attr("x", x2 + 4.0)
                    .attr("y", TOP - 8.0)
                    .text(label),
            ),
    )
}

/// "request 0" at the top row and the last index at the bottom row.
fn row_labels(rows: usize, row: f64) -> Node {
    let label = |index: usize, y: f64| {
        Node::new("text")
            .attr("x", LEFT - 6.0)
            .attr("y", round(y))
            .attr("text-anchor", "end")
            .text(format!("#{index}"))
    };
    let last = rows.saturating_sub(1);
    Node::new("g")
        .child(label(0, TOP + row.max(8.0)))
        .child(label(last, TOP + row * rows as f64))
}

fn request(mark: &RequestMark, x: &impl Fn(u64) -> f64, y: f64, row: f64) -> Node {
    let colour = status_colour(mark.status);
    let width = (row * 0.6).max(1.0);
    let end = x(mark.ended_us);
    let g = Node::new("g")
        .attr("class", "req")
        .attr("data-index", mark.index)
        .attr("data-status", outcome(mark))
        .child(Node::new("title").text(describe(mark)));
    let g = match mark.released_us {
        Some(released) => {
            let start = x(released);
            g.child(
                line(start, y, end.max(start + 1.0), y, colour)
                    .attr("stroke-width", round(width))
                    .attr("stroke-opacity", 0.45),
            )
            .child(dot(start, y, width, "#263238"))
        }
        None => g,
    };
    g.child(dot(end, y, width * 1.2, colour))
}

fn dot(x: f64, y: f64, size: f64, colour: &str) -> Node {
    Node::new("circle")
        .attr("cx", x)
        .attr("cy", round(y))
        .attr("r", round((size / 2.0).clamp(0.8, 3.5)))
        .attr("fill", colour)
}

/// The status code, or the error kind.
fn outcome(mark: &RequestMark) -> String {
    match (mark.status, mark.error) {
        (Some(status), _) => status.to_string(),
        (None, Some(kind)) => kind.to_string(),
        (None, None) => "unknown".to_owned(),
    }
}

/// The tooltip of a request.
fn describe(mark: &RequestMark) -> String {
    let released = match mark.released_us {
        Some(us) => format!("released at {}", ms(us)),
        None => "never released".to_owned(),
    };
    let took = mark
        .released_us
        .map(|r| format!(" ({} after release)", ms(mark.ended_us.saturating_sub(r))))
        .unwrap_or_default();
    format!(
        "request #{}: {released}; {} at {}{took}",
        mark.index,
        outcome(mark),
        ms(mark.ended_us)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn one_group_per_request_with_its_tooltip() {
        let marks = [
            RequestMark::response(0, 1_000, 21_000, 201),
            RequestMark::response(1, 1_040, 2_000, 409),
            RequestMark::failed(2, None, 500, ErrorKind::Connect),
        ];
        let svg = timeline(&marks, 0).to_string();
        assert_eq!(svg.matches("<g class=\"req\"").count(), 3);
        assert!(svg.contains("data-requests=\"3\""));
        assert!(svg.contains(
            "<title>request #0: released at 1.000 ms; 201 at 21.000 ms (20.000 ms after release)</title>"
        ));
        assert!(svg.contains("<title>request #2: never released; connect at 0.500 ms</title>"));
        assert!(svg.contains("released within 40 µs"));
        assert_eq!(
            svg.matches("<circle").count(),
            5,
            "two per released request, one per failure"
        );
    }

    #[test]
    fn an_empty_trial_draws_an_empty_chart() {
        let svg = timeline(&[], 0).to_string();
        assert!(svg.contains("data-requests=\"0\""));
        assert!(!svg.contains("class=\"req\""));
    }
}
