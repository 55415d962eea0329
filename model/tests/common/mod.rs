//! Checks shared by the integration tests of the checker.

use imps_model::checker::liveness::fair_class;
use imps_model::config::Config;
use imps_model::trace::Trace;
use imps_model::world::World;

/// The worlds a lasso's cycle steps start from.
pub fn cycle_states(t: &Trace) -> Vec<&World> {
    let start = t.loop_start.expect("a lasso");
    let mut from = vec![if start == 0 {
        &t.initial
    } else {
        &t.steps[start - 1].state
    }];
    from.extend(t.steps[start..t.steps.len() - 1].iter().map(|s| &s.state));
    from
}

/// A lasso's cycle is weakly fair: every fair action enabled in all of its states is taken
/// on it.
pub fn assert_weakly_fair_cycle(cfg: &Config, t: &Trace, what: &str) {
    let mut always: Option<Vec<u16>> = None;
    for w in cycle_states(t) {
        let mut acts = Vec::new();
        w.actions(cfg, &mut acts);
        let en: Vec<u16> = acts.iter().filter_map(fair_class).collect();
        always = Some(match always {
            None => en,
            Some(prev) => prev.into_iter().filter(|c| en.contains(c)).collect(),
        });
    }
    let start = t.loop_start.expect("a lasso");
    let taken: Vec<u16> = t.steps[start..]
        .iter()
        .filter_map(|s| fair_class(&s.action))
        .collect();
    for c in always.unwrap_or_default() {
        assert!(
            taken.contains(&c),
            "{what}: fair class {c} enabled all along the cycle but never taken"
        );
    }
}
