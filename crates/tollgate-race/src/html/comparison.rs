//! A page comparing the same race against two (or more) endpoints, such as `tollgate demo`'s
//! naive and guarded paths.

use std::collections::BTreeMap;

use super::node::Node;
use super::page::{chip, document, heading};
use super::timeline::timeline;
use crate::mark::RequestMark;

/// One endpoint of a [`Comparison`].
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// The column heading, e.g. `naive`.
    pub name: &'a str,
    /// What the endpoint does, e.g. `check → call → insert`.
    pub caption: &'a str,
    /// Its requests, one mark each.
    pub timeline: &'a [RequestMark],
}

/// Everything a comparison page shows.
#[derive(Debug, Clone, Default)]
pub struct Comparison<'a> {
    /// The page title and heading.
    pub title: &'a str,
    /// One sentence under the title: what was raced.
    pub summary: &'a str,
    /// The command line that produced the page.
    pub command_line: &'a str,
    /// The endpoints, in column order.
    pub sides: Vec<Side<'a>>,
    /// Table rows: a label and one value per side (`HTTP 201`, `LLM calls`, ...).
    pub rows: Vec<(String, Vec<String>)>,
    /// Conclusions: whether each holds (drawn green or red) and its text.
    pub verdicts: Vec<(bool, String)>,
}

/// The page: the table with the sides in columns, the verdicts, and one timeline per side,
/// all drawn to the same time scale.
pub fn comparison_page(c: &Comparison<'_>) -> String {
    let mut body = vec![
        Node::new("h1").text(c.title),
        Node::new("p").text(c.summary),
        Node::new("pre")
            .attr("class", "command")
            .text(c.command_line),
        table(c),
    ];
    body.extend(c.verdicts.iter().map(|(held, text)| {
        let class = if *held { "ok" } else { "bad" };
        Node::new("p").attr("class", class).text(text)
    }));
    body.push(heading("Timelines (same time scale)"));
    let span = c
        .sides
        .iter()
        .flat_map(|s| s.timeline)
        .map(|m| m.ended_us)
        .max()
        .unwrap_or(0);
    for side in &c.sides {
        body.extend([
            Node::new("h3").text(format!("{} — {}", side.name, side.caption)),
            Node::new("p").children(statuses(side.timeline)),
            timeline(side.timeline, span),
        ]);
    }
    document(c.title, body)
}

fn table(c: &Comparison<'_>) -> Node {
    let head = Node::new("tr")
        .child(Node::new("th"))
        .children(c.sides.iter().map(|s| {
            Node::new("th")
                .text(s.name)
                .child(Node::new("br"))
                .text(s.caption)
        }));
    let rows = c.rows.iter().map(|(label, values)| {
        Node::new("tr").child(Node::new("td").text(label)).children(
            values
                .iter()
                .map(|v| Node::new("td").attr("class", "num").text(v)),
        )
    });
    Node::new("table")
        .attr("class", "comparison")
        .child(head)
        .children(rows)
}

/// A chip per status (and per error kind) with its count.
fn statuses(marks: &[RequestMark]) -> Vec<Node> {
    let mut counts: BTreeMap<(Option<u16>, String), usize> = BTreeMap::new();
    for m in marks {
        let label = match (m.status, m.error) {
            (Some(s), _) => s.to_string(),
            (None, Some(kind)) => kind.to_string(),
            (None, None) => "unknown".to_owned(),
        };
        *counts.entry((m.status, label)).or_insert(0) += 1;
    }
    counts
        .into_iter()
        .map(|((status, label), n)| chip(status, &label, n))
        .collect()
}
