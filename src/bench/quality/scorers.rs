//! Answer extraction and scoring of generated responses: exact, contains, regex, choice
//! (a letter) and numeric (GSM8K's `#### N`, else the last number).

use std::sync::LazyLock;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a response is compared with the expected answer.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Scorer {
    /// The whole response, trimmed, equals the answer.
    Exact {
        #[serde(default)]
        case_sensitive: bool,
    },
    /// The response contains the answer.
    Contains {
        #[serde(default)]
        case_sensitive: bool,
    },
    /// `pattern` finds the answer in the response: its first capture group (or the whole
    /// match) must equal the expected answer.
    Regex {
        pattern: String,
        #[serde(default)]
        case_sensitive: bool,
    },
    /// The response picks one of the item's choices by letter (A, B, …).
    Choice,
    /// The response's final number (after `####` if present, else the last one) equals the
    /// expected number within `tolerance` (absolute; relative when `relative`).
    Numeric {
        #[serde(default = "default_tolerance")]
        tolerance: f64,
        #[serde(default)]
        relative: bool,
    },
}

fn default_tolerance() -> f64 {
    1e-6
}

/// The verdict on one response.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// An answer was found; `correct` says whether it matched.
    Scored { extracted: String, correct: bool },
    /// No answer could be found in the response.
    Unparsable,
}

impl Scorer {
    /// Checks the scorer's own settings (a regex that does not compile).
    pub fn check(&self) -> Result<(), String> {
        if let Scorer::Regex {
            pattern,
            case_sensitive,
        } = self
        {
            compile(pattern, *case_sensitive)?;
        }
        Ok(())
    }

    /// Scores `response` against `expected`; `choices` are the item's options (for `choice`).
    pub fn score(&self, response: &str, expected: &str, choices: &[String]) -> Verdict {
        match self {
            Scorer::Exact { case_sensitive } => {
                let got = response.trim();
                Verdict::Scored {
                    extracted: got.to_string(),
                    correct: same(got, expected.trim(), *case_sensitive),
                }
            }
            Scorer::Contains { case_sensitive } => {
                let correct = if *case_sensitive {
                    response.contains(expected.trim())
                } else {
                    response
                        .to_lowercase()
                        .contains(&expected.trim().to_lowercase())
                };
                Verdict::Scored {
                    extracted: response.trim().to_string(),
                    correct,
                }
            }
            Scorer::Regex {
                pattern,
                case_sensitive,
            } => {
                let Ok(re) = compile(pattern, *case_sensitive) else {
                    return Verdict::Unparsable;
                };
                match re.captures(response) {
                    Some(c) => {
                        let m = c.get(1).or_else(|| c.get(0)).map_or("", |m| m.as_str());
                        Verdict::Scored {
                            extracted: m.to_string(),
                            correct: same(m.trim(), expected.trim(), *case_sensitive),
                        }
                    }
                    None => Verdict::Unparsable,
                }
            }
            Scorer::Choice => match extract_letter(response, choices.len().max(2)) {
                Some(letter) => {
                    let expected = expected_letter(expected, choices);
                    Verdict::Scored {
                        correct: expected == Some(letter),
                        extracted: letter.to_string(),
                    }
                }
                None => Verdict::Unparsable,
            },
            Scorer::Numeric {
                tolerance,
                relative,
            } => match extract_number(response) {
                Some(got) => {
                    let correct = parse_number(expected).is_some_and(|want| {
                        let diff = (got - want).abs();
                        if *relative {
                            diff <= tolerance * want.abs().max(f64::MIN_POSITIVE)
                        } else {
                            diff <= *tolerance
                        }
                    });
                    Verdict::Scored {
                        extracted: format_number(got),
                        correct,
                    }
                }
                None => Verdict::Unparsable,
            },
        }
    }
}

fn compile(pattern: &str, case_sensitive: bool) -> Result<Regex, String> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(!case_sensitive)
        .build()
        .map_err(|e| format!("regex `{pattern}` does not compile: {e}"))
}

fn same(a: &str, b: &str, case_sensitive: bool) -> bool {
    if case_sensitive {
        a == b
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

/// The letter of option `i` (0 → A).
pub fn letter(i: usize) -> char {
    (b'A' + (i % 26) as u8) as char
}

/// The expected letter, from the text of a choice, a letter or a 0-based index.
fn expected_letter(expected: &str, choices: &[String]) -> Option<char> {
    let e = expected.trim();
    if let Some(i) = choices.iter().position(|c| c.trim() == e) {
        return Some(letter(i));
    }
    let n = choices.len().max(2);
    if e.len() == 1 && e.chars().all(|c| c.is_ascii_uppercase()) {
        return e
            .chars()
            .next()
            .filter(|c| ((*c as u8 - b'A') as usize) < n);
    }
    e.parse::<usize>().ok().filter(|i| *i < n).map(letter)
}

impl Scorer {
    /// Checks that an item's expected answer is one this scorer can match, so a bad
    /// answer key is an error rather than an item silently scored wrong.
    pub fn check_expected(&self, expected: &str, choices: &[String]) -> Result<(), String> {
        match self {
            _ if expected.trim().is_empty() => Err("the expected answer is empty".into()),
            Scorer::Choice => expected_letter(expected, choices).map(|_| ()).ok_or_else(|| {
                format!(
                    "the expected answer `{expected}` is neither one of the {} choices, a letter among them, nor a 0-based index",
                    choices.len()
                )
            }),
            Scorer::Numeric { .. } => parse_number(expected)
                .map(|_| ())
                .ok_or_else(|| format!("the expected answer `{expected}` is not a number")),
            _ => Ok(()),
        }
    }
}

static ANSWER_IS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i:answer)\s*(?:(?i:is)|:)?\s*:?\s*\(?\**([A-Z])\b").expect("static regex")
});
static LEADING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*\(?\**([A-Z])\**(?:[.):,;]|\s*$)").expect("static regex"));
static STANDALONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s(*])([A-Z])(?:[).:,;*]|\s+([a-z]?)|$)").expect("static regex")
});

/// The option letter a response picks among the first `n`: "Answer: C", "(C)", "C." or a
/// lone capital letter — the first such mention, "answer is X" preferred.
pub fn extract_letter(response: &str, n: usize) -> Option<char> {
    let valid = |c: char| (c as usize) >= ('A' as usize) && (c as usize) < ('A' as usize) + n;
    let pick = |re: &Regex| {
        re.captures_iter(response)
            .filter(|c| {
                // "A cat …" and "I think …" opening a sentence are words, not options.
                let Some(m) = c.get(1) else { return false };
                let word_follows = c.get(2).is_some_and(|w| !w.as_str().is_empty());
                let before = response[..m.start()].trim_end_matches([' ', '(', '*']);
                let opens_sentence = before.is_empty() || before.ends_with(['.', '!', '?', '\n']);
                !(word_follows && opens_sentence && matches!(m.as_str(), "A" | "I"))
            })
            .filter_map(|c| c.get(1)?.as_str().chars().next())
            .find(|&c| valid(c))
    };
    pick(&ANSWER_IS)
        .or_else(|| pick(&LEADING))
        .or_else(|| pick(&STANDALONE))
}

static HASHES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"####\s*\$?\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)").expect("static regex")
});
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    // A sign only at the start or after a non-alphanumeric character ("12-15" is 12 and 15);
    // thousands commas only in groups of three ("1,2,3" is three numbers).
    Regex::new(r"(?:^|[^0-9A-Za-z])(-?\$?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?)")
        .expect("static regex")
});

/// GSM8K-style answer extraction: the number after `####`, else the last number.
pub fn extract_number(response: &str) -> Option<f64> {
    if let Some(c) = HASHES.captures(response) {
        return parse_number(c.get(1)?.as_str());
    }
    NUMBER
        .captures_iter(response)
        .filter_map(|c| parse_number(c.get(1)?.as_str()))
        .last()
}

/// A number written with optional `$`, thousands commas and a trailing period.
pub fn parse_number(text: &str) -> Option<f64> {
    let cleaned: String = text
        .trim()
        .trim_end_matches('.')
        .chars()
        .filter(|c| *c != ',' && *c != '$')
        .collect();
    cleaned.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choices() -> Vec<String> {
        ["red", "green", "blue", "black"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn letters_are_found_in_the_usual_phrasings() {
        assert_eq!(extract_letter("The answer is (C).", 4), Some('C'));
        assert_eq!(extract_letter("Answer: B", 4), Some('B'));
        assert_eq!(extract_letter("B. green is right", 4), Some('B'));
        assert_eq!(extract_letter("**D**", 4), Some('D'));
        assert_eq!(extract_letter("I think it is A because", 4), Some('A'));
        assert_eq!(extract_letter("I cannot tell", 4), None);
        assert_eq!(
            extract_letter("A careful reading shows (C) is right", 4),
            Some('C')
        );
        assert_eq!(extract_letter("I think it is I.", 13), Some('I'));
        assert_eq!(
            extract_letter("D, because the others are wrong", 4),
            Some('D')
        );
        assert_eq!(extract_letter("the answer is a bit unclear", 4), None);
        // E is not an option among four.
        assert_eq!(extract_letter("E", 4), None);
    }

    #[test]
    fn choice_scorer_takes_letters_indices_and_texts_as_expected() {
        let s = Scorer::Choice;
        let c = choices();
        let ok = |v: Verdict| matches!(v, Verdict::Scored { correct: true, .. });
        assert!(ok(s.score("Answer: C", "C", &c)));
        assert!(ok(s.score("Answer: C", "2", &c)));
        assert!(ok(s.score("Answer: C", "blue", &c)));
        // Choice text wins over an index: with numeric options "4" is the option "4".
        let numbers: Vec<String> = ["2", "4", "6", "8"].iter().map(|s| s.to_string()).collect();
        assert!(ok(s.score("Answer: B", "4", &numbers)));
        assert!(s.check_expected("4", &numbers).is_ok());
        assert!(s.check_expected("9", &c).unwrap_err().contains("neither"));
        assert!(s.check_expected("E", &c).is_err());
        assert!(!ok(s.score("Answer: A", "2", &c)));
        assert_eq!(s.score("no idea", "2", &c), Verdict::Unparsable);
    }

    #[test]
    fn gsm8k_numbers() {
        assert_eq!(extract_number("so 3 + 4 = 7\n#### 7"), Some(7.0));
        assert_eq!(extract_number("She pays $1,250.50 in total."), Some(1250.5));
        assert_eq!(extract_number("It is 5, then 18."), Some(18.0));
        assert_eq!(extract_number("#### -3"), Some(-3.0));
        assert_eq!(extract_number("no numbers here"), None);
        assert_eq!(extract_number("pages 12-15"), Some(15.0));
        assert_eq!(extract_number("counting 1,2,3"), Some(3.0));
        assert_eq!(extract_number("x = -4"), Some(-4.0));
        let s = Scorer::Numeric {
            tolerance: 1e-6,
            relative: false,
        };
        assert_eq!(
            s.score("The total is 18.", "18", &[]),
            Verdict::Scored {
                extracted: "18".into(),
                correct: true
            }
        );
        assert!(matches!(
            s.score("The total is 17.", "18", &[]),
            Verdict::Scored { correct: false, .. }
        ));
        assert_eq!(s.score("none", "18", &[]), Verdict::Unparsable);
    }

    #[test]
    fn text_scorers() {
        let exact = Scorer::Exact {
            case_sensitive: false,
        };
        assert!(matches!(
            exact.score("  Paris \n", "paris", &[]),
            Verdict::Scored { correct: true, .. }
        ));
        let contains = Scorer::Contains {
            case_sensitive: true,
        };
        assert!(matches!(
            contains.score("It is Paris.", "paris", &[]),
            Verdict::Scored { correct: false, .. }
        ));
        let re = Scorer::Regex {
            pattern: r"capital is (\w+)".into(),
            case_sensitive: false,
        };
        assert_eq!(
            re.score("The capital is Paris.", "paris", &[]),
            Verdict::Scored {
                extracted: "Paris".into(),
                correct: true
            }
        );
        assert_eq!(re.score("I don't know", "paris", &[]), Verdict::Unparsable);
        let bad = Scorer::Regex {
            pattern: "(".into(),
            case_sensitive: false,
        };
        assert!(bad.check().unwrap_err().contains("does not compile"));
        assert!(contains.check_expected(" ", &[]).is_err());
        let numeric = Scorer::Numeric {
            tolerance: 0.0,
            relative: false,
        };
        assert!(numeric.check_expected("forty", &[]).is_err());
    }
}
