//! Self-contained HTML reports with SVG charts: [`race_page`] for a run, [`comparison_page`]
//! for the same race against several endpoints.
//!
//! A page needs nothing but a browser: no external scripts, fonts or images (its content
//! security policy forbids every network load). Its charts are SVG built here with [`Node`],
//! which escapes every text and attribute value. A short inline script counts the request
//! marks of each timeline and writes the result at the bottom of the page; it sets
//! `data-rendered="ok"` on `<body>` when every timeline holds one mark per request.
//!
//! ```
//! use tollgate_race::RequestMark;
//! use tollgate_race::html::{Comparison, Side, comparison_page};
//!
//! let marks = [RequestMark::response(0, 120, 20_400, 201)];
//! let page = comparison_page(&Comparison {
//!     title: "one request",
//!     sides: vec![Side { name: "guarded", caption: "once", timeline: &marks }],
//!     ..Comparison::default()
//! });
//! assert!(page.contains("<g class=\"req\" data-index=\"0\" data-status=\"201\">"));
//! ```

mod axis;
mod bars;
mod comparison;
mod node;
mod page;
mod race;
mod timeline;

pub use comparison::{Comparison, Side, comparison_page};
pub use node::{Node, escape};
pub use page::document;
pub use race::{MAX_TIMELINES, race_page};
pub use timeline::timeline;
