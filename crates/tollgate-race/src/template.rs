//! Per-request substitution of `{{i}}`, `{{uuid}}`, `{{trial}}` and `{{trial_uuid}}`.
//!
//! Templates work on bytes so that a binary body read from a file passes through untouched;
//! an unknown `{{name}}` is kept literally.

/// A parsed template: literal bytes interleaved with placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template(Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Vec<u8>),
    Index,
    Uuid,
    Trial,
    TrialUuid,
}

/// The values substituted into one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Vars<'a> {
    /// The request's index within its trial, `0..requests`.
    pub(crate) index: usize,
    /// The trial's index, `0..trials`.
    pub(crate) trial: usize,
    /// One UUID shared by every request of the trial.
    pub(crate) trial_uuid: &'a str,
}

impl Template {
    pub(crate) fn parse(text: &[u8]) -> Self {
        let mut parts = Vec::new();
        let mut literal = Vec::new();
        let mut rest = text;
        while let Some(start) = find(rest, b"{{") {
            let after = &rest[start + 2..];
            let Some(end) = find(after, b"}}") else { break };
            let placeholder = match &after[..end] {
                b"i" => Some(Part::Index),
                b"uuid" => Some(Part::Uuid),
                b"trial" => Some(Part::Trial),
                b"trial_uuid" => Some(Part::TrialUuid),
                _ => None,
            };
            match placeholder {
                Some(part) => {
                    literal.extend_from_slice(&rest[..start]);
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(part);
                    rest = &after[end + 2..];
                }
                None => {
                    literal.extend_from_slice(&rest[..start + 2]);
                    rest = after;
                }
            }
        }
        literal.extend_from_slice(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Self(parts)
    }

    pub(crate) fn render_into(&self, vars: Vars<'_>, out: &mut Vec<u8>) {
        for part in &self.0 {
            match part {
                Part::Literal(bytes) => out.extend_from_slice(bytes),
                Part::Index => out.extend_from_slice(vars.index.to_string().as_bytes()),
                Part::Uuid => out.extend_from_slice(uuid_v4().as_bytes()),
                Part::Trial => out.extend_from_slice(vars.trial.to_string().as_bytes()),
                Part::TrialUuid => out.extend_from_slice(vars.trial_uuid.as_bytes()),
            }
        }
    }

    pub(crate) fn render(&self, vars: Vars<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        self.render_into(vars, &mut out);
        out
    }
}

/// The position of the first `needle` in `haystack`.
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A random (version 4, RFC 9562) UUID in its hyphenated lowercase form.
pub(crate) fn uuid_v4() -> String {
    let bits = fastrand::u128(..);
    let bits = (bits & !(0xf << 76)) | (0x4 << 76); // version 4
    let bits = (bits & !(0x3 << 62)) | (0x2 << 62); // variant 10
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars<'static> {
        Vars {
            index: 7,
            trial: 3,
            trial_uuid: "T",
        }
    }

    #[test]
    fn substitutes_every_placeholder() {
        let t = Template::parse(b"/r/{{i}}/{{trial}}/{{trial_uuid}}?x={{i}}");
        assert_eq!(t.render(vars()), b"/r/7/3/T?x=7");
    }

    #[test]
    fn keeps_unknown_and_unclosed_placeholders() {
        let t = Template::parse(b"{{nope}} {{i}} {{i");
        assert_eq!(t.render(vars()), b"{{nope}} 7 {{i");
    }

    #[test]
    fn uuids_are_v4_and_distinct() {
        let a = String::from_utf8(Template::parse(b"{{uuid}}").render(vars())).unwrap();
        let b = uuid_v4();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert_eq!(a.matches('-').count(), 4);
    }
}
