//! A linear scale from data values to pixels, with round tick values, and its axis.

use super::node::Node;

/// Maps `0..=max` (data) onto `start..=end` (pixels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scale {
    max: f64,
    start: f64,
    end: f64,
}

impl Scale {
    /// A scale whose upper bound is `max` rounded up to a tick, so the last tick ends the axis.
    pub(crate) fn new(max: f64, start: f64, end: f64) -> Self {
        let step = tick_step(max);
        let max = if max > 0.0 {
            (max / step).ceil() * step
        } else {
            1.0
        };
        Self { max, start, end }
    }

    /// The pixel position of `value`, clamped to the scale.
    pub(crate) fn at(&self, value: f64) -> f64 {
        let fraction = (value / self.max).clamp(0.0, 1.0);
        round(self.start + fraction * (self.end - self.start))
    }

    /// Round values from 0 to the upper bound: 1, 2 or 5 times a power of ten apart.
    pub(crate) fn ticks(&self) -> Vec<f64> {
        let step = tick_step(self.max);
        let count = (self.max / step).round() as usize;
        (0..=count).map(|i| i as f64 * step).collect()
    }
}

/// A step that cuts `0..max` into at most about six intervals.
fn tick_step(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let rough = max / 6.0;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&s| s >= rough)
        .unwrap_or(10.0 * power);
    step.max(f64::MIN_POSITIVE)
}

/// A tick value as a label: at most two decimals, no trailing zeros.
pub(crate) fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A pixel coordinate to a tenth of a pixel.
pub(crate) fn round(px: f64) -> f64 {
    (px * 10.0).round() / 10.0
}

/// A horizontal axis at height `y`: a line, labelled tick marks, and `title` under it.
pub(crate) fn x_axis(scale: &Scale, y: f64, title: &str) -> Node {
    let ticks = scale.ticks().into_iter().map(|value| {
        let x = scale.at(value);
        Node::new("g").child(line(x, y, x, y + 4.0, "#999")).child(
            Node::new("text")
                .attr("x", x)
                .attr("y", y + 15.0)
                .attr("text-anchor", "middle")
                .text(number(value)),
        )
    });
    Node::new("g")
        .attr("class", "axis")
        .child(line(scale.start, y, scale.end, y, "#999"))
        .children(ticks)
        .child(
            Node::new("text")
                .attr("x", scale.end)
                .attr("y", y + 28.0)
                .attr("text-anchor", "end")
                .text(title),
        )
}

/// A one-pixel line.
pub(crate) fn line(x1: f64, y1: f64, x2: f64, y2: f64, colour: &str) -> Node {
    Node::new("line")
        .attr("x1", x1)
        .attr("y1", y1)
        .attr("x2", x2)
        .attr("y2", y2)
        .attr("stroke", colour)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_data() {
        let scale = Scale::new(23.0, 0.0, 100.0);
        assert_eq!(scale.ticks(), [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]);
        assert_eq!(
            (scale.at(0.0), scale.at(12.5), scale.at(99.0)),
            (0.0, 50.0, 100.0)
        );
        assert_eq!(Scale::new(0.37, 10.0, 20.0).ticks().len(), 5);
        // No data: an axis from 0 to 1 rather than a division by zero.
        assert_eq!(Scale::new(0.0, 0.0, 10.0).ticks().len(), 6);
        assert_eq!(Scale::new(f64::NAN, 0.0, 10.0).at(0.5), 5.0);
        assert_eq!(
            (number(0.6000000001), number(20.0), number(0.25)),
            ("0.6".into(), "20".into(), "0.25".into())
        );
    }
}
