//! Tokenizers for full-text matching: how a stored string and a query are split into tokens.
//!
//! A field without a text index uses the server's default, the word tokenizer lowercasing; a
//! field with one uses the index's parameters, for every segment alike: filters are bound to
//! the schema before they run ([`super::Filter::bind_text`]), so segments read through the
//! index and segments whose payloads are read agree.

use crate::error::Invalid;
use serde_json::{Map, Value};

/// How text is split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Split {
    /// Runs of letters and digits (underscores and punctuation split).
    #[default]
    Word,
    /// Runs of non-whitespace (punctuation stays with its word).
    Whitespace,
    /// Words, and every prefix of each stored word: a query word matches the words it begins.
    Prefix,
}

/// A text index's tokenizer settings (the default is the word tokenizer, lowercasing, with no
/// length bounds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokenizer {
    pub split: Split,
    /// Tokens shorter than this many characters are dropped.
    pub min_len: usize,
    /// Tokens longer than this many characters are dropped.
    pub max_len: usize,
    pub lowercase: bool,
}

impl Default for Tokenizer {
    fn default() -> Tokenizer {
        Tokenizer {
            split: Split::Word,
            min_len: 0,
            max_len: usize::MAX,
            lowercase: true,
        }
    }
}

impl Tokenizer {
    /// Reads the parameters of a text index (`tokenizer`, `min_token_len`, `max_token_len`,
    /// `lowercase`); errors name the parameter.
    pub fn from_params(params: &Map<String, Value>) -> Result<Tokenizer, Invalid> {
        let mut t = Tokenizer::default();
        match params.get("tokenizer") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == "word" => {}
            Some(Value::String(s)) if s == "whitespace" => t.split = Split::Whitespace,
            Some(Value::String(s)) if s == "prefix" => t.split = Split::Prefix,
            Some(other) => {
                return invalid!(
                "field_schema.tokenizer: {other} is not supported; use word, whitespace or prefix"
            )
            }
        }
        let length = |name: &str| match params.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .filter(|n| *n > 0)
                .map(|n| Some(n as usize))
                .ok_or_else(|| {
                    format!("field_schema.{name}: expected a positive integer, got {v}")
                }),
        };
        t.min_len = length("min_token_len")?.unwrap_or(0);
        t.max_len = length("max_token_len")?.unwrap_or(usize::MAX);
        if t.min_len > t.max_len {
            return invalid!(
                "field_schema.min_token_len ({}) is above max_token_len ({})",
                t.min_len,
                t.max_len
            );
        }
        match params.get("lowercase") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => t.lowercase = *b,
            Some(other) => {
                return invalid!("field_schema.lowercase: expected true or false, got {other}")
            }
        }
        Ok(t)
    }

    /// The words of a text, in order, normalised, before the length bounds.
    fn pieces<'a>(&self, text: &'a str) -> impl Iterator<Item = String> + 'a {
        let pieces: Box<dyn Iterator<Item = &str>> = match self.split {
            Split::Whitespace => Box::new(text.split_whitespace()),
            Split::Word | Split::Prefix => Box::new(text.split(|c: char| !c.is_alphanumeric())),
        };
        let lowercase = self.lowercase;
        pieces.filter(|w| !w.is_empty()).map(move |w| {
            if lowercase {
                w.to_lowercase()
            } else {
                w.to_owned()
            }
        })
    }

    /// The words of a text, in order, normalised and within the length bounds.
    pub fn words(&self, text: &str) -> Vec<String> {
        let words = self.pieces(text);
        words.filter(|w| self.fits(w.chars().count())).collect()
    }

    /// The tokens a stored text is found by: its words, and with the prefix tokenizer every
    /// prefix of each word within the length bounds.
    pub fn stored_tokens(&self, text: &str) -> Vec<String> {
        if self.split != Split::Prefix {
            return self.words(text);
        }
        let mut out = Vec::new();
        for word in self.pieces(text) {
            for (count, (end, c)) in word.char_indices().enumerate() {
                if self.fits(count + 1) {
                    out.push(word[..end + c.len_utf8()].to_owned());
                }
            }
        }
        out
    }

    fn fits(&self, chars: usize) -> bool {
        (self.min_len..=self.max_len).contains(&chars)
    }

    /// `text`: every query word is a stored token (an empty query matches nothing).
    pub fn matches_all(&self, stored: &str, query: &str) -> bool {
        let tokens = self.stored_tokens(stored);
        let words = self.words(query);
        !words.is_empty() && words.iter().all(|w| tokens.contains(w))
    }

    /// `text_any`: some query word is a stored token.
    pub fn matches_any(&self, stored: &str, query: &str) -> bool {
        let tokens = self.stored_tokens(stored);
        self.words(query).iter().any(|w| tokens.contains(w))
    }

    /// `phrase`: the query's words appear among the stored words consecutively, in order.
    pub fn matches_phrase(&self, stored: &str, phrase: &str) -> bool {
        let words = self.words(stored);
        let phrase = self.words(phrase);
        !phrase.is_empty() && words.windows(phrase.len()).any(|w| w == phrase)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tokenizer(params: Value) -> Tokenizer {
        Tokenizer::from_params(params.as_object().unwrap()).unwrap()
    }

    #[test]
    fn word_whitespace_and_prefix() {
        let word = Tokenizer::default();
        assert_eq!(
            word.words("Quick-brown FOX, snake_case"),
            ["quick", "brown", "fox", "snake", "case"]
        );
        let ws = tokenizer(json!({"tokenizer": "whitespace"}));
        assert_eq!(ws.words("Quick-brown FOX,"), ["quick-brown", "fox,"]);
        assert!(ws.matches_all("Quick-brown FOX,", "quick-brown"));
        assert!(!ws.matches_all("Quick-brown FOX,", "fox"));
        let prefix =
            tokenizer(json!({"tokenizer": "prefix", "min_token_len": 2, "max_token_len": 4}));
        assert_eq!(prefix.stored_tokens("Hello"), ["he", "hel", "hell"]);
        assert!(prefix.matches_all("Hello world", "hel wo"));
        assert!(
            !prefix.matches_all("Hello world", "hello"),
            "longer than max_token_len"
        );
        assert!(
            !prefix.matches_all("Hello world", "h"),
            "shorter than min_token_len"
        );
        let cased = tokenizer(json!({"lowercase": false}));
        assert!(!cased.matches_all("Hello", "hello"));
        assert!(cased.matches_phrase("say Hello World", "Hello World"));
    }

    #[test]
    fn bad_parameters_name_themselves() {
        let err = |p: Value| Tokenizer::from_params(p.as_object().unwrap()).unwrap_err();
        assert!(err(json!({"tokenizer": "multilingual"})).starts_with("field_schema.tokenizer:"));
        assert!(err(json!({"min_token_len": 0})).starts_with("field_schema.min_token_len:"));
        assert!(
            err(json!({"min_token_len": 5, "max_token_len": 2})).contains("above max_token_len")
        );
        assert!(err(json!({"lowercase": "yes"})).starts_with("field_schema.lowercase:"));
    }
}
