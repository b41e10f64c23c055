//! Where each value of a framework file sits, so that an error about
//! `roles[2].rubric.competencies[0].competency` can say "line 214, column 9":
//! people edit the file, not the parsed document.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A line and column in the file, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// The position of every value in a file, by its path (`roles[2].name`).
#[derive(Debug, Default)]
pub struct SourceMap {
    positions: HashMap<String, Position>,
}

impl SourceMap {
    /// Indexes `text`; a file that does not parse as YAML gives an empty map
    /// (its syntax error carries its own position).
    pub fn of(text: &str) -> SourceMap {
        let mut indexer = Indexer::default();
        match Parser::new_from_str(text).load(&mut indexer, false) {
            Ok(()) => SourceMap {
                positions: indexer.positions,
            },
            Err(_) => SourceMap::default(),
        }
    }

    /// The position of `path`, or of the nearest enclosing value that is in the
    /// file (a missing field is reported where its parent is).
    pub fn locate(&self, path: &str) -> Option<Position> {
        let mut path = path;
        loop {
            if let Some(&position) = self.positions.get(path) {
                return Some(position);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }
}

/// Where the parser is inside one open mapping or sequence.
enum Frame {
    /// A mapping: the path of the mapping, and the key whose value comes next
    /// (`None` while a key is expected).
    Mapping { path: String, key: Option<String> },
    /// A sequence: its path and the index of its next item.
    Sequence { path: String, next: usize },
}

#[derive(Default)]
struct Indexer {
    stack: Vec<Frame>,
    positions: HashMap<String, Position>,
}

impl Indexer {
    /// The path of the value that starts now, or `None` when the event is a
    /// mapping key (which is remembered instead).
    fn next_value_path(&mut self, scalar: Option<&str>) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Sequence { path, next }) => {
                let at = format!("{path}[{next}]");
                *next += 1;
                Some(at)
            }
            Some(Frame::Mapping { path, key }) => match key.take() {
                Some(key) if path.is_empty() => Some(key),
                Some(key) => Some(format!("{path}.{key}")),
                None => {
                    // Complex (non-scalar) keys do not occur in framework files;
                    // they are indexed under an empty key.
                    *key = Some(scalar.unwrap_or_default().to_string());
                    None
                }
            },
        }
    }

    fn record(&mut self, path: &str, mark: Marker) {
        self.positions.insert(
            path.to_string(),
            Position {
                line: mark.line(),
                column: mark.col() + 1,
            },
        );
    }
}

impl MarkedEventReceiver for Indexer {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(value, ..) => {
                if let Some(path) = self.next_value_path(Some(&value)) {
                    self.record(&path, mark);
                }
            }
            Event::Alias(_) => {
                if let Some(path) = self.next_value_path(None) {
                    self.record(&path, mark);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = self.next_value_path(None).unwrap_or_default();
                self.record(&path, mark);
                self.stack.push(match event {
                    Event::MappingStart(..) => Frame::Mapping { path, key: None },
                    _ => Frame::Sequence { path, next: 0 },
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
format: x
roles:
  - id: a
    rubric:
      competencies:
        - competency: team_wrok
          weight: 2
  - id: b
";

    #[test]
    fn values_are_found_by_path() {
        let map = SourceMap::of(FILE);
        assert_eq!(map.locate("format"), Some(Position { line: 1, column: 9 }));
        assert_eq!(
            map.locate("roles[0].rubric.competencies[0].competency"),
            Some(Position {
                line: 6,
                column: 23
            })
        );
        assert_eq!(
            map.locate("roles[1].id"),
            Some(Position { line: 8, column: 9 })
        );
    }

    #[test]
    fn a_missing_field_is_located_at_its_parent() {
        let map = SourceMap::of(FILE);
        assert_eq!(
            map.locate("roles[1].seniority"),
            Some(Position { line: 8, column: 7 })
        );
    }
}
