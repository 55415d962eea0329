//! The stateright model over the same world, for `imps explore` and as a cross-check.
//!
//! States carry the world plus two sticky bit sets as ghost state: the safety properties some
//! step has violated so far and the witnesses reached so far, so that stateright's `always`
//! and `sometimes` properties can express the step monitors of [`crate::props`].

use super::graph::state_monitors;
use super::monitor::step_monitors;
use crate::config::Config;
use crate::props::{Kind, Prop, PropSet};
use crate::world::{Action, World};
use stateright::{Model, Property};

/// A world with ghost state for the monitors.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ghosted {
    /// The world (canonical).
    pub world: World,
    /// Safety properties violated on the way here.
    pub violated: u64,
    /// Witnesses reached on the way here.
    pub reached: u64,
}

/// The stateright model of a variant.
#[derive(Clone, Debug)]
pub struct CrModel {
    /// The variant.
    pub cfg: Config,
}

fn always_holds(p: Prop) -> fn(&CrModel, &Ghosted) -> bool {
    macro_rules! arm {
        ($($v:ident),*) => {
            match p {
                $(Prop::$v => |_: &CrModel, s: &Ghosted| s.violated & (1 << Prop::$v as u32) == 0,)*
                _ => |_: &CrModel, _: &Ghosted| true,
            }
        };
    }
    arm!(
        ClientIdUniquePerUser,
        LoginWithClientIdInUseAnswered608,
        NoDisconnectToAdmitLogin,
        DisconnectAlwaysSent,
        DisconnectHasNoTransactionId,
        ClientNeverAnswersDisconnect,
        RecoveredContextUnchanged,
        FailedRecoveryNotLoggedIn,
        RecoveryRefusalAnswered502,
        LogoutAfterRecoveryWithoutContext,
        StoredSessionIdRemovedOnLogout,
        LogoutLeavesGroups,
        LogoutAnsweredWithStatus,
        WithinSessionLimit,
        SessionsIndependent,
        PresenceMergedAcrossSessions,
        NoCombinedNegotiationOnRecovery,
        NoNegotiationInFirstFourWayRequest,
        CapabilityNegotiationWhenRequested,
        CapabilityRequestFalseAfterNegotiation,
        NoLoginContinuationAfter436,
        SessionIdStoredWhenEstablished,
        RecoveryAttemptedFirst,
        FreshLoginAfterFailedRecoveryHasNoSessionId,
        MultipleSessionsSupported,
        SessionContextDroppedAfterLogout
    )
}

fn sometimes_reached(p: Prop) -> fn(&CrModel, &Ghosted) -> bool {
    macro_rules! arm {
        ($($v:ident),*) => {
            match p {
                $(Prop::$v => |_: &CrModel, s: &Ghosted| s.reached & (1 << Prop::$v as u32) != 0,)*
                _ => |_: &CrModel, _: &Ghosted| false,
            }
        };
    }
    arm!(
        Reach608,
        Reach502,
        ReachRecovery,
        ReachLogoutAfterRecovery,
        ReachTwoWayLogin,
        ReachFourWayLogin,
        Reach609Or610,
        ReachExpiry,
        ReachDisconnect,
        ReachDisconnectReceived,
        Reach436
    )
}

impl Model for CrModel {
    type State = Ghosted;
    type Action = Action;

    fn init_states(&self) -> Vec<Ghosted> {
        let mut world = World::new(&self.cfg);
        world.canonicalize();
        let mut bad = PropSet::default();
        state_monitors(&self.cfg, &world, &mut bad);
        vec![Ghosted {
            world,
            violated: bad.0,
            reached: 0,
        }]
    }

    fn actions(&self, state: &Ghosted, actions: &mut Vec<Action>) {
        state.world.actions(&self.cfg, actions);
    }

    fn next_state(&self, last: &Ghosted, action: Action) -> Option<Ghosted> {
        let mut world = last.world.clone();
        let step = world.step(&self.cfg, action);
        let (mut bad, mut seen) = (PropSet(last.violated), PropSet(last.reached));
        step_monitors(&last.world, action, &step, &world, &mut bad, &mut seen);
        state_monitors(&self.cfg, &world, &mut bad);
        world.canonicalize();
        Some(Ghosted {
            world,
            violated: bad.0,
            reached: seen.0,
        })
    }

    fn properties(&self) -> Vec<Property<Self>> {
        Prop::ALL
            .iter()
            .filter_map(|&p| match p.kind() {
                Kind::Safety => Some(Property::always(p.name(), always_holds(p))),
                Kind::Witness => Some(Property::sometimes(p.name(), sometimes_reached(p))),
                Kind::Liveness => None,
            })
            .collect()
    }
}
