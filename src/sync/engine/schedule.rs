//! The order a job starts its pipelines in: stalest first, so that when a job cannot finish them all (deadline,
//! cancellation), the next job starts with the ones left behind and no pipeline starves.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::sync::pipeline::Pipeline;

/// Indices into `pipelines`: never succeeded first, then the oldest last success; ties by name.
pub(super) fn stalest_first(
    pipelines: &[Pipeline],
    last_success: &BTreeMap<String, DateTime<Utc>>,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..pipelines.len()).collect();
    // `None` sorts before every `Some`: a pipeline that never succeeded is the stalest of all.
    order.sort_by_key(|&i| (last_success.get(&pipelines[i].name), &pipelines[i].name));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(name: &str) -> Pipeline {
        let path = std::path::PathBuf::from(format!("{name}.yaml"));
        Pipeline {
            name: name.into(),
            replication: Err(crate::sync::pipeline::ReplicationError::Read {
                path: path.clone(),
                reason: "not needed here".into(),
            }),
            path,
        }
    }

    #[test]
    fn never_succeeded_then_oldest_success_then_name() {
        let at = |s: i64| DateTime::from_timestamp(s, 0).expect("time");
        let pipelines: Vec<Pipeline> = ["a", "b", "c", "d", "e"]
            .into_iter()
            .map(pipeline)
            .collect();
        let last = BTreeMap::from([
            ("a".to_string(), at(300)),
            ("b".to_string(), at(100)),
            ("e".to_string(), at(100)),
        ]);
        let names: Vec<&str> = stalest_first(&pipelines, &last)
            .into_iter()
            .map(|i| pipelines[i].name.as_str())
            .collect();
        assert_eq!(names, ["c", "d", "b", "e", "a"]);
        assert_eq!(stalest_first(&[], &last), Vec::<usize>::new());
    }
}
