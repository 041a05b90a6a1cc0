//! The items where a student's score differs from the teacher's, grouped by
//! suite and category, from the journal alone.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::report::{model_rank, suite_rank};
use crate::run::journal::{JournalEntry, Role};
use crate::summary::Summary;

/// One item (task and sample) on which at least one student scored
/// differently from the teacher.
pub(super) struct Disagreement<'a> {
    /// The teacher's line.
    pub teacher: &'a JournalEntry,
    /// The students whose score differs, in model order.
    pub differ: Vec<&'a JournalEntry>,
    /// The students whose score is the same, in model order.
    pub agree: Vec<&'a JournalEntry>,
}

/// Every disagreement in one (suite, category), in journal order.
pub(super) struct Group<'a> {
    /// Suite name.
    pub suite: &'a str,
    /// Category name.
    pub category: &'a str,
    /// The items.
    pub items: Vec<Disagreement<'a>>,
}

/// Groups ordered as the summary orders suites, then by category name.
/// Teacher lines without any student line are skipped; a repeated line
/// for the same (model, suite, task, sample) counts once (the first).
pub(super) fn disagreements<'a>(summary: &Summary, journal: &'a [JournalEntry]) -> Vec<Group<'a>> {
    type Key<'k> = (&'k str, &'k str, u32);
    let key = |e: &'a JournalEntry| (e.suite.as_str(), e.task_id.as_str(), e.sample);
    let mut students: HashMap<Key<'a>, Vec<&'a JournalEntry>> = HashMap::new();
    let mut seen: HashSet<(&'a str, Key<'a>)> = HashSet::new();
    for e in journal.iter().filter(|e| e.role == Role::Student) {
        if seen.insert((e.model.as_str(), key(e))) {
            students.entry(key(e)).or_default().push(e);
        }
    }
    for list in students.values_mut() {
        list.sort_by_key(|e| model_rank(summary, &e.model));
    }
    let mut groups: BTreeMap<(usize, &'a str, &'a str), Vec<Disagreement<'a>>> = BTreeMap::new();
    let mut teacher_seen = HashSet::new();
    for teacher in journal.iter().filter(|e| e.role == Role::Teacher) {
        if !teacher_seen.insert(key(teacher)) {
            continue;
        }
        let Some(list) = students.get(&key(teacher)) else {
            continue;
        };
        let (differ, agree): (Vec<&JournalEntry>, Vec<&JournalEntry>) =
            list.iter().partition(|s| s.score != teacher.score);
        if differ.is_empty() {
            continue;
        }
        groups
            .entry((
                suite_rank(summary, &teacher.suite),
                teacher.suite.as_str(),
                teacher.category.as_str(),
            ))
            .or_default()
            .push(Disagreement {
                teacher,
                differ,
                agree,
            });
    }
    groups
        .into_iter()
        .map(|((_, suite, category), items)| Group {
            suite,
            category,
            items,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::bare_summary;
    use crate::summary::{ModelInfo, SuiteInfo};

    fn line(
        model: &str,
        role: Role,
        suite: &str,
        task: &str,
        cat: &str,
        score: f64,
    ) -> JournalEntry {
        JournalEntry {
            output: Some(format!("{score}")),
            score,
            ..JournalEntry::new(model, role, suite, task, cat)
        }
    }

    fn summary() -> Summary {
        let model = |name: &str, role| ModelInfo {
            name: name.into(),
            role,
            backend: "replay".into(),
            fingerprint: String::new(),
            model_id: String::new(),
            price: String::new(),
            categories: Vec::new(),
            few_shot: None,
        };
        let suite = |name: &str| SuiteInfo {
            name: name.into(),
            version: "1".into(),
            split: "test".into(),
            items: 2,
            categories: Vec::new(),
        };
        Summary {
            models: vec![
                model("t", Role::Teacher),
                model("b", Role::Student),
                model("a", Role::Student),
            ],
            suites: vec![suite("z"), suite("y")],
            ..bare_summary()
        }
    }

    #[test]
    fn groups_follow_suite_order_and_list_students_in_model_order() {
        let t = Role::Teacher;
        let s = Role::Student;
        let journal = vec![
            line("a", s, "y", "1", "c2", 0.0),
            line("t", t, "y", "1", "c2", 1.0),
            line("b", s, "y", "1", "c2", 1.0),
            line("t", t, "z", "1", "c1", 0.0),
            line("a", s, "z", "1", "c1", 0.5),
            line("b", s, "z", "1", "c1", 1.0),
            // Agreement everywhere: not listed.
            line("t", t, "z", "2", "c1", 1.0),
            line("a", s, "z", "2", "c1", 1.0),
            // A repeated teacher line counts once.
            line("t", t, "z", "1", "c1", 0.0),
            // No student line: skipped.
            line("t", t, "z", "3", "c1", 1.0),
        ];
        let groups = disagreements(&summary(), &journal);
        let shape: Vec<(&str, &str, usize)> = groups
            .iter()
            .map(|g| (g.suite, g.category, g.items.len()))
            .collect();
        assert_eq!(shape, [("z", "c1", 1), ("y", "c2", 1)]);
        let names = |v: &[&JournalEntry]| v.iter().map(|e| e.model.clone()).collect::<Vec<_>>();
        assert_eq!(names(&groups[0].items[0].differ), ["b", "a"]);
        assert!(groups[0].items[0].agree.is_empty());
        assert_eq!(names(&groups[1].items[0].differ), ["a"]);
        assert_eq!(names(&groups[1].items[0].agree), ["b"]);
    }
}
