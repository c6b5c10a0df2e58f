//! The page around the charts: head, style sheet, the self-check script, and the colours.

use super::node::Node;

/// Forbids every network load: the page shows the same with no connection at all.
const POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'";

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1000px;color:#1d1d1f;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:14px;margin:16px 0 4px}
pre{background:#f4f4f6;padding:8px 10px;border-radius:4px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#fafafa}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.violated td{background:#fdecea}.bad{color:#b71c1c;font-weight:600}.ok{color:#1b5e20;font-weight:600}
.chip{display:inline-block;padding:0 6px;margin:1px 4px 1px 0;border-radius:9px;color:#fff;font-size:12px}
.side{display:inline-block;vertical-align:top;width:49%;min-width:420px}
svg{display:block;margin:4px 0;font:11px system-ui,sans-serif}svg text{fill:#333}
.note{color:#666;font-size:12px}#check{color:#888;font-size:11px}
";

/// Counts the request marks of each timeline and writes the result into `#check`, and the
/// attribute `data-rendered="ok"` on `<body>` only when every timeline holds as many marks as
/// it declares: a browser test reads them to know the script ran without an error.
const SCRIPT: &str = "(function(){var t=document.querySelectorAll('svg.timeline'),marks=0,short=0;\
t.forEach(function(s){var n=s.querySelectorAll('g.req').length;marks+=n;\
if(n!==Number(s.getAttribute('data-requests')))short++;});\
document.getElementById('check').textContent='drawn: '+t.length+' timelines, '+marks+\
' request marks'+(short?', '+short+' incomplete':'');\
document.body.setAttribute('data-rendered',short?'incomplete':'ok');})();";

/// A complete page: `<!DOCTYPE html>`, a head with `title`, and `body` followed by the
/// self-check line.
pub fn document(title: &str, body: impl IntoIterator<Item = Node>) -> String {
    let head = Node::new("head")
        .child(Node::new("meta").attr("charset", "utf-8"))
        .child(
            Node::new("meta")
                .attr("http-equiv", "Content-Security-Policy")
                .attr("content", POLICY),
        )
        .child(
            Node::new("meta")
                .attr("name", "viewport")
                .attr("content", "width=device-width, initial-scale=1"),
        )
        .child(Node::new("title").text(title))
        .child(Node::new("style").constant(STYLE));
    let body = Node::new("body")
        .children(body)
        .child(Node::new("p").attr("id", "check"))
        .child(Node::new("script").constant(SCRIPT));
    let html = Node::new("html").attr("lang", "en").child(head).child(body);
    format!("<!DOCTYPE html>\n{html}\n")
}

/// The colour of a response status (by class) or of a failed request (`None`).
pub(crate) fn status_colour(status: Option<u16>) -> &'static str {
    match status.map(|s| s / 100) {
        Some(2) => "#2e7d32",
        Some(3) => "#1565c0",
        Some(4) => "#ef6c00",
        Some(5) => "#c62828",
        Some(_) => "#607d8b",
        None => "#6a1b9a",
    }
}

/// A coloured label for a status (or `error` when `None`) with its count.
pub(crate) fn chip(status: Option<u16>, label: &str, count: usize) -> Node {
    Node::new("span")
        .attr("class", "chip")
        .attr("style", format!("background:{}", status_colour(status)))
        .text(format!("{label} ×{count}"))
}

/// A heading of level 2.
pub(crate) fn heading(text: &str) -> Node {
    Node::new("h2").text(text)
}

/// `microseconds` in milliseconds, with three decimals.
pub(crate) fn ms(microseconds: u64) -> String {
    format!("{:.3} ms", microseconds as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_self_contained_and_escapes_its_title() {
        let page = document("a <b>", [heading("h")]);
        assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset"));
        assert!(page.contains("<title>a &lt;b&gt;</title>"));
        assert!(page.contains("<h2>h</h2><p id=\"check\"></p><script>"));
        assert!(page.contains("default-src &#39;none&#39;"));
        for external in ["src=", "href=", "http://", "https://", "@import", "url("] {
            assert!(!page.contains(external), "{external}");
        }
    }

    #[test]
    fn statuses_are_coloured_by_class() {
        assert_eq!(status_colour(Some(201)), status_colour(Some(204)));
        assert_ne!(status_colour(Some(201)), status_colour(Some(409)));
        assert_ne!(status_colour(Some(500)), status_colour(None));
        assert_eq!(ms(1_234), "1.234 ms");
    }
}
