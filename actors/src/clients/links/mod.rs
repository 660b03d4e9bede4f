//! Recordings from a link: yt-dlp fetches them, a guard keeps every request
//! it makes to public addresses.

pub mod guard;
pub mod proxy;
pub mod ytdlp;

pub use guard::{Guard, Refused};
pub use ytdlp::{LinkError, Probe, YtDlp};

/// The first http(s) link in a message's text, if it holds one.
pub fn first_link(text: &str) -> Option<url::Url> {
    text.split_whitespace()
        .map(|word| word.trim_matches(|c: char| matches!(c, '<' | '>' | '(' | ')' | '"' | '\'' | ',')))
        .filter(|word| word.starts_with("http://") || word.starts_with("https://"))
        .find_map(|word| url::Url::parse(word).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_http_link_in_a_text_is_found() {
        assert_eq!(first_link("listen: https://youtu.be/abc?t=3 please").unwrap().as_str(), "https://youtu.be/abc?t=3");
        assert_eq!(first_link("(http://example.com/a.mp3)").unwrap().host_str(), Some("example.com"));
        assert_eq!(first_link("ftp://example.com/a.mp3 and nothing else"), None);
        assert_eq!(first_link("no link here"), None);
    }
}
