//! [`Node`]: an HTML or SVG element built in code, escaped when it is rendered.
//!
//! Every string that reaches the page goes through [`Node::text`] or [`Node::attr`], which
//! escape it; only `&'static str` constants of this crate (its style sheet and script) are
//! written as they are, so a status line, URL or header sent by a server cannot inject markup.

use std::fmt::{self, Display, Write as _};

/// Elements that have no closing tag in HTML.
const VOID: [&str; 6] = ["meta", "br", "hr", "img", "input", "link"];

/// An element: a name, attributes and children (text or elements).
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Node {
    name: &'static str,
    attrs: Vec<(&'static str, String)>,
    children: Vec<Child>,
}

#[derive(Debug, Clone, PartialEq)]
enum Child {
    Text(String),
    Node(Node),
    Constant(&'static str),
}

impl Node {
    /// An element named `name` (`div`, `svg`, `rect`, ...) with no attributes or children.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Adds the attribute `name="value"`; the value is escaped.
    pub fn attr(mut self, name: &'static str, value: impl Display) -> Self {
        self.attrs.push((name, value.to_string()));
        self
    }

    /// Appends text; it is escaped.
    pub fn text(mut self, text: impl Display) -> Self {
        self.children.push(Child::Text(text.to_string()));
        self
    }

    /// Appends a child element.
    pub fn child(mut self, child: Node) -> Self {
        self.children.push(Child::Node(child));
        self
    }

    /// Appends child elements.
    pub fn children(mut self, children: impl IntoIterator<Item = Node>) -> Self {
        self.children.extend(children.into_iter().map(Child::Node));
        self
    }

    /// Appends a constant written as it is: the contents of a `<style>` or `<script>`, which
    /// HTML does not unescape. Only this crate's own constants can be passed.
    pub(crate) fn constant(mut self, code: &'static str) -> Self {
        self.children.push(Child::Constant(code));
        self
    }

    fn write(&self, out: &mut String) {
        out.push('<');
        out.push_str(self.name);
        for (name, value) in &self.attrs {
            let _ = write!(out, " {name}=\"{}\"", escape(value));
        }
        out.push('>');
        if VOID.contains(&self.name) {
            return;
        }
        for child in &self.children {
            match child {
                Child::Text(text) => out.push_str(&escape(text)),
                Child::Node(node) => node.write(out),
                Child::Constant(code) => out.push_str(code),
            }
        }
        let _ = write!(out, "</{}>", self.name);
    }
}

/// The element as markup.
impl Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write(&mut out);
        f.write_str(&out)
    }
}

/// `text` with `& < > " '` replaced by character references, safe in text and in quoted
/// attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        let node = Node::new("p")
            .attr("title", "a\"b'<c>&")
            .text("<script>alert(1)</script> & more");
        assert_eq!(
            node.to_string(),
            "<p title=\"a&quot;b&#39;&lt;c&gt;&amp;\">\
             &lt;script&gt;alert(1)&lt;/script&gt; &amp; more</p>"
        );
    }

    #[test]
    fn children_nest_and_void_elements_have_no_closing_tag() {
        let node = Node::new("div")
            .child(Node::new("meta").attr("charset", "utf-8"))
            .children([Node::new("b").text("x"), Node::new("i")])
            .constant("a<b");
        assert_eq!(
            node.to_string(),
            "<div><meta charset=\"utf-8\"><b>x</b><i></i>a<b</div>"
        );
    }
}
