//! The little XML reading podiam's tools need: the text of an element of an awsQuery answer.

use quick_xml::Reader;
use quick_xml::events::Event;

/// The text of the first element named `name` (entities decoded), if any.
pub fn first_text(xml: &str, name: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    let mut inside = false;
    let mut text = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) if e.local_name().as_ref() == name => {
                inside = true;
                text.clear();
            }
            Event::Text(t) if inside => {
                text.push_str(&t.into_inner());
            }
            Event::GeneralRef(r) if inside => {
                if let Some(c) = r.resolve_char_ref().ok()? {
                    text.push(c);
                    continue;
                }
                let entity = r.into_inner();
                text.push_str(match entity.as_ref() {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "quot" => "\"",
                    "apos" => "'",
                    _ => return None,
                });
            }
            Event::End(e) if inside && e.local_name().as_ref() == name => {
                return Some(text);
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_elements_and_decodes_entities() {
        let xml =
            "<R><Error><Code>AccessDenied</Code><Message>a &amp; b &lt;c&gt;</Message></Error></R>";
        assert_eq!(first_text(xml, "Code").as_deref(), Some("AccessDenied"));
        assert_eq!(first_text(xml, "Message").as_deref(), Some("a & b <c>"));
        assert_eq!(first_text(xml, "Missing"), None);
        assert_eq!(first_text("<unclosed>", "unclosed"), None);
    }
}
